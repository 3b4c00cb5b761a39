"""The webhook endpoint: check, store, answer. Nothing slow happens here.

Spectrum treats any 4xx but 408/429 as final and retries 5xx, so the statuses
matter: 400/401/413 for requests that will never be good, 503 when the delivery
is fine but cannot be stored right now, 2xx only once it is safely stored.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, current_app, jsonify, request

from .config import WEBHOOK_PATH
from .events import parse_event
from .inbox import InboxUnavailable
from .verify import check_headers, verify

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)


def reject(status: int, reason: str) -> tuple[Response, int]:
    """One log line with the reason (never the body or a secret), one short JSON answer."""
    log.warning(
        "rejected status=%d reason=%s webhook_id=%s",
        status,
        json.dumps(reason),
        json.dumps(request.headers.get("X-Spectrum-Webhook-Id")),
    )
    return jsonify(error=reason), status


def read_body(limit: int) -> bytes | None:
    """The raw body bytes, or None past `limit`; never reads more than limit + 1 bytes."""
    chunks, size = [], 0
    while size <= limit:
        chunk = request.stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


@bp.post(WEBHOOK_PATH)
def receive() -> tuple[Response, int]:
    runtime = current_app.extensions["spectrum"]
    settings = runtime.settings
    now = time.time()

    # Judged on the declared length, before a single body byte is read.
    too_large = f"body larger than {settings.max_body_bytes} bytes"
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        return reject(413, too_large)
    verdict = check_headers(request.headers, now, settings.tolerance_seconds)
    if not verdict.ok:
        return reject(verdict.status, verdict.reason)

    body = read_body(settings.max_body_bytes)
    if body is None:  # chunked, so no length was declared
        return reject(413, too_large)
    verdict = verify(
        body, request.headers, settings.signing_secrets, now, settings.tolerance_seconds
    )
    if not verdict.ok:
        return reject(verdict.status, verdict.reason)

    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        return reject(400, "body is not UTF-8 JSON")
    if not isinstance(data, dict):
        return reject(400, "body is not a JSON object")

    event = parse_event(data)
    if event.name != "messages":
        log.info("ignored event=%s", json.dumps(event.name))
        return jsonify(status="ignored", event=event.name), 200
    if event.message is None:
        return reject(400, f"malformed delivery: {event.problem}")

    message_id = event.message.id
    try:
        accepted = runtime.inbox.accept(
            message_id, text, webhook_id=request.headers.get("X-Spectrum-Webhook-Id")
        )
    except InboxUnavailable as exc:
        log.error("unavailable status=503 message_id=%s reason=%s", json.dumps(message_id), exc)
        return jsonify(error="inbox unavailable, retry later"), 503
    if not accepted:
        log.info("duplicate message_id=%s", json.dumps(message_id))
        return jsonify(status="duplicate", message_id=message_id), 200

    runtime.worker.wake()
    log.info(
        "accepted message_id=%s content=%s secret=%d",
        json.dumps(message_id),
        event.message.content.type,
        verdict.secret_index,
    )
    return jsonify(status="accepted", message_id=message_id), 202


@bp.get("/healthz")
def health() -> tuple[Response, int]:
    try:
        current_app.extensions["spectrum"].inbox.ping()
    except InboxUnavailable as exc:
        log.error("health check failed: %s", exc)
        return jsonify(status="inbox unavailable"), 503
    return jsonify(status="ok"), 200
