"""A Spectrum bot.

One delivery's path: `webhook.py` checks the signature (`verify.py`), parses the
event (`events.py`), stores it in the inbox and answers. Then a worker claims it
(`worker.py`'s threads with the SQLite inbox, `flask spectrum worker` processes
with Redis) and `handling.py` runs your `bot.py` and sends its replies through
`replies.py`: the Node bridge to the spectrum-ts SDK, or the log (dry run).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from . import cli, webhook
from .bot import bot
from .config import ConfigError, Settings
from .inbox import Inbox, SQLiteInbox
from .replies import choose_replier
from .worker import Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """What the webhook, the worker and the CLI share, kept in `app.extensions`."""

    settings: Settings
    inbox: Inbox
    worker: Worker | None  # None with Redis: `flask spectrum worker` processes run the bot


def create_app(config: Settings | None = None) -> Flask:
    """Build the app. Settings come from the environment (and `.env`) unless given."""
    settings = config or Settings.from_env()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = Flask(__name__)
    inbox, worker = (
        open_redis_inbox(settings)
        if settings.redis_url
        else open_sqlite_inbox(settings, app.instance_path)
    )
    app.extensions["spectrum"] = Runtime(settings, inbox, worker)

    app.register_blueprint(webhook.bp)
    app.register_error_handler(HTTPException, json_error)
    app.cli.add_command(cli.spectrum)

    if worker is not None and settings.start_worker:
        # Started on the first request, not here: `flask spectrum ...` commands load
        # the app too and must not start handling messages. gunicorn.conf.py starts
        # it as soon as each worker process boots.
        app.before_request(worker.start)
        atexit.register(worker.stop)
    return app


def open_sqlite_inbox(settings: Settings, instance_path: str) -> tuple[Inbox, Worker]:
    """One file on this machine; each gunicorn worker runs the bot in its own threads."""
    inbox = SQLiteInbox(settings.inbox_path or Path(instance_path) / "inbox.sqlite3")
    replier, replies_reason = choose_replier(settings)
    worker = Worker(
        inbox,
        bot,
        replier,
        threads=settings.worker_threads,
        max_attempts=settings.max_attempts,
        lease_seconds=settings.lease_seconds,
        retention_seconds=settings.retention_seconds,
        replies_reason=replies_reason,
    )
    return inbox, worker


def open_redis_inbox(settings: Settings) -> tuple[Inbox, None]:
    """Shared by every machine; RQ worker processes run the bot."""
    if importlib.util.find_spec(f"{__name__}.redis_inbox") is None:
        raise ConfigError(
            "REDIS_URL is set, but this project was generated with the SQLite inbox only."
        )
    from .redis_inbox import RedisInbox

    inbox = RedisInbox(
        settings.redis_url,
        max_attempts=settings.max_attempts,
        retention_seconds=settings.retention_seconds,
        job_timeout=settings.lease_seconds,
    )
    return inbox, None


def json_error(error: HTTPException) -> tuple[Response, int]:
    """Short JSON for 404, 405, 413 ... instead of Werkzeug's HTML pages."""
    status = error.code or 500
    log.warning("rejected status=%d reason=%s", status, error.name)
    return jsonify(error=error.name), status
