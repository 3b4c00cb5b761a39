"""Settings, read once from the environment.

`.env` is loaded here rather than relied on from the `flask` command, because
gunicorn does not read it. Real environment variables always win over `.env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click
from dotenv import load_dotenv

WEBHOOK_PATH = "{{ cookiecutter.webhook_path }}"
SIGNING_SECRET_ENV = "{{ cookiecutter.signing_secret_env }}"
DEFAULT_TOLERANCE_SECONDS = {{ cookiecutter.timestamp_tolerance_seconds }}
DEFAULT_MAX_BODY_BYTES = {{ cookiecutter.max_body_bytes }}
# Empty: the SQLite inbox. A redis:// URL: the Redis inbox (REDIS_URL overrides it).
DEFAULT_REDIS_URL = "{{ 'redis://127.0.0.1:6379/0' if cookiecutter.inbox == 'redis' else '' }}"
# bridge/ sits beside the package, at the project's root.
DEFAULT_BRIDGE_DIR = Path(__file__).resolve().parent.parent / "bridge"


class ConfigError(click.ClickException):
    """A setting is missing or invalid.

    A ClickException so that `flask` commands print it as one line, not a traceback.
    """


@dataclass(frozen=True)
class Settings:
    signing_secrets: tuple[str, ...]
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    inbox_path: Path | None = None  # default: <instance folder>/inbox.sqlite3
    redis_url: str = DEFAULT_REDIS_URL
    worker_threads: int = 4
    max_attempts: int = 5
    lease_seconds: int = 60
    retention_seconds: int = 3 * 24 * 3600
    start_worker: bool = True
    log_level: str = "INFO"
    # Replies (bridge/): the project's credentials, not the webhook signing secret.
    project_id: str = ""
    project_secret: str = ""
    providers: str = "imessage"
    node: str = "node"
    bridge_dir: Path = DEFAULT_BRIDGE_DIR
    reply_timeout: int = 15

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        if environ is None:
            load_dotenv(Path.cwd() / ".env", override=False)
            environ = os.environ
        inbox_path = environ.get("SPECTRUM_INBOX_PATH")
        return cls(
            signing_secrets=parse_secrets(environ.get(SIGNING_SECRET_ENV, "")),
            # Each unset variable falls back to the field's default above.
            tolerance_seconds=_positive_int(
                environ, "SPECTRUM_TIMESTAMP_TOLERANCE", cls.tolerance_seconds
            ),
            max_body_bytes=_positive_int(environ, "SPECTRUM_MAX_BODY_BYTES", cls.max_body_bytes),
            inbox_path=Path(inbox_path) if inbox_path else None,
            redis_url=environ.get("REDIS_URL", cls.redis_url).strip(),
            worker_threads=_positive_int(environ, "SPECTRUM_WORKER_THREADS", cls.worker_threads),
            max_attempts=_positive_int(environ, "SPECTRUM_MAX_ATTEMPTS", cls.max_attempts),
            lease_seconds=_positive_int(environ, "SPECTRUM_LEASE_SECONDS", cls.lease_seconds),
            retention_seconds=_positive_int(
                environ, "SPECTRUM_RETENTION_SECONDS", cls.retention_seconds
            ),
            log_level=environ.get("LOG_LEVEL", cls.log_level).upper(),
            project_id=environ.get("SPECTRUM_PROJECT_ID", "").strip(),
            project_secret=environ.get("SPECTRUM_PROJECT_SECRET", "").strip(),
            providers=environ.get("SPECTRUM_PROVIDERS", "").strip() or cls.providers,
            node=environ.get("SPECTRUM_NODE", "").strip() or cls.node,
            bridge_dir=Path(environ.get("SPECTRUM_BRIDGE_DIR") or cls.bridge_dir),
            reply_timeout=_positive_int(environ, "SPECTRUM_REPLY_TIMEOUT", cls.reply_timeout),
        )


def parse_secrets(value: str) -> tuple[str, ...]:
    """Comma-separated secrets: the new one and the old one during a rotation.

    Whitespace is stripped because a trailing newline from a secret manager would
    otherwise break every signature.
    """
    secrets = tuple(s.strip() for s in value.split(",") if s.strip())
    if not secrets:
        raise ConfigError(
            f"{SIGNING_SECRET_ENV} is not set: put the webhook's signing secret in .env "
            f"(several may be given, comma-separated)."
        )
    return secrets


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdecimal() or int(raw) <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}.")
    return int(raw)
