"""A stand-in for the `ngrok` agent SDK: the same calls, no network.

Put this folder first on PYTHONPATH (or in sys.modules as "ngrok"). Every call is
appended to the file named by FAKE_NGROK_LOG, if set, and to `calls`.
FAKE_NGROK_FAIL=reason makes `forward` fail the way the SDK does.
"""

import json
import os

URL = "https://fake-tunnel.ngrok.example"
calls: list[list] = []


def _record(*call) -> None:
    calls.append(list(call))
    if log := os.environ.get("FAKE_NGROK_LOG"):
        with open(log, "a") as f:
            f.write(json.dumps(list(call)) + "\n")


class Listener:
    def __init__(self, url: str) -> None:
        self._url = url

    def url(self) -> str:
        return self._url


def forward(addr, **options):
    _record("forward", addr, sorted(options))
    if reason := os.environ.get("FAKE_NGROK_FAIL"):
        raise ValueError("failed to connect session", reason)
    domain = options.get("domain")
    return Listener(f"https://{domain}" if domain else URL)


def disconnect(url=None):
    _record("disconnect", url)
