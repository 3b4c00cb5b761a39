"""`flask spectrum tunnel`, with the ngrok SDK replaced at its boundary (tests/fake_ngrok).

The management API is the stand-in server on 127.0.0.1; the app is real gunicorn
in the end-to-end tests. Nothing here reaches ngrok or Photon.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import SIGNING_SECRET_ENV, WEBHOOK_PATH, unused_port
from fake_spectrum import PROJECT_ID, PROJECT_SECRET, FakeSpectrum

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.envfile import (
    KnownWebhooks,
    read_secrets,
    save_registration,
)
from {{ cookiecutter.package_name }}.management import ManagementAPI
from {{ cookiecutter.package_name }}.registrations import Registrations
from {{ cookiecutter.package_name }}.samples import encode, text_delivery
from {{ cookiecutter.package_name }}.tunnel import (
    NgrokTunnel,
    TunnelError,
    ngrok_from_settings,
    run_loop,
)
from {{ cookiecutter.package_name }}.verify import signed_headers

FAKE_NGROK = Path(__file__).with_name("fake_ngrok")
PROJECT = Path(__file__).resolve().parent.parent
TUNNEL_URL = "https://fake-tunnel.ngrok.example"
WEBHOOK_URL = TUNNEL_URL + WEBHOOK_PATH


class Recorder:
    """A tunnel and an app that note what happened, and how many webhooks existed then."""

    def __init__(self, fake: FakeSpectrum, fail_start: bool = False) -> None:
        self.fake = fake
        self.fail_start = fail_start
        self.events: list[tuple[str, int]] = []

    def note(self, what: str) -> None:
        self.events.append((what, len(self.fake.webhooks)))

    # the tunnel
    def open(self, port: int) -> str:
        self.note("open")
        return TUNNEL_URL

    def close(self) -> None:
        self.note("close")

    # the app
    def start(self, env: dict[str, str]) -> None:
        self.note("start")
        self.env = env
        if self.fail_start:
            raise TunnelError("the app did not start")

    def stop(self) -> None:
        self.note("stop")

    def exited(self) -> bool:
        return False


def interrupted(app) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def loop(fake: FakeSpectrum, tmp_path: Path):
    env_path = tmp_path / ".env"
    env_path.write_text(f"{SIGNING_SECRET_ENV}=dev-secret\n")
    known = KnownWebhooks(tmp_path / "instance" / "webhooks.json")
    api = ManagementAPI(PROJECT_ID, PROJECT_SECRET, base_url=fake.url, timeout=2)

    def run(recorder: Recorder, *, api=api, keep: bool = False, wait=interrupted, port=None):
        run_loop(
            port=port or unused_port(),
            tunnel=recorder,
            public_url=None,
            api=api,
            registrations=Registrations(env_path, known),
            keep=keep,
            app=recorder,
            wait=wait,
        )

    run.env_path, run.known, run.api = env_path, known, api
    return run


def test_order_of_operations_and_cleanup_on_interrupt(loop, fake: FakeSpectrum, capsys) -> None:
    recorder = Recorder(fake)
    with pytest.raises(KeyboardInterrupt):
        loop(recorder)
    # tunnel, then register (1 webhook when the app starts), then undo in reverse order:
    # the app stops while the webhook exists, the tunnel closes after it is deleted.
    assert recorder.events == [("open", 0), ("start", 1), ("stop", 1), ("close", 0)]
    assert fake.webhooks == {}
    registered = [r for r in fake.requests if r[0] == "POST" and r[1].endswith("/webhooks/")]
    assert len(registered) == 1
    # The app was started with the secret Spectrum returned first, the old one kept;
    # once the webhook is deleted its secret leaves .env again.
    new, old = recorder.env[SIGNING_SECRET_ENV].split(",")
    assert len(new) == 64 and old == "dev-secret"
    assert read_secrets(loop.env_path, SIGNING_SECRET_ENV) == ["dev-secret"]
    assert loop.known.all() == {}  # forgotten with the webhook
    out = capsys.readouterr().out
    assert f"Spectrum delivers to {WEBHOOK_URL}" in out
    assert "and dropped its secret from .env" in out


def test_the_webhook_is_deleted_when_the_app_fails_to_start(loop, fake: FakeSpectrum) -> None:
    recorder = Recorder(fake, fail_start=True)
    with pytest.raises(TunnelError, match="the app did not start"):
        loop(recorder)
    assert recorder.events == [("open", 0), ("start", 1), ("stop", 1), ("close", 0)]
    assert fake.webhooks == {}


def test_keep_leaves_the_webhook(loop, fake: FakeSpectrum) -> None:
    with pytest.raises(KeyboardInterrupt):
        loop(Recorder(fake), keep=True)
    (webhook,) = fake.webhooks.values()
    assert webhook["webhookUrl"] == WEBHOOK_URL
    secrets = read_secrets(loop.env_path, SIGNING_SECRET_ENV)
    assert secrets == [webhook["signingSecret"], "dev-secret"]  # still needed


def test_a_url_registered_elsewhere_is_replaced(loop, fake: FakeSpectrum, capsys) -> None:
    stranger = loop.api.register(WEBHOOK_URL)  # its secret never reached this .env
    with pytest.raises(KeyboardInterrupt):
        loop(Recorder(fake))
    assert "deleted an earlier registration" in capsys.readouterr().out
    assert ("DELETE", f"/projects/{PROJECT_ID}/webhooks/{stranger.id}/") in fake.requests
    assert fake.webhooks == {}


def test_our_own_leftover_registration_is_reused(loop, fake: FakeSpectrum) -> None:
    """A run that could not clean up (kill -9) with a static domain left its webhook behind."""
    leftover = loop.api.register(WEBHOOK_URL)
    save_registration(
        loop.env_path,
        SIGNING_SECRET_ENV,
        loop.known,
        leftover.id,
        WEBHOOK_URL,
        leftover.signing_secret,
    )
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        loop(Recorder(fake), wait=lambda app: (seen.extend(fake.webhooks), interrupted(app)))
    assert seen == [leftover.id]  # the same record, not a new one
    assert fake.webhooks == {}  # and cleaned up this time


def test_any_other_tunnel_with_url(fake: FakeSpectrum, loop, tmp_path: Path) -> None:
    recorder = Recorder(fake)
    with pytest.raises(KeyboardInterrupt):
        run_loop(
            port=unused_port(),
            tunnel=None,
            public_url="https://bot.trycloudflare.com/",
            api=loop.api,
            registrations=Registrations(loop.env_path, loop.known),
            keep=False,
            app=recorder,
            wait=lambda app: (recorder.note("running"), interrupted(app)),
        )
    assert ("running", 1) in recorder.events
    assert ("POST", f"/projects/{PROJECT_ID}/webhooks/") in fake.requests
    assert fake.webhooks == {}  # deleted on the way out all the same


def test_command_refuses_a_plain_http_url(app) -> None:
    result = app.test_cli_runner().invoke(args=["spectrum", "tunnel", "--url", "http://x.example"])
    assert result.exit_code == 1
    assert (
        result.output
        == "Error: Spectrum only delivers to public https:// URLs, not http://x.example\n"
    )


def test_without_credentials_it_prints_how_to_register(loop, fake: FakeSpectrum, capsys) -> None:
    recorder = Recorder(fake)
    with pytest.raises(KeyboardInterrupt):
        loop(recorder, api=None)
    out = capsys.readouterr().out
    assert f"tunnel open: {WEBHOOK_URL}" in out
    assert '-u "$SPECTRUM_PROJECT_ID:$SPECTRUM_PROJECT_SECRET"' in out
    assert json.dumps({"webhookUrl": WEBHOOK_URL}) in out
    assert recorder.events == [("open", 0), ("start", 0), ("stop", 0), ("close", 0)]
    assert fake.requests == []


def test_a_refused_registration_closes_the_tunnel(loop, fake: FakeSpectrum) -> None:
    recorder = Recorder(fake)
    fake.force_status = 422
    with pytest.raises(Exception, match="rejected"):
        loop(recorder)
    assert recorder.events == [("open", 0), ("close", 0)]


def test_a_port_held_by_something_else_is_refused(loop, fake: FakeSpectrum) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        recorder = Recorder(fake)
        with pytest.raises(TunnelError, match="is taken by something that is not this app"):
            loop(recorder, port=squatter.getsockname()[1])
    assert fake.webhooks == {}
    assert recorder.events[-1] == ("close", 0)


# -- the ngrok SDK at its boundary -------------------------------------------------


@pytest.fixture
def fake_ngrok(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE_NGROK))
    sys.modules.pop("ngrok", None)
    import ngrok

    ngrok.calls.clear()
    yield ngrok
    sys.modules.pop("ngrok", None)


def test_ngrok_tunnel_forwards_to_the_local_port(fake_ngrok) -> None:
    tunnel = NgrokTunnel("token", domain="bot.ngrok.app")
    assert tunnel.open(8123) == "https://bot.ngrok.app"
    tunnel.close()
    tunnel.close()  # idempotent
    assert fake_ngrok.calls == [
        ["forward", "127.0.0.1:8123", ["authtoken", "domain"]],
        ["disconnect", "https://bot.ngrok.app"],
    ]


def test_ngrok_failure_is_one_line(fake_ngrok, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_NGROK_FAIL", "authentication failed")
    with pytest.raises(TunnelError) as caught:
        NgrokTunnel("bad").open(8123)
    assert caught.value.message == (
        "ngrok could not open a tunnel: failed to connect session: authentication failed"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "NGROK_AUTHTOKEN is not set: copy it from https://dashboard.ngrok.com"),
        ({"NGROK_AUTH_TOKEN": "t"}, "NGROK_AUTHTOKEN is not set (found NGROK_AUTH_TOKEN"),
    ],
)
def test_a_missing_token_names_the_right_variable(environ, message) -> None:
    def settings(environ: dict[str, str]) -> Settings:
        return Settings.from_env({SIGNING_SECRET_ENV: "s", **environ})

    with pytest.raises(TunnelError, match=message.replace("(", r"\(")):
        ngrok_from_settings(settings(environ))
    found = ngrok_from_settings(settings({"NGROK_AUTHTOKEN": "t", "NGROK_DOMAIN": "x.ngrok.app"}))
    assert found.domain == "x.ngrok.app"


def test_importing_the_app_never_imports_ngrok() -> None:
    code = (
        "import sys; import {{ cookiecutter.package_name }} as p; p.create_app(); "
        "assert 'ngrok' not in sys.modules, 'ngrok imported'"
    )
    env = {**os.environ, SIGNING_SECRET_ENV: "s", "PYTHONPATH": f"{FAKE_NGROK}:{PROJECT}"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- the command end to end: real flask CLI, real gunicorn ---------------------------


class Command:
    """`flask spectrum tunnel` in its own folder (a copy of the project's run files)."""

    def __init__(self, tmp_path: Path, fake: FakeSpectrum, **env: str) -> None:
        shutil.copy(PROJECT / "gunicorn.conf.py", tmp_path)
        (tmp_path / ".env").write_text(f"{SIGNING_SECRET_ENV}=dev-secret\n")
        self.folder = tmp_path
        self.port = unused_port()
        self.ngrok_log = tmp_path / "ngrok.log"
        self.output = tmp_path / "output.txt"
        environ = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": f"{FAKE_NGROK}:{PROJECT}",
            "FAKE_NGROK_LOG": str(self.ngrok_log),
            "NGROK_AUTHTOKEN": "test-token",
            "SPECTRUM_PROJECT_ID": PROJECT_ID,
            "SPECTRUM_PROJECT_SECRET": PROJECT_SECRET,
            "SPECTRUM_API_URL": fake.url,
            "SPECTRUM_INBOX_PATH": str(tmp_path / "inbox.sqlite3"),
            "REDIS_URL": "",  # the SQLite inbox, whichever this project defaults to
            "WEB_CONCURRENCY": "1",
            **env,
        }
        flask = [sys.executable, "-m", "flask", "--app", "{{ cookiecutter.package_name }}"]
        self.process = subprocess.Popen(
            [*flask, "spectrum", "tunnel", "--port", str(self.port)],
            cwd=tmp_path,
            env=environ,
            stdout=self.output.open("w"),
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.output.read_text()

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.1)

    def ngrok_calls(self) -> list:
        return [json.loads(line)[0] for line in self.ngrok_log.read_text().splitlines()]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_command_end_to_end(tmp_path: Path, fake: FakeSpectrum, stop_signal) -> None:
    command = Command(tmp_path, fake)
    try:
        command.wait_for("Ctrl-C stops and cleans up")
        (webhook,) = fake.webhooks.values()
        assert webhook["webhookUrl"] == WEBHOOK_URL
        # The app it started verifies with the secret Spectrum just returned.
        body = encode(text_delivery("through the tunnel"))
        headers = signed_headers(webhook["signingSecret"], int(time.time()), body)
        request = urllib.request.Request(
            f"http://127.0.0.1:{command.port}{WEBHOOK_PATH}", data=body, headers=headers
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
        command.process.send_signal(stop_signal)
        assert command.process.wait(timeout=60) == 0, command.text()
    finally:
        if command.process.poll() is None:
            command.process.kill()
    assert fake.webhooks == {}
    assert read_secrets(tmp_path / ".env", SIGNING_SECRET_ENV) == ["dev-secret"]
    assert command.ngrok_calls() == ["forward", "disconnect"]
    assert "Traceback" not in command.text()
    assert unused_port_is_free(command.port)


def test_command_cleans_up_when_the_app_cannot_start(tmp_path: Path, fake: FakeSpectrum) -> None:
    command = Command(tmp_path, fake, HOST="256.1.1.1")  # gunicorn cannot bind: it gives up
    assert command.process.wait(timeout=60) == 1
    text = command.text()
    assert "Can't connect to ('256.1.1.1'" in text  # gunicorn's own reason, above ours
    assert "Error: the app did not start (gunicorn exited with code 1" in text
    assert "Traceback" not in text
    assert fake.webhooks == {}  # the webhook it had registered is gone
    assert command.ngrok_calls() == ["forward", "disconnect"]


def unused_port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0
