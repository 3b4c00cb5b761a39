"""The Python end of the reply bridge, against a fake bridge speaking the same protocol."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.bridge import Bridge, BridgeError, BridgeSender
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.events import Space
from {{ cookiecutter.package_name }}.handling import choose_sender
from {{ cookiecutter.package_name }}.sending import DryRunSender

FAKE = [sys.executable, str(Path(__file__).with_name("fake_bridge.py"))]
SPACE = Space(id="any;-;+15550100", platform="iMessage", phone="+15551234567")


def make_bridge(env: dict[str, str] | None = None, timeout: float = 5.0) -> Bridge:
    return Bridge(FAKE, env={"PATH": "/usr/bin:/bin", **(env or {})}, timeout=timeout)


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    bridge = make_bridge()
    yield bridge
    bridge.close()


def send(bridge: Bridge, text: str, key: str = "m#0") -> dict:
    return BridgeSender(bridge).send(SPACE, {"type": "text", "text": text}, key=key)


def pid(bridge: Bridge) -> int:
    assert bridge.pid is not None
    return bridge.pid


def test_answers_are_returned_as_receipts(bridge: Bridge) -> None:
    assert send(bridge, "hello", key="m-1#0") == {"mode": "bridge", "message_id": "fake-m-1#0"}
    assert bridge.request("ping") == {"message_id": "fake-None"}


def test_started_once_and_kept(bridge: Bridge) -> None:
    assert bridge.pid is None  # lazily: nothing runs until the first reply
    send(bridge, "one")
    first = pid(bridge)
    send(bridge, "two")
    assert pid(bridge) == first


def test_an_error_answer_raises_with_the_bridge_reason(bridge: Bridge) -> None:
    with pytest.raises(BridgeError, match="platform said no"):
        send(bridge, "fail")
    assert send(bridge, "fine")  # the process is still good


def test_a_crash_fails_the_request_at_once_and_the_next_one_restarts(bridge: Bridge) -> None:
    send(bridge, "warm up")
    first = pid(bridge)
    started = time.monotonic()
    with pytest.raises(BridgeError, match=r"exited \(code 3\) before answering"):
        send(bridge, "crash")
    assert time.monotonic() - started < 2  # not left to the 5 s timeout
    assert send(bridge, "after")["message_id"] == "fake-m#0"
    assert pid(bridge) != first


def test_a_hung_bridge_times_out_and_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    bridge = make_bridge(timeout=0.5)
    try:
        send(bridge, "warm up")
        first = pid(bridge)
        with pytest.raises(BridgeError, match=r"no answer from the bridge within 0.5s"):
            send(bridge, "hang")
        assert "bridge restarting pid=" in caplog.text
        assert 'why="silent for 0.5s"' in caplog.text
        assert send(bridge, "after")  # a new process, after a short pause
        assert pid(bridge) != first
    finally:
        bridge.close()


def test_answers_out_of_order_reach_their_own_request(bridge: Bridge) -> None:
    send(bridge, "warm up")
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(send, bridge, "slow:0.3", "slow#0")
        time.sleep(0.05)
        fast = pool.submit(send, bridge, "fast", "fast#0")
        assert fast.result(timeout=5)["message_id"] == "fake-fast#0"
        assert not slow.done()  # answered after the later request
        assert slow.result(timeout=5)["message_id"] == "fake-slow#0"


def test_a_burst_of_1000_from_many_threads(bridge: Bridge) -> None:
    keys = [f"m-{n}#0" for n in range(1000)]
    with ThreadPoolExecutor(16) as pool:
        receipts = list(pool.map(lambda key: send(bridge, "hi", key), keys))
    assert [r["message_id"] for r in receipts] == [f"fake-{key}" for key in keys]


def test_lines_that_are_not_answers_are_skipped(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    assert send(bridge, "junk", key="j#0")["message_id"] == "fake-j#0"
    assert "not an answer" in caplog.text


def test_bridge_logs_go_to_the_log(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    send(bridge, "hi")
    deadline = time.monotonic() + 2
    while "fake bridge: starting" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any(r.name.endswith("bridge.node") and "starting" in r.message for r in caplog.records)


def test_a_bridge_that_cannot_start_says_why_and_backs_off() -> None:
    bridge = make_bridge({"FAKE_BRIDGE_FATAL": "SpectrumCloudError: 401: bad credentials"}, 0.2)
    try:
        with pytest.raises(BridgeError, match="could not start: SpectrumCloudError: 401"):
            send(bridge, "hi")
        started = time.monotonic()
        with pytest.raises(BridgeError, match="failed recently; next start in"):
            send(bridge, "hi")  # within the pause: refused without spawning
        assert time.monotonic() - started < 0.1
    finally:
        bridge.close()


def test_a_missing_program_is_a_clear_error() -> None:
    bridge = Bridge(["/nonexistent/node", "bridge.mjs"], timeout=1)
    with pytest.raises(BridgeError, match="cannot start the bridge"):
        send(bridge, "hi")


def test_a_slow_start_is_waited_for() -> None:
    bridge = make_bridge({"FAKE_BRIDGE_START_DELAY": "0.5"}, timeout=0.2)
    try:
        # The first request waits for start-up (up to start_timeout), then its own timeout.
        assert send(bridge, "hi")
    finally:
        bridge.close()


def test_close_stops_the_process_and_fails_what_it_held(bridge: Bridge) -> None:
    """The worker has finished its messages before it closes the bridge; anything still
    in flight then is abandoned (its message goes back to the inbox), never left hanging."""
    send(bridge, "warm up")
    popen = bridge.process.current.popen
    errors: list[str] = []

    def slow() -> None:
        try:
            send(bridge, "slow:3", "s#0")
        except BridgeError as exc:
            errors.append(str(exc))

    sender = threading.Thread(target=slow)
    sender.start()
    time.sleep(0.1)
    started = time.monotonic()
    bridge.close()
    sender.join(5)
    assert time.monotonic() - started < 2
    assert errors == ["the bridge exited (code 0) before answering"]
    assert popen.returncode == 0
    with pytest.raises(BridgeError, match="shut down"):
        send(bridge, "too late")


def installed_bridge_dir(tmp_path: Path, installed: bool = True) -> Path:
    if installed:
        (tmp_path / "node_modules" / "spectrum-ts").mkdir(parents=True)
    (tmp_path / "bridge.mjs").write_text("// placeholder\n")
    return tmp_path


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"bridge_dir": Path("/nonexistent")},
            "no reply bridge in this project (/nonexistent/bridge.mjs)",
        ),
        ({"project_secret": ""}, "SPECTRUM_PROJECT_ID and SPECTRUM_PROJECT_SECRET are not set"),
        ({"node": "no-such-node-binary"}, "'no-such-node-binary' is not on PATH: install Node 22"),
        ({"installed": False}, "the bridge is not installed: run `make bridge`"),
    ],
)
def test_dry_run_says_why(tmp_path: Path, change: dict, reason: str) -> None:
    installed = change.pop("installed", True)
    settings = Settings(
        signing_secrets=("s",),
        project_id="p",
        project_secret="s",
        node="python3",  # on PATH wherever these tests run
        bridge_dir=installed_bridge_dir(tmp_path, installed),
    )
    sender, why = choose_sender(dataclasses.replace(settings, **change))
    assert isinstance(sender, DryRunSender)
    assert why == reason


def test_the_bridge_is_chosen_when_everything_is_there(tmp_path: Path) -> None:
    settings = Settings(
        signing_secrets=("s",),
        project_id="p",
        project_secret="s",
        node="python3",
        bridge_dir=installed_bridge_dir(tmp_path),
    )
    sender, why = choose_sender(settings)
    assert isinstance(sender, BridgeSender)
    assert why == "through the spectrum-ts bridge (imessage)"
    assert sender.bridge.command[1] == str(settings.bridge_dir / "bridge.mjs")
    assert sender.bridge.env["SPECTRUM_PROJECT_ID"] == "p"


def test_node_gets_only_what_it_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECTRUM_SIGNING_SECRET", "webhook-secret")
    monkeypatch.setenv("{{ cookiecutter.signing_secret_env }}", "webhook-secret")
    monkeypatch.setenv("REDIS_URL", "redis://:password@redis.internal:6379/0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cloud-secret")
    monkeypatch.setenv("SPECTRUM_TELEGRAM_BOT_TOKEN", "telegram-token")
    monkeypatch.setenv("SPECTRUM_METRICS_TOKEN", "scrape-token")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    settings = Settings(
        signing_secrets=("webhook-secret",),
        project_id="p",
        project_secret="s",
        node="python3",
        bridge_dir=installed_bridge_dir(tmp_path),
    )
    sender, _ = choose_sender(settings)
    env = sender.bridge.env
    assert "webhook-secret" not in env.values()
    assert "REDIS_URL" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "SPECTRUM_METRICS_TOKEN" not in env
    assert env["SPECTRUM_TELEGRAM_BOT_TOKEN"] == "telegram-token"  # the SDK's provider fields
    assert env["HTTPS_PROXY"] == "http://proxy.internal:3128" and env["PATH"]
    assert (env["SPECTRUM_PROJECT_ID"], env["SPECTRUM_PROJECT_SECRET"]) == ("p", "s")
