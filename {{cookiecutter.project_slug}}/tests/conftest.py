"""Fixtures carrying the signing settings this project was generated with."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_spectrum import PROJECT_ID, PROJECT_SECRET, FakeSpectrum
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.botkit import Bot, Context, React
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.events import Attachment, Text
from {{ cookiecutter.package_name }}.logs import TextFormatter
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import encode, text_delivery
from {{ cookiecutter.package_name }}.verify import signed_headers

# The answers given at generation; test_config.py checks the code agrees.
WEBHOOK_PATH = "{{ cookiecutter.webhook_path }}"
SIGNING_SECRET_ENV = "{{ cookiecutter.signing_secret_env }}"
TOLERANCE_SECONDS = {{ cookiecutter.timestamp_tolerance_seconds }}
MAX_BODY_BYTES = {{ cookiecutter.max_body_bytes }}

SECRET = "5f0c1e5b8a2d4c6e9f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d1e3f5a7b9c0d2e"
OLD_SECRET = "e5f6506a3a2912b1638f46c4afc48580ee967762cca5b2c2fbdf971caed2c829"

Post = Callable[..., TestResponse]


def echo_bot() -> Bot:
    """The framework tests' own bot, so that they pass whatever bot.py becomes."""
    bot = Bot()
    bot.on(Text)(lambda ctx, text: f"You said: {text.text}")
    bot.on(Attachment)(lambda ctx, file: [React("❤️"), f"Thanks for the {file.mime_type}!"])
    return bot


class BlockingBot(Bot):
    """A bot whose Text handler waits for `release`; `started` is set once it is in it."""

    def __init__(self, timeout: float = 10) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

        @self.on(Text)
        def wait(ctx: Context, content: Text) -> str:
            self.started.set()
            self.release.wait(timeout)
            return "done"


@pytest.fixture(autouse=True)
def log_lines_as_the_app_writes_them(request: pytest.FixtureRequest) -> None:
    """caplog.text and a failed test's "Captured log" in the app's text format, fields
    (extra=) included."""
    logging_plugin = request.config.pluginmanager.get_plugin("logging-plugin")
    for handler in (logging_plugin.caplog_handler, logging_plugin.report_handler):
        handler.setFormatter(TextFormatter())


@contextlib.contextmanager
def served(settings: Settings, bot: Bot, worker: bool = True) -> Iterator[tuple[Flask, str]]:
    """The app over real HTTP on 127.0.0.1, its bot threads running unless `worker=False`,
    as under `make run`; yields it and its webhook's URL."""
    app = create_app(dataclasses.replace(settings, start_worker=worker), bot=bot)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}{WEBHOOK_PATH}"
    finally:
        server.shutdown()
        if runtime(app).bot_threads is not None:  # None with Redis: a worker runs the bot
            runtime(app).bot_threads.stop()


def wait_until(condition: Callable[[], object], timeout: float = 60, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for connection-refused cases."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_arguments(program: str, port: int, folder: Path, appendonly: str = "yes") -> list[str]:
    """redis-server on 127.0.0.1, persisting as production should (append-only file)."""
    where = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    return [program, *where, "--save", "", "--appendonly", appendonly]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1, for the Redis inbox; its URL."""
    program = shutil.which("redis-server")
    if program is None:
        pytest.skip("redis-server is not installed (apt install redis-server; CI installs it)")
    port = unused_port()
    server = subprocess.Popen(
        redis_arguments(program, port, tmp_path_factory.mktemp("redis")),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not listening(port):
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.skip(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait()


@pytest.fixture
def fake() -> Iterator[FakeSpectrum]:
    """Spectrum's cloud (management API and what the SDK calls), on 127.0.0.1."""
    server = FakeSpectrum()
    yield server
    server.close()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        signing_secrets=(SECRET, OLD_SECRET),
        tolerance_seconds=TOLERANCE_SECONDS,
        max_body_bytes=MAX_BODY_BYTES,
        instance_dir=tmp_path / "instance",
        env_file=tmp_path / ".env",
        inbox_path=tmp_path / "inbox.sqlite3",
        redis_url="",  # these tests use the SQLite inbox; test_inbox_contract.py covers both
        start_worker=False,  # tests drive the worker by hand
    )


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings, bot=echo_bot())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def post(client: FlaskClient) -> Post:
    """POST a body to the webhook, signed like Spectrum unless told otherwise."""

    def post(
        body: bytes | None = None,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        drop: tuple[str, ...] = (),
    ) -> TestResponse:
        body = encode(text_delivery("hello")) if body is None else body
        signed = signed_headers(secret, int(time.time()) if timestamp is None else timestamp, body)
        signed["X-Spectrum-Webhook-Id"] = "60d6d04f-f9fa-4a7b-9c97-37c9c90ce91c"
        signed.update(headers or {})
        for name in drop:
            signed.pop(name)
        return client.post(WEBHOOK_PATH, data=body, headers=signed)

    return post


# -- the reply bridge (tests of projects generated with it) ------------------------


@pytest.fixture(scope="session")
def bridge_dir() -> Path:
    """bridge/ with its node_modules, installed from the lock file if missing.

    The test processes (`make test` runs 4) take turns: one installs, the others
    wait for it rather than run `npm ci` into the same folder at once.
    """
    from {{ cookiecutter.package_name }}.config import DEFAULT_BRIDGE_DIR

    with open(DEFAULT_BRIDGE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # npm writes this file last: its presence means a complete install.
        if not (DEFAULT_BRIDGE_DIR / "node_modules" / ".package-lock.json").is_file():
            npm = shutil.which("npm")
            assert npm, "node is installed but npm is not: install npm to test the reply bridge"
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=DEFAULT_BRIDGE_DIR,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"npm ci failed in bridge/:\n{done.stderr[-3000:]}"
    return DEFAULT_BRIDGE_DIR


@pytest.fixture
def sends(tmp_path: Path) -> Path:
    """Where the bridge's test mode records each hand-over to the platform."""
    return tmp_path / "sends.jsonl"


def sent(sends: Path) -> list[dict]:
    if not sends.exists():
        return []
    return [json.loads(line) for line in sends.read_text().splitlines()]


@pytest.fixture
def node_env(fake: FakeSpectrum, sends: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SPECTRUM_CLOUD_URL": fake.url,
        "SPECTRUM_PROJECT_ID": PROJECT_ID,
        "SPECTRUM_PROJECT_SECRET": PROJECT_SECRET,
        "SPECTRUM_BRIDGE_TEST_SENDS": str(sends),
        "SPECTRUM_BRIDGE_JOURNAL_DIR": str(sends.parent / "journal"),
        "LOG_LEVEL": "warn",
    }


@pytest.fixture
def start_bridge(bridge_dir: Path, node_env: dict[str, str]) -> Iterator:
    """Start real bridge.mjs processes (with the SDK) against the stand-in cloud."""
    from {{ cookiecutter.package_name }}.bridge import Bridge

    started: list = []

    def start(**env: str):
        node = shutil.which("node")
        assert node, "node is not on PATH"
        bridge = Bridge(
            [node, str(bridge_dir / "bridge.mjs")],
            cwd=bridge_dir,
            env={**node_env, **env},
            timeout=20,
        )
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.close()
