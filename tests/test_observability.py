"""What an operator sees of a baked app under gunicorn: JSON logs, /metrics, /readyz.

Two workers, the real bridge (Node, test mode) and LOG_FORMAT=json: every line
gunicorn, the app and the bridge write is one JSON object with one time format;
no secret and no message text appears in them; /metrics adds up both workers.
With Redis, each bot worker serves its own metrics (`--metrics-port`).
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from harness import SECRET, Served, delivery, free_port, install_bridge
from prometheus_client.parser import text_string_to_metric_families
from test_served import signed

TOKEN = "scrape-token-7c1d0e"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def scrape(port: int, path: str = "/metrics", token: str = TOKEN) -> dict[tuple, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    assert response.status == 200, response.read()
    found = {}
    for family in text_string_to_metric_families(response.read().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def deliveries(found: dict, outcome: str, reason: str = "") -> float:
    return found.get(("spectrum_deliveries_total", (("outcome", outcome), ("reason", reason))), 0)


def post_all(served: Served, bodies: list[tuple[bytes, dict]]) -> list[int]:
    """POST each on a connection of its own, 8 at a time: both workers take some."""
    statuses: list[int] = []
    lock = threading.Lock()
    queue = list(bodies)

    def sender() -> None:
        while True:
            with lock:
                if not queue:
                    return
                body, headers = queue.pop()
            status, _ = served.request("POST", body, headers)
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH: CI installs it")
def test_json_logs_metrics_and_readiness_under_gunicorn(cookies, tmp_path: Path) -> None:
    result = cookies.bake()
    assert result.exit_code == 0, result.exception
    install_bridge(result.project_path)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    served = Served(
        result.project_path,
        tmp_path,
        bridge=True,
        LOG_FORMAT="json",
        SPECTRUM_METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    try:
        served.start()
        texts = [f"zebra-{n}-text" for n in range(40)]
        good = [delivery(f"m-obs-{n}", text) for n, text in enumerate(texts)]
        bodies = [(body, signed(body)) for body in good]
        bodies += [(body, signed(body)) for body in good[:10]]  # repeats
        bodies += [(body, signed(body, secret="wrong")) for body in good[:5]]
        bodies += [(body, signed(body, timestamp=1)) for body in good[:3]]
        statuses = post_all(served, bodies)
        assert sorted(statuses) == sorted([202] * 40 + [200] * 10 + [401] * 8)
        served.wait_until_drained({f"m-obs-{n}" for n in range(40)}, timeout=60)

        found = scrape(served.port)
        assert deliveries(found, "accepted") == 40
        assert deliveries(found, "duplicate") == 10
        assert deliveries(found, "rejected", "signature") == 5
        assert deliveries(found, "rejected", "timestamp") == 3
        assert found[("spectrum_ack_seconds_count", ())] == 58
        assert found[("spectrum_messages_handled_total", (("outcome", "done"),))] == 40
        assert found[("spectrum_inbox_messages", (("state", "pending"),))] == 0
        # The workers wrote their counts to their own files, which the scrape added up
        # (whether both took deliveries is gunicorn's choice, so it is not required).
        writers = {int(path.stem.split("_")[1]) for path in metrics_dir.glob("counter_*.db")}
        assert writers & set(served.workers()), (writers, served.workers())
        status, ready = served.request("GET", path="/readyz")
        checks = ready["checks"]
        assert status == 200, checks
        assert (checks["replies"]["ok"], checks["replies"]["mode"]) == (True, "bridge")
        assert checks["bot_threads"]["ok"]
    finally:
        served.stop()
        served.close()

    lines = [line for line in served.log().splitlines() if line.strip()]
    assert any("Booting worker" in line for line in lines)  # gunicorn's own lines are here
    loggers = set()
    for line in lines:
        entry = json.loads(line)  # every line, whoever wrote it
        assert TIME.match(entry["time"]), line
        assert {"level", "logger", "message"} <= entry.keys(), line
        loggers.add(entry["logger"].split(".")[0])
    assert {"gunicorn", "my_spectrum_bot"} <= loggers
    assert any(entry["logger"].endswith("bridge.node") for entry in map(json.loads, lines))
    accepted = [json.loads(line) for line in lines if '"message": "accepted"' in line]
    assert {"message_id", "webhook_id", "status", "ms"} <= accepted[0].keys()
    log = served.log()
    for secret in (SECRET, served.env["SPECTRUM_PROJECT_SECRET"], TOKEN):
        assert secret not in log
    # Replies really went out (through the bridge): no message text in the log.
    assert not [text for text in texts if text in log]


def test_each_redis_worker_serves_its_own_metrics(cookies, tmp_path: Path) -> None:
    result = cookies.bake(extra_context={"inbox": "redis", "reply_bridge": "none"})
    assert result.exit_code == 0, result.exception
    served = Served(result.project_path, tmp_path, redis=True, LOG_FORMAT="json")
    port = free_port()
    try:
        served.start()
        command = ["flask", "--app", "my_spectrum_bot", "spectrum", "worker"]
        served.rq_workers.append(served._spawn(*command, "--metrics-port", str(port)))
        for n in range(5):
            body = delivery(f"m-rq-{n}", "hi")
            assert served.request("POST", body, signed(body))[0] == 202
        deadline = time.monotonic() + 60
        done = ("spectrum_messages_handled_total", (("outcome", "done"),))
        while True:
            try:
                if scrape(port).get(done) == 5:
                    break
            except OSError:
                pass  # not listening yet
            assert time.monotonic() < deadline, served.log()[-3000:]
            time.sleep(0.2)
        web = scrape(served.port)
        assert deliveries(web, "accepted") == 5
        assert web[("spectrum_inbox_messages", (("state", "pending"),))] == 0
    finally:
        served.close()
    for line in filter(str.strip, served.log().splitlines()):
        json.loads(line)  # the worker's lines, RQ's included, are JSON too
