"""Crash test: a baked bot under gunicorn loses nothing it acknowledged.

Real processes throughout (bench/harness.py): gunicorn with 2 workers, the SQLite
inbox, the Node bridge in test mode. Deliveries arrive with repeats mixed in; a
worker is killed with SIGKILL, later the whole server is, and it is started again.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest
from harness import Load, Served, bake  # bench/harness.py (pythonpath in pyproject.toml)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH: CI installs it")
def test_kill_9_loses_nothing_acknowledged_and_handles_repeats_once(tmp_path: Path) -> None:
    project = bake(tmp_path)
    served = Served(
        project,
        tmp_path,
        BOT_SLEEP="0.3",
        SPECTRUM_WORKER_THREADS="16",
        SPECTRUM_LEASE_SECONDS="2",
    )
    first = [f"crash-{n}" for n in range(300)]
    second = [f"crash-{n}" for n in range(300, 400)]
    # One delivery in ten repeats an earlier message, as Spectrum's at-least-once does.
    plan1 = [first[n - 7] if n % 10 == 9 else m for n, m in enumerate(first)]
    plan2 = [first[n] if n % 10 == 9 else m for n, m in enumerate(second)]
    load = Load(served.port)
    try:
        served.start()
        # A worker dies in the middle of the first burst; gunicorn replaces it.
        killer = threading.Timer(1.5, served.kill_worker)
        killer.start()
        load.run(plan1, rate=100)
        killer.join()
        # The whole server dies in the middle of the second burst, and starts again.
        crash = threading.Timer(0.5, served.kill_everything)
        crash.start()
        load.run(plan2, rate=100)
        crash.join()
        served.start()
        unanswered = [m for m, status, _ in load.results if status == 0 or status >= 500]
        Load(served.port, results=load.results).run(unanswered, rate=100)  # Spectrum retries

        accepted = {m for m, status, _ in load.results if status == 202}
        served.wait_until_drained(accepted, timeout=90)
        states, keys, taken_over = served.states(), served.sent_keys(), served.taken_over()
        assert served.stop() == 0
    finally:
        served.close()

    statuses = Counter(status for _, status, _ in load.results)
    assert set(statuses) <= {0, 200, 202}, statuses  # no 4xx, no 5xx
    assert unanswered, "the kills should have cut some deliveries off"
    # Every message the bot was told about was acknowledged once (202), and repeats got 200.
    assert accepted == set(plan1) | set(plan2)
    assert Counter(m for m, status, _ in load.results if status == 202) == Counter(accepted)
    # Nothing acknowledged was lost: every message is done and its reply went out.
    assert {m: states[m] for m in accepted} == dict.fromkeys(accepted, "done")
    assert all(keys[f"{m}#0"] >= 1 for m in accepted)
    # The kills caught messages in hand; other workers (or the restarted ones) took them over.
    assert taken_over > 0
    # A reply is sent again only if it was on its way out at the very moment of a kill
    # (the SDK takes no idempotency key of ours): a handful of keys at most.
    twice = [k for k, n in keys.items() if n > 1]
    assert len(twice) <= 3, twice
