"""The real bridge/bridge.mjs under Node with the real spectrum-ts SDK.

The SDK reaches a stand-in cloud on 127.0.0.1 (SPECTRUM_CLOUD_URL), so start-up,
credential errors and the bridge's own error paths run for real. Only the final
hand-over to the platform, which needs Photon's servers, is replaced (test mode:
SPECTRUM_BRIDGE_TEST_SENDS appends each send to a file).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import SECRET, WEBHOOK_PATH, Post, echo_bot, sent, unused_port, wait_until
from fake_spectrum import PROJECT_ID, PROJECT_SECRET, FakeSpectrum
from flask import Flask

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.bridge import (
    Bridge,
    BridgeError,
    BridgeSender,
    BridgeUnavailable,
)
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.events import Space
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import encode, text_delivery
from {{ cookiecutter.package_name }}.verify import signed_headers

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not on PATH: install Node 22 to test the reply bridge"
)
SPACE = Space(id="any;-;+15550100", platform="iMessage", phone="+15551234567")
SPACE_JSON = {"id": SPACE.id, "platform": SPACE.platform, "phone": SPACE.phone}
ODD = {"type": "text", "text": "half an emoji: \ud83d"}
PERMANENT = {"permanent": False}  # a bridge error that retrying may mend


def send(bridge: Bridge, text: str, key: str, space: Space = SPACE) -> dict:
    return BridgeSender(bridge).send(space, {"type": "text", "text": text}, key=key)


def test_starts_once_against_the_cloud_and_sends(start_bridge, fake: FakeSpectrum, sends) -> None:
    bridge = start_bridge()
    for n in range(3):
        assert send(bridge, f"hello {n} ✓", key=f"m-{n}#0") == {
            "mode": "bridge",
            "message_id": f"test-m-{n}#0",
        }
    assert sent(sends) == [
        {
            "key": f"m-{n}#0",
            "kind": "text",
            "space": SPACE.id,
            "content": {"type": "text", "text": f"hello {n} ✓"},
        }
        for n in range(3)
    ]
    # Building the SDK's app talks to the cloud: once for the process, not per reply.
    assert fake.requests.count(("GET", f"/projects/{PROJECT_ID}/")) == 1
    assert fake.requests.count(("POST", f"/projects/{PROJECT_ID}/imessage/tokens")) == 1


def test_a_repeated_key_is_sent_once(start_bridge, sends) -> None:
    bridge = start_bridge(SPECTRUM_BRIDGE_TEST_DELAY_MS="200")
    with ThreadPoolExecutor(2) as pool:  # a retry while the first attempt is in flight
        first = pool.submit(send, bridge, "once", "m-1#0")
        time.sleep(0.05)
        second = pool.submit(send, bridge, "once", "m-1#0")
        assert first.result() == second.result()
    assert send(bridge, "once", "m-1#0") == first.result()  # and after it finished
    assert [s["key"] for s in sent(sends)] == ["m-1#0"]


def test_a_key_one_bridge_sent_is_not_sent_again_by_another(start_bridge, sends) -> None:
    """The journal: a worker died after its bridge sent, another worker retries."""
    first = send(start_bridge(), "once", "m-1#0")
    assert send(start_bridge(), "once", "m-1#0") == first  # another process, same machine
    assert [s["key"] for s in sent(sends)] == ["m-1#0"]
    assert send(start_bridge(), "twice", "m-2#0")["message_id"] == "test-m-2#0"  # others go out
    journal = sends.parent / "journal"  # it names conversations: this user's only
    assert journal.stat().st_mode & 0o777 == 0o700
    assert {f.stat().st_mode & 0o777 for f in journal.iterdir()} == {0o600}


def test_bad_credentials_stop_the_start_with_the_cloud_reason(start_bridge) -> None:
    bridge = start_bridge(SPECTRUM_PROJECT_SECRET="wrong")
    with pytest.raises(BridgeError, match="could not start: SpectrumCloudError: 401: Unauthorized"):
        send(bridge, "hi", "m#0")


def test_an_unreachable_cloud_stops_the_start(start_bridge) -> None:
    bridge = start_bridge(SPECTRUM_CLOUD_URL=f"http://127.0.0.1:{unused_port()}")
    with pytest.raises(BridgeError, match="could not start: TypeError: fetch failed"):
        send(bridge, "hi", "m#0")


def test_an_unknown_provider_setting_stops_the_start(start_bridge) -> None:
    bridge = start_bridge(SPECTRUM_PROVIDERS="imessage,fax")
    with pytest.raises(BridgeError, match=r"unknown provider\(s\) in SPECTRUM_PROVIDERS: fax"):
        send(bridge, "hi", "m#0")


def test_a_platform_without_provider_is_refused(start_bridge) -> None:
    bridge = start_bridge()
    telegram = Space(id="12345", platform="Telegram")
    with pytest.raises(BridgeError, match='no provider for platform "Telegram"') as refused:
        send(bridge, "hi", "m#0", space=telegram)
    assert not isinstance(refused.value, BridgeUnavailable)  # retried, then parked
    assert send(bridge, "still fine", "m#1")  # one bad request leaves the process up


def test_the_real_send_path_reports_the_platform_error(start_bridge, sends) -> None:
    """Test mode off: the SDK really sends, to an iMessage address where nothing listens."""
    bridge = start_bridge(
        SPECTRUM_BRIDGE_TEST_SENDS="", SPECTRUM_IMESSAGE_ADDRESS=f"127.0.0.1:{unused_port()}"
    )
    with pytest.raises(BridgeUnavailable, match="ConnectionError"):  # the message waits
        send(bridge, "hi", "m#0")
    assert not sends.exists()


def test_stdout_carries_only_the_protocol(bridge_dir: Path, node_env: dict[str, str]) -> None:
    done = subprocess.run(
        [NODE, "bridge.mjs"],
        cwd=bridge_dir,
        env={**node_env, "LOG_LEVEL": "info"},
        input="\n".join(
            [
                '{"id": 1, "op": "ping"}',
                "not json",
                "null",
                "[1, 2]",
                '"a string"',
                '{"id": 2, "op": "nope"}',
                '{"id": 3, "op": "constructor"}',
                json.dumps(  # a lone surrogate, escaped, as Python writes it
                    {"id": 4, "op": "send", "key": "k#0", "space": SPACE_JSON, "content": ODD}
                ),
            ]
        )
        + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0  # end of input: a clean exit
    ready, *answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert ready == {"ready": True, "sdk": "12.8.0", "providers": ["imessage"]}
    assert sorted(answers, key=lambda a: a["id"]) == [  # answers may come in any order
        {"id": 1, "ok": True, "result": {"pong": True}},
        {"id": 2, "ok": False, "error": 'Error: unknown op "nope"', "retry": False} | PERMANENT,
        {"id": 3, "ok": False, "error": 'Error: unknown op "constructor"', "retry": False}
        | PERMANENT,
        {"id": 4, "ok": True, "result": {"message_id": "test-k#0"}},
    ]
    assert "Spectrum started" in done.stderr  # the SDK's own log, kept off stdout
    assert done.stderr.count("ignoring a line that is not a request") == 4


# -- the app end to end --------------------------------------------------------


@pytest.fixture
def app(
    settings: Settings, bridge_dir: Path, node_env: dict[str, str], monkeypatch
) -> Iterator[Flask]:
    """The app with reply credentials: replies go through the real bridge."""
    for name in (
        "SPECTRUM_CLOUD_URL",
        "SPECTRUM_BRIDGE_TEST_SENDS",
        "SPECTRUM_BRIDGE_TEST_DELAY_MS",
        "SPECTRUM_BRIDGE_JOURNAL_DIR",
    ):
        if name in node_env:
            monkeypatch.setenv(name, node_env[name])
    app = create_app(
        dataclasses.replace(
            settings,
            project_id=PROJECT_ID,
            project_secret=PROJECT_SECRET,
            node=NODE,
            bridge_dir=bridge_dir,
            log_level="WARNING",
        ),
        bot=echo_bot(),
    )
    yield app
    runtime(app).bot_threads.stop()


def test_the_echo_reply_goes_out_through_the_bridge(app: Flask, post: Post, sends) -> None:
    current = runtime(app)
    assert post(encode(text_delivery("hello", message_id="m-1"))).status_code == 202
    assert current.bot_threads.process_one()
    status = current.inbox.status("m-1")
    assert status.state == "done"
    assert status.outcome["replies"] == [
        {
            "content": {"type": "text", "text": "You said: hello"},
            "receipt": {"mode": "bridge", "message_id": "test-m-1#0"},
        }
    ]
    assert [s["content"]["text"] for s in sent(sends)] == ["You said: hello"]


def test_killing_node_mid_burst_loses_no_reply_and_sends_none_twice(
    app: Flask, post: Post, sends, caplog: pytest.LogCaptureFixture
) -> None:
    current = runtime(app)
    bridge = current.bot_threads.sender.bridge
    bridge.env["SPECTRUM_BRIDGE_TEST_DELAY_MS"] = "20"  # a send takes a while: kill mid-send
    ids = [f"m-{n}" for n in range(100)]
    for message_id in ids:
        assert post(encode(text_delivery(message_id, message_id=message_id))).status_code == 202
    current.bot_threads.start()
    wait_until(lambda: len(sent(sends)) >= 20)
    killed = bridge.pid
    os.kill(killed, signal.SIGKILL)

    wait_until(lambda: all(current.inbox.status(m).state == "done" for m in ids))
    keys = Counter(s["key"] for s in sent(sends))
    assert set(keys) == {f"{m}#0" for m in ids}  # every reply went out
    assert bridge.pid != killed
    waited = [r for r in caplog.records if r.getMessage() == "waiting"]
    assert waited, "the kill should have caught replies in flight"
    # Once each, but for a reply Node was sending as it died. Killed in the
    # microseconds between the platform taking it and its journal line, it goes
    # again when retried: the send API has no idempotency key to close that gap.
    cut = {f"{r.message_id}#0" for r in waited}
    assert {key: n for key, n in keys.items() if n > 1 and (n > 2 or key not in cut)} == {}
    # They waited for the bridge without using up an attempt: a dead bridge is not their fault.
    assert {current.inbox.status(m).attempts for m in ids} == {1}


def test_without_credentials_the_same_run_logs_the_replies(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(
        dataclasses.replace(settings, project_id="", project_secret=""), bot=echo_bot()
    )
    current = runtime(app)
    body = encode(text_delivery("hello", message_id="m-1"))
    headers = signed_headers(SECRET, int(time.time()), body)
    assert app.test_client().post(WEBHOOK_PATH, data=body, headers=headers).status_code == 202
    assert current.bot_threads.process_one()
    assert current.inbox.status("m-1").outcome["replies"][0]["receipt"] == {"mode": "dry-run"}
    assert (
        'reply dry-run space_id="any;-;+15550100" platform="iMessage" text="You said: hello"'
        in caplog.text
    )
