"""What operators and their tools ask the app: /healthz, /readyz and /metrics.

/healthz: the process answers and reaches its inbox (container healthchecks).
/readyz: it can do its whole job now: the inbox takes writes and keeps them, the
replies can go out (or are deliberately a dry run), the bot threads run. Each
check says what failed, so a 503 explains itself.
/metrics: Prometheus text (metrics.py); SPECTRUM_METRICS=off turns it off, and
with SPECTRUM_METRICS_TOKEN set it answers only requests bearing that token.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from .inbox.contract import InboxUnavailable
from .metrics import exposition
from .runtime import Runtime, runtime

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def health() -> tuple[Response, int]:
    try:
        runtime().inbox.ping()
    except InboxUnavailable as exc:
        log.error("health check failed", extra={"error": str(exc)})
        return jsonify(status="inbox unavailable"), 503
    return jsonify(status="ok"), 200


@bp.get("/readyz")
def ready() -> tuple[Response, int]:
    checks = readiness(runtime())
    ok = all(check["ok"] for check in checks.values())
    if not ok:
        failed = {name: check.get("error") for name, check in checks.items() if not check["ok"]}
        log.warning("not ready", extra={"failed": failed})
    return jsonify(status="ready" if ok else "not ready", checks=checks), 200 if ok else 503


def readiness(current: Runtime) -> dict[str, dict[str, Any]]:
    """Each check: {"ok": bool, ...what it found}."""
    checks = {"inbox": check_inbox(current)}
    if current.bot_threads is not None:
        checks["bot_threads"] = current.bot_threads.health()
        checks["replies"] = check_replies(current)
    else:  # Redis: `flask spectrum worker` processes run the bot and send the replies
        checks["replies"] = {"ok": True, "where": "the bot workers (flask spectrum worker)"}
    return checks


def check_inbox(current: Runtime) -> dict[str, Any]:
    """It takes a write now, and would keep what it acknowledged."""
    try:
        current.inbox.probe_write()
        problem = current.inbox.durability_problem()
    except InboxUnavailable as exc:
        return {"ok": False, "error": str(exc)}
    if problem and current.settings.redis_require_aof:
        return {"ok": False, "error": problem}
    return {"ok": True, **({"warning": problem} if problem else {})}


def check_replies(current: Runtime) -> dict[str, Any]:
    """The sender can send now (the bridge answers), or replies are a deliberate dry run."""
    assert current.bot_threads is not None
    tools = current.bot_threads.tools
    found: dict[str, Any] = {"mode": tools.sender.mode}
    if tools.sender_reason:
        found["why"] = tools.sender_reason
    try:
        tools.sender.warm_up()
    except Exception as exc:  # whatever the sender raises, the answer is "not now"
        return {"ok": False, **found, "error": str(exc)}
    return {"ok": True, **found}


@bp.get("/metrics")
def metrics() -> Response | tuple[Response, int]:
    settings = runtime().settings
    if not settings.metrics:
        abort(404)  # SPECTRUM_METRICS=off
    if settings.metrics_token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), settings.metrics_token.encode()):
            return jsonify(error="bearer token required (SPECTRUM_METRICS_TOKEN)"), 401
    return Response(exposition(runtime().inbox), mimetype=CONTENT_TYPE_LATEST)
