"""Replies through the long-lived Node bridge vs. a Node process spawned per reply.

    .venv/bin/python bench/replies.py [--replies 5000] [--spawned 20]

Bakes the default project into a temporary folder, installs its bridge (npm ci),
starts the project's stand-in Spectrum cloud on 127.0.0.1, and sends replies
through the real bridge.mjs and SDK with only the final platform call replaced
(the bridge's test mode). Both ways are measured in the same run, so the ratio
holds on a busy machine even when the absolute rates do not.
Targets (issue 3): at least 1,000 replies/s through the long-lived bridge, and
at least 20 times the spawn-per-reply rate.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import bake, install_bridge  # bench/ is on sys.path when run as a script

TARGET_RATE = 1000.0
TARGET_RATIO = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=5000, help="through the long-lived bridge")
    parser.add_argument("--spawned", type=int, default=20, help="each in its own Node process")
    parser.add_argument("--threads", type=int, default=8, help="worker threads sending at once")
    args = parser.parse_args()
    node = shutil.which("node")
    if node is None:
        sys.exit("node is not on PATH: install Node 22")

    with tempfile.TemporaryDirectory() as tmp:
        project = bake(Path(tmp))
        install_bridge(project)
        sys.path[:0] = [str(project), str(project / "tests")]
        bridge_mod = importlib.import_module("my_spectrum_bot.bridge")
        events = importlib.import_module("my_spectrum_bot.events")
        fake = importlib.import_module("fake_spectrum")
        cloud = fake.FakeSpectrum()
        env = {
            "PATH": f"{Path(node).parent}:/usr/bin:/bin",
            "SPECTRUM_CLOUD_URL": cloud.url,
            "SPECTRUM_PROJECT_ID": fake.PROJECT_ID,
            "SPECTRUM_PROJECT_SECRET": fake.PROJECT_SECRET,
            "SPECTRUM_BRIDGE_TEST_SENDS": str(Path(tmp) / "sends.jsonl"),
            "LOG_LEVEL": "warn",
        }
        space = events.Space(id="any;-;+15550100", platform="iMessage", phone="+15551234567")
        content = {"type": "text", "text": "You said: hello"}

        def new_bridge():
            return bridge_mod.Bridge(
                [node, "bridge.mjs"], cwd=project / "bridge", env=env, timeout=30
            )

        def send(bridge, key: str) -> float:
            started = time.perf_counter()
            bridge.request("send", key=key, space=vars(space), content=content)
            return time.perf_counter() - started

        # Long-lived: one process, started before the clock runs (as in a worker).
        bridge = new_bridge()
        send(bridge, "warm-up")
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            latencies = list(pool.map(lambda n: send(bridge, f"m-{n}#0"), range(args.replies)))
        long_lived = args.replies / (time.perf_counter() - started)
        started = time.perf_counter()
        for n in range(args.replies):
            send(bridge, f"seq-{n}#0")
        one_thread = args.replies / (time.perf_counter() - started)
        bridge.close()

        # Spawn per reply: a new Node process, SDK start-up included, for each reply.
        started = time.perf_counter()
        for n in range(args.spawned):
            once = new_bridge()
            send(once, f"spawned-{n}#0")
            once.close()
        spawned = args.spawned / (time.perf_counter() - started)
        cloud.close()

    ratio = long_lived / spawned
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    print(
        f"long-lived bridge : {long_lived:8.0f} replies/s  ({args.replies} replies, "
        f"{args.threads} threads, latency p50 {p50:.2f} ms, p99 {p99:.2f} ms)"
    )
    print(f"  one thread      : {one_thread:8.0f} replies/s  (one reply at a time)")
    print(f"spawn per reply   : {spawned:8.1f} replies/s  ({args.spawned} replies)")
    print(f"ratio             : {ratio:8.1f}x")
    ok_rate, ok_ratio = long_lived >= TARGET_RATE, ratio >= TARGET_RATIO
    print(
        f"target >= {TARGET_RATE:.0f}/s: {'met' if ok_rate else 'MISSED'}; "
        f"target >= {TARGET_RATIO:.0f}x: {'met' if ok_ratio else 'MISSED'}"
    )
    sys.exit(0 if ok_rate and ok_ratio else 1)


if __name__ == "__main__":
    main()
