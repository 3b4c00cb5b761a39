"""Log lines: plain text for development (the default), one JSON object per line
with LOG_FORMAT=json, for the app, the bot workers, the bridge's stderr and
gunicorn alike.

A line is an event and its fields, passed as `extra`:

    log.info("accepted", extra={"message_id": "m-1", "status": 202, "ms": 1.2})

    text: 2026-11-27T12:00:00.123Z INFO my_bot.webhook accepted message_id="m-1" status=202 ms=1.2
    json: {"time": "2026-11-27T12:00:00.123Z", "level": "INFO", "logger": "my_bot.webhook",
           "message": "accepted", "message_id": "m-1", "status": 202, "ms": 1.2}

python-json-logger writes the JSON; the text formatter is the standard one with
the fields appended, so that both show the same fields under the same names:
message_id, webhook_id, status, ms, attempt, error.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")
_STANDARD = {*RESERVED_ATTRS, "taskName", "color_message"}


def timestamp(record: logging.LogRecord) -> str:
    """One time format for every line, gunicorn's included: ISO 8601, UTC, milliseconds."""
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the call passed as `extra`."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class TextFormatter(logging.Formatter):
    """`time level logger event key=value ...`; strings JSON-quoted, so a line stays one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return timestamp(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = (
            f"{k}={json.dumps(v, ensure_ascii=False, default=str)}"
            for k, v in fields(record).items()
        )
        return " ".join([super().formatMessage(record), *pairs])


class JsonLineFormatter(JsonFormatter):
    """python-json-logger's, with the same time as the text lines and short names."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
            json_default=str,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return timestamp(record)


def config(
    log_format: str = "text", level: str = "INFO", access_log: bool = False
) -> dict[str, Any]:
    """A `logging.config.dictConfig` for this format; gunicorn.conf.py uses it too.

    gunicorn's own loggers get the same handler: one format on stderr for the whole
    process. Its access log (a line per request) is off unless asked for: the
    webhook already logs one line per delivery, with its status and time.
    """
    formatter = {"json": JsonLineFormatter, "text": TextFormatter}[log_format]
    handler = {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}
    gunicorn = {"level": "INFO", "handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": formatter}},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": gunicorn,
            "gunicorn.access": {**gunicorn, "level": "INFO" if access_log else "WARNING"},
        },
    }


def configure(log_format: str = "text", level: str = "INFO") -> None:
    """Set up this process's logging (the app, a worker, a CLI command)."""
    logging.config.dictConfig(config(log_format, level))
