"""Slow clients against the recommended deployment: the project's nginx.conf in front of gunicorn.

The attack (issue 15): 200 connections send `POST /spectrum-webhook HTTP/1.1`
and a Host header, then nothing, or one more header every 2 s. Bare gunicorn
gives each one a thread until the client finishes, which it never does; nginx
holds them itself. bench/slow_clients.py measures the same at more sizes.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    Nginx,
    Served,
    SlowClients,
    bake,
    delivery,
    free_port,
    percentile,
    signed,
    timed_deliveries,
)

# The target is 100 ms at p99 (bench/slow_clients.py measures about 30 ms here);
# the test allows for a loaded CI machine. Without the proxy, deliveries time out.
P99_LIMIT = 0.25


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Nginx]]:
    work = tmp_path_factory.mktemp("slow-clients")
    project = bake(work)
    served = Served(project, work)
    served.start()  # 2 workers x 8 threads (gunicorn.conf.py)
    try:
        nginx = Nginx(project, served.port)
    except BaseException:
        served.close()
        raise
    yield served, nginx
    nginx.close()
    served.close()


def under_attack(port: int, mode: str, count: int = 200, timeout: float = 10.0) -> list:
    attack = SlowClients(port, count, mode)
    try:
        return timed_deliveries(port, count=60, rate=20, timeout=timeout)
    finally:
        attack.close()


@pytest.mark.parametrize("mode", ["half-open", "drip"])
def test_deliveries_stay_fast_behind_nginx_while_200_clients_stall(
    deployment: tuple[Served, Nginx], mode: str
) -> None:
    _, nginx = deployment
    results = under_attack(nginx.port, mode)
    statuses = sorted({status for status, _ in results})
    assert statuses == [202], f"{statuses}\n{nginx.log()[-2000:]}"
    p99 = percentile([seconds for _, seconds in results], 99)
    assert p99 < P99_LIMIT, f"p99 {p99 * 1000:.0f} ms"


def test_bare_gunicorn_is_held_by_slow_clients(deployment: tuple[Served, Nginx]) -> None:
    """Why the proxy: the same attack straight at gunicorn stops deliveries.

    As many attackers as behind nginx: gunicorn workers accept unevenly, and a
    worker left with fewer attackers than threads would answer as if unharmed.
    """
    served, _ = deployment
    results = under_attack(served.port, "half-open", timeout=3)
    stuck = [status for status, seconds in results if status != 202 or seconds > P99_LIMIT]
    assert len(stuck) > len(results) // 2, results


def send(port: int, body: bytes, headers: dict[str, str], path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type", ""), response.read()


def post(port: int, body: bytes, headers: dict[str, str], path: str) -> int:
    return send(port, body, headers, path)[0]


def answer(port: int, body: bytes, headers: dict[str, str], path: str) -> tuple[int, str, dict]:
    """Status, Content-Type and JSON body of a POST."""
    status, kind, raw = send(port, body, headers, path)
    return status, kind, json.loads(raw)


def test_nginx_passes_deliveries_through_untouched(deployment: tuple[Served, Nginx]) -> None:
    """Signature headers arrive as signed, the query string too, nothing is redirected."""
    served, nginx = deployment
    body = delivery("m-nginx-1", "through the proxy")
    assert post(nginx.port, body, signed(body), "/spectrum-webhook") == 202
    assert post(nginx.port, body, signed(body), "/spectrum-webhook") == 200  # the repeat
    other = delivery("m-nginx-2", "rotated webhook")
    assert post(nginx.port, other, signed(other), "/spectrum-webhook?v=2") == 202
    # No redirect, and the same 404 as the app's.
    not_found = answer(nginx.port, other, signed(other), "/spectrum-webhook/")
    assert not_found == answer(served.port, other, signed(other), "/spectrum-webhook/")
    assert not_found[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    # A chunked body is read whole by nginx and passed on with its length.
    chunked = delivery("m-nginx-3", "chunked")
    served_port = served.port
    served.port = nginx.port
    try:
        assert served.request("POST", chunked, signed(chunked), chunked=True)[0] == 202
    finally:
        served.port = served_port


def test_nginx_body_limit_is_the_apps(deployment: tuple[Served, Nginx]) -> None:
    served, nginx = deployment
    limit = 1048576  # the default max_body_bytes answer, as in deploy/nginx.conf
    at_limit = b"x" * limit
    # At the limit nginx passes it on (the app refuses it as not JSON); one byte over, 413.
    assert post(nginx.port, at_limit, signed(at_limit), "/spectrum-webhook") == 400
    over = at_limit + b"x"
    # nginx refuses it as the app would, in the same words.
    refused = (413, "application/json", {"error": "body larger than 1048576 bytes"})
    assert answer(nginx.port, over, signed(over), "/spectrum-webhook") == refused
    assert answer(served.port, over, signed(over), "/spectrum-webhook") == refused


def test_nginx_says_503_in_json_while_the_app_is_down(tmp_path: Path) -> None:
    """Spectrum retries a 5xx; the reason is one line, not nginx's HTML page.

    The path ends in an extension mime.types knows: the answer is JSON all the same.
    """
    project = bake(tmp_path, webhook_path="/hooks/spectrum.html")
    nginx = Nginx(project, free_port())  # nothing listens there: gunicorn down
    try:
        body = delivery("m-down-1", "anyone there?")
        status, kind, said = answer(nginx.port, body, signed(body), "/hooks/spectrum.html")
    finally:
        nginx.close()
    assert (status, kind) == (503, "application/json")
    assert said == {"error": "the app is not answering, retry later"}


def test_nginx_conf_takes_the_answers(tmp_path: Path) -> None:
    project = bake(tmp_path, webhook_path="/hooks/spectrum/v2", max_body_bytes="4096")
    conf = (project / "deploy" / "nginx.conf").read_text()
    assert "location = /hooks/spectrum/v2 {" in conf
    assert "client_max_body_size 4096;" in conf
    assert '{"error":"body larger than 4096 bytes"}' in conf  # nginx's 413, in the app's words
