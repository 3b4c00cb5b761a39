"""What operators see: /readyz, /metrics and the log lines (logs.py)."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest
from conftest import SECRET, Post, echo_bot
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.config import ConfigError, Settings
from {{ cookiecutter.package_name }}.logs import JsonLineFormatter, TextFormatter
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import encode, text_delivery


def samples(app: Flask, **headers: str) -> dict[tuple[str, tuple], float]:
    """/metrics as {(name, labels): value}."""
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def deliveries(found: dict, outcome: str, reason: str = "") -> float:
    key = ("spectrum_deliveries_total", (("outcome", outcome), ("reason", reason)))
    return found.get(key, 0.0)


def test_ready_says_what_it_checked(app: Flask) -> None:
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    checks = response.json["checks"]
    assert response.json["status"] == "ready"
    assert checks["inbox"] == {"ok": True}
    assert checks["replies"]["ok"] and checks["replies"]["mode"] == "dry-run"
    assert checks["bot_threads"] == {"ok": True, "threads": "not started"}


def test_not_ready_when_the_inbox_takes_no_writes(app: Flask) -> None:
    inbox = runtime(app).inbox
    inbox.ping()  # the test client runs requests in this thread: the same connection
    inbox._db().execute("PRAGMA query_only = ON")  # stands in for a read-only disk
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "not ready"
    assert response.json["checks"]["inbox"]["ok"] is False
    assert "readonly" in response.json["checks"]["inbox"]["error"]


def test_not_ready_when_replies_cannot_go_out(app: Flask) -> None:
    class Down:
        mode = "bridge"

        def warm_up(self) -> None:
            raise RuntimeError("the bridge could not start: node not found")

    threads = runtime(app).bot_threads
    assert threads is not None
    down = Down()
    threads.tools = dataclasses.replace(threads.tools, sender=down, sender_reason="")  # type: ignore[arg-type]
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["replies"] == {
        "ok": False,
        "mode": "bridge",
        "error": "the bridge could not start: node not found",
    }


def test_metrics_count_deliveries_by_outcome(app: Flask, post: Post) -> None:
    before = samples(app)
    body = encode(text_delivery("hi", message_id="m-metrics-1"))
    assert post(body).status_code == 202
    assert post(body).status_code == 200  # a duplicate
    assert post(body, secret="wrong").status_code == 401
    assert post(body, timestamp=1).status_code == 401
    after = samples(app)
    for outcome, reason in [
        ("accepted", ""),
        ("duplicate", ""),
        ("rejected", "signature"),
        ("rejected", "timestamp"),
    ]:
        assert deliveries(after, outcome, reason) - deliveries(before, outcome, reason) == 1
    acks = after[("spectrum_ack_seconds_count", ())] - before[("spectrum_ack_seconds_count", ())]
    assert acks == 4
    assert after[("spectrum_inbox_messages", (("state", "pending"),))] == 1
    assert after[("spectrum_inbox_up", ())] == 1


def test_metrics_count_what_the_bot_did(app: Flask, post: Post) -> None:
    before = samples(app)
    post(encode(text_delivery("hi", message_id="m-metrics-2")))
    threads = runtime(app).bot_threads
    assert threads is not None and threads.process_one()
    after = samples(app)
    done = ("spectrum_messages_handled_total", (("outcome", "done"),))
    assert after[done] - before.get(done, 0) == 1
    assert after[("spectrum_inbox_messages", (("state", "pending"),))] == 0


def test_metrics_can_require_a_token_or_be_off(settings: Settings) -> None:
    guarded = create_app(dataclasses.replace(settings, metrics_token="scrape-me"), bot=echo_bot())
    client = guarded.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert samples(guarded, Authorization="Bearer scrape-me")
    off = create_app(dataclasses.replace(settings, metrics=False), bot=echo_bot())
    assert off.test_client().get("/metrics").status_code == 404


def record(**fields: Any) -> logging.LogRecord:
    made = logging.LogRecord("my.logger", logging.INFO, __file__, 1, "accepted", None, None)
    made.__dict__.update(fields)
    made.created = 1_795_000_000.25
    return made


def test_a_text_line_and_a_json_line_carry_the_same_fields() -> None:
    fields = {"message_id": "m-1", "status": 202, "ms": 1.5, "text": 'héllo "you"\nthere'}
    text = TextFormatter().format(record(**fields))
    assert text == (
        '2026-11-18T11:06:40.250Z INFO my.logger accepted message_id="m-1" status=202 '
        'ms=1.5 text="héllo \\"you\\"\\nthere"'
    )
    line = JsonLineFormatter().format(record(**fields))
    assert json.loads(line) == {
        "time": "2026-11-18T11:06:40.250Z",
        "level": "INFO",
        "logger": "my.logger",
        "message": "accepted",
        **fields,
    }


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be 'text' or 'json', got 'xml'."),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got 'loud'."),
        ("SPECTRUM_METRICS", "maybe", "SPECTRUM_METRICS must be 1 or 0, got 'maybe'."),
    ],
)
def test_bad_logging_and_metrics_settings_are_one_line(name: str, value: str, error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert raised.value.message == error


def test_settings_read_logging_and_metrics() -> None:
    environ = {"LOG_FORMAT": "JSON", "SPECTRUM_METRICS": "off", "SPECTRUM_METRICS_TOKEN": "t0k"}
    settings = Settings.from_env(environ)
    assert (settings.log_format, settings.metrics, settings.metrics_token) == ("json", False, "t0k")
    assert "t0k" not in repr(settings)
    assert SECRET not in repr(Settings(signing_secrets=(SECRET,)))
