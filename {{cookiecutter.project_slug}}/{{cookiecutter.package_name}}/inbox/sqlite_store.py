"""The SQLite inbox: one file shared by every gunicorn worker on this machine.

WAL mode lets the web processes accept while their bot threads (`sqlite_runner.py`)
claim and record. Duplicates are caught across processes and restarts. A claim
is a lease: a message whose thread died is claimed again once its lease runs
out, and carries on from what was recorded (the bot is not run again once its
replies are stored, and a confirmed reply is not sent again).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .contract import InboxUnavailable, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    message_id   TEXT PRIMARY KEY,
    webhook_id   TEXT,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',  -- pending, working, done, failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,  -- pending: not before; working: lease end
    claim_token  TEXT,
    received_at  REAL NOT NULL,
    finished_at  REAL,
    replies      TEXT,  -- JSON: the bot's replies, each with its receipt once sent
    outcome      TEXT  -- JSON: what the bot did, or the last error
);
CREATE INDEX IF NOT EXISTS inbox_ready ON inbox (state, available_at);
"""


@dataclass(frozen=True)
class Claim:
    message_id: str
    payload: str
    attempts: int
    token: str
    # [{"content": {...}, "receipt": {...} or None}], or None before the bot has run.
    replies: list[dict[str, Any]] | None = None


def _initialise(db: sqlite3.Connection) -> None:
    """Switch the file to WAL and create the table, once several processes agree.

    Workers booting together on a new file race for the lock this takes, and SQLite
    answers "locked" at once (not after busy_timeout) when waiting could deadlock.
    """
    for attempt in range(50):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02 * (attempt + 1))


class SQLiteInbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()  # sqlite3 connections must stay in their thread

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 5000")
            _initialise(db)
            self._local.db, self._local.durable = db, None
        return db

    def _run(
        self, sql: str, params: tuple[Any, ...] = (), *, durable: bool = False
    ) -> sqlite3.Cursor:
        """Run one statement; `durable` ones are on disk before it returns.

        A 2xx is final for Spectrum, so an accepted row must survive power loss
        (synchronous FULL: the WAL is synced at commit). The worker's bookkeeping
        only has to survive a crashed process, which NORMAL already gives in WAL
        mode; the next durable commit syncs it too. One sync per message instead
        of five keeps the webhook's answers fast while workers are busy.
        """
        try:
            db = self._db()
            if self._local.durable is not durable:
                db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._local.durable = durable
            return db.execute(sql, params)
        except (sqlite3.Error, OSError) as exc:
            self._local.db = None  # reconnect next time: the file may come back
            raise InboxUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def accept(self, message_id: str, payload: str, webhook_id: str | None = None) -> bool:
        """Store a delivery; False if this message id was already accepted."""
        now = time.time()
        cursor = self._run(
            "INSERT OR IGNORE INTO inbox"
            " (message_id, webhook_id, payload, available_at, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (message_id, webhook_id, payload, now, now),
            durable=True,
        )
        return cursor.rowcount == 1

    def claim(self, lease_seconds: float) -> Claim | None:
        """Take the oldest ready message (or one whose worker's lease ran out)."""
        now = time.time()
        token = uuid.uuid4().hex
        row = self._run(
            "UPDATE inbox SET state = 'working', attempts = attempts + 1,"
            " available_at = ?, claim_token = ?"
            " WHERE message_id = (SELECT message_id FROM inbox"
            "   WHERE state IN ('pending', 'working') AND available_at <= ?"
            "   ORDER BY received_at LIMIT 1)"
            " RETURNING message_id, payload, attempts, replies",
            (now + lease_seconds, token, now),
        ).fetchone()
        if row is None:
            return None
        return Claim(row[0], row[1], row[2], token, json.loads(row[3]) if row[3] else None)

    def save_progress(
        self, claim: Claim, replies: list[dict[str, Any]], lease_seconds: float
    ) -> bool:
        """Record the replies so far and renew the lease; False if the claim was lost."""
        cursor = self._run(
            "UPDATE inbox SET replies = ?, available_at = ?"
            " WHERE message_id = ? AND claim_token = ?",
            (json.dumps(replies), time.time() + lease_seconds, claim.message_id, claim.token),
        )
        return cursor.rowcount == 1

    def renew(self, claim: Claim, lease_seconds: float) -> bool:
        """Extend the lease of a message still in hand; False if it was taken over."""
        cursor = self._run(
            "UPDATE inbox SET available_at = ? WHERE message_id = ? AND claim_token = ?",
            (time.time() + lease_seconds, claim.message_id, claim.token),
        )
        return cursor.rowcount == 1

    def release(self, claim: Claim) -> None:
        """Give a message back unfinished (shutting down): ready at once, attempt not counted."""
        self._run(
            "UPDATE inbox SET state = 'pending', available_at = ?, attempts = attempts - 1,"
            " claim_token = NULL WHERE message_id = ? AND claim_token = ?",
            (time.time(), claim.message_id, claim.token),
        )

    def done(self, claim: Claim, outcome: dict[str, Any]) -> None:
        # The token check keeps a worker whose lease expired from finishing twice.
        self._run(
            "UPDATE inbox SET state = 'done', finished_at = ?, outcome = ?, claim_token = NULL"
            " WHERE message_id = ? AND claim_token = ?",
            (time.time(), json.dumps(outcome), claim.message_id, claim.token),
        )

    def retry(self, claim: Claim, error: str, delay: float, park: bool) -> None:
        """Put a failed message back after `delay`, or park it as failed for good."""
        now = time.time()
        self._run(
            "UPDATE inbox SET state = ?, available_at = ?, finished_at = ?, outcome = ?,"
            " claim_token = NULL WHERE message_id = ? AND claim_token = ?",
            (
                "failed" if park else "pending",
                now + delay,
                now if park else None,
                json.dumps({"error": error}),
                claim.message_id,
                claim.token,
            ),
        )

    def status(self, message_id: str) -> Status | None:
        row = self._run(
            "SELECT message_id, state, attempts, outcome, received_at FROM inbox"
            " WHERE message_id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            return None
        return Status(row[0], row[1], row[2], json.loads(row[3]) if row[3] else None, row[4])

    def parked(self, limit: int = 100) -> list[Status]:
        """Messages that failed every attempt, oldest first."""
        rows = self._run(
            "SELECT message_id, state, attempts, outcome, received_at FROM inbox"
            " WHERE state = 'failed' ORDER BY received_at LIMIT ?",
            (limit,),
        ).fetchall()
        return [Status(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None, r[4]) for r in rows]

    def replay(self, message_id: str) -> bool:
        """Put a parked message back in line with fresh attempts; False if it is not parked.

        Replies already confirmed stay recorded, so they are not sent again.
        """
        cursor = self._run(
            "UPDATE inbox SET state = 'pending', attempts = 0, available_at = ?,"
            " finished_at = NULL WHERE message_id = ? AND state = 'failed'",
            (time.time(), message_id),
        )
        return cursor.rowcount == 1

    def purge(self, older_than: float) -> int:
        """Forget finished messages (and so their dedupe keys) older than a cut-off."""
        cursor = self._run(
            "DELETE FROM inbox WHERE state IN ('done', 'failed') AND finished_at < ?",
            (older_than,),
        )
        return cursor.rowcount

    def ping(self) -> None:
        self._run("SELECT 1 FROM inbox LIMIT 1")
