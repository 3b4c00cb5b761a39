"""Where the bot's replies go.

Spectrum has no HTTP send API: replies leave through the spectrum-ts SDK, in the
Node process run by `bridge.py`. When that cannot run (no credentials, no Node,
or a project generated without `bridge/`), each reply is written to the log
instead, as one structured line, so the whole loop still runs without an account.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any, Protocol

from .config import Settings
from .events import Space

log = logging.getLogger(__name__)

# LOG_LEVEL for the SDK, which has its own names. At INFO it prints multi-line
# object dumps for start and stop, which bridge.py already logs in one line each.
NODE_LOG_LEVELS = {"DEBUG": "debug", "INFO": "warn", "WARNING": "warn", "ERROR": "error"}


class Replier(Protocol):
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


class LogReplier:
    """Dry run: log each reply with the space it was meant for."""

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


def choose_replier(settings: Settings) -> tuple[Replier, str]:
    """The bridge when it can run here, else the dry run; with the reason, for the log."""
    bridge_dir = settings.bridge_dir
    if not (bridge_dir / "bridge.mjs").is_file():
        return LogReplier(), f"no reply bridge in this project ({bridge_dir}/bridge.mjs)"
    if not (settings.project_id and settings.project_secret):
        return LogReplier(), "SPECTRUM_PROJECT_ID and SPECTRUM_PROJECT_SECRET are not set"
    node = shutil.which(settings.node)
    if node is None:
        return LogReplier(), f"{settings.node!r} is not on PATH: install Node 22"
    if not (bridge_dir / "node_modules" / "spectrum-ts").is_dir():
        return LogReplier(), "the bridge is not installed: run `make bridge`"

    from .bridge import Bridge, BridgeReplier  # only projects with bridge/ have it

    env = {
        **os.environ,
        "SPECTRUM_PROJECT_ID": settings.project_id,
        "SPECTRUM_PROJECT_SECRET": settings.project_secret,
        "SPECTRUM_PROVIDERS": settings.providers,
        "LOG_LEVEL": NODE_LOG_LEVELS.get(settings.log_level, "warn"),
        # Shared by every bridge on this machine: a reply one of them sent is not
        # sent again by another (see the journal in bridge.mjs).
        "SPECTRUM_BRIDGE_JOURNAL_DIR": os.environ.get("SPECTRUM_BRIDGE_JOURNAL_DIR")
        or str(bridge_dir.parent / "instance"),
    }
    bridge = Bridge(
        [node, str(bridge_dir / "bridge.mjs")],
        cwd=bridge_dir,
        env=env,
        timeout=settings.reply_timeout,
    )
    return BridgeReplier(bridge), f"through the spectrum-ts bridge ({settings.providers})"
