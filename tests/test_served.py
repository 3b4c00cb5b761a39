"""The baked app under gunicorn, fed by an independent signer (slack_sdk's, same v0 recipe)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import SECRET, Served, delivery, free_port  # bench/harness.py
from slack_sdk.signature import SignatureVerifier


def signed(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return {
        "Content-Type": "application/json",
        "X-Spectrum-Timestamp": str(timestamp),
        "X-Spectrum-Signature": signature,
        "X-Spectrum-Webhook-Id": "60d6d04f-f9fa-4a7b-9c97-37c9c90ce91c",
    }


@pytest.fixture(scope="module")
def served(cookies_session, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    result = cookies_session.bake()
    assert result.exit_code == 0, result.exception
    server = Served(result.project_path, tmp_path_factory.mktemp("served"))
    server.start()
    yield server
    server.close()


def test_accepts_an_independently_signed_delivery_and_runs_the_bot(served: Served) -> None:
    body = delivery("m-served-1", "Grüße 👋")
    assert served.request("POST", body, signed(body)) == (
        202,
        {"status": "accepted", "message_id": "m-served-1"},
    )
    served.wait_for_log('text="You said: Grüße 👋"')


def test_chunked_delivery_within_the_limit_is_accepted(served: Served) -> None:
    body = delivery("m-served-chunked", "chunked")
    status, _ = served.request("POST", body, signed(body), chunked=True)
    assert status == 202


def test_each_bad_request_gets_its_status(served: Served) -> None:
    body = delivery("m-served-bad", "x")
    headers = signed(body)
    cases = [
        ({k: v for k, v in headers.items() if k != "X-Spectrum-Signature"}, body, 400),
        ({**headers, "X-Spectrum-Timestamp": "soon"}, body, 400),
        ({**headers, "X-Spectrum-Signature": "v1=abc"}, body, 400),
        (signed(body, int(time.time()) - 3600), body, 401),
        (signed(body, int(time.time()) + 3600), body, 401),
        (signed(body, secret="a" * 64), body, 401),
        (headers, body + b" ", 401),
        (signed(b"[]"), b"[]", 400),
        ({**signed(b"x" * 1048577)}, b"x" * 1048577, 413),
    ]
    for sent, payload, status in cases:
        assert served.request("POST", payload, sent)[0] == status, sent
    assert served.request("GET")[0] == 405
    assert served.request("POST", b"x" * 2_000_000, signed(b"x"), chunked=True)[0] == 413


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send these bytes as they are, close our side, read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # the body ends here, wherever it was
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # a chunk size that is not hex
        b"10\r\nabc",  # the connection ends mid-chunk
        b"3\r\nabcX0\r\n\r\n",  # no CRLF after the chunk
        b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n",  # a trailer that is not a header
        b"ffffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",  # a size past any integer
    ],
    ids=["bad-size", "eof-mid-chunk", "no-crlf", "bad-trailer", "size-overflow"],
)
def test_a_malformed_chunked_body_is_a_400_not_a_500(served: Served, chunks: bytes) -> None:
    """Signed headers and a broken chunked body: it can never succeed, so 4xx, not 5xx
    (Spectrum retries a 5xx), and no traceback in the log."""
    headers = signed(b"abc")
    head = "POST /spectrum-webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    before = served.log().count("Traceback")
    answer = raw_exchange(served.port, head.encode() + chunks)
    status = int(answer.split(b" ", 2)[1])
    assert status == 400, answer[:300]
    assert served.log().count("Traceback") == before


def test_concurrent_duplicates_across_workers_are_handled_once(served: Served) -> None:
    body = delivery("m-served-dup", "only once")
    statuses: list[int] = []

    def send() -> None:
        statuses.append(served.request("POST", body, signed(body))[0])

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 19 + [202]
    served.wait_for_log('text="You said: only once"')
    time.sleep(1)  # room for a wrong second handling to show up
    assert served.log().count('text="You said: only once"') == 1


def test_sigterm_is_a_clean_stop(served: Served) -> None:
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=40) == 0
    assert "Traceback" not in served.log()


def test_missing_secret_stops_gunicorn_with_one_line(cookies) -> None:
    result = cookies.bake()
    project = Path(result.project_path)
    (project / ".env").unlink()
    stopped = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert stopped.returncode == 1
    assert "Traceback" not in stopped.stderr
    assert "Error: SPECTRUM_SIGNING_SECRET is not set" in stopped.stderr
