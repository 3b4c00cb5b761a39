"""The SQLite inbox: one file shared by every gunicorn worker on this machine.

WAL mode lets the web processes accept while their bot threads (`sqlite_runner.py`)
claim and record. Duplicates are caught across processes and restarts. A claim
is a lease: a message whose thread died is claimed again once its lease runs
out, and carries on from what was recorded (the bot is not run again once its
replies are stored, and a confirmed reply is not sent again).

Messages of one conversation are claimed one at a time, in the order they were
accepted: only the oldest unfinished message of a conversation can be claimed.
A parked message no longer holds its conversation up. The conversations' state
(`state.py`) is a table in the same file, written in the same transaction as
the replies of the handler that changed it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..state import Changes, Entry, StateConflict
from .contract import InboxUnavailable, Status, storable

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
    outcome      TEXT,  -- JSON: what the bot did, or the last error
    conversation TEXT   -- messages of one conversation are handled in rowid order
);
CREATE INDEX IF NOT EXISTS inbox_ready ON inbox (state, available_at);
CREATE TABLE IF NOT EXISTS state (
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT,  -- JSON; NULL once deleted (the row keeps the version)
    version    INTEGER NOT NULL,
    expires_at REAL,
    PRIMARY KEY (scope, name)
);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at REAL);  -- /readyz writes here
"""
# Added after the first release: inboxes made by it get the column on first open.
MIGRATIONS = {"conversation": "ALTER TABLE inbox ADD COLUMN conversation TEXT"}
CONVERSATION_INDEX = (
    "CREATE INDEX IF NOT EXISTS inbox_conversation ON inbox (conversation)"
    " WHERE state IN ('pending', 'working')"
)

# The next message to handle: one whose thread's lease ran out (few: their process
# died), else the pending one that has been ready longest. With `ordered`, only
# the oldest unfinished message of its conversation.
#
# Both walk inbox_ready in its own order and stop at the first claimable row, so
# neither a backlog nor messages scheduled for later make a claim slower. (Ordered
# by rowid, SQLite sorted every ready message at each claim: 4 ms with 10,000
# waiting, and a backlog took time growing with its square to drain.)
_LEASE_RAN_OUT = "SELECT m.rowid FROM inbox m WHERE m.state = 'working' AND m.available_at <= :now"
_PENDING = "SELECT m.rowid FROM inbox m WHERE m.state = 'pending' AND m.available_at <= :now"
_HEAD_OF_CONVERSATION = (
    " AND NOT EXISTS (SELECT 1 FROM inbox e WHERE e.conversation = m.conversation"
    " AND e.state IN ('pending', 'working') AND e.rowid < m.rowid)"
)


def _next_message(ordered: bool) -> str:
    """SQL for the rowid of the next message to claim (NULL if none is ready)."""
    head = _HEAD_OF_CONVERSATION if ordered else ""
    first = f"{head} ORDER BY m.available_at, m.rowid LIMIT 1"
    return f"SELECT coalesce(({_LEASE_RAN_OUT}{first}), ({_PENDING}{first}))"


class _ClaimLost(Exception):
    pass


@dataclass(frozen=True)
class Claim:
    message_id: str
    payload: str
    attempts: int
    token: str
    # [{"content": {...}, "receipt": {...} or None}], or None before the bot has run.
    replies: list[dict[str, Any]] | None = None


def _initialise(db: sqlite3.Connection) -> None:
    """Switch the file to WAL and create the tables, once several processes agree.

    Workers booting together on a new file race for the lock this takes, and SQLite
    answers "locked" at once (not after busy_timeout) when waiting could deadlock.
    """
    for attempt in range(50):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(inbox)")}
            for column, alter in MIGRATIONS.items():
                if column not in columns:
                    db.execute(alter)
            db.execute(CONVERSATION_INDEX)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02 * (attempt + 1))


class _Batch:
    """Deliveries that arrived together, committed in one synced transaction."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.accepted: list[bool] = []
        self.error: InboxUnavailable | None = None
        self.done = threading.Event()


class _Writer:
    """The right to write to one inbox file: one thread of one process at a time.

    SQLite lets one connection write at a time and makes the others wait in its
    busy handler, which sleeps and retries (1, 2, 5, 10 ... ms): under load most
    of a write's time went to those sleeps. Here writers queue instead, threads of
    a process in line, processes on flock(2) on a file beside the inbox, and each
    is woken the moment the writer before it is done. SQLite's lock is then never
    contended (its busy handler stays as a safety net for other programs).

    Two lines: deliveries go first, first come, first served, before the bot
    threads, since Spectrum is waiting for their answer while a bot thread's
    bookkeeping only delays its own message. With a hundred bot threads writing
    at once, an accept queued behind them waited 14 ms (p99), and its answer took
    60-90 ms. So that a flood of deliveries cannot stop the handling, a bot thread
    that has waited PATIENCE joins the deliveries' line.
    """

    PATIENCE = 0.2  # seconds
    HANDED = -1  # owner: given to the deliveries' first waiter, which takes it when it wakes

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + "-writer")
        lock = threading.Lock()
        # notify() wakes the waiter that came first.
        self.lines = {True: threading.Condition(lock), False: threading.Condition(lock)}
        self.waiting = {True: 0, False: 0}
        self.owner: int | None = None
        self.depth = 0  # nested holds by the owning thread
        self.fd: int | None = None
        self.pid = 0

    def __enter__(self) -> None:
        self.acquire(first=False)

    def __exit__(self, *exc: object) -> None:
        self.release()

    @contextlib.contextmanager
    def first(self) -> Iterator[None]:
        """Hold it, in the deliveries' line (see the class's docstring)."""
        self.acquire(first=True)
        try:
            yield
        finally:
            self.release()

    def acquire(self, first: bool) -> None:
        me = threading.get_ident()
        with self.lines[first]:
            if self.owner == me:
                self.depth += 1
                return
            try:
                if first or self._waited_out_patience():
                    self._wait_with_the_deliveries()
            except BaseException:  # KeyboardInterrupt, say: a turn handed to us goes on
                if self.owner in (None, self.HANDED):
                    self._pass_on()
                raise
            self.owner, self.depth = me, 1
        try:
            # If the folder is gone or unwritable, SQLite says why at the write itself.
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd(), fcntl.LOCK_EX)
        except BaseException:
            self.release()
            raise

    def _waited_out_patience(self) -> bool:
        """A bot thread waits until no one holds it and no delivery waits.

        True if PATIENCE ran out first: then it waits in the deliveries' line.
        """
        self.waiting[False] += 1
        deadline = time.monotonic() + self.PATIENCE
        try:
            while self.owner is not None or self.waiting[True]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self.lines[False].wait(left)
            return False
        finally:
            self.waiting[False] -= 1

    def _wait_with_the_deliveries(self) -> None:
        """First come, first served: release() hands the turn to the first in line."""
        if self.owner is None and not self.waiting[True]:
            return
        self.waiting[True] += 1
        try:
            # Woken only by release(), first waiter first; a thread arriving meanwhile
            # finds the turn HANDED (not free), so it cannot jump the line.
            self.lines[True].wait()
            while self.owner != self.HANDED:
                self.lines[True].wait()
        finally:
            self.waiting[True] -= 1

    def release(self) -> None:
        with self.lines[True]:
            self.depth -= 1
            if self.depth:
                return
            if self.fd is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
            self._pass_on()

    def _pass_on(self) -> None:
        """The turn to the first delivery waiting, or else free for the bot threads."""
        if self.waiting[True]:
            self.owner = self.HANDED
            self.lines[True].notify()
        else:
            self.owner = None
            self.lines[False].notify()

    def _fd(self) -> int:
        # Opened per process: a descriptor inherited across fork() shares the
        # lock with the parent, and would let both write at once.
        if self.fd is None or self.pid != os.getpid():
            self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            self.pid = os.getpid()
        return self.fd


_WRITERS: dict[Path, _Writer] = {}
_WRITERS_LOCK = threading.Lock()


def _writer(path: Path) -> _Writer:
    """The one _Writer of this process for the file at `path`."""
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(path.resolve(), _Writer(path))


class SQLiteInbox:
    def __init__(self, path: Path, *, ordered: bool = True) -> None:
        self.path = path
        self.ordered = ordered
        self._next = _next_message(ordered)
        self._local = threading.local()  # sqlite3 connections must stay in their thread
        self._writes = _writer(path)
        self._batching = threading.Lock()  # guards _open
        self._open: _Batch | None = None  # the batch new deliveries join

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self._create_private()
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 5000")
            # No checkpoint inside a commit: copying the WAL back into the database
            # (and syncing it) took a webhook's answer hundreds of milliseconds now
            # and then. The bot threads checkpoint every second instead (checkpoint()).
            db.execute("PRAGMA wal_autocheckpoint = 0")
            _initialise(db)
            # Which file this connection writes to: see _check_still_there.
            self._local.db, self._local.durable = db, None
            self._local.identity = _identity(self.path)
        return db

    def _create_private(self) -> None:
        """Message bodies are private: the folder 0700, the file 0600, whatever the umask.

        SQLite gives the -wal and -shm files the database file's permissions.
        """
        if not self.path.parent.exists():
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        if self.path.is_file():
            self.path.chmod(0o600)

    def _check_still_there(self) -> None:
        """The path must still name the file this thread's connection writes to.

        Deleted (`rm instance/inbox.sqlite3*`) or replaced while open, SQLite would
        go on writing into a file that vanishes at the next restart, with every
        delivery acknowledged. Say so (503) and reopen: the next delivery goes to
        a new inbox at the path.
        """
        wal = self.path.with_name(self.path.name + "-wal")
        if _identity(self.path) != self._local.identity or not wal.exists():
            self._local.db.close()
            self._local.db = None
            raise InboxUnavailable(f"{self.path} was removed or replaced while open: reopening")

    def _connection(self, durable: bool) -> sqlite3.Connection:
        """This thread's connection, syncing at commit if `durable`.

        A 2xx is final for Spectrum, so an accepted row must survive power loss
        (synchronous FULL: the WAL is synced at commit). The runner's bookkeeping
        only has to survive a crashed process, which NORMAL already gives in WAL
        mode; the next durable commit syncs it too. One sync per message instead
        of five keeps the webhook's answers fast while the bot threads are busy.
        """
        db = self._db()
        if self._local.durable is not durable:
            db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self._local.durable = durable
        return db

    @contextlib.contextmanager
    def _storage(self) -> Iterator[None]:
        """Any storage error, wherever it surfaces (a cursor's fetch too): InboxUnavailable."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            self._local.db = None  # reconnect next time: the file may come back
            raise InboxUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _run(self, sql: str, params: Any = (), *, durable: bool = False) -> int:
        """Run one writing statement; the number of rows it changed."""
        with self._writes, self._storage():
            return self._connection(durable).execute(sql, params).rowcount

    def _rows(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with self._storage():
            return self._connection(False).execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        with self._writes, self._storage():
            db = self._connection(False)
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def accept(
        self,
        message_id: str,
        payload: str,
        webhook_id: str | None = None,
        conversation: str | None = None,
        not_before: float | None = None,
    ) -> bool:
        """Store a delivery, synced to disk; False if this message id was already accepted.

        Group commit: deliveries arriving while a commit is under way join one batch,
        and the first of them commits the batch in one transaction with one sync. So
        under load the disk syncs once per batch, not once per delivery, and still
        each delivery is on disk before it is acknowledged.
        """
        now = time.time()
        ready = max(now, not_before) if not_before is not None else now
        row = (
            storable(message_id),
            storable(webhook_id) if webhook_id else None,
            payload,
            ready,
            now,
            storable(conversation or message_id),
        )
        with self._batching:
            if self._open is None:
                self._open = _Batch()
            batch, place = self._open, len(self._open.rows)
            batch.rows.append(row)
        if place > 0:  # another thread leads this batch
            batch.done.wait()
        else:
            self._commit(batch)
        if batch.error is not None:
            raise batch.error
        return batch.accepted[place]

    def _commit(self, batch: _Batch) -> None:
        """Lead a batch: once it is this process's turn to write, close it and commit it."""
        try:
            with self._writes.first():
                with self._batching:
                    self._open = None  # later deliveries start the next batch
                with self._storage():
                    db = self._connection(durable=True)
                    self._check_still_there()  # into the file at the path, not a deleted one
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        batch.accepted = [
                            db.execute(
                                "INSERT OR IGNORE INTO inbox (message_id, webhook_id, payload,"
                                " available_at, received_at, conversation)"
                                " VALUES (?, ?, ?, ?, ?, ?)",
                                row,
                            ).rowcount
                            == 1
                            for row in batch.rows
                        ]
                    except BaseException:
                        with contextlib.suppress(sqlite3.Error):
                            db.execute("ROLLBACK")
                        raise
                    db.execute("COMMIT")
        except Exception as exc:  # whatever it was, every delivery of the batch gets it (503)
            batch.error = exc if isinstance(exc, InboxUnavailable) else InboxUnavailable(repr(exc))
        finally:
            batch.done.set()

    def claim(self, lease_seconds: float) -> Claim | None:
        """Take the next message (see _next_message), or None if none is ready."""
        with self._storage():
            self._connection(durable=False)
            self._check_still_there()  # new deliveries go to the file at the path
        now = time.time()
        # A read first: most wake-ups find nothing ready, and need no write lock.
        if self._rows(self._next, {"now": now}) == [(None,)]:
            return None
        with self._writes:
            rows = self._rows(
                "UPDATE inbox SET state = 'working', attempts = attempts + 1,"
                " available_at = :lease_end, claim_token = :token"
                f" WHERE rowid = ({self._next})"
                " RETURNING message_id, payload, attempts, claim_token, replies",
                {"now": now, "lease_end": now + lease_seconds, "token": uuid.uuid4().hex},
            )
        if not rows:
            return None
        message_id, payload, attempts, token, replies = rows[0]
        return Claim(message_id, payload, attempts, token, json.loads(replies) if replies else None)

    def save_progress(
        self,
        claim: Claim,
        replies: list[dict[str, Any]],
        lease_seconds: float,
        changes: Changes | None = None,
    ) -> bool:
        """Record the replies so far (with the state the handler changed) and renew the lease.

        False if the claim was lost, and then nothing is recorded; StateConflict if
        state the handler read has changed since.
        """
        try:
            with self._transaction() as db:
                if changes:
                    self._apply(db, changes)
                saved = db.execute(
                    "UPDATE inbox SET replies = ?, available_at = ?"
                    " WHERE message_id = ? AND claim_token = ?",
                    (
                        json.dumps(replies),
                        time.time() + lease_seconds,
                        claim.message_id,
                        claim.token,
                    ),
                ).rowcount
                if saved != 1:
                    raise _ClaimLost  # rolls the state back too
        except _ClaimLost:
            return False
        return True

    def _apply(self, db: sqlite3.Connection, changes: Changes) -> None:
        for (scope, name), version in changes.read.items():
            row = db.execute(
                "SELECT version FROM state WHERE scope = ? AND name = ?",
                (storable(scope), storable(name)),
            ).fetchone()
            if (row[0] if row else 0) != version:
                raise StateConflict(f"{name!r} changed meanwhile")
        now = time.time()
        for (scope, name), written in changes.written.items():
            value, expires_at = written if written else (None, None)
            db.execute(
                "INSERT INTO state (scope, name, value, version, expires_at)"
                " VALUES (?, ?, ?, 1, ?) ON CONFLICT (scope, name) DO UPDATE SET"
                " value = excluded.value, version = version + 1, expires_at = excluded.expires_at",
                # A deleted key is kept a while, so its version still tells readers it moved.
                (
                    storable(scope),
                    storable(name),
                    value,
                    expires_at if written else now + 7 * 86400,
                ),
            )

    def read_state(self, scope: str, name: str) -> Entry | None:
        rows = self._rows(
            "SELECT value, version, expires_at FROM state WHERE scope = ? AND name = ?",
            (storable(scope), storable(name)),
        )
        if not rows:
            return None
        value, version, expires_at = rows[0]
        if value is None:
            return Entry(None, version, expires_at, present=False)
        return Entry(json.loads(value), version, expires_at)

    def renew(self, claim: Claim, lease_seconds: float) -> bool:
        """Extend the lease of a message still in hand; False if it was taken over."""
        changed = self._run(
            "UPDATE inbox SET available_at = ? WHERE message_id = ? AND claim_token = ?",
            (time.time() + lease_seconds, claim.message_id, claim.token),
        )
        return changed == 1

    def release(self, claim: Claim) -> None:
        """Give a message back unfinished (shutting down): ready at once, attempt not counted."""
        self._run(
            "UPDATE inbox SET state = 'pending', available_at = ?, attempts = attempts - 1,"
            " claim_token = NULL WHERE message_id = ? AND claim_token = ?",
            (time.time(), claim.message_id, claim.token),
        )

    def done(self, claim: Claim, outcome: dict[str, Any]) -> None:
        # The token check keeps a thread whose lease expired from finishing twice.
        self._run(
            "UPDATE inbox SET state = 'done', finished_at = ?, outcome = ?, claim_token = NULL"
            " WHERE message_id = ? AND claim_token = ?",
            (time.time(), json.dumps(outcome), claim.message_id, claim.token),
        )

    def retry(
        self, claim: Claim, error: str, delay: float, park: bool, counted: bool = True
    ) -> None:
        """Put a failed message back after `delay`, or park it as failed for good.

        An attempt that was `counted=False` (a dependency was down) is given back.
        """
        now = time.time()
        self._run(
            "UPDATE inbox SET state = ?, available_at = ?, finished_at = ?, outcome = ?,"
            " attempts = attempts - ?, claim_token = NULL"
            " WHERE message_id = ? AND claim_token = ?",
            (
                "failed" if park else "pending",
                now + delay,
                now if park else None,
                json.dumps({"error": error}),
                0 if counted else 1,
                claim.message_id,
                claim.token,
            ),
        )

    def status(self, message_id: str) -> Status | None:
        rows = self._rows(
            "SELECT message_id, state, attempts, outcome, received_at FROM inbox"
            " WHERE message_id = ?",
            (storable(message_id),),
        )
        return _status(rows[0]) if rows else None

    def parked(self, limit: int = 100) -> list[Status]:
        """Messages that failed every attempt, oldest first."""
        rows = self._rows(
            "SELECT message_id, state, attempts, outcome, received_at FROM inbox"
            " WHERE state = 'failed' ORDER BY received_at LIMIT ?",
            (limit,),
        )
        return [_status(row) for row in rows]

    def replay(self, message_id: str) -> bool:
        """Put a parked message back in line with fresh attempts; False if it is not parked.

        Replies already confirmed stay recorded, so they are not sent again. It is
        the oldest message of its conversation again, so it is handled before the
        conversation's messages still waiting.
        """
        changed = self._run(
            "UPDATE inbox SET state = 'pending', attempts = 0, available_at = ?,"
            " finished_at = NULL WHERE message_id = ? AND state = 'failed'",
            (time.time(), storable(message_id)),
        )
        return changed == 1

    def purge(self, older_than: float) -> int:
        """Forget finished messages (and so their dedupe keys) older than a cut-off.

        Expired state goes too.
        """
        self._run(
            "DELETE FROM state WHERE expires_at IS NOT NULL AND expires_at < ?", (time.time(),)
        )
        return self._run(
            "DELETE FROM inbox WHERE state IN ('done', 'failed') AND finished_at < ?",
            (older_than,),
        )

    def durability_problem(self) -> str | None:
        return None  # every acknowledged write is synced to disk first (synchronous FULL)

    def ping(self) -> None:
        with self._storage():
            self._db().execute("SELECT 1 FROM inbox LIMIT 1")
            self._check_still_there()

    def checkpoint(self) -> None:
        """Copy the WAL back into the database, beside the writers, never in their way."""
        with self._storage():
            self._connection(durable=False).execute("PRAGMA wal_checkpoint(PASSIVE)")

    def probe_write(self) -> None:
        """One row rewritten: the write lock taken, the journal written, the disk not full."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = ?",
                (time.time(), time.time()),
            )
        self._check_still_there()

    def counts(self) -> dict[str, int]:
        found = dict(
            self._rows("SELECT state, COUNT(*) FROM inbox WHERE state != 'done' GROUP BY state")
        )
        return {
            "pending": found.get("pending", 0),
            "working": found.get("working", 0),
            "parked": found.get("failed", 0),
        }


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _status(row: tuple[Any, ...]) -> Status:
    message_id, state, attempts, outcome, received_at = row
    return Status(
        message_id, state, attempts, json.loads(outcome) if outcome else None, received_at
    )
