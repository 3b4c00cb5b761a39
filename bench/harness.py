"""A baked bot under real gunicorn, driven over HTTP, with what it did read back.

Shared by the benchmarks and the template's tests (one way to bake, one way to
serve). Everything is real and local: the baked project (its bot.py replaced
where a test needs another bot, e.g. a slow one, as a user's bot calling an API
would be), gunicorn, the inbox, the Node reply bridge with only the platform
call replaced (its test mode writes each send to a file), and the project's own
stand-in Spectrum cloud on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_cookies.plugin import Cookies

TEMPLATE = Path(__file__).resolve().parent.parent
SECRET = "b" * 64

SLOW_BOT = '''"""A bot that takes its time, like one that calls a slow API (BOT_SLEEP seconds)."""

import os
import time

from .botkit import Bot
from .events import Message, Text

bot = Bot()


@bot.on(Text)
def echo(message: Message, content: Text) -> str:
    time.sleep(float(os.environ.get("BOT_SLEEP", "1")))
    return f"You said: {content.text}"
'''


COUNTING_BOT = '''"""Counts each conversation's messages in its state, then takes its time.

A kill during the sleep lands after the count, before the handler returns. The
handler shows "typing..." (past SPECTRUM_TYPING_AFTER) and reacts as well as
answers, so every kind of hand-over is in the crash's way.
"""

import os
import time

from .botkit import Bot, Context
from .events import Text
from .replies import React

bot = Bot()


@bot.on(Text)
def count(ctx: Context, text: Text) -> list[str | React]:
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    time.sleep(float(os.environ.get("BOT_SLEEP", "1")))
    return [str(ctx.state["n"]), React("👍")]
'''


def bake(into: Path, **context: str) -> Path:
    """Bake the template with these answers (the rest default), as the template tests do."""
    config = into / "cookiecutter-config.yaml"
    config.write_text(f"cookiecutters_dir: {into}/cookiecutters\nreplay_dir: {into}/replay\n")
    made = Cookies(str(TEMPLATE), lambda name: into / name, config).bake(extra_context=context)
    if made.exception is not None:
        raise RuntimeError(f"the bake failed: {made.exception!r}")
    return made.project_path


def use_bot(project: Path, source: str) -> None:
    """Replace the project's bot.py, as a user writing their own bot does."""
    (project / "my_spectrum_bot" / "bot.py").write_text(source)


def install_bridge(project: Path) -> None:
    """`npm ci` in the project's bridge/, as `make bridge` does."""
    done = subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=project / "bridge",
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"npm ci failed:\n{done.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        folder = tempfile.mkdtemp(prefix="redis-")
        self.process = subprocess.Popen(
            # Persisting as production should: append-only, in a folder of its own.
            ["redis-server", "--port", str(self.port), "--appendonly", "yes", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Served:
    """gunicorn (2 workers) running the baked app; can be killed (-9) and started again.

    With `bridge`, replies go through the Node bridge in test mode, against the
    project's stand-in cloud; without, they are logged (dry run). With `redis`,
    the app uses the Redis inbox and `rq_workers` processes of `flask spectrum
    worker` run the bot; without, gunicorn's own threads do. `env` overrides.
    """

    def __init__(
        self, project: Path, work: Path, *, bridge: bool = False, redis: bool = False, **env: str
    ) -> None:
        self.project = project
        self.port = free_port()
        self.inbox = work / "inbox.sqlite3"
        self.sends = work / "sends.jsonl"
        self.log_path = work / "gunicorn.log"
        self.env = {
            "PATH": f"{Path(shutil.which('node') or 'node').parent}:/usr/bin:/bin",
            "PORT": str(self.port),
            "SPECTRUM_SIGNING_SECRET": SECRET,
            "SPECTRUM_INBOX_PATH": str(self.inbox),
            "SPECTRUM_INSTANCE_DIR": str(work / "instance"),
            "WEB_CONCURRENCY": "2",
            "REDIS_URL": "",
        }
        self.cloud: Any = None
        if bridge:
            sys.path.insert(0, str(project / "tests"))
            from fake_spectrum import PROJECT_ID, PROJECT_SECRET, FakeSpectrum

            sys.path.pop(0)
            self.cloud = FakeSpectrum()
            self.env |= {
                "SPECTRUM_PROJECT_ID": PROJECT_ID,
                "SPECTRUM_PROJECT_SECRET": PROJECT_SECRET,
                "SPECTRUM_CLOUD_URL": self.cloud.url,
                "SPECTRUM_BRIDGE_TEST_SENDS": str(self.sends),
            }
        self.env |= env
        self.process: subprocess.Popen[bytes] | None = None
        self.redis = RedisServer() if redis else None
        self.rq_workers: list[subprocess.Popen[bytes]] = []
        if self.redis:
            self.env["REDIS_URL"] = self.redis.url
            sys.path.insert(0, str(project))
            from my_spectrum_bot.inbox.redis_store import RedisInbox

            sys.path.pop(0)
            self.redis_inbox = RedisInbox(self.redis.url)

    def start_rq_workers(self, count: int, wait: bool = True, maintenance: int = 1) -> None:
        """Start `count` RQ workers and wait until each has its bridge up and listens."""
        from rq import Worker

        command = ["flask", "--app", "my_spectrum_bot", "spectrum", "worker"]
        command += ["--maintenance-interval", str(maintenance)]  # quick crash recovery
        started = {self._spawn(*command) for _ in range(count)}
        self.rq_workers.extend(started)
        # Each new process registers itself; counting would be fooled by the
        # registrations of killed workers, which the new ones prune.
        waiting = {process.pid for process in started}
        connection = self.redis_inbox.connection
        deadline = time.monotonic() + 120
        while wait and waiting - {w.pid for w in Worker.all(connection=connection)}:
            if time.monotonic() > deadline:
                raise RuntimeError("the RQ workers did not start:\n" + self.log()[-3000:])
            time.sleep(0.2)

    def kill_rq_worker(self) -> int:
        """kill -9 one RQ worker and start another, as a supervisor would."""
        victim = self.rq_workers.pop(0)
        victim.kill()
        victim.wait()
        self.start_rq_workers(1, wait=False)
        return victim.pid

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """`python -m <args>` in the project, logging to the shared log, in its own group."""
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=self.project,
            env=self.env,
            stdout=self.log_path.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self) -> None:
        """Start gunicorn and wait until it answers /healthz with both workers up."""
        self.process = self._spawn(
            "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200 and len(self.workers()) == 2:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not come up:\n" + self.log())
            time.sleep(0.1)

    def workers(self) -> list[int]:
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill_worker(self) -> int:
        victim = self.workers()[0]
        os.kill(victim, signal.SIGKILL)
        return victim

    def kill_everything(self) -> None:
        """kill -9 the master and its workers at once, as a crashed machine would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def kill_rq_workers(self) -> None:
        for worker in self.rq_workers:
            worker.kill()
            worker.wait()
        self.rq_workers = []

    def stop_rq_workers(self) -> None:
        for worker in self.rq_workers:
            worker.send_signal(signal.SIGTERM)  # RQ's warm shutdown: finish the job in hand
        for worker in self.rq_workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        for worker in self.rq_workers:
            if worker.poll() is None:
                worker.kill()
        if self.redis:
            self.redis.close()
        if self.cloud is not None:
            self.cloud.close()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 10) -> str:
        """The log once `text` is in it; fails (with the log's end) after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} never logged:\n{self.log()[-4000:]}"
            time.sleep(0.05)
        return self.log()

    def request(
        self,
        method: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        path: str = "/spectrum-webhook",
        chunked: bool = False,
    ) -> tuple[int, Any]:
        """One request to the app: (status, JSON answer)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        if chunked:
            conn.putrequest(method, path)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    # -- what happened -------------------------------------------------------

    def states(self, message_ids: set[str]) -> dict[str, str]:
        if self.redis:
            found = {m: self.redis_inbox.status(m) for m in message_ids}
            return {m: status.state for m, status in found.items() if status}
        with sqlite3.connect(self.inbox, timeout=10) as db:
            return dict(db.execute("SELECT message_id, state FROM inbox"))

    def taken_over(self, message_ids: set[str]) -> int:
        """Messages that needed more than one attempt (their worker died or gave them back)."""
        if self.redis:
            found = [self.redis_inbox.status(m) for m in message_ids]
            return sum(1 for status in found if status and status.attempts > 1)
        with sqlite3.connect(self.inbox, timeout=10) as db:
            return db.execute("SELECT count(*) FROM inbox WHERE attempts > 1").fetchone()[0]

    def sends_made(self) -> list[dict[str, Any]]:
        """What the bridge handed to the platform, in order (its test mode's record)."""
        if not self.sends.exists():
            return []
        made = []
        for line in self.sends.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line cut short by a kill
                made.append(json.loads(line))
        return made

    def sent_keys(self) -> Counter[str]:
        return Counter(send["key"] for send in self.sends_made() if "key" in send)

    def wait_until_drained(self, accepted: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.states(accepted)
            if all(states.get(m) == "done" for m in accepted):
                return
            time.sleep(0.2)


def delivery(message_id: str, text: str, space_id: str = "any;-;+15550100") -> bytes:
    space = {"id": space_id, "platform": "iMessage", "type": "dm", "phone": "+15551234567"}
    message = {
        "id": message_id,
        "platform": "iMessage",
        "direction": "inbound",
        "timestamp": "2026-05-14T19:06:32.000Z",
        "sender": {"id": "+15550100", "platform": "iMessage"},
        "space": space,
        "content": {"type": "text", "text": text},
    }
    body = {"event": "messages", "space": space, "message": message}
    # Compact, non-ASCII kept raw: the bytes Spectrum's sender writes.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signed(body: bytes) -> dict[str, str]:
    import hashlib
    import hmac

    timestamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Spectrum-Timestamp": timestamp,
        "X-Spectrum-Signature": f"v0={digest.hexdigest()}",
        "X-Spectrum-Webhook-Id": "60d6d04f-f9fa-4a7b-9c97-37c9c90ce91c",
    }


@dataclass
class Load:
    """Open-loop load: deliveries sent on a fixed schedule, whatever the answers take."""

    port: int
    path: str = "/spectrum-webhook"
    senders: int = 16
    conversations: int = 1  # messages go to this many conversations (spaces), by id
    results: list[tuple[str, int, float]] = field(default_factory=list)  # id, status, seconds

    def space_of(self, message_id: str) -> str:
        """The conversation a message id belongs to: always the same one for an id."""
        if self.conversations == 1:
            return "any;-;+15550100"
        return f"any;-;+1555{zlib.crc32(message_id.encode()) % self.conversations:07d}"

    def run(self, plan: list[str], rate: float) -> float:
        """POST each message id of `plan` (repeats are duplicates) at `rate` per second."""
        lock = threading.Lock()
        start = time.monotonic() + 0.2
        slots = iter(enumerate(plan))

        def sender() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            while True:
                with lock:
                    item = next(slots, None)
                if item is None:
                    return
                n, message_id = item
                due = start + n / rate
                time.sleep(max(0.0, due - time.monotonic()))
                body = delivery(message_id, f"hello {message_id}", self.space_of(message_id))
                began = time.monotonic()
                try:
                    conn.request("POST", self.path, body=body, headers=signed(body))
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    status = 0  # refused, reset or cut: the worker we killed held this connection
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                with lock:
                    self.results.append((message_id, status, time.monotonic() - began))

        threads = [threading.Thread(target=sender) for _ in range(self.senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


class ServedAsConfigured(Served):
    """`Served`, but gunicorn runs with the project's gunicorn.conf.py untouched.

    `Served.start` silences gunicorn's access log (tests and the fault benchmark
    do not want a line per request); the generated gunicorn.conf.py writes one to
    stdout, which a deployment keeps, so a throughput benchmark keeps it too (it
    goes to the shared log with everything else).
    """

    def start(self) -> None:
        self.process = self._spawn("gunicorn", "-c", "gunicorn.conf.py")
        wait_until_healthy(self, workers=int(self.env.get("WEB_CONCURRENCY", "2")))


def wait_until_healthy(served: Served, workers: int, timeout: float = 30) -> None:
    """Wait until `served` answers /healthz with 200 and has `workers` worker processes."""
    assert served.process is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200 and len(served.workers()) == workers:
                return
        except OSError:
            pass
        if served.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not come up:\n" + served.log())
        time.sleep(0.1)


def bake_revision(into: Path, rev: str, **context: str) -> Path:
    """`bake`, but from the template as committed at `rev` (e.g. "HEAD"), not the work tree.

    For a benchmark of committed code while the work tree is being edited.
    """
    template = into / "template"
    template.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev], cwd=TEMPLATE, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(template)], input=archive, check=True)
    config = into / "cookiecutter-config.yaml"
    config.write_text(f"cookiecutters_dir: {into}/cookiecutters\nreplay_dir: {into}/replay\n")
    made = Cookies(str(template), lambda name: into / name, config).bake(extra_context=context)
    if made.exception is not None:
        raise RuntimeError(f"the bake of {rev} failed: {made.exception!r}")
    return made.project_path


def start_gunicorn(served: Served, workers: int) -> None:
    """`Served.start` with `workers` gunicorn workers (WEB_CONCURRENCY) instead of 2."""
    served.env["WEB_CONCURRENCY"] = str(workers)
    served.process = served._spawn(
        "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null"
    )
    wait_until_healthy(served, workers=workers)


class Nginx:
    """Debian's nginx, unprivileged and in the foreground, serving the project's deploy/nginx.conf.

    The project's file is used as written, with gunicorn's address for
    ${APP_UPSTREAM} (as compose.yaml's nginx image fills it in) and a free port
    for `listen 80`. Everything nginx writes stays in a temporary prefix.
    """

    def __init__(self, project: Path, upstream_port: int) -> None:
        binary = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
        self.port = free_port()
        # nginx's workers run as nobody when started by root: they must reach the prefix.
        self.prefix = Path(tempfile.mkdtemp(prefix="spectrum-nginx-"))
        self.prefix.chmod(0o755)
        server = (project / "deploy" / "nginx.conf").read_text()
        server = server.replace("${APP_UPSTREAM}", f"127.0.0.1:{upstream_port}")
        server = server.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        (self.prefix / "server.conf").write_text(server)
        # What the nginx image's own nginx.conf sets around conf.d/ (workers, connections,
        # mime.types: which decides an answer's Content-Type by the path's extension).
        (self.prefix / "nginx.conf").write_text(
            "daemon off;\n"
            "worker_processes auto;\n"
            f"pid {self.prefix}/nginx.pid;\n"
            f"error_log {self.prefix}/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    access_log off;\n"
            + "".join(
                f"    {kind}_temp_path {self.prefix}/{kind}_temp;\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"    include {self.prefix}/server.conf;\n"
            "}\n"
        )
        self.process = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.prefix / "stderr.log").open("w"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start:\n" + self.log())
            time.sleep(0.05)

    def log(self) -> str:
        return "".join(
            path.read_text()
            for path in (self.prefix / "stderr.log", self.prefix / "error.log")
            if path.exists()
        )

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # nginx's fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)


class SlowClients:
    """`count` connections that start a webhook request and never finish it.

    "half-open": the request line and Host, then silence. "drip": the same, then
    one more header line on each connection every `interval` seconds. A
    connection the server closes is opened again at once, so `count` are open
    throughout, as a determined attacker would keep them. "body": complete,
    well-formed headers (a current timestamp, a signature of the right shape)
    announcing a 64 KiB body, then one byte of it every `interval` seconds: what
    a proxy that forwards headers but streams bodies would let through.
    """

    START = b"POST /spectrum-webhook HTTP/1.1\r\nHost: x\r\n"

    def __init__(self, port: int, count: int, mode: str = "half-open", interval: float = 2.0):
        self.port, self.mode, self.interval = port, mode, interval
        self.sockets: list[socket.socket | None] = [None] * count
        self.reopened = 0
        self.stopping = threading.Event()
        for i in range(count):
            self.sockets[i] = self._open()
        self.thread = threading.Thread(target=self._keep_up, daemon=True)
        self.thread.start()

    def _open(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(self.START)
            if self.mode == "body":
                sock.sendall(
                    b"Content-Type: application/json\r\nContent-Length: 65536\r\n"
                    b"X-Spectrum-Timestamp: %d\r\nX-Spectrum-Signature: v0=%s\r\n\r\n{"
                    % (time.time(), b"0" * 64)
                )
            sock.setblocking(False)
            return sock
        except OSError:
            return None

    def _closed(self, sock: socket.socket) -> bool:
        try:
            return sock.recv(4096) == b""  # EOF; data (a 408 answer) means it is closing too
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _keep_up(self) -> None:
        n = 0
        while not self.stopping.wait(min(self.interval, 0.5)):
            n += 1
            drip = self.mode != "half-open" and n % max(1, round(self.interval / 0.5)) == 0
            for i, sock in enumerate(self.sockets):
                if sock is not None and drip:
                    with contextlib.suppress(OSError):
                        sock.send(b" " if self.mode == "body" else b"X-Drip-%d: %d\r\n" % (n, i))
                if sock is None or self._closed(sock):
                    if sock is not None:
                        sock.close()
                    self.sockets[i] = self._open()
                    self.reopened += 1

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        for sock in self.sockets:
            if sock is not None:
                sock.close()


def timed_deliveries(
    port: int, count: int, rate: float, timeout: float = 10.0, senders: int = 16
) -> list[tuple[int, float]]:
    """`count` signed deliveries at `rate` per second, each on a new connection.

    Returns (status, seconds) for each; status 0 is a timeout or a cut connection.
    """
    results: list[tuple[int, float]] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.1
    slots = iter(range(count))
    run_id = os.urandom(4).hex()

    def sender() -> None:
        while True:
            with lock:
                n = next(slots, None)
            if n is None:
                return
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            body = delivery(f"slow-{run_id}-{n}", f"hello {n}", f"any;-;+1555{n % 50:07d}")
            began = time.monotonic()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                conn.request("POST", "/spectrum-webhook", body=body, headers=signed(body))
                response = conn.getresponse()
                response.read()
                conn.close()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
            with lock:
                results.append((status, time.monotonic() - began))

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
