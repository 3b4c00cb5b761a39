"""`flask spectrum playground`: its API against the app served for real on 127.0.0.1.

The page itself is tested in a real browser by the template's own tests; here,
the deliveries it asks for (built, signed, sent), the app's answers it reports,
and the outcomes it reads from the inbox.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import OLD_SECRET, SECRET, WEBHOOK_PATH, echo_bot, served, unused_port
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from {{ cookiecutter.package_name }}.botkit import Bot
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.devtools.playground import create_playground
from {{ cookiecutter.package_name }}.events import Text
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.verify import verify


@pytest.fixture
def live_app(settings: Settings) -> Iterator[tuple[Flask, str]]:
    with served(settings, echo_bot()) as live:
        yield live


@pytest.fixture
def playground(live_app: tuple[Flask, str]) -> FlaskClient:
    """The playground's page and API, delivering to the live app, as the browser sees them."""
    app, url = live_app
    return create_playground(runtime(app), url).test_client()


@pytest.fixture
def offline(app: Flask) -> FlaskClient:
    """The playground with no app to deliver to, for what it refuses before sending."""
    url = f"http://127.0.0.1:{unused_port()}{WEBHOOK_PATH}"
    return create_playground(runtime(app), url).test_client()


def deliver(playground: FlaskClient, path: str = "/api/deliver", **form: Any) -> dict[str, Any]:
    response = playground.post(path, json=form)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def outcome_of(playground: FlaskClient, message_id: str, timeout: float = 10) -> dict[str, Any]:
    """Poll the outcome, as the page does, until the bot is done with the message."""
    deadline = time.monotonic() + timeout
    while True:
        found = playground.get(f"/api/outcome/{message_id}").get_json()
        if found["state"] in ("done", "failed") or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_serves_the_page_and_its_files_only(offline: FlaskClient) -> None:
    playground = offline
    page = playground.get("/")
    assert page.status_code == 200
    assert b"<title>Spectrum playground</title>" in page.data
    for name in ("playground.js", "playground.css"):
        assert playground.get(f"/{name}").status_code == 200
        assert f'"{name}"'.encode() in page.data  # local files: no CDN
    assert b"http" not in page.data  # nothing loaded from elsewhere
    assert playground.get("/playground.py").status_code == 404
    assert playground.get("/__init__.py").status_code == 404


def test_setup_names_the_app_and_says_it_is_up(
    playground: FlaskClient, live_app: tuple[Flask, str]
) -> None:
    setup = playground.get("/api/setup").get_json()
    assert setup["url"] == live_app[1]
    assert setup["health"] == "ok"
    assert "text" in setup["kinds"] and "iMessage" in setup["platforms"]


def test_a_text_is_signed_delivered_accepted_and_answered(playground: FlaskClient) -> None:
    sent = deliver(playground, kind="text", text="hi there")
    request, response = sent["request"], sent["response"]
    assert response == {
        "status": 202,
        "answer": {"status": "accepted", "message_id": sent["message_id"]},
    }
    body = request["body"].encode()
    timestamp = int(request["headers"]["X-Spectrum-Timestamp"])
    assert abs(timestamp - time.time()) < 60
    assert verify(body, request["headers"], [SECRET], time.time(), 300).ok
    payload = json.loads(body)
    assert payload["message"]["id"] == sent["message_id"]
    assert payload["message"]["content"] == {"type": "text", "text": "hi there"}
    assert payload["space"]["type"] == "dm"

    outcome = outcome_of(playground, sent["message_id"])
    assert outcome["state"] == "done" and outcome["attempts"] == 1 and outcome["error"] is None
    assert outcome["replies"] == [
        {"content": {"type": "text", "text": "You said: hi there"}, "receipt": {"mode": "dry-run"}}
    ]


def test_a_redelivery_is_the_same_bytes_signed_afresh_and_a_duplicate(
    playground: FlaskClient,
) -> None:
    first = deliver(playground, text="once")
    time.sleep(1.1)  # a new second, so a new timestamp
    again = deliver(playground, "/api/redeliver", message_id=first["message_id"])
    assert again["request"]["body"] == first["request"]["body"]
    headers = again["request"]["headers"]
    assert headers["X-Spectrum-Timestamp"] != first["request"]["headers"]["X-Spectrum-Timestamp"]
    assert verify(again["request"]["body"].encode(), headers, [SECRET], time.time(), 300).ok
    assert again["response"] == {
        "status": 200,
        "answer": {"status": "duplicate", "message_id": first["message_id"]},
    }
    assert len(outcome_of(playground, first["message_id"])["replies"]) == 1  # handled once


def test_a_badly_signed_delivery_is_refused_and_never_stored(playground: FlaskClient) -> None:
    sent = deliver(playground, text="forged", signature="bad")
    headers = sent["request"]["headers"]
    secrets = [SECRET, OLD_SECRET]
    assert not verify(sent["request"]["body"].encode(), headers, secrets, time.time(), 300).ok
    assert sent["response"] == {
        "status": 401,
        "answer": {"error": "signature does not match any configured secret"},
    }
    assert playground.get(f"/api/outcome/{sent['message_id']}").get_json() == {
        "message_id": sent["message_id"],
        "state": "unknown",
        "attempts": 0,
        "replies": [],
        "error": None,
    }
    # The same bytes properly signed are accepted: only the signature was wrong.
    again = deliver(playground, "/api/redeliver", message_id=sent["message_id"])
    assert again["response"]["status"] == 202


def test_an_attachment_gets_a_reaction_on_that_message(playground: FlaskClient) -> None:
    file = {"name": "C:\\fakepath\\cat.heic", "type": "image/heic", "size": 2048}
    sent = deliver(playground, kind="attachment", file=file)
    content = json.loads(sent["request"]["body"])["message"]["content"]
    assert (content["type"], content["name"]) == ("attachment", "cat.heic")
    assert (content["mimeType"], content["size"]) == ("image/heic", 2048)
    replies = [r["content"] for r in outcome_of(playground, sent["message_id"])["replies"]]
    assert replies == [
        {"type": "reaction", "emoji": "❤️", "target": sent["message_id"]},
        {"type": "text", "text": "Thanks for the image/heic!"},
    ]


def test_conversation_sender_platform_and_targets_reach_the_delivery(
    playground: FlaskClient,
) -> None:
    group = {"chat": "group", "platform": "Telegram", "sender": "+15550177", "space_id": "tg;+;42"}
    sent = json.loads(deliver(playground, text="hello all", **group)["request"]["body"])
    assert sent["space"] == {
        "id": "tg;+;42",
        "platform": "Telegram",
        "type": "group",
        "phone": "+15551234567",
    }
    assert sent["message"]["sender"] == {"id": "+15550177", "platform": "Telegram"}
    target = sent["message"]["id"]

    reply = deliver(playground, kind="reply", text="me too", target=target, **group)
    content = json.loads(reply["request"]["body"])["message"]["content"]
    assert content["content"] == {"type": "text", "text": "me too"}
    assert content["target"]["id"] == target
    assert reply["response"]["status"] == 202

    reaction = deliver(playground, kind="reaction", emoji="👍", target=target, text="hello all")
    content = json.loads(reaction["request"]["body"])["message"]["content"]
    assert (content["emoji"], content["target"]["id"]) == ("👍", target)
    assert content["target"]["contentPreview"] == "hello all"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"kind": "sticker"}, "kind must be one of text, attachment"),
        ({"chat": "channel"}, "chat must be direct or group"),
        ({"text": 5}, "text must be a string"),
        ({"signature": "maybe"}, "signature must be good or bad"),
        ({"file": "cat.heic", "kind": "attachment"}, "file must be an object"),
    ],
)
def test_a_bad_request_from_the_page_is_a_400(
    offline: FlaskClient, form: dict[str, Any], error: str
) -> None:
    response = offline.post("/api/deliver", json=form)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(error)


def test_only_json_from_this_machine_is_taken(offline: FlaskClient) -> None:
    # A form on another site cannot post JSON here without asking first (CORS).
    assert offline.post("/api/deliver", data="kind=text").status_code == 415
    # A name that resolves to 127.0.0.1 for another site (DNS rebinding) is refused.
    assert offline.get("/", headers={"Host": "evil.example:8025"}).status_code == 403
    assert offline.get("/", headers={"Host": "localhost:8025"}).status_code == 200


def test_redelivering_what_it_never_sent_is_a_404(offline: FlaskClient) -> None:
    response = offline.post("/api/redeliver", json={"message_id": "spc-msg-nope"})
    assert response.status_code == 404


def test_an_app_that_is_not_running_is_a_502_with_the_reason(offline: FlaskClient) -> None:
    url = offline.get("/api/setup").get_json()["url"]
    response = offline.post("/api/deliver", json={"text": "anyone?"})
    assert response.status_code == 502
    assert response.get_json()["error"].startswith(f"cannot reach {url}")
    assert offline.get("/api/setup").get_json()["health"].startswith("not answering")


def test_a_failing_bot_shows_its_attempts_and_error_then_is_parked(settings: Settings) -> None:
    bot = Bot()

    @bot.on(Text)
    def broken(ctx: Any, text: Text) -> str:
        raise RuntimeError("the weather API is down")

    with served(dataclasses.replace(settings, max_attempts=1), bot) as (app, url):
        playground = create_playground(runtime(app), url).test_client()
        sent = deliver(playground, text="weather?")
        outcome = outcome_of(playground, sent["message_id"])
    assert outcome["state"] == "failed"  # parked
    assert outcome["attempts"] == 1
    assert outcome["error"] == "RuntimeError: the weather API is down"
    assert outcome["replies"] == []


def test_the_command_is_there_and_refuses_a_busy_port(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert "playground" in runner.invoke(args=["spectrum", "--help"]).output
    with make_server("127.0.0.1", 0, app) as busy:
        args = ["spectrum", "playground", "--port", str(busy.server_port)]
        result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert f"Port {busy.server_port} is in use by another program" in result.output
{%- if cookiecutter.inbox == "redis" %}


def test_with_redis_the_outcome_is_the_workers(settings: Settings, redis_server: str) -> None:
    """The playground reads the Redis inbox, where `flask spectrum worker` records outcomes."""
    with served(dataclasses.replace(settings, redis_url=redis_server), echo_bot()) as (app, url):
        runtime(app).inbox.connection.flushdb()
        playground = create_playground(runtime(app), url).test_client()
        sent = deliver(playground, text="through Redis")
        assert sent["response"]["status"] == 202
        outcome = playground.get(f"/api/outcome/{sent['message_id']}").get_json()
        assert (outcome["state"], outcome["attempts"]) == ("pending", 0)
        result = app.test_cli_runner().invoke(args=["spectrum", "worker", "--burst"])
        assert result.exit_code == 0, result.output
        outcome = outcome_of(playground, sent["message_id"])
    assert outcome["state"] == "done"
    assert [r["content"] for r in outcome["replies"]] == [
        {"type": "text", "text": "You said: through Redis"}
    ]
{%- endif %}
