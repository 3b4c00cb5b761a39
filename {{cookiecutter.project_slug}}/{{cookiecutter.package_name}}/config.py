"""Settings: the one place the environment is read.

`.env` is loaded here rather than relied on from the `flask` command, because
gunicorn does not read it. Real environment variables always win over `.env`.
Everything else (the webhook, the bot's runners, the bridge, the CLI, the
tunnel) gets its settings from a `Settings` object, never from `os.environ`.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click

from .envfile import load_env_file

WEBHOOK_PATH = "{{ cookiecutter.webhook_path }}"
SIGNING_SECRET_ENV = "{{ cookiecutter.signing_secret_env }}"
DEFAULT_TOLERANCE_SECONDS = {{ cookiecutter.timestamp_tolerance_seconds }}
DEFAULT_MAX_BODY_BYTES = {{ cookiecutter.max_body_bytes }}
# Empty: the SQLite inbox. A redis:// URL: the Redis inbox (REDIS_URL overrides it).
DEFAULT_REDIS_URL = "{{ 'redis://127.0.0.1:6379/0' if cookiecutter.inbox == 'redis' else '' }}"
# bridge/ sits beside the package, at the project's root.
DEFAULT_BRIDGE_DIR = Path(__file__).resolve().parent.parent / "bridge"
DEFAULT_API_URL = "https://spectrum.photon.codes"
NGROK_TOKEN_ENV = "NGROK_AUTHTOKEN"
# A delivery's dedupe key must outlive the window in which its signed request can
# be replayed (the tolerance, either side of its timestamp), with room for skew.
REPLAY_MARGIN_SECONDS = 60
# Names people often use by mistake; ngrok reads only NGROK_TOKEN_ENV.
MISNAMED_NGROK_TOKEN_ENVS = ("NGROK_AUTH_TOKEN", "NGROK_TOKEN")


class ConfigError(click.ClickException):
    """A setting is missing or invalid.

    A ClickException so that `flask` commands print it as one line, not a traceback.
    """


@dataclass(frozen=True)
class Settings:
    # Empty only where nothing is verified or signed (e.g. `webhooks register`,
    # which fetches the first secret); `require_signing_secrets` says so in one line.
    signing_secrets: tuple[str, ...] = ()
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # The project's working files (inbox, sent-replies journal, known webhooks):
    # `instance/` in the folder the app runs from, as for `.env`.
    instance_dir: Path = field(default_factory=lambda: project_root() / "instance")
    env_file: Path = field(default_factory=lambda: project_root() / ".env")
    inbox_path: Path | None = None  # default: <instance_dir>/inbox.sqlite3
    redis_url: str = DEFAULT_REDIS_URL
    # Refuse to serve on a Redis that keeps messages in memory only (see inbox/).
    redis_require_aof: bool = True
    worker_threads: int = 4
    max_attempts: int = 5
    lease_seconds: int = 60
    retention_seconds: int = 3 * 24 * 3600
    # Messages of one conversation are handled one at a time, in order (False: at once).
    ordered: bool = True
    start_worker: bool = True
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line (LOG_FORMAT)
    access_log: bool = False  # gunicorn's line per request; the webhook logs each delivery
    # /metrics (Prometheus): on unless SPECTRUM_METRICS=off; with a token, only for
    # requests that bear it (set one on any public deployment).
    metrics: bool = True
    metrics_token: str = ""
    port: int = 8000
    # Replies (bridge/): the project's credentials, not the webhook signing secret.
    project_id: str = ""
    project_secret: str = ""
    providers: str = "imessage"
    node: str = "node"
    bridge_dir: Path = DEFAULT_BRIDGE_DIR
    journal_dir: Path | None = None  # default: instance_dir
    reply_timeout: int = 15
    # "typing..." shows once a handler has run this long (0: never).
    typing_after: float = 1.0
    attachment_max_bytes: int = 25 * 1024 * 1024  # what ctx.read() fetches at most
    # The management API, for `flask spectrum webhooks ...` and the tunnel.
    api_url: str = DEFAULT_API_URL
    # The tunnel (development only).
    ngrok_authtoken: str = ""
    ngrok_domain: str = ""
    ngrok_misnamed_token: str = ""  # the wrong variable a token was found in, if any

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        if environ is None:
            load_env_file(project_root() / ".env")
            environ = os.environ
        instance_dir = environ.get("SPECTRUM_INSTANCE_DIR", "").strip()
        inbox_path = environ.get("SPECTRUM_INBOX_PATH", "").strip()
        journal_dir = environ.get("SPECTRUM_BRIDGE_JOURNAL_DIR", "").strip()
        settings = cls(
            signing_secrets=parse_secrets(environ.get(SIGNING_SECRET_ENV, "")),
            # Each unset variable falls back to the field's default above.
            tolerance_seconds=_positive_int(
                environ, "SPECTRUM_TIMESTAMP_TOLERANCE", cls.tolerance_seconds
            ),
            max_body_bytes=_positive_int(environ, "SPECTRUM_MAX_BODY_BYTES", cls.max_body_bytes),
            instance_dir=Path(instance_dir) if instance_dir else project_root() / "instance",
            inbox_path=Path(inbox_path) if inbox_path else None,
            redis_url=environ.get("REDIS_URL", cls.redis_url).strip(),
            redis_require_aof=_flag(environ, "SPECTRUM_REDIS_REQUIRE_AOF", True),
            worker_threads=_positive_int(environ, "SPECTRUM_WORKER_THREADS", cls.worker_threads),
            max_attempts=_positive_int(environ, "SPECTRUM_MAX_ATTEMPTS", cls.max_attempts),
            lease_seconds=_positive_int(environ, "SPECTRUM_LEASE_SECONDS", cls.lease_seconds),
            retention_seconds=_positive_int(
                environ, "SPECTRUM_RETENTION_SECONDS", cls.retention_seconds
            ),
            ordered=_order(environ.get("SPECTRUM_ORDER", "")),
            log_level=_log_level(environ.get("LOG_LEVEL", "")),
            log_format=_log_format(environ.get("LOG_FORMAT", "")),
            access_log=_flag(environ, "GUNICORN_ACCESS_LOG", False),
            metrics=_flag(environ, "SPECTRUM_METRICS", True),
            metrics_token=environ.get("SPECTRUM_METRICS_TOKEN", "").strip(),
            port=_positive_int(environ, "PORT", cls.port),
            project_id=environ.get("SPECTRUM_PROJECT_ID", "").strip(),
            project_secret=environ.get("SPECTRUM_PROJECT_SECRET", "").strip(),
            providers=environ.get("SPECTRUM_PROVIDERS", "").strip() or cls.providers,
            node=environ.get("SPECTRUM_NODE", "").strip() or cls.node,
            bridge_dir=Path(environ.get("SPECTRUM_BRIDGE_DIR") or cls.bridge_dir),
            journal_dir=Path(journal_dir) if journal_dir else None,
            reply_timeout=_positive_int(environ, "SPECTRUM_REPLY_TIMEOUT", cls.reply_timeout),
            typing_after=_seconds(environ, "SPECTRUM_TYPING_AFTER", cls.typing_after),
            attachment_max_bytes=_positive_int(
                environ, "SPECTRUM_ATTACHMENT_MAX_BYTES", cls.attachment_max_bytes
            ),
            api_url=_url(environ, "SPECTRUM_API_URL", cls.api_url),
            ngrok_authtoken=environ.get(NGROK_TOKEN_ENV, "").strip(),
            ngrok_domain=environ.get("NGROK_DOMAIN", "").strip(),
            ngrok_misnamed_token=next(
                (name for name in MISNAMED_NGROK_TOKEN_ENVS if environ.get(name, "").strip()), ""
            ),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that would lose or double messages."""
        least = 2 * self.tolerance_seconds + REPLAY_MARGIN_SECONDS
        if self.retention_seconds < least:
            raise ConfigError(
                f"SPECTRUM_RETENTION_SECONDS ({self.retention_seconds}) must be at least "
                f"{least} (twice the timestamp tolerance plus {REPLAY_MARGIN_SECONDS} s): a "
                f"signed delivery replayed after its message id is forgotten would be "
                f"handled again."
            )

    def require_signing_secrets(self) -> tuple[str, ...]:
        """The secrets, for verifying or signing; a one-line error if there are none."""
        if not self.signing_secrets:
            raise ConfigError(
                f"{SIGNING_SECRET_ENV} is not set: put the webhook's signing secret in .env "
                f"(several may be given, comma-separated)."
            )
        return self.signing_secrets

    def __repr__(self) -> str:
        """Every setting, secrets masked: settings end up in logs and tracebacks."""
        shown = []
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name in SECRET_FIELDS and value:
                value = "***" if isinstance(value, str) else ("***",) * len(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def sqlite_path(self) -> Path:
        return self.inbox_path or self.instance_dir / "inbox.sqlite3"

    @property
    def sent_journal_dir(self) -> Path:
        """Shared by every bridge on this machine (see the journal in bridge.mjs)."""
        return self.journal_dir or self.instance_dir

    @property
    def known_webhooks_path(self) -> Path:
        return self.instance_dir / "webhooks.json"

    @property
    def has_project_credentials(self) -> bool:
        return bool(self.project_id and self.project_secret)


def project_root() -> Path:
    """The project's folder (the one with `.flaskenv`), from wherever in it a command
    runs: `flask spectrum ...` in tests/ must find the same `.env` and inbox. Where
    there is none (an installed app), the current folder."""
    here = Path.cwd()
    return next((p for p in (here, *here.parents) if (p / ".flaskenv").is_file()), here)


SECRET_FIELDS = {"signing_secrets", "project_secret", "ngrok_authtoken", "metrics_token"}


def parse_secrets(value: str) -> tuple[str, ...]:
    """Comma-separated secrets: the new one and the old one during a rotation.

    Whitespace is stripped because a trailing newline from a secret manager would
    otherwise break every signature.
    """
    return tuple(s.strip() for s in value.split(",") if s.strip())


def _url(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s):// URL, got {raw!r}.")
    return raw


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}.")
    return raw in ("1", "true", "yes", "on")


def _log_level(value: str) -> str:
    level = value.strip().upper() or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {value!r}.")
    return level


def _log_format(value: str) -> str:
    log_format = value.strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be 'text' or 'json', got {value!r}.")
    return log_format


def _order(value: str) -> bool:
    value = value.strip().lower()
    if value not in ("", "conversation", "none"):
        raise ConfigError(f"SPECTRUM_ORDER must be 'conversation' or 'none', got {value!r}.")
    return value != "none"


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 3600:  # also refuses nan and inf
        raise ConfigError(f"{name} must be a number of seconds (0 turns it off), got {raw!r}.")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdecimal() or int(raw) <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}.")
    return int(raw)
