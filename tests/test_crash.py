"""Crash test: a baked bot under gunicorn loses nothing it acknowledged.

Real processes throughout (bench/harness.py): gunicorn with 2 workers, the inbox
(SQLite, or Redis with 8 RQ worker processes), the Node bridge in test mode.
Deliveries to 40 conversations arrive with repeats mixed in; a worker is killed
with SIGKILL, later everything is, and it is all started again. The bot counts
each conversation's messages in its state before it sleeps, so the kills land
in handlers that have counted but not returned.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest
from harness import COUNTING_BOT, Load, Served, bake, install_bridge, use_bot  # bench/


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH: CI installs it")
@pytest.mark.parametrize("inbox", ["sqlite", "redis"])
def test_kill_9_loses_nothing_acknowledged_and_handles_repeats_once(
    tmp_path: Path, inbox: str
) -> None:
    redis = inbox == "redis"
    if redis and shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt install redis-server; CI installs it)")
    project = bake(tmp_path, inbox=inbox)
    use_bot(project, COUNTING_BOT)
    install_bridge(project)
    served = Served(
        project,
        tmp_path,
        bridge=True,
        redis=redis,
        LOG_LEVEL="WARNING",
        BOT_SLEEP="0.3",
        SPECTRUM_WORKER_THREADS="16",
        # With Redis this is the job timeout: bot and replies must fit in it.
        SPECTRUM_LEASE_SECONDS="5",
        SPECTRUM_TYPING_AFTER="0.1",  # every handler shows typing... while it sleeps
    )

    def start() -> None:
        served.start()
        if redis:
            served.start_rq_workers(8)

    def crash() -> None:
        served.kill_everything()
        if redis:
            served.kill_rq_workers()

    first = [f"crash-{n}" for n in range(300)]
    second = [f"crash-{n}" for n in range(300, 400)]
    # One delivery in ten repeats an earlier message, as Spectrum's at-least-once does.
    plan1 = [first[n - 7] if n % 10 == 9 else m for n, m in enumerate(first)]
    plan2 = [first[n] if n % 10 == 9 else m for n, m in enumerate(second)]
    load = Load(served.port, conversations=40)
    try:
        start()
        # A worker dies in the middle of the first burst (with Redis, an RQ worker too,
        # which its supervisor replaces); gunicorn replaces its own.
        killers = [threading.Timer(1.0, served.kill_worker)]
        if redis:
            killers.append(threading.Timer(1.5, served.kill_rq_worker))
        for killer in killers:
            killer.start()
        load.run(plan1, rate=100)
        for killer in killers:
            killer.join()
        # Everything dies in the middle of the second burst, and starts again.
        crashing = threading.Timer(0.5, crash)
        crashing.start()
        load.run(plan2, rate=100)
        crashing.join()
        start()
        unanswered = [m for m, status, _ in load.results if status == 0 or status >= 500]
        retry = Load(served.port, conversations=40, results=load.results)
        retry.run(unanswered, rate=100)  # Spectrum retries

        # Acknowledged: answered 2xx at least once. A delivery stored just before a kill
        # cut its answer off gets 200 (a repeat) when Spectrum retries it.
        accepted = {m for m, status, _ in load.results if status in (200, 202)}
        served.wait_until_drained(accepted, timeout=90)
        states, keys, sends = served.states(accepted), served.sent_keys(), served.sends_made()
        taken_over = served.taken_over(accepted)
        assert served.stop() == 0
        served.stop_rq_workers()
    finally:
        served.close()

    statuses = Counter(status for _, status, _ in load.results)
    assert set(statuses) <= {0, 200, 202}, statuses  # no 4xx, no 5xx
    assert unanswered, "the kills should have cut some deliveries off"
    # Every message was acknowledged, and stored (202) once at most; repeats got 200.
    assert accepted == set(plan1) | set(plan2)
    stored = Counter(m for m, status, _ in load.results if status == 202)
    assert max(stored.values()) == 1  # never stored twice
    # Nothing acknowledged was lost: every message is done and its reply went out.
    assert {m: states[m] for m in accepted} == dict.fromkeys(accepted, "done")
    assert all(keys[f"{m}#0"] >= 1 and keys[f"{m}#1"] >= 1 for m in accepted)  # text, react
    # The kills caught messages in hand; other workers (or the restarted ones) took them over.
    assert taken_over > 0
    # No reply went out twice: a reply the SDK confirmed is in the machine's journal
    # before the worker can die, so the worker taking over does not send it again.
    assert [k for k, n in keys.items() if n > 1] == []
    # Each conversation counted each of its messages once (a killed handler's count
    # never took effect), and handled them one at a time: its replies read 1, 2, 3 ...
    counts: dict[str, list[int]] = {}
    for send in sends:
        if send.get("kind") == "text":
            counts.setdefault(send["space"], []).append(int(send["content"]["text"]))
    per_conversation = Counter(load.space_of(m) for m in accepted)
    assert {space: len(n) for space, n in counts.items()} == dict(per_conversation)
    assert {space: n for space, n in counts.items() if n != list(range(1, len(n) + 1))} == {}
    # "typing..." was shown, and never left on: every space's last word was stop,
    # even where the app died mid-handler (its bridge stops typing on the way out).
    typing: dict[str, bool] = {}
    for send in sends:
        if "typing" in send:
            typing[send["space"]] = send["typing"]
    assert typing and {space: on for space, on in typing.items() if on} == {}
