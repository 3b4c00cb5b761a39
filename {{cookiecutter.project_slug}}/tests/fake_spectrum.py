"""A stand-in for Spectrum's cloud, served for real on 127.0.0.1.

It answers the webhook management API (for `flask spectrum webhooks ...`) and
the calls the spectrum-ts SDK makes while it starts (for the reply bridge, which
reaches it through SPECTRUM_CLOUD_URL).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT_ID = "11111111-2222-4333-8444-555555555555"
PROJECT_SECRET = "project-secret-for-tests"


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout tests) is expected, not worth a traceback


class FakeSpectrum:
    """Webhooks kept in memory; `delay` and `force_status` simulate a slow or unhappy API."""

    def __init__(self) -> None:
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.delay = 0.0
        self.force_status: int | None = None
        self.requests: list[tuple[str, str]] = []
        self.platforms = {"imessage": {"enabled": True}}
        self.server = QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                self._route()

            def do_POST(self) -> None:
                self._route()

            def do_DELETE(self) -> None:
                self._route()

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _route(self) -> None:
                fake.requests.append((self.command, self.path))
                time.sleep(fake.delay)
                project = f"/projects/{PROJECT_ID}/"
                if self.path == project + "platforms/":  # the SDK asks without credentials
                    return self._answer(200, {"succeed": True, "data": fake.platforms})
                expected = base64.b64encode(f"{PROJECT_ID}:{PROJECT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    return self._answer(401, {"succeed": False, "message": "Unauthorized"})
                if fake.force_status:
                    return self._answer(fake.force_status, {"succeed": False, "message": "forced"})
                if self.path == project and self.command == "GET":
                    return self._answer(200, {"succeed": True, "data": {"id": PROJECT_ID}})
                if self.path == project + "imessage/tokens" and self.command == "POST":
                    token = {"type": "shared", "token": "test-token", "expiresIn": 3600}
                    return self._answer(200, {"succeed": True, "data": token})
                base = f"/projects/{PROJECT_ID}/webhooks/"
                if self.path == base and self.command == "GET":
                    listed = [
                        {k: v for k, v in w.items() if k != "signingSecret"}
                        for w in fake.webhooks.values()
                    ]
                    return self._answer(200, {"succeed": True, "data": listed})
                if self.path == base and self.command == "POST":
                    return self._register()
                if self.path.startswith(base) and self.command == "DELETE":
                    webhook_id = self.path[len(base) :].rstrip("/")
                    if fake.webhooks.pop(webhook_id, None) is None:
                        return self._answer(404, {"succeed": False, "message": "Not found"})
                    return self._answer(200, {"succeed": True, "data": {"id": webhook_id}})
                return self._answer(404, {"succeed": False, "message": "No route"})

            def _register(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    url = json.loads(self.rfile.read(length)).get("webhookUrl")
                except (ValueError, AttributeError):
                    url = None
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    return self._answer(422, {"succeed": False, "message": "Invalid webhookUrl"})
                if any(w["webhookUrl"] == url for w in fake.webhooks.values()):
                    return self._answer(409, {"succeed": False, "message": "Already registered"})
                webhook = {
                    "id": str(uuid.uuid4()),
                    "webhookUrl": url,
                    "signingSecret": secrets.token_hex(32),
                    "createdAt": "2026-05-14T19:00:00Z",
                    "updatedAt": "2026-05-14T19:00:00Z",
                }
                fake.webhooks[webhook["id"]] = webhook
                return self._answer(200, {"succeed": True, "data": webhook})

        return Handler
