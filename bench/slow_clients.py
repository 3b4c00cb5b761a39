"""Slow clients against the baked bot: bare gunicorn, and behind the project's nginx.conf.

    .venv/bin/python bench/slow_clients.py            # needs nginx (apt-get install nginx-light)
    .venv/bin/python bench/slow_clients.py --counts 0,5,10,20,40,100,200 --bare-only

A default bake runs under gunicorn as `make run` does (gunicorn.conf.py, as many
workers as it picks for this machine unless --workers), with Debian's nginx in
front for the recommended deployment. While `N` connections start a webhook
request and never finish it ("half-open": request line and Host, then silence;
"drip": one more header every 2 s; "body": whole headers, then a body byte
every 2 s), signed deliveries are sent at --rate per
second, each on a new connection with a 10 s timeout, as a webhook sender does.
Printed per case: delivery latency p50/p99/max and the deliveries that failed
(timed out, cut, or not 2xx).
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import sys
import tempfile
import time
from pathlib import Path

from harness import (
    Nginx,
    Served,
    SlowClients,
    bake,
    percentile,
    start_gunicorn,
    timed_deliveries,
)


def measure(port: int, count: int, mode: str, deliveries: int, rate: float) -> dict[str, float]:
    attack = SlowClients(port, count, mode) if count else None
    try:
        time.sleep(1.0 if count else 0)  # let the connections settle on the workers
        results = timed_deliveries(port, deliveries, rate)
    finally:
        reopened = attack.reopened if attack else 0
        if attack:
            attack.close()
    latencies = [seconds for status, seconds in results if 200 <= status < 300]
    return {
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "max": max((seconds for _, seconds in results), default=0.0) * 1000,
        "failed": sum(1 for status, _ in results if not 200 <= status < 300),
        "sent": len(results),
        "reopened": reopened,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="0,100,200", help="slow connections per case")
    parser.add_argument("--modes", default="half-open,drip,body")
    parser.add_argument("--deliveries", type=int, default=100, help="valid deliveries per case")
    parser.add_argument("--rate", type=float, default=10.0, help="valid deliveries per second")
    parser.add_argument("--workers", type=int, default=multiprocessing.cpu_count() * 2 + 1)
    parser.add_argument("--threads", type=int, default=4, help="GUNICORN_THREADS per worker")
    parser.add_argument("--bare-only", action="store_true", help="skip the nginx cases")
    parser.add_argument("--proxy-only", action="store_true", help="skip the bare gunicorn cases")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    counts = [int(c) for c in options.counts.split(",")]
    modes = options.modes.split(",")

    work = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    project = bake(work)
    served = Served(project, work, GUNICORN_THREADS=str(options.threads))
    nginx = None
    try:
        start_gunicorn(served, options.workers)
        targets = []
        if not options.proxy_only:
            targets.append(("gunicorn", served.port))
        if not options.bare_only:
            nginx = Nginx(project, served.port)
            targets.append(("nginx+gunicorn", nginx.port))
        print(
            f"gunicorn: {options.workers} workers x {options.threads} threads (gthread); "
            f"{options.deliveries} deliveries per case at {options.rate:g}/s, 10 s timeout"
        )
        print(
            f"{'in front':<15} {'mode':<10} {'slow':>5} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8} {'failed':>8} {'reopened':>9}"
        )
        for name, port in targets:
            for mode in modes:
                for count in counts:
                    if count == 0 and mode != modes[0]:
                        continue
                    r = measure(port, count, mode, options.deliveries, options.rate)
                    print(
                        f"{name:<15} {mode if count else '-':<10} {count:>5} {r['p50']:>8.1f} "
                        f"{r['p99']:>8.1f} {r['max']:>8.1f} "
                        f"{r['failed']:>4}/{r['sent']:<3} {r['reopened']:>9}",
                        flush=True,
                    )
                    time.sleep(1.0)
    finally:
        if nginx:
            nginx.close()
        served.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
