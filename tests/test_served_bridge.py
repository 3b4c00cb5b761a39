"""The baked app under gunicorn with the real reply bridge (Node + spectrum-ts).

Spectrum's cloud is the baked project's own stand-in (tests/fake_spectrum.py) on
127.0.0.1; only the bridge's final hand-over to the platform is replaced (its
test mode appends each send to a file).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from harness import Served, delivery, install_bridge
from test_served import signed

NODE = shutil.which("node")


def node_children(parent: int) -> dict[int, int]:
    """{node pid: worker pid} for the Node processes of `parent`'s gunicorn workers."""
    listing = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,comm="], capture_output=True, text=True
    ).stdout
    rows = [line.split(None, 2) for line in listing.splitlines()]
    workers = {int(pid) for pid, ppid, _ in rows if int(ppid) == parent}
    return {
        int(pid): int(ppid) for pid, ppid, comm in rows if int(ppid) in workers and comm == "node"
    }


def gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    return not os.path.exists(f"/proc/{pid}")


def two_bridges(server: Served) -> dict[int, int]:
    """Each of the two workers starts its bridge as it boots, before its first delivery."""
    deadline = time.monotonic() + 30
    while len(nodes := node_children(server.process.pid)) < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    return nodes


@pytest.mark.skipif(NODE is None, reason="node is not on PATH: CI installs it")
def test_each_worker_starts_its_bridge_at_boot_and_it_stops_with_it(cookies, tmp_path) -> None:
    result = cookies.bake()
    assert result.exit_code == 0, result.exception
    install_bridge(result.project_path)
    server = Served(result.project_path, tmp_path, bridge=True)
    sends = server.sends
    try:
        server.start()
        nodes = two_bridges(server)  # before any delivery
        for n in range(10):
            body = delivery(f"m-bridge-{n}", f"message {n}")
            assert server.request("POST", body, signed(body))[0] == 202
        deadline = time.monotonic() + 60
        while not sends.exists() or len(sends.read_text().splitlines()) < 10:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        assert node_children(server.process.pid) == nodes  # the same two served them

        # A worker killed outright cannot stop its bridge: the bridge sees its stdin
        # close and exits by itself, so no Node process is left behind.
        orphan, worker = next(iter(nodes.items()))
        os.kill(worker, signal.SIGKILL)
        assert gone(orphan, timeout=15), "the bridge outlived its SIGKILLed worker"
        assert orphan not in two_bridges(server)  # the replacement worker's is up

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=40) == 0
    finally:
        server.close()

    log = server.log()
    texts = sorted(json.loads(line)["content"]["text"] for line in sends.read_text().splitlines())
    assert texts == sorted(f"You said: message {n}" for n in range(10))  # bot.py's echo
    assert 'replies="bridge" why="through the spectrum-ts bridge (imessage)"' in log
    # The survivor's and the replacement's (started at its boot); not the killed one's.
    assert log.count("bridge stopped pid=") == 2
    assert "Traceback" not in log
    for pid in nodes:  # the workers took their bridges down with them
        assert gone(pid, timeout=5), f"node pid {pid} outlived its worker"
