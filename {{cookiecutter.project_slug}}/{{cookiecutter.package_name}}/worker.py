"""Background worker: claim a stored message, run the bot, send the replies, mark it done.

Runs as a few threads inside each gunicorn worker process, so the webhook can
answer Spectrum as soon as a delivery is stored. The threads are woken at once by
the webhook in the same process, and poll now and then for messages accepted by
other processes or left behind by a crashed one.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from .dispatch import Bot
from .events import parse_event
from .inbox import Claim, Inbox, InboxUnavailable
from .replies import Replier

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        inbox: Inbox,
        bot: Bot,
        replier: Replier,
        *,
        threads: int = 4,
        max_attempts: int = 5,
        retention_seconds: float = 3 * 24 * 3600,
        lease_seconds: float = 120.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self.inbox = inbox
        self.bot = bot
        self.replier = replier
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

    def process_one(self) -> bool:
        """Handle the next ready message, if any. Returns False when there was none."""
        claim = self.inbox.claim(self.lease_seconds)
        if claim is None:
            return False
        try:
            outcome = self._handle(claim)
        except Exception as exc:  # the user's bot may raise anything
            self._failed(claim, exc)
        else:
            self.inbox.done(claim, outcome)
        return True

    def _handle(self, claim: Claim) -> dict[str, object]:
        event = parse_event(json.loads(claim.payload))
        message = event.message
        assert message is not None  # the webhook only stores valid messages
        replies = self.bot.handle(message)
        receipts = [self.replier.send(message.space, text) for text in replies]
        log.info(
            "handled message_id=%s content=%s replies=%d",
            json.dumps(message.id),
            message.content.type,
            len(replies),
        )
        return {"replies": replies, "receipts": receipts}

    def _failed(self, claim: Claim, exc: Exception) -> None:
        park = claim.attempts >= self.max_attempts
        delay = min(2.0**claim.attempts, 300.0)
        error = f"{type(exc).__name__}: {exc}"
        if park:
            log.error(
                "parked message_id=%s attempts=%d error=%s",
                json.dumps(claim.message_id),
                claim.attempts,
                json.dumps(error),
            )
        else:
            log.warning(
                "retrying message_id=%s attempt=%d in=%.0fs error=%s",
                json.dumps(claim.message_id),
                claim.attempts,
                delay,
                json.dumps(error),
                exc_info=exc,
            )
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
                thread = threading.Thread(
                    target=self._run, name=f"spectrum-worker-{n}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Let each thread finish the message it holds, then return."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._purge_now_and_then()
                busy = self.process_one()
            except InboxUnavailable as exc:
                log.warning("inbox unavailable, will retry: %s", exc)
                busy = False
            if not busy:
                with self._wake:
                    self._wake.wait(self.poll_seconds)

    def _purge_now_and_then(self) -> None:
        now = time.time()
        if now >= self._next_purge:
            self._next_purge = now + 3600
            self.inbox.purge(older_than=now - self.retention_seconds)
