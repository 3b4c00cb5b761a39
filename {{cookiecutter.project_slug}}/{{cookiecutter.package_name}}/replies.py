"""Where the bot's replies go.

Spectrum has no HTTP send API: replies leave through the spectrum-ts SDK. Until
reply credentials are configured, a reply is written to the log instead, as one
structured line, so the whole loop can be run and tested without an account.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from .events import Space

log = logging.getLogger(__name__)


class Replier(Protocol):
    def send(self, space: Space, text: str) -> dict[str, Any]:
        """Send one text to a space; return a receipt to record, raise on failure."""
        ...


class LogReplier:
    """Dry run: log each reply with the space it was meant for."""

    mode = "dry-run"

    def send(self, space: Space, text: str) -> dict[str, Any]:
        log.info(
            "reply dry-run space_id=%s platform=%s text=%s",
            json.dumps(space.id),
            json.dumps(space.platform),
            json.dumps(text, ensure_ascii=False),
        )
        return {"mode": self.mode}
