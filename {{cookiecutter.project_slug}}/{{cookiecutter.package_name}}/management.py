"""A small client for Spectrum's webhook management API (register, list, delete).

HTTP Basic auth with the project id and secret; every answer is wrapped in
`{"succeed": ..., "data": ...}`. There is no rotate endpoint: a rotation is a
second registration, both secrets accepted for a while, then a delete.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class APIError(Exception):
    """One line saying what went wrong and what to do about it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when Spectrum answered


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    created_at: str | None = None
    signing_secret: str | None = None  # only in the answer to a registration


class ManagementAPI:
    def __init__(
        self,
        project_id: str,
        project_secret: str,
        *,
        base_url: str,
        timeout: float = 10.0,
    ) -> None:
        self.project_id = project_id
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        token = base64.b64encode(f"{project_id}:{project_secret}".encode()).decode("ascii")
        self._auth = f"Basic {token}"

    def list(self) -> list[Webhook]:
        data = self._call("GET", "webhooks/")
        return [_webhook(item) for item in data if isinstance(item, dict)]

    def register(self, url: str) -> Webhook:
        """Register `url`; the answer carries the signing secret, shown this once."""
        webhook = _webhook(self._call("POST", "webhooks/", {"webhookUrl": url}, subject=url))
        if not webhook.signing_secret:
            raise APIError("Spectrum registered the webhook but returned no signing secret.")
        return webhook

    def delete(self, webhook_id: str) -> None:
        quoted = urllib.parse.quote(webhook_id, safe="")
        self._call("DELETE", f"webhooks/{quoted}/", subject=webhook_id)

    def _call(self, method: str, path: str, body: Any = None, subject: str = "") -> Any:
        project = urllib.parse.quote(self.project_id, safe="")
        url = f"{self.base_url}/projects/{project}/{path}"
        request = urllib.request.Request(url, method=method, headers={"Authorization": self._auth})
        if body is not None:
            request.data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except TimeoutError:
            raise APIError(f"no answer from {self.base_url} within {self.timeout:g}s.") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise APIError(f"cannot reach {self.base_url} ({reason}).") from None
        return _unwrap(status, raw, subject)


def _unwrap(status: int, raw: bytes, subject: str) -> Any:
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = None
    message = answer.get("message") if isinstance(answer, dict) else None
    if status == 200 and isinstance(answer, dict) and answer.get("succeed") is True:
        return answer.get("data")
    if status == 401:
        text = (
            "Spectrum refused the project credentials (401): "
            "check SPECTRUM_PROJECT_ID and SPECTRUM_PROJECT_SECRET."
        )
    elif status == 404:
        text = (
            f"no webhook {subject} in this project (404): "
            "`flask spectrum webhooks list` shows the ids."
        )
    elif status == 409:
        text = (
            f"{subject} is already registered (409): delete it first, "
            "or `flask spectrum webhooks rotate ID` to register it again beside the old one."
        )
    elif status == 422:
        text = f"Spectrum rejected {subject} (422): {message or 'invalid URL'}."
    elif status == 429:
        text = "rate limited by Spectrum (429, about 5 requests/s per project): retry in a moment."
    else:
        detail = message or raw[:120].decode("utf-8", "replace").strip() or "no body"
        text = f"unexpected answer from Spectrum (HTTP {status}): {detail}"
    raise APIError(text, status)


def _webhook(data: Any) -> Webhook:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise APIError("unexpected answer from Spectrum: a webhook without an id.")
    return Webhook(
        id=data["id"],
        url=str(data.get("webhookUrl", "")),
        created_at=data.get("createdAt"),
        signing_secret=data.get("signingSecret"),
    )
