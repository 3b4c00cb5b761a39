"""`flask spectrum playground`: chat with your bot in a browser, as Spectrum would.

A small server on 127.0.0.1 serves one page (`playground.html`, `.js`, `.css`:
plain files, nothing from the internet) and the JSON API behind it:

    GET  /api/setup       the app's webhook URL, whether it answers, the choices
    POST /api/deliver     build a delivery (samples.py), sign it with the app's first
                          secret (or a wrong one), POST it to the app's webhook
    POST /api/redeliver   the same bytes again, signed afresh, as Spectrum retries
    GET  /api/outcome/ID  what the bot did with a message: its status in the inbox

Each delivery's answer carries the request as sent (headers and body) and the
app's answer, for the page's panel. The bot runs in the app, not here: this
process reads the app's inbox (the same SQLite file, or Redis) for outcomes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask, Response, jsonify, request, send_from_directory
from flask.cli import with_appcontext
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from ..config import SIGNING_SECRET_ENV, WEBHOOK_PATH
from ..inbox.contract import InboxUnavailable, Status
from ..runtime import Runtime, runtime
from ..samples import KINDS, content, delivery, encode
from ..verify import signed_headers
from .chat import Unreachable, post  # Unreachable: the app did not answer, 502

HERE = Path(__file__).resolve().parent
PAGE_FILES = ("playground.html", "playground.js", "playground.css")
PLATFORMS = ("iMessage", "WhatsApp", "Telegram", "Slack")
WRONG_SECRET = "not-the-signing-secret"  # what "badly signed" signs with
WEBHOOK_ID = "playground"  # sent as X-Spectrum-Webhook-Id
KEPT_BODIES = 1000  # the latest bodies, kept for redelivery


class Invalid(Exception):
    """A request the page should not have sent: 400."""


def build(form: dict[str, Any]) -> dict[str, Any]:
    """The delivery the page's composer describes (kind, text, conversation, target)."""
    kind = _field(form, "kind", "text")
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}")
    chat = _field(form, "chat", "direct")
    if chat not in ("direct", "group"):
        raise Invalid("chat must be direct or group")
    file = form.get("file") or {}
    if not isinstance(file, dict):
        raise Invalid("file must be an object: name, type, size")
    name = Path(_field(file, "name", "").replace("\\", "/")).name or None  # only the name travels
    made = content(
        kind,
        _field(form, "text", ""),
        target=_field(form, "target", "") or None,
        file=name,
        emoji=_field(form, "emoji", "❤️"),
    )
    if kind in ("attachment", "voice"):  # what the browser knows of the file picked
        if _field(file, "type", ""):
            made["mimeType"] = file["type"]
        if isinstance(file.get("size"), int):
            made["size"] = file["size"]
    return delivery(
        made,
        space_id=_field(form, "space_id", "") or None,
        sender_id=_field(form, "sender", "") or "+15550100",
        platform=_field(form, "platform", "") or "iMessage",
        chat=chat,
        timestamp=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )


def _field(form: dict[str, Any], key: str, default: str) -> str:
    value = form.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    return value


def send(url: str, body: bytes, secret: str) -> dict[str, Any]:
    """POST the body signed with `secret` now: the request as sent and the app's answer."""
    headers = {
        **signed_headers(secret, int(time.time()), body),
        "X-Spectrum-Webhook-Id": WEBHOOK_ID,
    }
    status, text = post(url, body, headers)
    try:
        answer = json.loads(text)
    except ValueError:
        answer = text
    return {
        "request": {"url": url, "headers": headers, "body": body.decode("utf-8")},
        "response": {"status": status, "answer": answer},
    }


def describe(status: Status | None) -> dict[str, Any]:
    """A message's status for the page: state, attempts, replies with receipts, error."""
    if status is None:
        return {"state": "unknown", "attempts": 0, "replies": [], "error": None}
    outcome = status.outcome or {}
    return {
        "state": status.state,  # pending, working, done, or failed (parked)
        "attempts": status.attempts,
        "replies": outcome.get("replies", []),
        "error": outcome.get("error"),
    }


def health(url: str) -> str:
    """'ok' when the app at `url` answers its /healthz, else what went wrong."""
    parts = urllib.parse.urlsplit(url)
    try:
        with urllib.request.urlopen(f"{parts.scheme}://{parts.netloc}/healthz", timeout=2) as r:
            return "ok" if r.status == 200 else f"/healthz answered {r.status}"
    except urllib.error.HTTPError as exc:
        return f"/healthz answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"not answering ({getattr(exc, 'reason', exc)})"


def create_playground(current: Runtime, url: str) -> Flask:
    """The page and its API, delivering to the app's webhook at `url`."""
    secrets = current.settings.signing_secrets
    if not secrets:
        raise click.ClickException(f"{SIGNING_SECRET_ENV} is not set: nothing to sign with.")
    wrong = WRONG_SECRET + ("!" if WRONG_SECRET in secrets else "")
    bodies: OrderedDict[str, bytes] = OrderedDict()
    lock = threading.Lock()
    page = Flask(__name__, static_folder=None)
    page.json.sort_keys = False  # type: ignore[attr-defined]  # show headers in the order sent

    @page.before_request
    def local_only() -> tuple[Response, int] | None:
        # Another site the browser visits could reach 127.0.0.1 under its own name
        # (DNS rebinding): answer only requests addressed to this machine.
        if request.host.rsplit(":", 1)[0] not in ("127.0.0.1", "localhost"):
            return jsonify(error="the playground answers only on 127.0.0.1"), 403
        return None

    @page.get("/")
    def index() -> Response:
        return send_from_directory(HERE, PAGE_FILES[0])

    @page.get("/<name>")
    def asset(name: str) -> Response | tuple[Response, int]:
        if name not in PAGE_FILES:
            return jsonify(error="not found"), 404
        return send_from_directory(HERE, name)

    @page.get("/api/setup")
    def setup() -> Response:
        return jsonify(url=url, health=health(url), kinds=KINDS, platforms=PLATFORMS)

    @page.post("/api/deliver")
    def deliver() -> Response:
        form = json_object()
        payload = build(form)
        return exchange(payload["message"]["id"], encode(payload), form)

    @page.post("/api/redeliver")
    def redeliver() -> Response | tuple[Response, int]:
        form = json_object()
        message_id = _field(form, "message_id", "")
        with lock:
            body = bodies.get(message_id)
        if body is None:
            return jsonify(error=f"no delivery of {message_id!r} from this playground"), 404
        return exchange(message_id, body, form)

    def exchange(message_id: str, body: bytes, form: dict[str, Any]) -> Response:
        signature = _field(form, "signature", "good")
        if signature not in ("good", "bad"):
            raise Invalid("signature must be good or bad")
        with lock:
            bodies[message_id] = body
            bodies.move_to_end(message_id)
            while len(bodies) > KEPT_BODIES:
                bodies.popitem(last=False)
        sent = send(url, body, secrets[0] if signature == "good" else wrong)
        return jsonify(message_id=message_id, **sent)

    @page.get("/api/outcome/<path:message_id>")
    def outcome(message_id: str) -> Response | tuple[Response, int]:
        try:
            status = current.inbox.status(message_id)
        except InboxUnavailable as exc:
            return jsonify(error=f"the inbox is unavailable: {exc}"), 503
        return jsonify(message_id=message_id, **describe(status))

    @page.errorhandler(Invalid)
    def invalid(exc: Invalid) -> tuple[Response, int]:
        return jsonify(error=str(exc)), 400

    @page.errorhandler(Unreachable)
    def unreachable(exc: Unreachable) -> tuple[Response, int]:
        return jsonify(error=str(exc)), 502

    @page.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.description), exc.code or 500

    return page


def json_object() -> dict[str, Any]:
    # get_json refuses any other content type (415): a form on another site cannot post here.
    form = request.get_json()
    if not isinstance(form, dict):
        raise Invalid("send a JSON object")
    return form


@click.command("playground")
@click.option("--port", type=int, default=8025, show_default=True, help="The page's port.")
@click.option(
    "--url",
    show_default="http://127.0.0.1:$PORT" + WEBHOOK_PATH,
    help="The app's webhook, where deliveries go.",
)
@with_appcontext
def playground_command(port: int, url: str | None) -> None:
    """Chat with the bot in your browser: signed deliveries to the running app, and what it did.

    The page runs on 127.0.0.1 only. Start the app first (`make dev` or `make run`).
    """
    current = runtime()
    target = url or f"http://127.0.0.1:{current.settings.port}{WEBHOOK_PATH}"
    page = create_playground(current, target)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per poll
    server = make_server("127.0.0.1", port, page, threaded=True)  # a busy port: says so, exits
    click.echo(f"Playground on http://127.0.0.1:{server.server_port}/ delivering to {target}")
    click.echo("Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
