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


class Unsendable(HandlingError):
    """A reply the platform cannot take at all (an edit on WhatsApp): parked at once."""


class DependencyDown(HandlingError):
    """Something the message needs is down (the bridge, the platform): not its fault.

    Retried after `retry_after` seconds without using up one of its attempts, for
    as long as it takes: an outage must not park every message that came during it.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def delay(self) -> float:
        return min(max(self.retry_after or DEPENDENCY_RETRY_SECONDS, 1.0), 60.0)


# How soon a message waiting on a dependency is tried again, when it gives no hint.
DEPENDENCY_RETRY_SECONDS = 5.0


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
        not_before: float | None = None,
    ) -> bool:
        """Store a delivery before it is acknowledged; False if its message id was seen.

        Messages with the same `conversation` are handled one at a time, in the
        order they were accepted (unless the inbox was opened unordered). One
        `not_before` a time waits until then (a message the bot starts later).
        """
        ...

    def status(self, message_id: str) -> Status | None: ...
    def parked(self, limit: int = 100) -> list[Status]: ...
    def replay(self, message_id: str) -> bool: ...
    def purge(self, older_than: float) -> int: ...
    def ping(self) -> None: ...
    def probe_write(self) -> None:
        """A small write of nothing that matters: it fails when an accept would."""
        ...

    def counts(self) -> dict[str, int]:
        """Messages by state: pending (retries waiting included), working, parked."""
        ...

    def durability_problem(self) -> str | None:
        """Why a store could lose what it acknowledged (its configuration), if it could."""
        ...


def storable(text: str) -> str:
    """`text` as stores can keep it: a lone surrogate (valid in JSON, not in UTF-8) escaped.

    Message and space ids are opaque to us; one arriving as `"\\ud800"` is still an
    id, and refusing its delivery would lose it for good (a 4xx is final).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def backoff_seconds(attempt: int) -> float:
    """How long a message waits before its next try, after `attempt` failed ones."""
    return min(2.0**attempt, 300.0)


def describe(exc: BaseException) -> str:
    """The error as recorded on the message."""
    return str(exc) if isinstance(exc, HandlingError) else f"{type(exc).__name__}: {exc}"
