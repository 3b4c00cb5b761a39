"""Where accepted deliveries wait for the bot: the contract, and one module per backend.

contract.py        what every inbox promises; the retry policy they share
sqlite_store.py    SQLite (default): one file, shared by the web processes
sqlite_runner.py   ... and the bot threads inside each web process
redis_store.py     Redis (inbox=redis): shared by several machines
redis_runner.py    ... and the RQ workers (`flask spectrum worker`)
"""

from __future__ import annotations

import importlib.util

from ..config import ConfigError, Settings
from .contract import Inbox
from .sqlite_store import SQLiteInbox


def check_durable(settings: Settings, inbox: Inbox) -> None:
    """Refuse, in one line, an inbox that would lose what it acknowledged."""
    problem = inbox.durability_problem() if settings.redis_require_aof else None
    if problem:
        raise ConfigError(f"{problem} (or set SPECTRUM_REDIS_REQUIRE_AOF=0)")


def open_inbox(settings: Settings) -> Inbox:
    """The inbox the settings name: Redis when REDIS_URL is set, else the SQLite file."""
    if not settings.redis_url:
        return SQLiteInbox(settings.sqlite_path, ordered=settings.ordered)
    if importlib.util.find_spec(f"{__name__}.redis_store") is None:
        raise ConfigError(
            "REDIS_URL is set, but this project was generated with the SQLite inbox only."
        )
    from .redis_store import RedisInbox

    inbox: Inbox = RedisInbox(  # typed here: in SQLite-only projects the module is not there
        settings.redis_url,
        max_attempts=settings.max_attempts,
        retention_seconds=settings.retention_seconds,
        job_timeout=settings.lease_seconds,
        ordered=settings.ordered,
    )
    return inbox
