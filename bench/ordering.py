"""Ordering benchmark: out-of-order handling and its cost, ordered vs. SPECTRUM_ORDER=none.

    .venv/bin/python bench/ordering.py [--inbox sqlite|redis] [--rev HEAD]

Bakes the default project (or --inbox redis), replaces its bot with one shaped
like the echo bot that sleeps a random 0-200 ms per message (the same duration
for a message in both runs: seeded by its id) and appends, per message, its id,
conversation, sequence number, attempt and handler start and end times to the
file named by BENCH_HANDLED. Serves it under gunicorn (2 workers, the Node
bridge in test mode; SQLite: --threads bot threads per worker, 4 as by
default; Redis: --rq-workers `flask spectrum worker` processes, 8 by default,
the same 8 handlers at once) and sends --conversations x --messages signed deliveries: one
sender thread per conversation, all at once, each sending its conversation's
messages in order, each after the previous one got its 2xx (so the acceptance
order is known). When every message has been handled it counts, per
conversation, the messages handled out of order (started before an earlier
message of the conversation had ended; of those, how many started before an
earlier one started) and the total time (first send to last handler end).

It does this twice in one invocation, with ordering (the default) and with
SPECTRUM_ORDER=none, each on a fresh server and inbox, and prints both and the
ratio. The bot is baked from the work tree, or with --rev from a commit.
Targets (issue 10): ordered, zero out of order; ordered total at most
1.5x the unordered total. The unordered run is expected to handle messages out
of order. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness import Served, bake, bake_revision, delivery, install_bridge, signed, use_bot

ORDER_BOT = '''"""Echoes after a random 0-200 ms (seeded by the message id); records when it ran."""

import json
import os
import random
import time

from .botkit import Bot, Context
from .events import Text

bot = Bot()


@bot.on(Text)
def echo(ctx: Context, text: Text) -> str:
    started = time.time()
    time.sleep(random.Random(ctx.message.id).uniform(0, 0.2))
    ended = time.time()
    record = {
        "id": ctx.message.id,
        "conversation": ctx.space.id,
        "seq": int(text.text),
        "attempt": ctx.attempt,
        "start": started,
        "end": ended,
    }
    with open(os.environ["BENCH_HANDLED"], "a") as handled:
        handled.write(json.dumps(record) + "\\n")
    return f"You said: {text.text}"
'''


@dataclass
class Outcome:
    label: str
    messages: int
    handled: int  # distinct messages with a record
    extra_runs: int  # handler runs beyond one per message (retries)
    refused: int  # deliveries that never got a 2xx
    accepted_in: float  # first send to last 2xx
    total: float  # first send to last handler end
    out_of_order: int  # started before an earlier message of its conversation ended
    overtook: int  # started before an earlier message of its conversation started
    conversations_hit: int  # conversations with at least one out-of-order message
    sleep_sum: float  # handler time, all messages


def space_of(conversation: int) -> str:
    return f"any;-;+1555{conversation:07d}"


def send_all(port: int, conversations: int, messages: int) -> tuple[float, float, int]:
    """Each conversation's messages in order, one sender per conversation, all at once.

    Returns (first send, last 2xx) as time.time(), and how many never got a 2xx.
    """
    lock = threading.Lock()
    refused = 0
    last_ok = 0.0
    go = threading.Event()

    def post(body: bytes) -> int:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/spectrum-webhook", body=body, headers=signed(body))
            response = conn.getresponse()
            response.read()
            conn.close()
            return response.status
        except (OSError, http.client.HTTPException):
            return 0

    def sender(conversation: int) -> None:
        nonlocal refused, last_ok
        go.wait()
        for seq in range(messages):
            body = delivery(f"ord-{conversation}-{seq}", str(seq), space_of(conversation))
            for attempt in range(5):  # as Spectrum retries what got no 2xx
                if 200 <= post(body) < 300:
                    with lock:
                        last_ok = max(last_ok, time.time())
                    break
                time.sleep(0.1 * (attempt + 1))
            else:
                with lock:
                    refused += 1

    threads = [threading.Thread(target=sender, args=(c,)) for c in range(conversations)]
    for thread in threads:
        thread.start()
    first_send = time.time()
    go.set()
    for thread in threads:
        thread.join()
    return first_send, last_ok, refused


def read_handled(path: Path) -> list[dict]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a line being written
            runs.append(json.loads(line))
    return runs


def measure(label: str, project: Path, args: argparse.Namespace, **env: str) -> tuple[Outcome, str]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        handled_path = work / "handled.jsonl"
        redis = args.inbox == "redis"
        served = Served(
            project,
            work,
            bridge=True,
            redis=redis,
            LOG_LEVEL="WARNING",
            BENCH_HANDLED=str(handled_path),
            SPECTRUM_WORKER_THREADS=str(args.threads),
            **env,
        )
        try:
            served.start()
            if redis:
                served.start_rq_workers(args.rq_workers)
            count = args.conversations * args.messages
            first_send, last_ok, refused = send_all(served.port, args.conversations, args.messages)
            deadline = time.monotonic() + 0.2 * count + 60
            while True:
                runs = read_handled(handled_path)
                if len({r["id"] for r in runs}) >= count - refused or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # a retry of something already recorded would show up now
            runs = read_handled(handled_path)
            log_tail = served.log()[-2000:]
        finally:
            served.close()

    # Per message: its first start, its last end (a retried message ran more than once).
    first: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: r["start"]):
        seen = first.setdefault(run["id"], dict(run))
        seen["end"] = max(seen["end"], run["end"])
    by_conversation: dict[str, list[dict]] = {}
    for run in first.values():
        by_conversation.setdefault(run["conversation"], []).append(run)
    out_of_order = overtook = hit = 0
    for handled in by_conversation.values():
        handled.sort(key=lambda r: r["seq"])  # the order they were sent and accepted
        latest_end = latest_start = float("-inf")
        bad = 0
        for run in handled:
            if run["start"] < latest_end:
                bad += 1
                overtook += run["start"] < latest_start
            latest_end = max(latest_end, run["end"])
            latest_start = max(latest_start, run["start"])
        out_of_order += bad
        hit += bad > 0
    total = max((r["end"] for r in first.values()), default=first_send) - first_send
    outcome = Outcome(
        label=label,
        messages=args.conversations * args.messages,
        handled=len(first),
        extra_runs=len(runs) - len(first),
        refused=refused,
        accepted_in=last_ok - first_send,
        total=total,
        out_of_order=out_of_order,
        overtook=overtook,
        conversations_hit=hit,
        sleep_sum=sum(r["end"] - r["start"] for r in runs),
    )
    return outcome, log_tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20, help="per conversation")
    parser.add_argument("--threads", type=int, default=4, help="SQLite: bot threads per worker")
    parser.add_argument("--rq-workers", type=int, default=8, help="Redis: RQ worker processes")
    parser.add_argument("--rev", help="bake the template as committed at REV (e.g. HEAD)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.rev:
            project = bake_revision(Path(tmp), args.rev, inbox=args.inbox)
        else:
            project = bake(Path(tmp), inbox=args.inbox)
        use_bot(project, ORDER_BOT)
        install_bridge(project)
        ordered, ordered_log = measure("ordered", project, args)
        unordered, unordered_log = measure(
            "SPECTRUM_ORDER=none", project, args, SPECTRUM_ORDER="none"
        )

    slots = args.rq_workers if args.inbox == "redis" else 2 * args.threads
    handlers = (
        f"{args.rq_workers} RQ workers"
        if args.inbox == "redis"
        else f"2 gunicorn workers x {args.threads} bot threads"
    )
    print(
        f"inbox            : {args.inbox} ({handlers}); {args.conversations} conversations "
        f"x {args.messages} messages, bot sleeps 0-200 ms"
    )
    for o in (ordered, unordered):
        print(
            f"{o.label:<20}: total {o.total:5.2f} s (all accepted in {o.accepted_in:.2f} s, "
            f"handler time {o.sleep_sum:.1f} s, {o.sleep_sum / slots:.1f} s on {slots}); "
            f"out of order {o.out_of_order} "
            f"in {o.conversations_hit} conversations ({o.overtook} overtook an earlier one); "
            f"handled {o.handled}/{o.messages}, {o.extra_runs} extra runs, {o.refused} refused"
        )
    ratio = ordered.total / unordered.total if unordered.total else float("inf")
    print(f"ratio            : ordered / unordered total = {ratio:.2f}")
    complete = all(o.handled == o.messages and not o.refused for o in (ordered, unordered))
    if not complete:
        for o, tail in ((ordered, ordered_log), (unordered, unordered_log)):
            if o.handled < o.messages:
                print(f"--- {o.label}: the log's end ---\n{tail}")
    met = complete and ordered.out_of_order == 0 and ratio <= 1.5
    print(
        "targets (ordered: 0 out of order, total <= 1.5x unordered; every message handled): "
        + ("met" if met else "MISSED")
    )
    if unordered.out_of_order == 0:
        print(
            "note: the unordered run handled nothing out of order; the load did not test ordering"
        )
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
