"""The Node process behind the reply bridge, and what keeps one running.

`NodeProcess` is one run of `bridge/bridge.mjs`: started in its own session,
ready once it says so on its first line, its stderr pumped into our log, every
later line on stdout handed to a callback, stopped by closing its stdin.
`Supervisor` hands out the running process, starting one when there is none,
with a growing pause after quick failures, and kills one that stopped answering.
What travels over the pipe is `bridge.py`'s business, not theirs.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from .metrics import BRIDGE_RESTARTS
from .sending import SenderUnavailable, SendRefused

log = logging.getLogger(__name__)
# What Node itself writes (the SDK's own log lines among it), under the bridge's name.
node_log = logging.getLogger(f"{__package__}.bridge.node")


class BridgeError(Exception):
    """A request the bridge did not confirm: failed, timed out, or the process died."""


class BridgeRefused(BridgeError, SendRefused):
    """The bridge says the platform cannot do this (edit on WhatsApp ...): never retried."""


class BridgeUnavailable(BridgeError, SenderUnavailable):
    """The bridge cannot take requests now (not started, restarting, hung, gone).

    Not the message's fault: it waits for the bridge, its attempts untouched.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NodeProcess:
    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path | None,
        env: Mapping[str, str] | None,
        on_line: Callable[[NodeProcess, dict[str, Any]], None],
        on_exit: Callable[[NodeProcess, int], None],
    ) -> None:
        self.command = list(command)
        self._on_line = on_line
        self._on_exit = on_exit
        self._ready = threading.Event()
        self._fatal: str | None = None
        self._write_lock = threading.Lock()
        self.exited = False
        self.last_heard = time.monotonic()
        try:
            self.popen = subprocess.Popen(
                self.command,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Ctrl-C in a terminal reaches the whole process group; the bridge
                # must stay up until the app has finished with it.
                start_new_session=True,
            )
        except OSError as exc:
            command = " ".join(self.command)
            raise BridgeUnavailable(f"cannot start the bridge ({command}): {exc}") from exc
        assert self.popen.stdout is not None and self.popen.stderr is not None
        threading.Thread(
            target=self._read_lines, args=(self.popen.stdout,), name="bridge-reader", daemon=True
        ).start()
        threading.Thread(
            target=self._read_logs, args=(self.popen.stderr,), name="bridge-stderr", daemon=True
        ).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, timeout: float) -> None:
        """Until its first line says it is ready; a BridgeError (and a dead process) if not."""
        if not self._ready.wait(timeout):
            self.kill()
            raise BridgeUnavailable(f"the bridge did not start within {timeout:g}s")
        if self._fatal is not None or self.exited:
            raise BridgeUnavailable(f"the bridge could not start: {self._fatal or 'it exited'}")

    def write(self, message: dict[str, Any]) -> None:
        # ASCII with escapes: a lone surrogate in a reply is valid JSON, not valid UTF-8.
        line = json.dumps(message) + "\n"
        try:
            with self._write_lock:
                assert self.popen.stdin is not None
                self.popen.stdin.write(line.encode())
                self.popen.stdin.flush()
        except (OSError, ValueError) as exc:  # broken or closed pipe: it is going away
            raise BridgeUnavailable(
                f"the bridge exited before the request was sent ({exc})"
            ) from exc

    def kill(self) -> None:
        self.exited = True  # take no new requests; the reader reports the exit
        self.popen.kill()

    def close(self, timeout: float) -> None:
        """End of input, then SIGTERM, then SIGKILL.

        On end of input bridge.mjs exits at once, abandoning sends still in flight:
        their messages go back to the inbox unconfirmed. (Runners stop their bot
        threads first, so normally nothing is in flight by then.)
        """
        popen = self.popen
        try:
            assert popen.stdin is not None
            popen.stdin.close()
        except OSError:
            pass
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(2)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        log.info("bridge stopped", extra={"pid": popen.pid, "code": popen.returncode})

    def _read_lines(self, stdout: IO[bytes]) -> None:
        for raw in stdout:
            self.last_heard = time.monotonic()
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
            if not isinstance(message, dict):
                log.warning(
                    "bridge wrote a line that is not an answer", extra={"line": repr(raw[:200])}
                )
            elif "ready" in message or "fatal" in message:
                self._fatal = message.get("fatal")
                self._ready.set()
            else:
                self._on_line(self, message)
        code = self.popen.wait()
        self.exited = True
        self._ready.set()
        self._on_exit(self, code)

    def _read_logs(self, stderr: IO[bytes]) -> None:
        for raw in stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                node_log.info(line)


class Supervisor:
    """Keeps one NodeProcess running: starts it on demand, backs off, replaces it."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path | None,
        env: Mapping[str, str] | None,
        on_line: Callable[[NodeProcess, dict[str, Any]], None],
        on_exit: Callable[[NodeProcess, int], None],
        start_timeout: float = 30.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.start_timeout = start_timeout
        self.max_backoff = max_backoff
        self._on_line = on_line
        self._on_exit = on_exit
        self._cond = threading.Condition()  # guards everything below
        self._proc: NodeProcess | None = None
        self._starting = False
        self._failures = 0
        self._not_before = 0.0
        self._closed = False

    @property
    def current(self) -> NodeProcess | None:
        with self._cond:
            return self._proc

    def running(self, deadline: float) -> NodeProcess:
        """The running process, started if need be; BridgeError if not by `deadline`."""
        with self._cond:
            while self._starting:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise BridgeUnavailable("the bridge is still starting")
            if self._closed:
                raise BridgeUnavailable("the bridge is shut down")
            if self._proc is not None and not self._proc.exited:
                return self._proc
            wait = self._not_before - time.monotonic()
            if wait > deadline - time.monotonic():
                raise BridgeUnavailable(
                    f"the bridge failed recently; next start in {wait:.1f}s", retry_after=wait
                )
            self._starting = True
        try:
            if wait > 0:
                time.sleep(wait)
            proc = self._start(deadline)
        except BridgeError:  # it could not start: the next try waits a while longer
            with self._cond:
                self._back_off()
                self._starting = False
                self._cond.notify_all()
            raise
        with self._cond:
            self._proc, self._starting = proc, False
            self._cond.notify_all()
        log.info("bridge started", extra={"pid": proc.pid})
        return proc

    def _start(self, deadline: float) -> NodeProcess:
        proc = NodeProcess(
            self.command, cwd=self.cwd, env=self.env, on_line=self._on_line, on_exit=self._exited
        )
        proc.wait_ready(max(deadline - time.monotonic(), self.start_timeout))
        return proc

    def succeeded(self) -> None:
        """A request went through: the next failure starts the backoff afresh."""
        with self._cond:
            self._failures = 0

    def kill(self, proc: NodeProcess, why: str) -> None:
        """Replace a process that stopped answering."""
        log.warning("bridge restarting", extra={"pid": proc.pid, "why": why})
        BRIDGE_RESTARTS.inc()
        with self._cond:
            if self._proc is proc:
                self._proc = None
        proc.kill()

    def _back_off(self) -> None:
        self._failures += 1
        delay = min(0.5 * 2 ** (self._failures - 1), self.max_backoff)
        self._not_before = time.monotonic() + delay

    def _exited(self, proc: NodeProcess, code: int) -> None:
        with self._cond:
            unexpected = self._proc is proc and not self._closed
            if self._proc is proc:
                self._proc = None
            if unexpected:
                self._back_off()
        if unexpected:  # the next request starts another
            log.warning("bridge exited", extra={"pid": proc.pid, "code": code})
            BRIDGE_RESTARTS.inc()
        self._on_exit(proc, code)

    def close(self, timeout: float) -> None:
        with self._cond:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is not None and not proc.exited:
            proc.close(timeout)
