"""Load and fault benchmark: ack latency, lost and doubled messages with a worker killed.

    .venv/bin/python bench/inbox_load.py [--inbox sqlite|redis] [--rate 200] [--seconds 10]

Bakes the default project (SQLite inbox, Node reply bridge in test mode), makes
its bot sleep --bot-sleep seconds per message, serves it with gunicorn (2
workers) and sends signed deliveries at --rate per second for --seconds, one in
ten a repeat of an earlier message (Spectrum's at-least-once), spread over
--conversations spaces. With --inbox redis
the app only enqueues and --rq-workers `flask spectrum worker` processes run the
bot. Halfway through, one gunicorn worker is killed with SIGKILL (gunicorn starts
another), and with Redis one RQ worker too (and another started). Deliveries
that got no answer (the killed worker's connections) are sent again, as
Spectrum retries them. Then it waits for the inbox to drain and prints:
requests/s, ack latency p50/p99, messages lost (acknowledged but never
answered by the bot) and messages handled twice (a reply sent more than once).
Targets (issue 5): p99 under 50 ms at 200/s, none lost, none handled twice.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
from pathlib import Path

from harness import SLOW_BOT, Load, Served, bake, install_bridge, percentile, use_bot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--bot-sleep", type=float, default=1.0)
    parser.add_argument("--inbox", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--threads", type=int, default=128, help="SQLite: bot threads per worker")
    parser.add_argument("--rq-workers", type=int, default=16, help="Redis: RQ worker processes")
    parser.add_argument("--no-kill", action="store_true", help="leave the workers alone")
    parser.add_argument("--conversations", type=int, default=1000, help="spaces the messages go to")
    args = parser.parse_args()

    count = int(args.rate * args.seconds)
    ids = [f"bench-{n}" for n in range(count)]
    rng = random.Random(5)
    plan = [rng.choice(ids[: n + 1]) if n and n % 10 == 0 else ids[n] for n in range(count)]

    with tempfile.TemporaryDirectory() as tmp:
        redis = args.inbox == "redis"
        project = bake(Path(tmp), inbox=args.inbox)
        use_bot(project, SLOW_BOT)
        install_bridge(project)
        served = Served(
            project,
            Path(tmp),
            bridge=True,
            redis=redis,
            LOG_LEVEL="WARNING",
            BOT_SLEEP=str(args.bot_sleep),
            SPECTRUM_WORKER_THREADS=str(args.threads),
            SPECTRUM_LEASE_SECONDS="5",
        )
        try:
            served.start()
            if redis:
                served.start_rq_workers(args.rq_workers)
            # Spread over many conversations: the bot handles one conversation's
            # messages one at a time, in order (SPECTRUM_ORDER), so with a single
            # conversation a 1 s bot handles one message a second whatever the workers.
            load = Load(served.port, conversations=args.conversations)
            killed: list[str] = []

            def kill() -> None:
                killed.append(f"gunicorn worker {served.kill_worker()}")
                if redis:
                    killed.append(f"RQ worker {served.kill_rq_worker()}")

            if not args.no_kill:
                timer = threading.Timer(args.seconds / 2, kill)
                timer.start()
            elapsed = load.run(plan, args.rate)
            unanswered = [m for m, status, _ in load.results if status == 0 or status >= 500]
            if unanswered:  # Spectrum retries what got no 2xx
                again = Load(served.port, conversations=args.conversations, results=load.results)
                again.run(unanswered, args.rate)
            # Answered 2xx at least once (a delivery stored just as a kill cut its answer
            # off gets 200 when sent again): each must be handled.
            accepted = {m for m, status, _ in load.results if status in (200, 202)}
            workers = args.rq_workers if redis else 2 * args.threads
            drain = args.bot_sleep * len(accepted) / workers + 60
            served.wait_until_drained(accepted, timeout=drain)
            states = served.states(accepted)
            keys = served.sent_keys()
            taken_over = served.taken_over(accepted)
        finally:
            served.close()

    acks = [seconds for _, status, seconds in load.results if 200 <= status < 300]
    statuses = sorted({status for _, status, _ in load.results})
    lost = [m for m in accepted if states.get(m) != "done" or keys[f"{m}#0"] == 0]
    twice = [k for k, n in keys.items() if n > 1]
    p50, p99 = percentile(acks, 50) * 1000, percentile(acks, 99) * 1000
    print(
        f"deliveries       : {len(plan)} sent in {elapsed:.1f} s ({len(plan) / elapsed:.0f}/s), "
        f"{len(plan) - len(set(plan))} of them repeats; statuses seen {statuses}"
    )
    print(f"inbox            : {args.inbox}")
    print(
        f"killed           : {', '.join(killed) if killed else 'nothing'}; "
        f"{len(unanswered)} deliveries got no answer and were sent again; "
        f"{taken_over} messages taken over by other workers"
    )
    print(f"ack latency      : p50 {p50:.1f} ms, p99 {p99:.1f} ms (2xx answers)")
    print(f"messages lost    : {len(lost)} of {len(accepted)} accepted")
    print(f"handled twice    : {len(twice)}" + (f" {twice[:5]}" if twice else ""))
    met = p99 < 50 and not lost and not twice and args.rate >= 200
    print(f"targets (p99 < 50 ms at >= 200/s, none lost, none twice): {'met' if met else 'MISSED'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
