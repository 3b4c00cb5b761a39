"""Edit `.env` safely, and remember which signing secret belongs to which webhook.

Spectrum shows a webhook's signing secret once, at registration, and never says
later which secret a webhook has. So each registration made from here is noted in
`instance/webhooks.json` (id, URL and a SHA-256 of the secret, never the secret):
enough to drop the right secret when the webhook is deleted, and to tell a
webhook we hold the secret of from one we do not.

`.env` is read, written and loaded with python-dotenv, the parser the app loads it
with, so the secrets read here are the ones the app uses (quotes, `export`,
comments, CRLF, a BOM, the last of duplicate keys), and a value is written with
`set_key`: atomically (a temporary file in the same folder, then `os.replace`),
the file's mode kept. Where `set_key` (python-dotenv 1.2.4) falls short:

- Duplicate keys: it writes the new line at each of them. The app would load the
  right value, but the copies are removed (the last kept, where the loaded one
  was), so that the next hand edit does not change a line that never loads.
- `export KEY=...` loses its `export` unless asked, so it is asked when the line
  had one (for files also `source`d by a shell).
- It quotes every value (`quote_mode="always"`); a value that loads unchanged
  unquoted (a list of hex secrets) is written unquoted, as this project writes
  `.env`, anything else single-quoted.
- It keeps the mode of the file it replaces; a `.env` readable by others is made
  0600 first, so the new one is private too (a new file is 0600 from mkstemp).
- It does not fsync; the new file and its folder are synced after the rename, so
  a secret Spectrum will not show again is on disk when the CLI says it is saved.
- Cosmetic, left as it does: it drops a BOM, turns CRLF line ends into LF (it
  rewrites in text mode), replaces a symlinked `.env` by a file (it does not
  follow symlinks), and drops a comment at the end of the replaced line and blank
  lines directly above it.
- `${VAR}` references are interpolated on load whatever the quoting, so a value
  with one cannot be written back unchanged: such a value is refused, not edited.

Every edit is read back as the app would load it; if that is not the list of
secrets meant, the old file is put back and the edit refused. No lock is taken:
two commands editing `.env` at the same instant can lose one's edit.

A byte that is not UTF-8 stops reading with a one-line error naming the file and
the line, rather than being read as U+FFFD: a replaced character in a secret
would load a secret Spectrum never signs with (401s, which Spectrum does not
retry), and writing the file back would alter other keys' bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import tempfile
from pathlib import Path

import click
from dotenv import dotenv_values, load_dotenv, set_key
from dotenv.parser import Binding, parse_stream  # what set_key and dotenv_values use

_EXPORT = re.compile(r"\s*export\s")
_REFERENCE = "${NAME}"  # what python-dotenv interpolates, quoted or not


class EnvFileError(click.ClickException):
    """`.env` cannot be read or edited as asked; said in one line, never a traceback."""


def load_env_file(path: Path) -> None:
    """Load `path` into `os.environ` as `load_dotenv(path, override=False)` does.

    A missing file is nothing to load; one that cannot be read or is not UTF-8 is
    an `EnvFileError` naming it.
    """
    text = _read(path)
    if text is not None:
        load_dotenv(stream=io.StringIO(text), override=False)


def add_secret(path: Path, name: str, secret: str) -> None:
    """Put `secret` first in the comma-separated list `name`, keeping the others.

    The old secrets stay accepted, so a delivery signed with one still in use is
    never refused.
    """
    if not secret or secret != secret.strip() or "," in secret:
        raise EnvFileError(
            f"the new signing secret cannot go into {name} in {path}: it is empty, has a "
            "comma or surrounding spaces"
        )
    secrets = [secret, *(s for s in read_secrets(path, name) if s != secret)]
    _set(path, name, secrets)


def drop_secret(path: Path, name: str, fingerprint: str) -> bool:
    """Remove the secret with this fingerprint from `name`; False if it is not there."""
    secrets = read_secrets(path, name)
    kept = [s for s in secrets if digest(s) != fingerprint]
    if len(kept) == len(secrets) or not kept:  # never leave the app with no secret at all
        return False
    _set(path, name, kept)
    return True


def read_secrets(path: Path, name: str) -> list[str]:
    """The secrets the app loads from `name` in `path` (split and stripped as config does)."""
    text = _read(path)
    value = dotenv_values(stream=io.StringIO(text)).get(name) if text is not None else None
    return [s.strip() for s in (value or "").split(",") if s.strip()]


def check_env_file(path: Path, name: str) -> None:
    """Raise the `EnvFileError` an edit of `name` would meet, before there is a secret to lose."""
    text = _read(path)
    if text is not None:
        _refuse_references(path, name, text)
    folder = path.parent
    if not os.access(folder, os.W_OK) or (text is not None and not os.access(path, os.W_OK)):
        raise EnvFileError(f"cannot write {path}: make it and its folder writable")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KnownWebhooks:
    """`instance/webhooks.json`: the webhooks registered from this project."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> dict[str, dict[str, str]]:
        try:
            found: dict[str, dict[str, str]] = json.loads(self.path.read_text(encoding="utf-8"))
            return found
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
        _atomic_write(self.path, (json.dumps(known, indent=2) + "\n").encode())


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EnvFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # as python-dotenv 1.2.4 does
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EnvFileError(
            f"{path} is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}): "
            "save it as UTF-8 and run the command again"
        ) from None


def _read(path: Path) -> str | None:
    data = _read_bytes(path)
    return None if data is None else _decode(path, data)


def _bindings(text: str, name: str) -> list[Binding]:
    return [b for b in parse_stream(io.StringIO(text)) if b.key == name]


def _loads_as(text: str, name: str) -> str | None:
    return dotenv_values(stream=io.StringIO(text)).get(name)


def _refuse_references(path: Path, name: str, text: str) -> None:
    raw = dotenv_values(stream=io.StringIO(text), interpolate=False).get(name)
    if raw != _loads_as(text, name):
        raise EnvFileError(
            f"{name} in {path} refers to another variable ({_REFERENCE}), so it cannot be "
            "edited here: write the secrets themselves in it, comma-separated, and run "
            "the command again"
        )


def _set(path: Path, name: str, secrets: list[str]) -> None:
    """Make `name` in `path` load as exactly `secrets`, or leave the file as it was."""
    original = _read_bytes(path)
    text = "" if original is None else _decode(path, original)
    _refuse_references(path, name, text)
    bindings = _bindings(text, name)
    value = ",".join(secrets)
    unquoted = _loads_as(f"{name}={value}\n", name) == value
    try:
        _make_private(path)
        set_key(
            path,
            name,
            value,
            quote_mode="never" if unquoted else "always",
            export=bool(bindings) and _EXPORT.match(bindings[-1].original.string) is not None,
        )
        if len(bindings) > 1:
            _keep_last(path, name)
        _sync(path)
    except (OSError, UnicodeError) as exc:
        raise EnvFileError(
            f"cannot write {path} ({getattr(exc, 'strerror', None) or exc}): the secrets "
            "in it are unchanged"
        ) from None
    if read_secrets(path, name) != secrets:
        _restore(path, original)
        raise EnvFileError(
            f"{name} would not load from {path} as written (python-dotenv changed it), so "
            "the file was left as it was: edit it by hand"
        )


def _make_private(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:
        os.chmod(path, 0o600)


def _keep_last(path: Path, name: str) -> None:
    """Drop all but the last line of `name` (which dotenv loads)."""
    text = _read(path) or ""
    bindings = list(parse_stream(io.StringIO(text)))
    last = max(i for i, b in enumerate(bindings) if b.key == name)
    kept = (b.original.string for i, b in enumerate(bindings) if b.key != name or i == last)
    _atomic_write(path, "".join(kept).encode())


def _restore(path: Path, original: bytes | None) -> None:
    if original is None:
        path.unlink(missing_ok=True)
    else:
        _atomic_write(path, original)


def _sync(path: Path) -> None:
    """Flush the replaced file, then the rename in its folder, to disk (POSIX only)."""
    if os.name != "posix":
        return
    for target, flags in ((path, os.O_RDONLY), (path.parent, os.O_RDONLY | os.O_DIRECTORY)):
        fd = os.open(target, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace the file in one step, readable by its owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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
