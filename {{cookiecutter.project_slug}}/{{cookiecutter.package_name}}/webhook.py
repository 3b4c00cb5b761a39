"""The webhook endpoint: check, store, answer. Nothing slow happens here.

Spectrum treats any 4xx but 408/429 as final and retries 5xx, so the statuses
matter: 400/401/413 for requests that will never be good, 503 when the delivery
is fine but cannot be stored right now, 2xx only once it is safely stored.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from .config import SIGNING_SECRET_ENV, WEBHOOK_PATH, Settings
from .events import Event, parse_event
from .inbox.contract import InboxUnavailable
from .metrics import ACK_SECONDS, DELIVERIES
from .runtime import runtime
from .state import conversation_scope
from .verify import check_headers, verify

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)


class Refused(Exception):
    """A request that will never be acceptable: answered with a 4xx and its reason.

    `kind` is the reason in one word, for the metrics: headers, timestamp,
    signature, too_large or body.
    """

    def __init__(self, status: int, reason: str, kind: str = "body") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind


def answered(
    outcome: str, status: int, level: int = logging.INFO, why: str = "", **fields: Any
) -> None:
    """The one log line (and the metrics) of a delivery: how it ended and how long it took.

    `why` is a refusal's kind, the metrics' label; `fields` go in the log line.
    """
    seconds = time.perf_counter() - g.get("arrived", time.perf_counter())
    DELIVERIES.labels(outcome, why).inc()
    ACK_SECONDS.observe(seconds)
    webhook_id = request.headers.get("X-Spectrum-Webhook-Id")
    fields = {"status": status, "ms": round(seconds * 1000, 1), **fields, "webhook_id": webhook_id}
    log.log(level, outcome, extra=fields)


@bp.before_request
def arrived() -> None:
    g.arrived = time.perf_counter()


@bp.errorhandler(Refused)
def refused(exc: Refused) -> tuple[Response, int]:
    """One log line with the reason (never the body or a secret), one short JSON answer."""
    answered("rejected", exc.status, logging.WARNING, exc.kind, reason=exc.reason)
    return jsonify(error=exc.reason), exc.status


@bp.post(WEBHOOK_PATH)
def receive() -> tuple[Response, int]:
    current = runtime()
    body, secret_index = verified_body(current.settings, time.time())
    text, event = parse(body)
    if event.name != "messages":
        answered("ignored", 200, event=event.name)
        return jsonify(status="ignored", event=event.name), 200

    message = event.message
    assert message is not None  # parse() refuses a `messages` event without one
    try:
        webhook_id = request.headers.get("X-Spectrum-Webhook-Id")
        accepted = current.inbox.accept(
            message.id, text, webhook_id=webhook_id, conversation=conversation_scope(message)
        )
    except InboxUnavailable as exc:
        answered("unavailable", 503, logging.ERROR, message_id=message.id, reason=str(exc))
        return jsonify(error="inbox unavailable, retry later"), 503
    if not accepted:
        answered("duplicate", 200, message_id=message.id)
        return jsonify(status="duplicate", message_id=message.id), 200

    if current.bot_threads is not None:
        current.bot_threads.wake()
    content = message.content.type
    answered("accepted", 202, message_id=message.id, content=content, secret=secret_index)
    return jsonify(status="accepted", message_id=message.id), 202


class NotConfigured(Exception):
    """The app has no signing secret: a deploy mistake, answered 500 so Spectrum retries."""


@bp.errorhandler(NotConfigured)
def not_configured(exc: NotConfigured) -> tuple[Response, int]:
    answered("unconfigured", 500, logging.ERROR, reason=str(exc))
    return jsonify(error=str(exc)), 500


def verified_body(settings: Settings, now: float) -> tuple[bytes, int]:
    """The raw body and the index of the secret that signed it, or `Refused`."""
    if not settings.signing_secrets:
        raise NotConfigured(f"no signing secret configured: set {SIGNING_SECRET_ENV}")
    too_large = Refused(413, f"body larger than {settings.max_body_bytes} bytes", "too_large")
    # Judged on the declared length and the headers, before a single body byte is read.
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise too_large
    verdict = check_headers(request.headers, now, settings.tolerance_seconds)
    if not verdict.ok:
        raise Refused(
            verdict.status, verdict.reason, "timestamp" if verdict.status == 401 else "headers"
        )
    body = read_body(settings.max_body_bytes)
    if body is None:  # sent chunked, so no length was declared
        raise too_large
    verdict = verify(
        body, request.headers, settings.signing_secrets, now, settings.tolerance_seconds
    )
    if not verdict.ok or verdict.secret_index is None:
        raise Refused(verdict.status, verdict.reason, "signature")
    return body, verdict.secret_index


def read_body(limit: int) -> bytes | None:
    """The raw body bytes, or None past `limit`; never reads more than limit + 1 bytes.

    A body that cannot be read (a malformed chunked encoding, a connection cut
    mid-body) is `Refused`: sending it again cannot make it good.
    """
    chunks, size = [], 0
    while size <= limit:
        try:
            chunk = request.stream.read(min(64 * 1024, limit + 1 - size))
        except Exception as exc:  # gunicorn and werkzeug each raise their own kind
            raise Refused(400, f"body could not be read ({type(exc).__name__})") from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


def parse(body: bytes) -> tuple[str, Event]:
    """The body as text (stored as is) and as an event, or `Refused`."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise Refused(400, "body is not UTF-8 JSON") from None
    except RecursionError:  # nested deeper than the parser goes: no real delivery is
        raise Refused(400, "body is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise Refused(400, "body is not a JSON object")
    event = parse_event(data)
    if event.name == "messages" and event.message is None:
        raise Refused(400, f"malformed delivery: {event.problem}")
    return text, event
