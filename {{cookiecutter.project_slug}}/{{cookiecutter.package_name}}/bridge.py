"""The Python end of the reply bridge (`bridge/bridge.mjs`).

One `Bridge` owns one Node process per app process: started on the first reply
(building the SDK's app talks to the cloud, so never once per reply), fed one JSON
request per line, answers matched back by id. A process that dies fails the
requests it held at once and is started again on the next request, with a
growing pause between quick failures. A process that stops answering is killed.
"""

from __future__ import annotations

import itertools
import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .events import Space

log = logging.getLogger(__name__)
node_log = logging.getLogger(f"{__name__}.node")


class BridgeError(Exception):
    """A request the bridge did not confirm: failed, timed out, or the process died."""


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class _Process:
    popen: subprocess.Popen[bytes]
    started: float
    ready: threading.Event = field(default_factory=threading.Event)
    fatal: str | None = None
    last_heard: float = 0.0
    pending: dict[int, _Pending] = field(default_factory=dict)
    exited: bool = False


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
        self.command = list(command)
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.max_backoff = max_backoff
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # guards _proc, _failures, _not_before, _closed
        self._start_lock = threading.Lock()  # one start at a time
        self._write_lock = threading.Lock()
        self._proc: _Process | None = None
        self._failures = 0
        self._not_before = 0.0
        self._closed = False

    # -- requests --------------------------------------------------------------

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its answer; raise BridgeError unless it is ok."""
        proc = self._running(deadline=time.monotonic() + self.timeout)
        request_id = next(self._ids)
        pending = _Pending()
        with self._lock:
            if proc.exited:
                raise BridgeError("the bridge exited before the request was sent")
            proc.pending[request_id] = pending
        line = json.dumps({"id": request_id, "op": op, **fields}, ensure_ascii=False) + "\n"
        try:
            with self._write_lock:
                assert proc.popen.stdin is not None
                proc.popen.stdin.write(line.encode())
                proc.popen.stdin.flush()
        except (OSError, ValueError) as exc:  # broken or closed pipe: it is going away
            self._forget(proc, request_id)
            raise BridgeError(f"the bridge exited before the request was sent ({exc})") from exc

        sent_at = time.monotonic()
        if not pending.done.wait(self.timeout):
            self._forget(proc, request_id)
            self._kill_if_hung(proc, sent_at)
            raise BridgeError(f"no answer from the bridge within {self.timeout:g}s")
        if pending.error is not None:
            raise BridgeError(pending.error)
        assert pending.answer is not None
        if not pending.answer.get("ok"):
            raise BridgeError(str(pending.answer.get("error") or "the bridge refused the request"))
        result = pending.answer.get("result")
        return result if isinstance(result, dict) else {}

    def _forget(self, proc: _Process, request_id: int) -> None:
        with self._lock:
            proc.pending.pop(request_id, None)

    def _kill_if_hung(self, proc: _Process, sent_at: float) -> None:
        # A slow send while other answers keep coming is the platform's business; a
        # process that has said nothing at all since this request went out is stuck.
        if proc.last_heard < sent_at and proc.popen.poll() is None:
            log.warning("bridge pid=%d silent for %gs, restarting it", proc.popen.pid, self.timeout)
            with self._lock:
                proc.exited = True  # no new requests for it; the reader fails what it holds
                if self._proc is proc:
                    self._proc = None
            proc.popen.kill()

    # -- the process -----------------------------------------------------------

    def _running(self, deadline: float) -> _Process:
        if not self._start_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise BridgeError("the bridge is still starting")
        try:
            with self._lock:
                if self._closed:
                    raise BridgeError("the bridge is shut down")
                proc = self._proc
                wait = self._not_before - time.monotonic()
            if proc is not None and not proc.exited:
                return proc
            if wait > deadline - time.monotonic():
                raise BridgeError(f"the bridge failed recently; next start in {wait:.1f}s")
            if wait > 0:
                time.sleep(wait)
            return self._start(deadline)
        finally:
            self._start_lock.release()

    def _start(self, deadline: float) -> _Process:
        try:
            popen = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Ctrl-C in a terminal reaches the whole process group; the bridge
                # must stay up until the app has finished with it.
                start_new_session=True,
            )
        except OSError as exc:
            self._back_off()
            raise BridgeError(f"cannot start the bridge ({' '.join(self.command)}): {exc}") from exc
        proc = _Process(popen, started=time.monotonic(), last_heard=time.monotonic())
        assert popen.stdout is not None and popen.stderr is not None
        threading.Thread(
            target=self._read_answers, args=(proc, popen.stdout), name="bridge-reader", daemon=True
        ).start()
        threading.Thread(
            target=self._read_logs, args=(popen.stderr,), name="bridge-stderr", daemon=True
        ).start()

        start_deadline = max(deadline, time.monotonic() + self.start_timeout)
        if not proc.ready.wait(max(0.0, start_deadline - time.monotonic())):
            popen.kill()
            self._back_off()
            raise BridgeError(f"the bridge did not start within {self.start_timeout:g}s")
        if proc.fatal is not None or proc.exited:
            self._back_off()
            raise BridgeError(f"the bridge could not start: {proc.fatal or 'it exited'}")
        with self._lock:
            self._proc = proc
        log.info("bridge started pid=%d", popen.pid)
        return proc

    def _back_off(self) -> None:
        with self._lock:
            self._failures += 1
            delay = min(0.5 * 2 ** (self._failures - 1), self.max_backoff)
            self._not_before = time.monotonic() + delay

    def _read_answers(self, proc: _Process, stdout: IO[bytes]) -> None:
        for raw in stdout:
            proc.last_heard = time.monotonic()
            try:
                message = json.loads(raw)
            except ValueError:
                message = None
            if not isinstance(message, dict):
                log.warning("bridge wrote a line that is not an answer: %r", raw[:200])
                continue
            if "ready" in message or "fatal" in message:
                proc.fatal = message.get("fatal")
                proc.ready.set()
                continue
            with self._lock:
                pending = proc.pending.pop(message.get("id"), None)  # type: ignore[arg-type]
                if message.get("ok"):
                    self._failures = 0
            if pending is None:
                log.debug("late answer ignored: %s", message.get("id"))
                continue
            pending.answer = message
            pending.done.set()
        self._exited(proc)

    def _exited(self, proc: _Process) -> None:
        code = proc.popen.wait()
        with self._lock:
            proc.exited = True
            orphans = list(proc.pending.values())
            proc.pending.clear()
            unexpected = self._proc is proc and not self._closed
            if self._proc is proc:
                self._proc = None
        proc.ready.set()
        if unexpected:
            log.warning(
                "bridge pid=%d exited with code %s, failing %d request(s)",
                proc.popen.pid,
                code,
                len(orphans),
            )
            self._back_off()
        for pending in orphans:
            pending.error = f"the bridge exited (code {code}) before answering"
            pending.done.set()

    def _read_logs(self, stderr: IO[bytes]) -> None:
        for raw in stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                node_log.info("%s", line)

    # -- shutdown --------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Let the process finish what it holds, then stop it. Idempotent."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is None or proc.exited:
            return
        popen = proc.popen
        try:
            assert popen.stdin is not None
            popen.stdin.close()  # end of input: the bridge finishes in-flight sends and exits
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
        log.info("bridge stopped pid=%d code=%s", popen.pid, popen.returncode)


class BridgeReplier:
    """Replies through the bridge; the receipt is what the SDK reported."""

    mode = "bridge"

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def send(self, space: Space, content: dict[str, Any], key: str) -> dict[str, Any]:
        result = self.bridge.request(
            "send",
            key=key,
            space={"id": space.id, "platform": space.platform, "phone": space.phone},
            content=content,
        )
        return {"mode": self.mode, **result}

    def warm_up(self) -> None:
        self.bridge.request("ping")  # starts the process, and so the SDK, if need be

    def close(self) -> None:
        self.bridge.close()
