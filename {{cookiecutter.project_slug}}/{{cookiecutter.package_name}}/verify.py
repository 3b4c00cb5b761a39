"""Spectrum webhook signatures: one recipe, used to sign and to verify.

    signed = b"v0:" + timestamp header (as sent) + b":" + raw body bytes
    header = "v0=" + hex(HMAC-SHA256(key=secret as UTF-8 text, msg=signed))

The secret is used as its text, never hex-decoded: that is what Spectrum and the
spectrum-ts SDK do. Everything here is pure (no Flask, no clock, no environment),
so the webhook, the CLI's signer and the tests all share exactly this code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

TIMESTAMP_HEADER = "X-Spectrum-Timestamp"
SIGNATURE_HEADER = "X-Spectrum-Signature"

# Bounded length so a hostile header can never reach int()'s huge-number path.
_TIMESTAMP = re.compile(r"[0-9]{1,15}", re.ASCII)
_SIGNATURE = re.compile(r"v0=([0-9a-fA-F]{64})", re.ASCII)


class Headers(Protocol):
    """A dict of headers, or a framework's own kind (werkzeug's `Headers`)."""

    def get(self, key: str, /) -> str | None: ...
    def items(self) -> Iterable[tuple[str, str]]: ...


@dataclass(frozen=True)
class Verdict:
    """Outcome of a signature check: an HTTP status and a short, loggable reason."""

    ok: bool
    status: int
    reason: str
    secret_index: int | None = None  # which configured secret matched (rotation)


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """Return the `X-Spectrum-Signature` value for `body` signed at `timestamp`."""
    if not secret:
        raise ValueError("signing secret must be non-empty")
    signed = b"v0:" + str(timestamp).encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers Spectrum would send with `body`: what the CLI and tests use."""
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def _header(headers: Headers, name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP header names are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def check_headers(headers: Headers, now: float, tolerance: int) -> Verdict:
    """Check everything that can be judged before the body is read."""
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not timestamp:
        return Verdict(False, 400, f"missing {TIMESTAMP_HEADER} header")
    if not signature:
        return Verdict(False, 400, f"missing {SIGNATURE_HEADER} header")
    if not _TIMESTAMP.fullmatch(timestamp):
        return Verdict(False, 400, f"{TIMESTAMP_HEADER} is not a decimal integer")
    if not _SIGNATURE.fullmatch(signature):
        return Verdict(False, 400, f"{SIGNATURE_HEADER} is not 'v0=' followed by 64 hex digits")
    skew = int(now) - int(timestamp)
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "in the future"
        return Verdict(False, 401, f"timestamp {abs(skew)}s {direction} (tolerance {tolerance}s)")
    return Verdict(True, 200, "headers ok")


def verify(
    body: bytes,
    headers: Headers,
    secrets: Sequence[str],
    now: float,
    tolerance: int,
) -> Verdict:
    """Verify one delivery. Several secrets may be configured during a rotation."""
    if not secrets or not all(secrets):
        raise ValueError("at least one non-empty signing secret is required")
    verdict = check_headers(headers, now, tolerance)
    if not verdict.ok:
        return verdict
    timestamp = _header(headers, TIMESTAMP_HEADER)
    match = _SIGNATURE.fullmatch(_header(headers, SIGNATURE_HEADER) or "")
    assert timestamp is not None and match is not None  # guaranteed by check_headers
    received = match.group(1).lower().encode("ascii")
    for index, secret in enumerate(secrets):
        expected = sign(secret, timestamp, body)[3:].encode("ascii")
        if hmac.compare_digest(expected, received):
            return Verdict(True, 200, "signature ok", secret_index=index)
    return Verdict(False, 401, "signature does not match any configured secret")
