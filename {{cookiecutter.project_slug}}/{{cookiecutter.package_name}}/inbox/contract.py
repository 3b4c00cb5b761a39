"""What every inbox promises, and the retry policy they share.

An inbox is where an accepted delivery waits until the bot has handled it. A
delivery is stored (and deduplicated on `message.id`) *before* the webhook
answers 2xx, because Spectrum treats a 2xx as final. A runner (threads in each
web process with SQLite, RQ workers with Redis) then hands each message to
`handling.py`, records what it did, retries failures with backoff, and parks a
message that fails every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class InboxUnavailable(Exception):
    """The store cannot take a delivery right now; Spectrum should retry (503)."""


class HandlingError(Exception):
    """A failure the handling code phrased itself (a send that was not confirmed).

    Recorded as its message alone, without a type name or a traceback, unlike an
    exception raised by the bot.
    """


@dataclass(frozen=True)
class Status:
    message_id: str
    state: str  # pending, working, done or failed (parked)
    attempts: int
    outcome: dict[str, Any] | None
    received_at: float | None = None


class Inbox(Protocol):
    """What the webhook and the CLI need from a store."""

    def accept(
        self,
        message_id: str,
        payload: str,
        webhook_id: str | None = None,
        conversation: str | None = None,
    ) -> bool:
        """Store a delivery before it is acknowledged; False if its message id was seen.

        Messages with the same `conversation` are handled one at a time, in the
        order they were accepted (unless the inbox was opened unordered).
        """
        ...

    def status(self, message_id: str) -> Status | None: ...
    def parked(self, limit: int = 100) -> list[Status]: ...
    def replay(self, message_id: str) -> bool: ...
    def purge(self, older_than: float) -> int: ...
    def ping(self) -> None: ...


def backoff_seconds(attempt: int) -> float:
    """How long a message waits before its next try, after `attempt` failed ones."""
    return min(2.0**attempt, 300.0)


def describe(exc: BaseException) -> str:
    """The error as recorded on the message."""
    return str(exc) if isinstance(exc, HandlingError) else f"{type(exc).__name__}: {exc}"
