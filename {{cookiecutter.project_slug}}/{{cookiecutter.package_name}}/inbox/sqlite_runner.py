"""The SQLite inbox's runner: bot threads inside each web process.

Each thread claims a message, has `handling.py` run the bot and send its
replies, and marks it done (or schedules a retry, or parks it). They run inside
each gunicorn worker process, so the webhook can answer Spectrum as soon as a
delivery is stored: the threads are woken at once by the webhook in the same
process, and poll now and then for messages accepted by other processes or left
behind by a crashed one. A heartbeat renews the lease of every message in hand.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from ..botkit import Bot
from ..config import Settings
from ..handling import StoredReplies, Tools, handle_message
from ..metrics import HANDLED, HANDLING_SECONDS
from ..replies import Files
from ..sending import Sender
from ..state import Changes, Entry
from .contract import (
    DependencyDown,
    HandlingError,
    InboxUnavailable,
    Unsendable,
    backoff_seconds,
    describe,
)
from .sqlite_store import Claim, SQLiteInbox

log = logging.getLogger(__name__)

# The bot threads start this far apart. A worker that starts in the middle of a
# flood (gunicorn replacing a killed one) has a backlog waiting: 128 threads
# claiming it in the same instant held the other worker's deliveries up for
# 10 to 40 ms. Spread out (128 threads over 1.3 s), the median ack p99 of
# bench/inbox_load.py with a worker killed went from 11.6 to 9.0 ms (14 runs each).
START_INTERVAL = 0.01


class LeaseLost(Exception):
    """Another thread took the message over (this one was too slow): drop it."""


class ClaimRecorder:
    """Handling's progress, recorded on the claimed row (see handling.Recorder)."""

    def __init__(self, inbox: SQLiteInbox, claim: Claim, lease_seconds: float) -> None:
        self.inbox, self.claim, self.lease_seconds = inbox, claim, lease_seconds

    def save(self, replies: StoredReplies, changes: Changes | None) -> None:
        if not self.inbox.save_progress(self.claim, replies, self.lease_seconds, changes):
            raise LeaseLost

    def read_state(self, scope: str, name: str) -> Entry | None:
        return self.inbox.read_state(scope, name)

    def schedule(self, message_id: str, payload: str, at: float) -> bool:
        return self.inbox.accept(message_id, payload, not_before=at)


class BotThreads:
    def __init__(
        self,
        inbox: SQLiteInbox,
        bot: Bot,
        sender: Sender,
        *,
        threads: int = 4,
        max_attempts: int = 5,
        retention_seconds: float = 3 * 24 * 3600,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        tools: Tools | None = None,
    ) -> None:
        self.inbox = inbox
        # Files beside the inbox unless told: tests give a bot and a sender only.
        files = Files(inbox.path.parent / "files")
        self.tools = tools or Tools(bot, sender, files, typing_after=0)
        self.threads = threads
        self.max_attempts = max_attempts
        self.retention_seconds = retention_seconds
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._next_purge = 0.0
        self._held: dict[str, Claim] = {}  # claims in hand, kept alive by the heartbeat
        self._held_lock = threading.Lock()
        self.trouble: str | None = None  # the last error that stopped a thread's round

    @classmethod
    def from_settings(cls, settings: Settings, inbox: SQLiteInbox, bot: Bot) -> BotThreads:
        """Threads running `bot`, sending through what the settings allow (the reason, logged)."""
        tools = Tools.from_settings(settings, bot)
        return cls(
            inbox,
            bot,
            tools.sender,
            threads=settings.worker_threads,
            max_attempts=settings.max_attempts,
            lease_seconds=settings.lease_seconds,
            retention_seconds=settings.retention_seconds,
            tools=tools,
        )

    @property
    def sender(self) -> Sender:
        return self.tools.sender

    def process_one(self) -> bool:
        """Handle the next ready message, if any. Returns False when there was none."""
        claim = self.inbox.claim(self.lease_seconds)
        if claim is None:
            return False
        with self._held_lock:
            self._held[claim.message_id] = claim
        started = time.perf_counter()
        try:
            outcome = self._handle(claim)
        except LeaseLost:
            log.warning("lease lost: another thread has it", extra={"message_id": claim.message_id})
        except Exception as exc:  # the user's bot may raise anything
            self._failed(claim, exc)
        else:
            self.inbox.done(claim, outcome)
            HANDLED.labels("done").inc()
        finally:
            HANDLING_SECONDS.observe(time.perf_counter() - started)
            with self._held_lock:
                self._held.pop(claim.message_id, None)
        return True

    def _handle(self, claim: Claim) -> dict[str, object]:
        record = ClaimRecorder(self.inbox, claim, self.lease_seconds)
        return handle_message(claim.payload, claim.replies, self.tools, record, claim.attempts)

    def _failed(self, claim: Claim, exc: Exception) -> None:
        fields: dict[str, object] = {"message_id": claim.message_id, "attempt": claim.attempts}
        if isinstance(exc, DependencyDown):
            fields |= {"in_s": round(exc.delay), "error": describe(exc), "counted": False}
            log.warning("waiting", extra=fields)
            HANDLED.labels("waiting").inc()
            self.inbox.retry(claim, describe(exc), delay=exc.delay, park=False, counted=False)
            return
        park = claim.attempts >= self.max_attempts or isinstance(exc, Unsendable)
        delay = backoff_seconds(claim.attempts)
        error = describe(exc)
        if park:
            log.error("parked", extra=fields | {"error": error})
        else:
            # The bot's own errors get their traceback; a refused reply's reason says it all.
            trace = None if isinstance(exc, HandlingError) else exc
            log.warning(
                "retrying", extra=fields | {"in_s": round(delay), "error": error}, exc_info=trace
            )
        HANDLED.labels("parked" if park else "retried").inc()
        self.inbox.retry(claim, error, delay=delay, park=park)

    # -- threads ---------------------------------------------------------------

    def wake(self) -> None:
        with self._wake:
            self._wake.notify()

    def start(self) -> None:
        """Start the threads once per process (safe to call on every request)."""
        with self._start_lock:
            if self._threads:
                return
            self._stopping.clear()
            for n in range(self.threads):
                delay = n * START_INTERVAL
                thread = threading.Thread(
                    target=self._run, args=(delay,), name=f"spectrum-bot-{n}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            for name, target in (("heartbeat", self._heartbeat), ("checkpoint", self._checkpoint)):
                helper = threading.Thread(target=target, name=f"spectrum-{name}", daemon=True)
                helper.start()
                self._threads.append(helper)
            started = {"pid": os.getpid(), "threads": self.threads, "replies": self.sender.mode}
            if self.tools.sender_reason:
                started["why"] = self.tools.sender_reason
            log.info("bot threads started", extra=started)

    def stop(self, timeout: float = 10.0) -> None:
        """Let each thread finish the message it holds, give back the rest, stop the sender.

        A message still in hand at the deadline goes back to the inbox unfinished,
        for another thread to take at once instead of after its lease.
        """
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        with self._held_lock:
            unfinished, self._held = list(self._held.values()), {}
        for claim in unfinished:
            log.warning("released unfinished at shutdown", extra={"message_id": claim.message_id})
            self.inbox.release(claim)
        self.tools.sender.close()

    def _heartbeat(self) -> None:
        # Renew the lease of every message in hand well before it runs out, so a slow
        # bot keeps its message while a crashed process's messages come back quickly.
        while not self._stopping.wait(self.lease_seconds / 3):
            with self._held_lock:
                held = list(self._held.values())
            for claim in held:
                try:
                    self.inbox.renew(claim, self.lease_seconds)
                except InboxUnavailable as exc:
                    log.warning("could not renew a lease", extra={"error": str(exc)})

    def _checkpoint(self) -> None:
        # The inbox's WAL is copied back here, off the webhook's path (see _db).
        while not self._stopping.wait(1.0):
            try:
                self.inbox.checkpoint()
            except InboxUnavailable as exc:
                log.warning("could not checkpoint the inbox", extra={"error": str(exc)})

    def _run(self, delay: float) -> None:
        if self._stopping.wait(delay):  # see START_INTERVAL
            return
        # Nothing may end this loop but stop(): a thread that died would leave its
        # share of the inbox unhandled, with the app still answering 202.
        while not self._stopping.is_set():
            try:
                self._purge_now_and_then()
                busy = self.process_one()
                self.trouble = None
            except InboxUnavailable as exc:
                log.warning("inbox unavailable, will retry", extra={"error": str(exc)})
                self.trouble, busy = str(exc), False
            except Exception as exc:
                log.exception("bot thread error, carrying on")
                self.trouble, busy = f"{type(exc).__name__}: {exc}", False
            if not busy:
                with self._wake:
                    self._wake.wait(self.poll_seconds)

    def health(self) -> dict[str, object]:
        """For /readyz: are the threads all running, and can they reach the inbox?"""
        running = sum(t.is_alive() for t in self._threads if t.name.startswith("spectrum-bot"))
        return {
            "ok": self.trouble is None and (running == self.threads or not self._threads),
            "threads": f"{running}/{self.threads}" if self._threads else "not started",
            **({"error": self.trouble} if self.trouble else {}),
        }

    def _purge_now_and_then(self) -> None:
        now = time.time()
        if now >= self._next_purge:
            self._next_purge = now + 3600
            self.inbox.purge(older_than=now - self.retention_seconds)
            self.tools.files.purge(older_than=now - self.retention_seconds)
