"""The Python end of the reply bridge (`bridge/bridge.mjs`).

`Bridge` sends requests to the Node process and matches the answers back: one
JSON object per line, each request with an id, each answer carrying it, any
number in flight at once, each with a timeout. The process itself, started on
the first request (building the SDK's app talks to the cloud, so never once per
reply) and replaced when it dies or hangs, is `node_process.py`'s.

`bridge_sender` builds the sender from the settings, or says why it cannot.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import SIGNING_SECRET_ENV, Settings
from .events import Space
from .node_process import (
    BridgeError,
    BridgeRefused,
    BridgeUnavailable,
    NodeProcess,
    Supervisor,
)

__all__ = [
    "Bridge",
    "BridgeError",
    "BridgeRefused",
    "BridgeSender",
    "BridgeUnavailable",
    "bridge_sender",
]

log = logging.getLogger(__name__)

# LOG_LEVEL for the SDK, which has its own names. At INFO it prints multi-line
# object dumps for start and stop, which node_process.py already logs in one line each.
NODE_LOG_LEVELS = {"DEBUG": "debug", "INFO": "warn", "WARNING": "warn", "ERROR": "error"}


@dataclass
class _Pending:
    proc: NodeProcess
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None
    error: str | None = None


class Bridge:
    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        start_timeout: float = 30.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.timeout = timeout
        self.process = Supervisor(
            command,
            cwd=cwd,
            env=env,
            on_line=self._answered,
            on_exit=self._exited,
            start_timeout=start_timeout,
            max_backoff=max_backoff,
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards _pending
        self._pending: dict[int, _Pending] = {}

    @property
    def command(self) -> list[str]:
        return self.process.command

    @property
    def env(self) -> dict[str, str] | None:
        return self.process.env

    @property
    def pid(self) -> int | None:
        """The running Node process's pid, if one runs."""
        current = self.process.current
        return current.pid if current is not None else None

    def request(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its answer; raise BridgeError unless it is ok."""
        timeout = timeout or self.timeout
        proc = self.process.running(deadline=time.monotonic() + timeout)
        request_id = next(self._ids)
        pending = _Pending(proc)
        with self._lock:
            if proc.exited:
                raise BridgeUnavailable("the bridge exited before the request was sent")
            self._pending[request_id] = pending
        try:
            proc.write({"id": request_id, "op": op, **fields})
        except BridgeError:
            self._forget(request_id)
            raise

        sent_at = time.monotonic()
        if not pending.done.wait(timeout):
            self._forget(request_id)
            # A slow send while other answers keep coming is the platform's business;
            # a process that has said nothing at all since this request went out is stuck.
            if proc.last_heard < sent_at and not proc.exited:
                self.process.kill(proc, f"silent for {timeout:g}s")
            raise BridgeUnavailable(f"no answer from the bridge within {timeout:g}s")
        if pending.error is not None:
            raise BridgeUnavailable(pending.error)
        assert pending.answer is not None
        if not pending.answer.get("ok"):
            error = str(pending.answer.get("error") or "the bridge refused the request")
            if pending.answer.get("retry"):  # the platform throttled us or is down: wait
                raise BridgeUnavailable(error)
            if pending.answer.get("permanent"):  # the platform cannot do it at all
                raise BridgeRefused(error)
            raise BridgeError(error)
        result = pending.answer.get("result")
        return result if isinstance(result, dict) else {}

    def _forget(self, request_id: int) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def _answered(self, proc: NodeProcess, answer: dict[str, Any]) -> None:
        with self._lock:
            pending = self._pending.pop(answer.get("id"), None)  # type: ignore[arg-type]
        if answer.get("ok"):
            self.process.succeeded()
        if pending is None:
            log.debug("late answer ignored", extra={"request": answer.get("id")})
            return
        pending.answer = answer
        pending.done.set()

    def _exited(self, proc: NodeProcess, code: int) -> None:
        """Fail at once whatever the process held: nothing waits for a dead process."""
        with self._lock:
            orphans = {i: p for i, p in self._pending.items() if p.proc is proc}
            for request_id in orphans:
                del self._pending[request_id]
        if orphans:
            log.warning(
                "bridge exited, failing its requests",
                extra={"pid": proc.pid, "requests": len(orphans)},
            )
        for pending in orphans.values():
            pending.error = f"the bridge exited (code {code}) before answering"
            pending.done.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the process (see `NodeProcess.close`). Idempotent."""
        self.process.close(timeout)


class BridgeSender:
    """Sends through the bridge; the receipt is what the SDK reported."""

    mode = "bridge"

    def __init__(
        self, bridge: Bridge, incoming: Path | None = None, fetch_timeout: float = 60.0
    ) -> None:
        self.bridge = bridge
        # Where the bridge leaves fetched attachments for us: this user's only.
        self.incoming = incoming or Path(tempfile.mkdtemp(prefix="spectrum-incoming-"))
        self.fetch_timeout = fetch_timeout

    def send(self, space: Space, content: dict[str, Any], key: str) -> dict[str, Any]:
        result = self.bridge.request("send", key=key, space=_where(space), content=content)
        return {"mode": self.mode, **result}

    def typing(self, space: Space, on: bool) -> None:
        self.bridge.request("typing", space=_where(space), on=on)

    def fetch(self, space: Space, attachment_id: str, max_bytes: int) -> bytes:
        """The attachment's bytes, which Node writes to a private file rather than the pipe.

        A file keeps the JSON-lines channel small whatever the size (bench/attachments.py
        compares it with base64 in the answer itself).
        """
        self.incoming.mkdir(mode=0o700, parents=True, exist_ok=True)
        result = self.bridge.request(
            "attachment",
            timeout=self.fetch_timeout,
            space=_where(space),
            attachment=attachment_id,  # not "id": that is the request's own
            max_bytes=max_bytes,
            dir=str(self.incoming),
        )
        path = Path(result["path"])
        try:
            return path.read_bytes()
        finally:
            path.unlink(missing_ok=True)

    def warm_up(self) -> None:
        self.bridge.request("ping")  # starts the process, and so the SDK, if need be

    def close(self) -> None:
        self.bridge.close()


def _where(space: Space) -> dict[str, Any]:
    return {"id": space.id, "platform": space.platform, "phone": space.phone}


# What Node and the SDK read from the environment: the SDK's own SPECTRUM_*
# variables (provider fields such as SPECTRUM_TELEGRAM_BOT_TOKEN, SPECTRUM_CLOUD_URL,
# the bridge's test mode), gRPC's and Node's, proxies, certificates, locale.
_NODE_PREFIXES = ("SPECTRUM_", "NODE_", "GRPC_", "LC_")
_NODE_NAMES = {"PATH", "HOME", "TMPDIR", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"}
_PROXIES = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}
# The app's own secrets, whatever their prefix.
_APP_ONLY = {SIGNING_SECRET_ENV, "SPECTRUM_SIGNING_SECRET", "SPECTRUM_METRICS_TOKEN"}


def node_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of our environment the bridge needs: never the webhook signing secret,
    REDIS_URL or anything else the app holds that Node has no use for."""
    return {
        name: value
        for name, value in environ.items()
        if name not in _APP_ONLY
        and (name in _NODE_NAMES or name.startswith(_NODE_PREFIXES) or name.lower() in _PROXIES)
    }


def bridge_sender(settings: Settings) -> tuple[BridgeSender | None, str]:
    """The bridge's sender when it can run here; else None, with the reason, for the log."""
    bridge_dir = settings.bridge_dir
    if not (bridge_dir / "bridge.mjs").is_file():
        return None, f"no reply bridge in this project ({bridge_dir}/bridge.mjs)"
    if not settings.has_project_credentials:
        return None, "SPECTRUM_PROJECT_ID and SPECTRUM_PROJECT_SECRET are not set"
    node = shutil.which(settings.node)
    if node is None:
        return None, f"{settings.node!r} is not on PATH: install Node 22"
    if not (bridge_dir / "node_modules" / "spectrum-ts").is_dir():
        return None, "the bridge is not installed: run `make bridge`"
    env = {
        **node_environment(os.environ),
        "SPECTRUM_PROJECT_ID": settings.project_id,
        "SPECTRUM_PROJECT_SECRET": settings.project_secret,
        "SPECTRUM_PROVIDERS": settings.providers,
        "LOG_LEVEL": NODE_LOG_LEVELS.get(settings.log_level, "warn"),
        # Shared by every bridge on this machine: a reply one of them sent is not
        # sent again by another (see the journal in bridge.mjs).
        "SPECTRUM_BRIDGE_JOURNAL_DIR": str(settings.sent_journal_dir),
    }
    bridge = Bridge(
        [node, str(bridge_dir / "bridge.mjs")],
        cwd=bridge_dir,
        env=env,
        timeout=settings.reply_timeout,
    )
    sender = BridgeSender(bridge, settings.instance_dir / "incoming")
    return sender, f"through the spectrum-ts bridge ({settings.providers})"
