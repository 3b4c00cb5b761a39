"""The development loop on a bake: fix bot.py while the app runs, and it goes on.

`make dev` (Flask's reloader): a message the broken bot failed is handled by the
fixed code after the reload, with no new request to wake the app up. `make worker`
with Redis (`--reload`, watchfiles): after an edit, the worker answers with the
new code.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Served, delivery, signed, use_bot  # bench/harness.py

BOT = '''"""A bot under development."""

from .botkit import Bot, Context
from .events import Text

bot = Bot()


@bot.on(Text)
def answer(ctx: Context, text: Text) -> str:
    {body}
'''
BROKEN = BOT.format(body='raise RuntimeError("not written yet")')


def version(name: str) -> str:
    return BOT.format(body=f'return "{name}: " + text.text')


def post(served: Served, message_id: str, text: str) -> int:
    body = delivery(message_id, text)
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    connection.request("POST", "/spectrum-webhook", body, signed(body))
    return connection.getresponse().status


def wait_until_listening(served: Served, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        assert process.poll() is None, served.log()
        assert time.monotonic() < deadline, served.log()
        time.sleep(0.2)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Started in groups of their own (reloaders have children): all killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_make_dev_handles_a_failed_message_after_the_fix(
    bake, tmp_path: Path, processes: list
) -> None:
    project = bake()
    use_bot(project, BROKEN)
    served = Served(project, tmp_path, FLASK_SKIP_DOTENV="1")
    # What `make dev` runs.
    flask = ["flask", "--app", "my_spectrum_bot", "run", "--debug", "--port", str(served.port)]
    processes.append(served._spawn(*flask))
    wait_until_listening(served, processes[0])
    assert post(served, "m-dev-1", "hello") == 202
    served.wait_for_log('retrying message_id="m-dev-1" attempt=1', timeout=30)
    use_bot(project, version("fixed"))
    # No request after the edit: the reloaded app picks the retry up by itself.
    log = served.wait_for_log('text="fixed: hello"', timeout=30)
    assert "Restarting with" in log.split('retrying message_id="m-dev-1"')[1]


def test_make_worker_reloads_on_code_changes(bake, tmp_path: Path, processes: list) -> None:
    project = bake(inbox="redis")
    use_bot(project, version("first"))
    served = Served(project, tmp_path, redis=True, FLASK_SKIP_DOTENV="1")
    try:
        served.start()
        # What `make worker` runs.
        processes.append(
            served._spawn("flask", "--app", "my_spectrum_bot", "spectrum", "worker", "--reload")
        )
        assert post(served, "m-worker-1", "hi") == 202
        served.wait_for_log('text="first: hi"', timeout=60)
        use_bot(project, version("second"))
        served.wait_for_log("change(s): restarting the worker", timeout=30)
        assert post(served, "m-worker-2", "hi") == 202
        log = served.wait_for_log('text="second: hi"', timeout=60)
        assert 'text="first: hi"' not in log.split("m-worker-2")[1]
    finally:
        served.close()


def test_a_broken_bot_py_is_one_line_for_every_command(bake) -> None:
    project = bake()
    use_bot(project, BOT.format(body="return ("))
    # As installed by `make install` (editable); plain `flask`, which reads .flaskenv.
    environ = {**os.environ, "PYTHONPATH": str(project)}
    for command in (["inbox", "parked"], ["send-test", "hi"], ["chat"]):
        done = subprocess.run(
            [sys.executable, "-m", "flask", "spectrum", *command],
            cwd=project / "tests",  # from a subfolder too: .flaskenv names the app
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr
        bot_py = project / "my_spectrum_bot" / "bot.py"
        assert done.stderr.startswith(f"Error: bot.py cannot be loaded: {bot_py}:"), done.stderr
        assert "SyntaxError" in done.stderr and len(done.stderr.splitlines()) == 1
