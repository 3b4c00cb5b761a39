"""Inbound attachments through the bridge: a private temp file vs. base64 in the answer line.

    .venv/bin/python bench/attachments.py [--fetches 20] [--small-fetches 200] [--rounds 20]

Bakes the default project into a temporary folder, installs its bridge (npm ci),
starts the project's stand-in Spectrum cloud, and runs two Node bridges in the
bridge's test mode (SPECTRUM_BRIDGE_TEST_ATTACHMENTS: Node reads an attachment's
bytes from <folder>/<id> instead of asking the platform; everything after that is
the bridge's own code):

  temp file  the project's bridge.mjs as baked, read with BridgeSender.fetch: Node
             writes the bytes to a private file in a folder Python names and
             answers with its path; Python reads and deletes it (the template's way).
  base64     a copy of the same bridge.mjs, written next to it in the baked project
             by this benchmark, whose fetchAttachment answers {"data": <base64>,
             "size": n} instead of writing the file; Python decodes the answer. It
             exists only here, for the comparison; the template has no such mode.

Both go through the project's own Bridge (same Python reader, same JSON-lines
pipe). Measured in one run, the two interleaved fetch by fetch so the machine's
noise falls on both: latency (median, p95) and throughput of a 10 MiB and a
100 KiB attachment; pings (op "ping") sent every 5 ms, each on its own thread,
while a 10 MiB fetch is in flight on the same bridge, against pings on the idle
bridge 0.1 s later (head-of-line blocking on the pipe); and peak RSS (VmHWM) of the Python and
Node processes, each variant in a fresh Python process of its own with a fresh
bridge, over 5 fetches of 10 MiB. Exits 1 only if bytes come back wrong.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

BIG, SMALL = 10 * 2**20, 100 * 2**10
MAX_BYTES = 25 * 2**20  # the template's default limit
PING_EVERY = 0.005
VARIANTS = ("temp file", "base64")
SPACE = {"id": "any;-;+15550100", "platform": "iMessage", "phone": "+15551234567"}

# The one change the base64 copy makes to bridge.mjs's fetchAttachment.
FILE_ANSWER = """  const path = `${dir}/${randomUUID()}`;
  writeFileSync(path, bytes, { mode: 0o600 });
  return { path, size: bytes.length };"""
BASE64_ANSWER = '  return { data: bytes.toString("base64"), size: bytes.length };'


def kib(pid: int, field: str) -> int:
    """VmRSS or VmHWM of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) if found else 0


def new_bridge(setup: dict[str, Any], variant: str) -> tuple[Any, Callable[[str], bytes]]:
    """A started bridge for the variant, and fetch(attachment id) -> bytes through it."""
    sys.path.insert(0, setup["project"])
    bridge_mod = importlib.import_module("my_spectrum_bot.bridge")
    events = importlib.import_module("my_spectrum_bot.events")
    script = "bridge.mjs" if variant == "temp file" else "bridge_base64.mjs"
    bridge = bridge_mod.Bridge(
        [setup["node"], script], cwd=Path(setup["project"]) / "bridge", env=setup["env"], timeout=60
    )
    incoming = Path(setup["incoming"])
    if variant == "temp file":
        sender = bridge_mod.BridgeSender(bridge, incoming, fetch_timeout=60)
        space = events.Space(**SPACE)

        def fetch(attachment: str) -> bytes:
            return sender.fetch(space, attachment, MAX_BYTES)
    else:

        def fetch(attachment: str) -> bytes:
            result = bridge.request(
                "attachment",
                timeout=60,
                space=SPACE,
                attachment=attachment,
                max_bytes=MAX_BYTES,
                dir=str(incoming),
            )
            return base64.b64decode(result["data"])

    bridge.request("ping")  # started, SDK built, before any clock runs
    return bridge, fetch


def memory_child(setup: dict[str, Any], variant: str, fetches: int) -> None:
    """In a fresh process: peak RSS of this Python and its Node bridge over big fetches."""
    bridge, fetch = new_bridge(setup, variant)
    fetch("small")
    me, node = os.getpid(), bridge.pid
    before = {"python": kib(me, "VmRSS"), "node": kib(node, "VmRSS")}
    for _ in range(fetches):
        if len(fetch("big")) != BIG:
            sys.exit("wrong size")
    peak = {"python": kib(me, "VmHWM"), "node": kib(node, "VmHWM")}
    bridge.close()
    print(json.dumps({"before": before, "peak": peak}))


def pings_while(bridge: Any, job: Future[Any], pool: ThreadPoolExecutor) -> list[float]:
    """Ping every PING_EVERY s, each on its own thread, while `job` runs: their latencies."""

    def ping() -> float:
        started = time.perf_counter()
        bridge.request("ping")
        return time.perf_counter() - started

    sent = []
    while not job.done():
        sent.append(pool.submit(ping))
        time.sleep(PING_EVERY)
    job.result()
    return [future.result() for future in sent]


def ms(values: list[float]) -> tuple[float, float]:
    """Median and p95, in ms."""
    p95 = statistics.quantiles(values, n=20)[18] if len(values) > 1 else values[0]
    return statistics.median(values) * 1000, p95 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetches", type=int, default=20, help="10 MiB fetches per variant")
    parser.add_argument("--small-fetches", type=int, default=200, help="100 KiB, per variant")
    parser.add_argument("--rounds", type=int, default=20, help="10 MiB fetches pinged during")
    parser.add_argument("--memory-fetches", type=int, default=5, help="10 MiB, per fresh process")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: a memory measurement
    args = parser.parse_args()
    if args.child:
        child = json.loads(args.child)
        memory_child(child["setup"], child["variant"], args.memory_fetches)
        return
    node = shutil.which("node")
    if node is None:
        sys.exit("node is not on PATH: install Node 22")

    from harness import bake, install_bridge  # bench/ is on sys.path when run as a script

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        project = bake(work)
        install_bridge(project)
        bridge_js = (project / "bridge" / "bridge.mjs").read_text()
        if bridge_js.count(FILE_ANSWER) != 1:
            sys.exit("bridge.mjs's fetchAttachment changed: update FILE_ANSWER in this benchmark")
        (project / "bridge" / "bridge_base64.mjs").write_text(
            bridge_js.replace(FILE_ANSWER, BASE64_ANSWER)
        )
        attachments, incoming = work / "attachments", work / "incoming"
        attachments.mkdir()
        incoming.mkdir(mode=0o700)
        expected = {"big": os.urandom(BIG), "small": os.urandom(SMALL)}
        for name, data in expected.items():
            (attachments / name).write_bytes(data)
        sys.path.insert(0, str(project / "tests"))
        fake = importlib.import_module("fake_spectrum")
        cloud = fake.FakeSpectrum()
        setup = {
            "project": str(project),
            "node": node,
            "incoming": str(incoming),
            "env": {
                "PATH": f"{Path(node).parent}:/usr/bin:/bin",
                "SPECTRUM_CLOUD_URL": cloud.url,
                "SPECTRUM_PROJECT_ID": fake.PROJECT_ID,
                "SPECTRUM_PROJECT_SECRET": fake.PROJECT_SECRET,
                "SPECTRUM_BRIDGE_TEST_SENDS": str(work / "sends.jsonl"),
                "SPECTRUM_BRIDGE_TEST_ATTACHMENTS": str(attachments),
                "LOG_LEVEL": "warn",
            },
        }
        bridges, fetchers = {}, {}
        for variant in VARIANTS:
            bridges[variant], fetchers[variant] = new_bridge(setup, variant)

        def in_turn(n: int) -> tuple[str, ...]:
            return VARIANTS if n % 2 == 0 else VARIANTS[::-1]

        # The answer line each variant writes for one 10 MiB attachment.
        line = {}
        for variant in VARIANTS:
            bridge = bridges[variant]
            answer = bridge.request(
                "attachment", space=SPACE, attachment="big", max_bytes=MAX_BYTES, dir=str(incoming)
            )
            Path(answer.get("path", "/nonexistent")).unlink(missing_ok=True)
            line[variant] = len(json.dumps({"id": 1, "ok": True, "result": answer})) + 1

        # Latency, the variants interleaved fetch by fetch.
        latency: dict[tuple[str, str], list[float]] = {}
        for attachment, count in (("small", args.small_fetches), ("big", args.fetches)):
            for n in range(count):
                for variant in in_turn(n):
                    started = time.perf_counter()
                    data = fetchers[variant](attachment)
                    latency.setdefault((variant, attachment), []).append(
                        time.perf_counter() - started
                    )
                    if data != expected[attachment]:
                        sys.exit(f"{variant}: the {attachment} attachment came back wrong")
                    del data

        # Head-of-line: pings while a 10 MiB fetch is in flight, and on an idle bridge.
        during: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        idle: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        with ThreadPoolExecutor(1) as one, ThreadPoolExecutor(64) as pool:
            for n in range(args.rounds):
                for variant in in_turn(n):
                    bridge = bridges[variant]
                    job = one.submit(fetchers[variant], "big")
                    during[variant] += pings_while(bridge, job, pool)
                    time.sleep(0.1)  # let the fetch's aftermath (GC, unlink) settle
                    idle[variant] += pings_while(bridge, one.submit(time.sleep, 0.05), pool)
        for bridge in bridges.values():
            bridge.close()
        leftovers = list(incoming.iterdir())

        # Peak RSS, each variant in a fresh Python process with a fresh bridge.
        memory = {}
        for variant in VARIANTS:
            child = json.dumps({"setup": setup, "variant": variant})
            done = subprocess.run(
                [sys.executable, __file__, "--child", child, "--memory-fetches",
                 str(args.memory_fetches)],
                capture_output=True,
                text=True,
            )  # fmt: skip
            if done.returncode:
                sys.exit(f"the {variant} memory run failed:\n{done.stderr[-2000:]}")
            memory[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        cloud.close()

    file, b64 = VARIANTS
    print(
        f"{args.fetches} x 10 MiB and {args.small_fetches} x 100 KiB fetches per variant, "
        f"interleaved; {args.rounds} x 10 MiB pinged every {PING_EVERY * 1000:.0f} ms"
    )
    print(f"{'':34}{'temp file':>18}{'base64 in line':>18}{'base64/file':>13}")

    def row(label: str, a: float, b: float, unit: str, digits: int = 1) -> None:
        print(f"{label:34}{a:>12.{digits}f} {unit:5}{b:>12.{digits}f} {unit:5}{b / a:>12.2f}x")

    for attachment, size in (("big", "10 MiB"), ("small", "100 KiB")):
        (p50_f, p95_f), (p50_b, p95_b) = (ms(latency[v, attachment]) for v in VARIANTS)
        row(f"{size} fetch, median", p50_f, p50_b, "ms", 2)
        row(f"{size} fetch, p95", p95_f, p95_b, "ms", 2)
        mib = (BIG if attachment == "big" else SMALL) / 2**20
        row(f"{size} throughput (at median)", mib / p50_f * 1000, mib / p50_b * 1000, "MiB/s", 0)
    row("answer line for 10 MiB", line[file], line[b64], "B", 0)
    for who in ("python", "node"):
        peak = [memory[v]["peak"][who] / 1024 for v in VARIANTS]
        growth = [(memory[v]["peak"][who] - memory[v]["before"][who]) / 1024 for v in VARIANTS]
        row(f"peak RSS, {who.capitalize()}", *peak, "MiB")
        row("  over its RSS before fetching", *growth, "MiB")
    for label, pings in (("ping during a 10 MiB fetch", during), ("ping, bridge idle", idle)):
        (p50_f, p95_f), (p50_b, p95_b) = (ms(pings[v]) for v in VARIANTS)
        row(f"{label}, median", p50_f, p50_b, "ms", 2)
        row(f"{label}, p95", p95_f, p95_b, "ms", 2)
    row("  max during a fetch", max(during[file]) * 1000, max(during[b64]) * 1000, "ms", 2)
    counts = ", ".join(f"{v} {len(during[v])}" for v in VARIANTS)
    print(f"pings sent during fetches: {counts}; temp files left behind: {len(leftovers)}")


if __name__ == "__main__":
    main()
