"""Where the bot's replies go: the bridge, or the log.

Spectrum has no HTTP send API: replies leave through the spectrum-ts SDK, in the
Node process that `bridge.py` runs. When that cannot run (no credentials, no
Node, or a project generated without `bridge/`), each reply is written to the
log instead, as one structured line, so the whole loop still runs without an
account.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from typing import Any, Protocol

from .config import Settings
from .events import Space

log = logging.getLogger(__name__)


class SenderUnavailable(Exception):
    """The sender cannot send right now (restarting, throttled by the platform).

    Not the message's fault: it waits, its attempts untouched. `retry_after` is
    how long the sender expects that to last, if it knows.
    """

    retry_after: float | None = None


class Sender(Protocol):
    mode: str

    def send(self, space: Space, content: dict[str, Any], key: str) -> dict[str, Any]:
        """Put one reply on the wire; return a receipt to record, raise if unconfirmed.

        `key` is the same on every attempt at the same reply, so a sender can tell a
        retry from a new reply.
        """
        ...

    def warm_up(self) -> None:
        """Get ready to send (start what needs starting); raise if that fails."""
        ...

    def close(self) -> None: ...


class DryRunSender:
    """Log each reply with the space it was meant for."""

    mode = "dry-run"

    def send(self, space: Space, content: dict[str, Any], key: str) -> dict[str, Any]:
        what = {k: v for k, v in content.items() if k != "type"}
        log.info(
            "reply dry-run space_id=%s platform=%s %s",
            json.dumps(space.id),
            json.dumps(space.platform),
            " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in what.items()),
        )
        return {"mode": self.mode}

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass


def choose_sender(settings: Settings) -> tuple[Sender, str]:
    """The bridge when it can run here, else the dry run; with the reason, for the log."""
    if importlib.util.find_spec(f"{__package__}.bridge") is None:
        return DryRunSender(), f"no reply bridge in this project ({settings.bridge_dir}/bridge.mjs)"
    from .bridge import bridge_sender  # only projects with bridge/ have it

    sender, reason = bridge_sender(settings)
    return (sender if sender is not None else DryRunSender()), reason
