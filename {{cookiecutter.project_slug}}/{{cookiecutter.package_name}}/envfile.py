"""Edit `.env` safely, and remember which signing secret belongs to which webhook.

Spectrum shows a webhook's signing secret once, at registration, and never says
later which secret a webhook has. So each registration made from here is noted in
`instance/webhooks.json` (id, URL and a SHA-256 of the secret, never the secret):
enough to drop the right secret when the webhook is deleted, and to tell a
webhook we hold the secret of from one we do not.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def add_secret(path: Path, name: str, secret: str) -> None:
    """Put `secret` first in the comma-separated list `name`, keeping the others.

    The old secrets stay accepted, so a delivery signed with one still in use is
    never refused.
    """
    secrets = [secret, *(s for s in read_secrets(path, name) if s != secret)]
    _set(path, name, ",".join(secrets))


def drop_secret(path: Path, name: str, fingerprint: str) -> bool:
    """Remove the secret with this fingerprint from `name`; False if it is not there."""
    secrets = read_secrets(path, name)
    kept = [s for s in secrets if digest(s) != fingerprint]
    if len(kept) == len(secrets) or not kept:  # never leave the app with no secret at all
        return False
    _set(path, name, ",".join(kept))
    return True


def read_secrets(path: Path, name: str) -> list[str]:
    for line in _lines(path):
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return [s.strip() for s in value.split(",") if s.strip()]
    return []


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KnownWebhooks:
    """`instance/webhooks.json`: the webhooks registered from this project."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> dict[str, dict[str, str]]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def get(self, webhook_id: str) -> dict[str, str] | None:
        return self.all().get(webhook_id)

    def remember(self, webhook_id: str, url: str, secret: str) -> None:
        known = self.all()
        known[webhook_id] = {"url": url, "secret_sha256": digest(secret)}
        self._write(known)

    def forget(self, webhook_id: str) -> dict[str, str] | None:
        known = self.all()
        entry = known.pop(webhook_id, None)
        if entry is not None:
            self._write(known)
        return entry

    def _write(self, known: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _atomic_write(self.path, json.dumps(known, indent=2) + "\n")


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _set(path: Path, name: str, value: str) -> None:
    lines = _lines(path)
    for index, line in enumerate(lines):
        key, sep, _ = line.partition("=")
        if sep and key.strip() == name:
            lines[index] = f"{name}={value}"
            break
    else:
        lines.append(f"{name}={value}")
    _atomic_write(path, "\n".join(lines) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    """Replace the file in one step, readable by its owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_registration(
    env_path: Path, name: str, known: KnownWebhooks, webhook_id: str, url: str, secret: str
) -> None:
    """A new webhook's secret: first in `.env` (old ones kept), and noted as its own."""
    add_secret(env_path, name, secret)
    known.remember(webhook_id, url, secret)
