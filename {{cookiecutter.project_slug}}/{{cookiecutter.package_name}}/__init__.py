"""A Spectrum bot.

One delivery's path: `webhook.py` checks the signature (`verify.py`), parses the
event (`events.py`), stores it in the inbox (`inbox/`) and answers. A runner
then takes it: bot threads in each web process with the SQLite inbox
(`inbox/sqlite_runner.py`), `flask spectrum worker` processes with Redis
(`inbox/redis_runner.py`). `handling.py` runs your `bot.py` and sends its replies
through `sending.py`: the Node bridge to the spectrum-ts SDK (`bridge.py`), or
the log (dry run).
"""

from __future__ import annotations

import atexit
import logging
import traceback
from pathlib import Path

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.serving import is_running_from_reloader

from . import cli, logs, ops, webhook
from .botkit import Bot
from .config import ConfigError, Settings
from .inbox import open_inbox
from .inbox.contract import Inbox
from .inbox.sqlite_runner import BotThreads
from .inbox.sqlite_store import SQLiteInbox
from .runtime import Runtime

log = logging.getLogger(__name__)


def create_app(config: Settings | None = None, *, bot: Bot | None = None) -> Flask:
    """Build the app. Settings come from the environment (and `.env`) unless given,
    the bot from `bot.py` unless given (tests give their own)."""
    settings = config or Settings.from_env()
    settings.check()
    make_private(settings.instance_dir)
    if bot is None:
        bot = load_bot()
    if not logging.getLogger().handlers:  # gunicorn (gunicorn.conf.py) has set it up already
        logs.configure(settings.log_format, settings.log_level)
    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    inbox = open_inbox(settings)
    bot_threads = start_bot_threads(app, settings, inbox, bot)
    app.extensions["spectrum"] = Runtime(settings, inbox, bot, bot_threads)

    app.register_blueprint(webhook.bp)
    app.register_blueprint(ops.bp)
    app.register_error_handler(HTTPException, json_error)
    app.cli.add_command(cli.spectrum)
    return app


def load_bot() -> Bot:
    """bot.py's bot. If bot.py cannot be loaded, one line saying where and why (every
    `flask spectrum ...` command loads the app, and so the bot)."""
    try:
        from .bot import bot
    except Exception as exc:  # whatever bot.py raised on import, a syntax error too
        raise ConfigError(f"bot.py cannot be loaded: {where_it_failed(exc)}") from exc
    return bot


def where_it_failed(exc: BaseException) -> str:
    """`file:line: Error: message`, at the innermost line of the project's own code."""
    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno}: SyntaxError: {exc.msg}"
    package = str(Path(__file__).parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(package)]
    at = f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
    return f"{at}{type(exc).__name__}: {exc}"


def make_private(folder: Path) -> None:
    """instance/ holds message bodies and webhook records: this user's only (0700)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)


def start_bot_threads(app: Flask, settings: Settings, inbox: Inbox, bot: Bot) -> BotThreads | None:
    """With the SQLite inbox, each web process runs the bot in threads of its own.

    (With Redis there is nothing to run here: `flask spectrum worker` runs the bot.)
    """
    if not isinstance(inbox, SQLiteInbox):
        return None
    threads = BotThreads.from_settings(settings, inbox, bot)
    if settings.start_worker:
        # Not started here in general: `flask spectrum ...` commands load the app too
        # and must not handle messages. gunicorn.conf.py starts them as each worker
        # boots; `flask run`'s reloader child starts them now, so that after a reload
        # pending and retried messages go on without waiting for a request.
        if is_running_from_reloader():
            threads.start()
        app.before_request(threads.start)
        atexit.register(threads.stop)
    return threads


def json_error(error: HTTPException) -> tuple[Response, int]:
    """Short JSON for 404, 405, 413 ... instead of Werkzeug's HTML pages."""
    status = error.code or 500
    log.warning("rejected", extra={"status": status, "reason": error.name})
    return jsonify(error=error.name), status
