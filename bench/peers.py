"""The baked bot against what a user could run instead, side by side, in one run.

    .venv/bin/python bench/peers.py [--seconds 8] [--only sync hono sqlite ...] [--rev HEAD]

One machine, one load generator (wrk: 2 threads, 16 connections, --seconds each
after a --warmup), the same signed deliveries (distinct, plus one in ten a repeat
of an earlier one; signed just before each server's run; spread over
--conversations spaces, since the bot handles one conversation's messages in
order), against:

- the plain Flask verifier a user would write by hand (bench/peers/plain_flask.py:
  verify, 200, nothing stored) under gunicorn sync -w 2 (first, and again last, to
  show the machine's drift during the run), and gthread -w 2 --threads 4;
- the seed recipe: Node + Hono, one process, node:crypto and timingSafeEqual
  (bench/peers/hono/, `npm ci` at run time);
- the baked bot with the SQLite inbox, served by its own gunicorn.conf.py (access
  log kept) with its default settings but 2 workers: INFO logs, the durable inbox,
  dedupe, the sample bot on every message, replies as dry-run log lines;
- the baked bot with the Redis inbox (a redis-server on 127.0.0.1) and
  --rq-workers `flask spectrum worker` processes running the bot.

The bots run the project's sample bot.py with one line put first in each handler,
appending `message_id<TAB>time.time()` to a file; with the inbox's own record of
when it accepted each message (SQLite: `received_at`; Redis: the job's
`created_at`, since `enqueued_at` is later for a job that waited on its
conversation's previous one) that gives arrival-to-handler latency. After the full-load phase,
each bot gets a fixed-rate phase (open loop, --rate per second for --rate-seconds,
the same one in ten repeats) for ack and arrival-to-handler latency.

Targets: the baked SQLite bot at least 0.8x the plain Flask verifier's (sync)
throughput at full load; arrival-to-handler p50 at most 5 ms at 200 deliveries/s.
Exits 1 if a target is missed or a row failed, 2 if a prerequisite (wrk, node,
npm, redis-server) is missing. The bots are baked from the work tree, or with
--rev from a commit. With --profile SECONDS, one more full-load phase runs
against the SQLite bot with py-spy (pip install py-spy) recording one gunicorn
worker, and where its request threads spend their time is printed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import http.client
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    SECRET,
    Load,
    ServedAsConfigured,
    bake,
    bake_revision,
    delivery,
    free_port,
    percentile,
    signed,
    use_bot,
)

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
TARGET_RATIO = 0.8  # baked SQLite bot / plain Flask verifier (sync), req/s at full load
TARGET_HANDLER_P50_MS = 5.0  # arrival-to-handler p50 at 200 deliveries/s
PLAIN_SYNC = "plain Flask, gunicorn sync -w 2"
HANDLER_LOG_ENV = "BENCH_HANDLER_LOG"
# The line put first in each handler of the bench bot: message id, TAB, time.time().
RECORD = (
    'with open(os.environ["%s"], "a") as _f:'
    " _f.write(f\"{getattr(%s, 'message', %s).id}\\t{time.time()}\\n\")\n"
)
WEBHOOK_PATH = "/spectrum-webhook"  # the template's default, used by every row
RQ_MAINTENANCE = 30  # `flask spectrum worker`'s default --maintenance-interval
PREREQUISITES = {
    "wrk": "apt-get install wrk",
    "node": "Node 20 or newer",
    "npm": "npm, with Node",
    "redis-server": "apt-get install redis-server",
}


# -- the deliveries -----------------------------------------------------------


def plan(ids: list[str], rng: random.Random) -> list[str]:
    """`ids` in order, but one slot in ten a repeat of a delivery planned before it."""
    planned: list[str] = []
    for n, message_id in enumerate(ids):
        planned.append(planned[rng.randrange(n)] if n and n % 10 == 0 else message_id)
    return planned


def spread_delivery(message_id: str, conversations: int) -> bytes:
    """`harness.delivery()`, in one of `conversations` spaces (conversations), by its id.

    The bot handles a conversation's messages one at a time, in order: a load all
    in one conversation (`conversations` 1, harness.delivery's own space) is the
    worst case, not a bot with many users.
    """
    body = delivery(message_id, f"hello {message_id}")
    if conversations == 1:
        return body
    data = json.loads(body)
    space = f"any;-;+1555{zlib.crc32(message_id.encode()) % conversations:07d}"
    data["space"]["id"] = data["message"]["space"]["id"] = space
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


class SpreadLoad(Load):
    """`harness.Load` (open loop, same schedule and senders), with `spread_delivery` bodies."""

    def __init__(self, port: int, conversations: int) -> None:
        super().__init__(port, path=WEBHOOK_PATH)
        self.conversations = conversations

    def run(self, plan: list[str], rate: float) -> float:
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
                time.sleep(max(0.0, start + n / rate - time.monotonic()))
                body = spread_delivery(message_id, self.conversations)
                began = time.monotonic()
                try:
                    conn.request("POST", self.path, body=body, headers=signed(body))
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except OSError:
                    status = 0
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                with lock:
                    self.results.append((message_id, status, time.monotonic() - began))

        # Daemons: on Ctrl-C they must not keep the process alive once the servers stop.
        threads = [threading.Thread(target=sender, daemon=True) for _ in range(self.senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - start


def write_deliveries(prefix: Path, tag: str, count: int, threads: int, conversations: int) -> None:
    """`count` signed deliveries for wrk, split into one file per wrk thread (PREFIX.n).

    Each thread has its own ids (`tag-thread-n`), and its repeats are of its own
    earlier ones, so a repeat always follows its first copy.
    """
    rng = random.Random(tag)
    for thread in range(threads):
        ids = plan([f"{tag}-{thread}-{n}" for n in range(math.ceil(count / threads))], rng)
        with open(f"{prefix}.{thread}", "w", encoding="utf-8") as out:
            for message_id in ids:
                body = spread_delivery(message_id, conversations)
                headers = signed(body)
                stamp, signature = headers["X-Spectrum-Timestamp"], headers["X-Spectrum-Signature"]
                out.write(f"{stamp}\t{signature}\t{body.decode()}\n")


@dataclass
class WrkResult:
    responses: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    sent: int
    wrapped: int
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.responses / self.seconds


def run_wrk(port: int, prefix: Path, args: argparse.Namespace, seconds: float) -> WrkResult:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s"]
    command += ["--timeout", "10s", "-s", str(PEERS / "deliveries.lua")]
    command += [f"http://127.0.0.1:{port}{WEBHOOK_PATH}", "--", str(prefix)]
    with spawned(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as wrk:
        out, err = wrk.communicate(timeout=seconds + 120)
    line = next((x for x in out.decode().splitlines() if x.startswith("PEERS ")), None)
    if wrk.returncode or line is None:
        raise RuntimeError(f"wrk failed ({wrk.returncode}):\n{out.decode()}\n{err.decode()}")
    found = json.loads(line[len("PEERS ") :])
    errors = sum(found[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return WrkResult(
        responses=found["responses"],
        seconds=found["duration_us"] / 1e6,
        p50_ms=found["p50_us"] / 1000,
        p99_ms=found["p99_us"] / 1000,
        non2xx=found["non2xx"],
        sent=found["sent"],
        wrapped=found["wrapped"],
        socket_errors=errors,
    )


# -- processes ----------------------------------------------------------------


@contextlib.contextmanager
def quiet(log: Path) -> Iterator[None]:
    """Send this process's stdout (fd 1, so its children's too) to `log` for a while."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with log.open("a") as out:
            os.dup2(out.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def spawned(command: list[str], **popen: object) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group, killed with its group on the way out."""
    process = subprocess.Popen(command, start_new_session=True, **popen)  # type: ignore[call-overload]
    try:
        yield process
    finally:
        kill_group(process)


def kill_group(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_healthy(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server on port {port} did not come up:\n{log.read_text()}")
        time.sleep(0.1)


class Peer:
    """A verifier to compare with: a command serving /spectrum-webhook and /healthz on PORT."""

    bot = False

    def __init__(self, name: str, command: list[str], cwd: Path, work: Path) -> None:
        self.name = name
        self.command = command
        self.cwd = cwd
        self.port = free_port()
        self.log = work / f"{name.split()[0].lower()}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORT": str(self.port),
            "SPECTRUM_SIGNING_SECRET": SECRET,
        }
        command = [c.replace("{port}", str(self.port)) for c in self.command]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_healthy(self.port, self.process, self.log)

    def close(self) -> None:
        if self.process is not None:
            kill_group(self.process)


def plain_flask(worker: str, work: Path, again: bool = False) -> Peer:
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", worker]
    name = PLAIN_SYNC + (" (again)" if again else "")
    if worker == "gthread":
        command += ["--threads", "4"]
        name = "plain Flask, gunicorn gthread -w 2 x4"
    # No control socket: gunicorn >= 25 puts one at a per-user path shared by every app.
    command += ["--no-control-socket", "-b", "127.0.0.1:{port}", "plain_flask:app"]
    return Peer(name, command, PEERS, work)


def hono(work: Path) -> Peer:
    done = subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=PEERS / "hono",
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"npm ci in bench/peers/hono failed:\n{done.stderr[-2000:]}")
    return Peer("Node + Hono, 1 process", ["node", "server.mjs"], PEERS / "hono", work)


# -- the baked bots -----------------------------------------------------------


def timed_bot(source: str) -> str:
    """The project's bot.py with one line first in each handler: message id and time to a file.

    Every route's handler gets the line (whichever the routing picks, its start is
    recorded); a handler is a function decorated by an attribute of the `Bot()`.
    Its first parameter is the message, or a context holding it as `.message`.
    """
    tree = ast.parse(source)
    bots = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", "") == "Bot"
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def routed(decorator: ast.expr) -> bool:
        found = decorator.func if isinstance(decorator, ast.Call) else decorator
        return isinstance(found, ast.Attribute) and getattr(found.value, "id", "") in bots

    handlers = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and node.args.args
        and any(routed(d) for d in node.decorator_list)
    ]
    if not handlers:
        raise RuntimeError("no handler found in bot.py (`@bot.<route>` functions): see timed_bot()")
    lines = source.splitlines(keepends=True)
    for handler in sorted(handlers, key=lambda h: h.lineno, reverse=True):
        first, message = handler.body[0], handler.args.args[0].arg
        indent = " " * first.col_offset
        lines.insert(first.lineno - 1, indent + RECORD % (HANDLER_LOG_ENV, message, message))
    docstring = ast.get_docstring(tree) is not None
    after = tree.body[0].end_lineno if docstring and tree.body[0].end_lineno else 0
    lines.insert(after, "import os\nimport time\n")
    return "".join(lines)


class BakedBot:
    """The baked project under its own gunicorn.conf.py, with the timed bot."""

    bot = True

    def __init__(self, inbox: str, work: Path, rq_workers: int, rev: str | None) -> None:
        self.inbox = inbox
        self.rev = rev
        self.work = work / f"bot-{inbox}"
        self.work.mkdir()
        self.rq_workers = rq_workers
        self.name = "baked bot, SQLite inbox" if inbox == "sqlite" else "baked bot, Redis inbox"
        if inbox == "redis":
            self.name += f" + {rq_workers} RQ"
        self.handler_log = self.work / "handlers.tsv"
        self.served: ServedAsConfigured | None = None

    def start(self) -> None:
        into = self.work / "bake"
        into.mkdir()
        with quiet(self.work / "bake.log"):  # the hook's "Created ... Next: ..." lines
            if self.rev:
                project = bake_revision(into, self.rev, inbox=self.inbox)
            else:
                project = bake(into, inbox=self.inbox)
        use_bot(project, timed_bot((project / "my_spectrum_bot" / "bot.py").read_text()))
        self.served = ServedAsConfigured(
            project,
            self.work,
            redis=self.inbox == "redis",
            **{HANDLER_LOG_ENV: str(self.handler_log)},
        )
        self.served.start()
        if self.inbox == "redis":
            self.served.start_rq_workers(self.rq_workers, maintenance=RQ_MAINTENANCE)

    @property
    def port(self) -> int:
        assert self.served is not None
        return self.served.port

    def arrivals(self, prefix: str) -> dict[str, float]:
        """When the inbox accepted each message whose id starts with `prefix`."""
        assert self.served is not None
        if self.inbox == "sqlite":
            with contextlib.closing(sqlite3.connect(self.served.inbox, timeout=10)) as db:
                rows = db.execute(
                    "SELECT message_id, received_at FROM inbox WHERE message_id LIKE ?",
                    (prefix + "%",),
                )
                return dict(rows)
        from rq.job import Job

        redis = self.served.redis_inbox.connection
        keys = list(redis.scan_iter(match="spectrum:seen:*", count=5000))
        values = redis.mget(keys) if keys else []
        jobs = {
            key.decode().removeprefix("spectrum:seen:"): value.decode()
            for key, value in zip(keys, values, strict=True)
            if value is not None and value.decode().startswith(prefix)
        }
        # The job's created_at: made in the accepting request. Its enqueued_at is when it
        # went into the queue, which for a message waiting on its conversation's previous
        # one (an RQ dependency) is only once that one is done.
        found: dict[str, float] = {}
        ids = list(jobs)
        for start in range(0, len(ids), 2000):
            for job in Job.fetch_many(ids[start : start + 2000], connection=redis):
                if job is not None:
                    found[jobs[job.id]] = job.created_at.timestamp()
        return found

    def handled(self) -> dict[str, float]:
        """When the bot's handler first started on each message."""
        first: dict[str, float] = {}
        if self.handler_log.exists():
            for line in self.handler_log.read_text().splitlines():
                message_id, _, at = line.partition("\t")
                with contextlib.suppress(ValueError):
                    first.setdefault(message_id, float(at))
        return first

    def wait_handled(self, prefix: str, timeout: float) -> Latency:
        """Wait until every message accepted under `prefix` reached the handler."""
        deadline = time.monotonic() + timeout
        while True:
            arrivals, handled = self.arrivals(prefix), self.handled()
            waiting = [m for m in arrivals if m not in handled]
            if not waiting or time.monotonic() > deadline:
                delays = [handled[m] - at for m, at in arrivals.items() if m in handled]
                return Latency(delays, accepted=len(arrivals), unhandled=len(waiting))
            time.sleep(0.5)

    def close(self) -> None:
        if self.served is None:
            return
        if self.served.rq_workers:
            self.served.stop_rq_workers()
        if self.served.process is not None:
            self.served.stop()
        for worker in self.served.rq_workers:  # RQ's scheduler is a child of its worker
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
        self.served.close()


@dataclass
class Latency:
    seconds: list[float]
    accepted: int
    unhandled: int

    def ms(self, q: float) -> float:
        return percentile(self.seconds, q) * 1000


@dataclass
class Row:
    name: str
    load: WrkResult | None = None
    handler: Latency | None = None  # arrival-to-handler at full load
    rate_acks: list[tuple[str, int, float]] = field(default_factory=list)
    rate_seconds: float = 0.0
    rate_handler: Latency | None = None
    notes: list[str] = field(default_factory=list)


# -- one row ------------------------------------------------------------------


def measure(server: Peer | BakedBot, args: argparse.Namespace, work: Path) -> Row:
    row = Row(server.name)
    print(f"  {server.name}: starting", flush=True)
    server.start()
    drain = args.drain_timeout
    # Warm up (imports, JIT, first connections) and learn the rate, to size the real run.
    warm = work / f"warm-{server.port}"
    write_deliveries(
        warm, f"warm{server.port}", 2000 * args.threads, args.threads, args.conversations
    )
    warmed = run_wrk(server.port, warm, args, args.warmup)
    if isinstance(server, BakedBot):
        server.wait_handled(f"warm{server.port}", drain)
    count = int(warmed.rate * args.seconds * 3) + 2000 * args.threads
    deliveries = work / f"load-{server.port}"
    tag = f"load{server.port}"
    write_deliveries(deliveries, tag, count, args.threads, args.conversations)  # signed now
    print(f"  {server.name}: full load for {args.seconds:g} s", flush=True)
    row.load = run_wrk(server.port, deliveries, args, args.seconds)
    if row.load.wrapped and isinstance(server, BakedBot):  # the others store nothing
        row.notes.append(f"wrk ran out of fresh deliveries {row.load.wrapped} times")
    if row.load.socket_errors:
        row.notes.append(f"{row.load.socket_errors} socket errors/timeouts in wrk")
    if not isinstance(server, BakedBot):
        return row

    row.handler = server.wait_handled(f"load{server.port}", drain)
    total = int(args.rate * args.rate_seconds)
    ids = plan([f"rate{server.port}-{n}" for n in range(total)], random.Random(5))
    print(f"  {server.name}: {args.rate:g}/s for {args.rate_seconds:g} s", flush=True)
    load = SpreadLoad(server.port, args.conversations)
    row.rate_seconds = load.run(ids, args.rate)
    row.rate_acks = load.results
    row.rate_handler = server.wait_handled(f"rate{server.port}", drain)
    for phase, latency in (("full load", row.handler), ("fixed rate", row.rate_handler)):
        if latency.unhandled:
            row.notes.append(f"{latency.unhandled} messages never reached the handler ({phase})")
    return row


def profile(bot: BakedBot, args: argparse.Namespace, work: Path, rate: float) -> list[str]:
    """py-spy (with native frames) on one gunicorn worker of the SQLite bot at full load."""
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if spy is None:
        return ["py-spy is not installed: .venv/bin/pip install py-spy"]
    assert bot.served is not None
    worker = bot.served.workers()[0]
    deliveries = work / "profile"
    count = int(rate * (args.profile + 2) * 2) + 2000 * args.threads
    write_deliveries(deliveries, "prof", count, args.threads, args.conversations)
    raw = work / "profile.raw"
    command = [spy, "record", "--pid", str(worker), "--duration", str(args.profile), "--native"]
    command += ["--rate", "200", "--format", "raw", "--threads", "--output", str(raw)]
    with spawned(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as recorder:
        time.sleep(1)  # py-spy attaches
        loaded = run_wrk(bot.port, deliveries, args, args.profile + 1)
        _, err = recorder.communicate(timeout=args.profile + 60)
    if not raw.exists():
        return [f"py-spy recorded nothing: {err.decode()[-500:]}"]
    if args.profile_raw:
        shutil.copy(raw, args.profile_raw)
    return summarize_profile(raw, loaded)


def summarize_profile(raw: Path, loaded: WrkResult) -> list[str]:
    """Where a request thread's time goes while it serves a request (wall clock).

    The samples of gthread's request threads inside `handle_request`, as a call
    tree: each line a call's share of them, a chain of calls that take (nearly)
    all of their caller's time shown as one line (first ... last). Native frames
    (SQLite, libc) come from py-spy --native.
    """
    tree = CallTree()
    requests = serving = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames[0].partition(": ")[2].startswith("ThreadPoolExecutor"):
            continue
        requests += int(count)
        inside = next((i for i, f in enumerate(frames) if "handle_request" in f), None)
        if inside is not None:
            serving += int(count)
            tree.add([short(f) for f in frames[inside + 1 :] if not f.startswith("0x")], int(count))
    lines = [
        f"{loaded.rate:,.0f} req/s while recorded; the request threads were in a request"
        f" in {serving / (requests or 1):.0%} of their samples; of that time:"
    ]
    tree.render(lines, total=serving or 1, floor=0.03)
    lines.append(
        "(pthread_cond_timedwait: waiting for the GIL; sqlite3BtreeBeginTrans ... nanosleep:"
        " SQLite's busy handler sleeping until another connection lets go of the write lock;"
        " fdatasync: the durable commit)"
    )
    return lines


class CallTree:
    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, CallTree] = {}

    def add(self, calls: list[str], count: int) -> None:
        node = self
        node.count += count
        for call in calls:
            node = node.children.setdefault(call, CallTree())
            node.count += count

    def render(self, lines: list[str], total: int, floor: float, indent: str = "") -> None:
        for name, child in sorted(self.children.items(), key=lambda c: -c[1].count):
            if child.count < floor * total or len(lines) > 30:
                return
            chain, node = [name], child
            while len(node.children) >= 1:
                inner, deeper = max(node.children.items(), key=lambda c: c[1].count)
                if deeper.count < 0.97 * node.count:
                    break
                chain.append(inner)
                node = deeper
            shown = chain[0] if len(chain) == 1 else f"{chain[0]} ... {chain[-1]}"
            lines.append(f"  {indent}{child.count / total:4.0%}  {shown}")
            node.render(lines, total, floor, indent + "  ")


def short(frame: str) -> str:
    """`func (path/to/module.py:12)` as `func (module.py)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.rstrip(')').rpartition(':')[0]).name})" if where else name


# -- the report ---------------------------------------------------------------


def report(rows: list[Row], args: argparse.Namespace) -> bool:
    print()
    print(
        f"Full load: wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s, signed"
        f" deliveries in {args.conversations:,} conversations, 1 in 10 a repeat"
    )
    head = f"{'':40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}"
    print(head + f"  {'arrival-to-handler p50 / p99 ms':>31}")
    for row in rows:
        assert row.load is not None
        load = row.load
        cells = f"{row.name:40} {load.rate:8,.0f} {load.p50_ms:8.1f} {load.p99_ms:8.1f}"
        cells += f" {load.non2xx:8,d}"
        if row.handler is not None:
            cells += f"  {row.handler.ms(50):14,.1f} / {row.handler.ms(99):,.1f}"
        print(cells)

    bots = [row for row in rows if row.rate_handler is not None]
    if bots:
        print()
        print(f"Fixed rate: {args.rate:g} deliveries/s for {args.rate_seconds:g} s, open loop")
        print(
            f"{'':40} {'sent/s':>8} {'ack p50':>8} {'ack p99':>8} {'non-2xx':>8}"
            f"  {'arrival-to-handler p50 / p99 ms':>31}"
        )
        for row in bots:
            assert row.rate_handler is not None
            acks = [s for _, status, s in row.rate_acks if 200 <= status < 300]
            bad = sum(1 for _, status, _ in row.rate_acks if not 200 <= status < 300)
            print(
                f"{row.name:40} {len(row.rate_acks) / row.rate_seconds:8,.0f}"
                f" {percentile(acks, 50) * 1000:8.1f} {percentile(acks, 99) * 1000:8.1f}"
                f" {bad:8,d}  {row.rate_handler.ms(50):14,.1f} / {row.rate_handler.ms(99):,.1f}"
            )
    for row in rows:
        for note in row.notes:
            print(f"note: {row.name}: {note}")

    rates = {row.name: row.load.rate for row in rows if row.load is not None}
    # Measured first and again last: the mean of the two, and the drift between them.
    plains = [r for name, r in rates.items() if name.startswith(PLAIN_SYNC)]
    plain = sum(plains) / len(plains) if plains else None
    node = rates.get("Node + Hono, 1 process")
    sqlite = next((r for name, r in rates.items() if name.startswith("baked bot, SQLite")), None)
    redis = next((r for name, r in rates.items() if name.startswith("baked bot, Redis")), None)
    print()
    if len(plains) == 2:
        print(
            f"Plain Flask (sync) ran first and last: {plains[1] / plains[0]:.2f}x as fast at the"
            " end (the machine's drift); ratios use the mean."
        )
    print("Ratios (req/s at full load, this run):")
    pairs = [
        ("baked SQLite bot / plain Flask (sync)", sqlite, plain),
        ("baked Redis bot / plain Flask (sync)", redis, plain),
        ("baked SQLite bot / Node + Hono", sqlite, node),
        ("baked Redis bot / Node + Hono", redis, node),
        ("plain Flask (sync) / Node + Hono", plain, node),
    ]
    for label, top, bottom in pairs:
        if top and bottom:
            print(f"  {label:40} {top / bottom:5.2f}x")

    met = True
    print("Targets:")
    if sqlite and plain:
        ok = sqlite / plain >= TARGET_RATIO
        met &= ok
        print(
            f"  baked SQLite bot >= {TARGET_RATIO}x plain Flask (sync) throughput:"
            f" {sqlite / plain:.2f}x, {'met' if ok else 'MISSED'}"
        )
    for row in bots:
        assert row.rate_handler is not None
        p50 = row.rate_handler.ms(50)
        ok = p50 <= TARGET_HANDLER_P50_MS and not row.rate_handler.unhandled
        met &= ok
        print(
            f"  {row.name}: arrival-to-handler p50 <= {TARGET_HANDLER_P50_MS:g} ms at"
            f" {args.rate:g}/s: {p50:.1f} ms, {'met' if ok else 'MISSED'}"
        )
    return met


def template_version(rev: str | None) -> str:
    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], cwd=HERE, capture_output=True, text=True)
        return done.stdout.strip()

    if rev:
        return f"template as committed at {rev} ({git('rev-parse', '--short', rev)})"
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"template {git('rev-parse', '--short', 'HEAD')}{dirty}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="full load, per server")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each")
    parser.add_argument("--rate", type=float, default=200, help="fixed-rate phase, per second")
    parser.add_argument("--rate-seconds", type=float, default=10)
    parser.add_argument(
        "--conversations", type=int, default=1000, help="spaces the deliveries are spread over"
    )
    parser.add_argument("--rq-workers", type=int, default=4, help="Redis: RQ worker processes")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds, per phase")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["sync", "gthread", "hono", "sqlite", "redis"],
        default=["sync", "gthread", "hono", "sqlite", "redis"],
    )
    parser.add_argument("--profile", type=int, default=0, help="py-spy seconds (SQLite bot)")
    parser.add_argument(
        "--profile-raw", type=Path, help="keep py-spy's collapsed stacks here (for a flamegraph)"
    )
    parser.add_argument(
        "--rev", help="bake the template as committed at REV (e.g. HEAD), not the work tree"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()

    missing = [f"{name} ({how})" for name, how in PREREQUISITES.items() if not shutil.which(name)]
    if missing:
        print(f"peers.py: missing prerequisite: {', '.join(missing)}", file=sys.stderr)
        sys.exit(2)
    # SIGTERM and SIGHUP unwind like Ctrl-C, so every server is stopped on the way out
    # (SIGINT too when started in the background, where it would be ignored).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    version = template_version(args.rev)
    print(f"peers.py: {version}, {os.cpu_count()} CPUs, load average {load} at start", flush=True)
    rows: list[Row] = []
    profiled: list[str] = []
    failed: list[str] = []
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        makers = {
            "sync": lambda: plain_flask("sync", work),
            "sync again": lambda: plain_flask("sync", work, again=True),
            "gthread": lambda: plain_flask("gthread", work),
            "hono": lambda: hono(work),
            "sqlite": lambda: BakedBot("sqlite", work, args.rq_workers, args.rev),
            "redis": lambda: BakedBot("redis", work, args.rq_workers, args.rev),
        }
        try:
            for key in ["sync", "gthread", "hono", "sqlite", "redis", "sync again"]:
                if key.split()[0] not in args.only or (key == "sync again" and len(args.only) == 1):
                    continue
                server = None
                try:
                    server = makers[key]()
                    rows.append(measure(server, args, work))
                    if key == "sqlite" and args.profile and isinstance(server, BakedBot):
                        print(f"  {server.name}: profiling for {args.profile:g} s", flush=True)
                        profiled = profile(server, args, work, rows[-1].load.rate)
                except Exception as exc:  # one broken row must not lose the others
                    failed.append(f"{key}: {type(exc).__name__}: {exc}")
                    print(f"  {key}: FAILED, {failed[-1][-3000:]}", file=sys.stderr, flush=True)
                finally:
                    if server is not None:
                        server.close()
        except KeyboardInterrupt:
            print("\npeers.py: interrupted; every server stopped", file=sys.stderr)
            sys.exit(130)
    met = report(rows, args)
    if profiled:
        print()
        print("Profile of one gunicorn worker of the baked SQLite bot at full load (py-spy):")
        print("\n".join(f"  {line}" for line in profiled))
    for failure in failed:
        print(f"FAILED {failure.splitlines()[0]}")
    sys.exit(0 if met and not failed else 1)


if __name__ == "__main__":
    main()
