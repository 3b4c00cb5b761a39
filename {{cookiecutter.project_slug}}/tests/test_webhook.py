"""The webhook endpoint, one test per row of the answer table in the README."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from pathlib import Path

import pytest
from conftest import (
    MAX_BODY_BYTES,
    OLD_SECRET,
    SECRET,
    SIGNING_SECRET_ENV,
    TOLERANCE_SECONDS,
    WEBHOOK_PATH,
    BlockingBot,
    Post,
    echo_bot,
)
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.inbox.sqlite_runner import BotThreads
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import delivery, encode, text_delivery
from {{ cookiecutter.package_name }}.sending import DryRunSender
from {{ cookiecutter.package_name }}.verify import signed_headers


def test_good_delivery_is_accepted_and_stored(app: Flask, post: Post) -> None:
    body = encode(text_delivery("hello", message_id="spc-msg-1"))
    response = post(body)
    assert response.status_code == 202
    assert response.json == {"status": "accepted", "message_id": "spc-msg-1"}
    assert runtime(app).inbox.status("spc-msg-1").state == "pending"


def test_the_bot_runs_after_the_answer(app: Flask, post: Post) -> None:
    post(encode(text_delivery("hello", message_id="spc-msg-1")))
    assert runtime(app).bot_threads.process_one()
    status = runtime(app).inbox.status("spc-msg-1")
    assert status.state == "done"
    assert status.outcome["replies"] == [
        {"content": {"type": "text", "text": "You said: hello"}, "receipt": {"mode": "dry-run"}}
    ]


def test_a_slow_bot_does_not_hold_up_the_answer(app: Flask, post: Post) -> None:
    """The handler is still blocked when Spectrum gets its 202: the work is decoupled."""
    slow_bot = BlockingBot()
    started, release = slow_bot.started, slow_bot.release
    worker = BotThreads(runtime(app).inbox, slow_bot, DryRunSender(), threads=1, poll_seconds=0.05)
    worker.start()
    try:
        assert post(encode(text_delivery("one", message_id="m-1"))).status_code == 202
        assert started.wait(5), "the worker never picked the message up"
        assert post(encode(text_delivery("two", message_id="m-2"))).status_code == 202
        assert runtime(app).inbox.status("m-1").state == "working"
    finally:
        release.set()
        worker.stop()
    assert runtime(app).inbox.status("m-1").state == "done"


def test_same_message_again_is_acknowledged_but_not_processed(app: Flask, post: Post) -> None:
    body = encode(text_delivery("hello", message_id="spc-msg-1"))
    assert post(body).status_code == 202
    assert runtime(app).bot_threads.process_one()
    # A retry, and the same message through a second registration (another webhook id).
    again = post(body)
    other = post(body, headers={"X-Spectrum-Webhook-Id": "9f1e3d4b-2c8a-4f5d-b7e6-1a2b3c4d5e6f"})
    for response in (again, other):
        assert response.status_code == 200
        assert response.json == {"status": "duplicate", "message_id": "spc-msg-1"}
    assert not runtime(app).bot_threads.process_one()


def test_duplicates_are_caught_by_a_second_app_on_the_same_inbox(settings, post: Post) -> None:
    """Another gunicorn worker, or the app after a restart, shares the inbox file."""
    body = encode(text_delivery("hello", message_id="spc-msg-1"))
    assert post(body).status_code == 202
    other_process = create_app(settings, bot=echo_bot()).test_client()
    headers = signed_headers(SECRET, int(time.time()), body)
    response = other_process.post(WEBHOOK_PATH, data=body, headers=headers)
    assert response.json == {"status": "duplicate", "message_id": "spc-msg-1"}


def test_old_secret_still_accepted_during_a_rotation(post: Post) -> None:
    assert post(secret=OLD_SECRET).status_code == 202


@pytest.mark.parametrize(
    ("kwargs", "status", "reason"),
    [
        ({"drop": ("X-Spectrum-Timestamp",)}, 400, "missing X-Spectrum-Timestamp header"),
        ({"drop": ("X-Spectrum-Signature",)}, 400, "missing X-Spectrum-Signature header"),
        (
            {"headers": {"X-Spectrum-Timestamp": "yesterday"}},
            400,
            "X-Spectrum-Timestamp is not a decimal integer",
        ),
        (
            {"headers": {"X-Spectrum-Signature": "sha256=abc"}},
            400,
            "X-Spectrum-Signature is not 'v0=' followed by 64 hex digits",
        ),
        ({"secret": "not-the-secret"}, 401, "signature does not match any configured secret"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(
    post: Post, caplog: pytest.LogCaptureFixture, kwargs: dict, status: int, reason: str
) -> None:
    response = post(**kwargs)
    assert (response.status_code, response.json) == (status, {"error": reason})
    assert f"rejected status={status} " in caplog.text


@pytest.mark.parametrize(("direction", "word"), [(-1, "old"), (1, "in the future")])
def test_timestamp_outside_the_window_is_refused(post: Post, direction: int, word: str) -> None:
    off_by = TOLERANCE_SECONDS + 60
    response = post(timestamp=int(time.time()) + direction * off_by)
    assert response.status_code == 401
    found = re.fullmatch(r"timestamp (\d+)s (.+) \(tolerance (\d+)s\)", response.json["error"])
    assert found, response.json
    assert abs(int(found[1]) - off_by) <= 2  # the clock may tick between signing and checking
    assert (found[2], int(found[3])) == (word, TOLERANCE_SECONDS)


def test_the_secret_and_the_body_never_reach_the_log(
    post: Post, caplog: pytest.LogCaptureFixture
) -> None:
    body = encode(text_delivery("top secret text", message_id="m-1"))
    post(body, secret="wrong")
    post(body)
    logged = caplog.text  # every line with its fields
    assert SECRET not in logged
    assert "top secret text" not in logged


def test_body_over_the_limit_is_refused_before_it_is_read(post: Post) -> None:
    big = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = post(big)
    assert response.status_code == 413
    assert response.json == {"error": f"body larger than {MAX_BODY_BYTES} bytes"}


def test_body_over_the_limit_without_a_length_is_refused(client: FlaskClient) -> None:
    """Chunked uploads declare no length: reading stops one byte past the limit."""
    big = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = client.post(
        WEBHOOK_PATH,
        input_stream=io.BytesIO(big),
        headers={**signed_headers(SECRET, int(time.time()), big), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets for chunked bodies
    )
    assert (response.status_code, response.json) == (
        413,
        {"error": f"body larger than {MAX_BODY_BYTES} bytes"},
    )


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_not_allowed(client: FlaskClient, method: str) -> None:
    response = client.open(WEBHOOK_PATH, method=method)
    assert response.status_code == 405
    assert response.json == {"error": "Method Not Allowed"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "body is not UTF-8 JSON"),
        (b"not json", "body is not UTF-8 JSON"),
        (b"\xff\xfe{}", "body is not UTF-8 JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b'"messages"', "body is not a JSON object"),
        (b"null", "body is not a JSON object"),
        (b'{"event":"messages"}', "malformed delivery: message is missing"),
        (b'{"event":"messages","message":{}}', "malformed delivery: message.id is missing"),
        (
            b'{"event":"messages","message":{"id":"m","content":{"type":"text"}}}',
            "malformed delivery: message.space.id is missing",
        ),
        (
            b'{"event":"messages","message":{"id":"m","space":{"id":"s"},"content":{}}}',
            "malformed delivery: message.content.type is missing",
        ),
    ],
)
def test_signed_but_unusable_bodies_are_refused(post: Post, body: bytes, reason: str) -> None:
    response = post(body)
    assert (response.status_code, response.json) == (400, {"error": reason})


def test_unknown_event_is_acknowledged_and_ignored(app: Flask, post: Post) -> None:
    response = post(b'{"event":"presence","user":"x"}')
    assert response.status_code == 200
    assert response.json == {"status": "ignored", "event": "presence"}
    assert not runtime(app).bot_threads.process_one()


def test_unknown_content_type_is_accepted(app: Flask, post: Post) -> None:
    body = encode(delivery({"type": "future-thing", "foo": "bar"}, message_id="m-new"))
    assert post(body).status_code == 202
    assert runtime(app).bot_threads.process_one()
    assert runtime(app).inbox.status("m-new").state == "done"


def test_storage_unavailable_means_503_then_recovers(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the inbox's folder should be")
    app = create_app(
        dataclasses.replace(settings, inbox_path=blocker / "inbox.sqlite3"), bot=echo_bot()
    )
    body = encode(text_delivery("hello", message_id="m-1"))

    def send() -> TestResponse:
        headers = signed_headers(SECRET, int(time.time()), body)
        return app.test_client().post(WEBHOOK_PATH, data=body, headers=headers)

    response = send()
    assert (response.status_code, response.json) == (
        503,
        {"error": "inbox unavailable, retry later"},
    )
    assert app.test_client().get("/healthz").status_code == 503

    blocker.unlink()  # storage is back: Spectrum's retry is accepted
    assert send().status_code == 202


def test_a_full_disk_means_503_with_the_reason_then_recovers(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite's own page limit stands in for a full disk: the same SQLITE_FULL error."""
    client, inbox = app.test_client(), runtime(app).inbox
    inbox.ping()  # the test client runs requests in this thread: the same connection
    pages = inbox._db().execute("PRAGMA page_count").fetchone()[0]
    inbox._db().execute(f"PRAGMA max_page_count = {pages}")  # no room to grow
    size = min(MAX_BODY_BYTES, 50_000) - 1_000

    def send(message_id: str) -> TestResponse:
        body = encode(text_delivery("x" * size, message_id=message_id))
        return client.post(
            WEBHOOK_PATH, data=body, headers=signed_headers(SECRET, int(time.time()), body)
        )

    statuses = [send(f"m-{n}").status_code for n in range(50)]
    refused = statuses.index(503)  # the disk filled up after a few messages
    assert all(status == 202 for status in statuses[:refused])
    assert runtime(app).inbox.status(f"m-{refused}") is None  # nothing half-stored
    assert 'reason="OperationalError: database or disk is full"' in caplog.text
    # The failed connection was dropped; the next one has room again (the disk was freed).
    assert send(f"m-{refused}").status_code == 202


def test_health(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    response = client.post(WEBHOOK_PATH.rstrip("/") + "-nope")
    assert (response.status_code, response.json) == (404, {"error": "Not Found"})


def test_accepted_body_is_stored_byte_for_byte(app: Flask, post: Post) -> None:
    body = encode(text_delivery("Café 👋", message_id="m-utf8"))
    post(body)
    claim = runtime(app).inbox.claim(60)
    assert claim.payload.encode("utf-8") == body
    assert json.loads(claim.payload)["message"]["content"]["text"] == "Café 👋"


def test_ids_that_are_not_valid_unicode_are_kept_and_handled(app: Flask, post: Post) -> None:
    """JSON may carry a lone surrogate ("\\ud800"); the ids are opaque, so it is stored."""
    body = json_with_escapes("m-", "s-")
    assert post(body).status_code == 202
    assert post(body).status_code == 200  # a repeat is still caught
    assert runtime(app).bot_threads.process_one()
    assert runtime(app).inbox.status("m-\ud800").state == "done"


def json_with_escapes(message_prefix: str, space_prefix: str) -> bytes:
    """A delivery whose message and space ids end in lone surrogates, as JSON escapes."""
    payload = text_delivery("hi", message_id=f"{message_prefix}@", space_id=f"{space_prefix}@")
    text = encode(payload).decode()
    text = text.replace(f'"{message_prefix}@"', f'"{message_prefix}\\ud800"')
    return text.replace(f'"{space_prefix}@"', f'"{space_prefix}\\udfff"').encode()


def test_json_nested_too_deeply_is_refused_not_a_crash(post: Post) -> None:
    depth = min(5000, MAX_BODY_BYTES // 2)  # deeper than the parser goes, within the limit
    if depth < 1500:
        pytest.skip(
            f"a body nested deeper than the parser goes does not fit in {MAX_BODY_BYTES} bytes"
        )
    body = b"[" * depth + b"]" * depth
    response = post(body)
    assert (response.status_code, response.json) == (
        400,
        {"error": "body is JSON nested too deeply"},
    )


def test_without_a_signing_secret_deliveries_get_500_saying_so(settings: Settings, caplog) -> None:
    app = create_app(dataclasses.replace(settings, signing_secrets=()), bot=echo_bot())
    body = encode(text_delivery("hi"))
    headers = signed_headers("whatever", int(time.time()), body)
    response = app.test_client().post(WEBHOOK_PATH, data=body, headers=headers)
    assert response.status_code == 500  # retried by Spectrum: a deploy mistake, not a bad request
    assert response.json == {"error": f"no signing secret configured: set {SIGNING_SECRET_ENV}"}
    assert "unconfigured status=500" in caplog.text
