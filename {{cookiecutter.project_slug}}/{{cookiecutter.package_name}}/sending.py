"""Where the bot's replies go: what a sender is, and the one that only logs.

Spectrum has no HTTP send API: replies leave through the spectrum-ts SDK, in the
Node process that `bridge.py` runs. When that cannot run (no credentials, no
Node, or a project generated without `bridge/`), each reply is written to the
log instead, as one structured line, so the whole loop still runs without an
account. `handling.choose_sender` picks one.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from .events import Space

log = logging.getLogger(__name__)


class SenderUnavailable(Exception):
    """The sender cannot send right now (restarting, throttled by the platform).

    Not the message's fault: it waits, its attempts untouched. `retry_after` is
    how long the sender expects that to last, if it knows.
    """

    retry_after: float | None = None


class SendRefused(Exception):
    """The platform cannot do this at all (edit on WhatsApp ...): retrying will not help.

    The message is parked at once, with the reason.
    """


def warm_up(sender: Sender, wait: float | None = None) -> None:
    """Get the sender ready before the first message needs it, waiting at most `wait` s.

    Starting Node and the SDK takes about a second of CPU. Left to the first
    message, it came while deliveries were arriving and held their answers up to
    100 ms (bench/inbox_load.py). Past `wait` it goes on in the background, and a
    failure is only logged: each message tries again.
    """

    def run() -> None:
        try:
            sender.warm_up()
        except Exception as exc:  # whatever the sender raises, replies are "not yet"
            log.warning(
                "replies not ready yet, each message will try again", extra={"error": str(exc)}
            )

    thread = threading.Thread(target=run, name="spectrum-warm-up", daemon=True)
    thread.start()
    thread.join(wait)


class Sender(Protocol):
    mode: str

    def send(self, space: Space, content: dict[str, Any], key: str) -> dict[str, Any]:
        """Put one reply on the wire; return a receipt to record, raise if unconfirmed.

        `key` is the same on every attempt at the same reply, so a sender can tell a
        retry from a new reply.
        """
        ...

    def typing(self, space: Space, on: bool) -> None:
        """Show (or stop showing) "typing..." in the space; best effort."""
        ...

    def fetch(self, space: Space, attachment_id: str, max_bytes: int) -> bytes:
        """The bytes of an attachment or voice note the bot received."""
        ...

    def warm_up(self) -> None:
        """Get ready to send (start what needs starting); raise if that fails."""
        ...

    def close(self) -> None: ...


class DryRunSender:
    """Log each reply with the space it was meant for."""

    mode = "dry-run"

    def send(self, space: Space, content: dict[str, Any], key: str) -> dict[str, Any]:
        # The development view: the reply itself is the point (a real sender logs no text).
        what = {k: v for k, v in content.items() if k not in ("type", "path", "sha256")}
        log.info("reply dry-run", extra={"space_id": space.id, "platform": space.platform, **what})
        return {"mode": self.mode}

    def typing(self, space: Space, on: bool) -> None:
        log.debug("typing dry-run", extra={"space_id": space.id, "on": on})

    def fetch(self, space: Space, attachment_id: str, max_bytes: int) -> bytes:
        raise SendRefused(
            "reading an attachment goes through the reply bridge: set SPECTRUM_PROJECT_ID "
            "and SPECTRUM_PROJECT_SECRET and run `make bridge`"
        )

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass
