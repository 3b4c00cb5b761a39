"""The signature recipe and every way a delivery's headers can be wrong."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from conftest import OLD_SECRET, SECRET, TOLERANCE_SECONDS

from {{ cookiecutter.package_name }}.samples import encode, text_delivery
from {{ cookiecutter.package_name }}.verify import sign, verify

NOW = 1_779_735_992
MESSAGE_ID = "spc-msg-00000000-0000-4000-8000-000000000001"
BODY = b'{"event":"messages"}'


def headers(signature: str, timestamp: str | int = NOW) -> dict[str, str]:
    return {"X-Spectrum-Timestamp": str(timestamp), "X-Spectrum-Signature": signature}


# Pinned literals: a change to the recipe cannot pass silently.
@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "expected"),
    [
        pytest.param(
            "0" * 64,
            "1747242392",
            b'{"event":"messages"}',
            "v0=98c4c0494bfc5a84a46c0b923d821f0aaed8ee9847fb94e253f6ff9c83f68d34",
            id="spec-worked-example",
        ),
        pytest.param(
            "e00b2342556a60c1d86974bdd95e1f53c0623ede78dd5aa790c8f28dc2fbf432",
            "1779735992",
            b"",
            "v0=cb847e3d3ffde2adee28dde9bf0856944cc23f0799b7ec97f6fd72d9ced7f337",
            id="empty-body",
        ),
        pytest.param(
            "e00b2342556a60c1d86974bdd95e1f53c0623ede78dd5aa790c8f28dc2fbf432",
            "1779735992",
            encode(text_delivery("Café 👋 — 你好! ñ", message_id=MESSAGE_ID)),
            "v0=af71a522ab87bdb52a521b7535f140bb3943e299301f2527f1592698874468a7",
            id="non-ascii-raw-utf8",
        ),
    ],
)
def test_pinned_vectors(secret: str, timestamp: str, body: bytes, expected: str) -> None:
    """Each was checked against the spectrum-ts SDK's own verifier."""
    assert sign(secret, timestamp, body) == expected
    assert verify(body, headers(expected, timestamp), [secret], int(timestamp), 300).ok


VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_reference_vectors(vector: dict[str, str]) -> None:
    """18 vectors accepted by spectrum-ts's own verifier, bodies signed as exact UTF-8 bytes."""
    body = vector["body"].encode("utf-8")
    assert sign(vector["secret"], vector["timestamp"], body) == vector["expected_header"]
    sent = headers(vector["expected_header"], vector["timestamp"])
    assert verify(body, sent, [vector["secret"]], int(vector["timestamp"]), 300).ok


def test_sample_deliveries_are_byte_identical_to_spectrums() -> None:
    body = encode(text_delivery("Café 👋 — 你好! ñ", message_id=MESSAGE_ID))
    assert hashlib.sha256(body).hexdigest() == (
        "f33f5bc7593781ea63c4c78a7f3124c2598f08ef1dba020acbc8a6a65b78079f"
    )


def test_sdk_negative_cases_agree() -> None:
    """The SDK's own test expectations, verified at its fixed clock."""
    by_name = {v["name"]: v for v in VECTORS}
    now, secret = 1_700_000_000, "whsec_unit_test_secret"

    def check(name: str) -> tuple[int, str]:
        v = by_name[name]
        sent = headers(v["expected_header"], v["timestamp"])
        verdict = verify(v["body"].encode(), sent, [secret], now, 300)
        return verdict.status, verdict.reason

    assert check("sdk-verify-test-edge-of-window")[0] == 200
    assert check("sdk-verify-test-just-outside") == (401, "timestamp 301s old (tolerance 300s)")
    assert check("sdk-verify-test-wrong-secret")[0] == 401


GOOD = sign(SECRET, NOW, BODY)


@pytest.mark.parametrize(
    ("sent", "status", "reason"),
    [
        ({"X-Spectrum-Signature": GOOD}, 400, "missing X-Spectrum-Timestamp header"),
        ({"X-Spectrum-Timestamp": str(NOW)}, 400, "missing X-Spectrum-Signature header"),
        (headers(GOOD, "abc"), 400, "X-Spectrum-Timestamp is not a decimal integer"),
        (headers(GOOD, "-5"), 400, "X-Spectrum-Timestamp is not a decimal integer"),
        (headers(GOOD, "1.5e9"), 400, "X-Spectrum-Timestamp is not a decimal integer"),
        (headers(GOOD, "9" * 5000), 400, "X-Spectrum-Timestamp is not a decimal integer"),
        (headers(GOOD, "١٢٣"), 400, "X-Spectrum-Timestamp is not a decimal integer"),
        (headers(GOOD[3:]), 400, "X-Spectrum-Signature is not 'v0=' followed by 64 hex digits"),
        (
            headers("V0=" + GOOD[3:]),
            400,
            "X-Spectrum-Signature is not 'v0=' followed by 64 hex digits",
        ),
        (headers(GOOD + " "), 400, "X-Spectrum-Signature is not 'v0=' followed by 64 hex digits"),
        (headers(GOOD[:-1]), 400, "X-Spectrum-Signature is not 'v0=' followed by 64 hex digits"),
        (
            headers("v0=" + "zz" * 32),
            400,
            "X-Spectrum-Signature is not 'v0=' followed by 64 hex digits",
        ),
        (headers("v0=" + "0" * 64), 401, "signature does not match any configured secret"),
        (headers(sign("other", NOW, BODY)), 401, "signature does not match any configured secret"),
    ],
)
def test_bad_headers(sent: dict[str, str], status: int, reason: str) -> None:
    verdict = verify(BODY, sent, [SECRET], NOW, TOLERANCE_SECONDS)
    assert (verdict.ok, verdict.status, verdict.reason) == (False, status, reason)


def test_tampered_body_is_rejected() -> None:
    verdict = verify(BODY + b" ", headers(GOOD), [SECRET], NOW, TOLERANCE_SECONDS)
    assert (verdict.status, verdict.reason) == (
        401,
        "signature does not match any configured secret",
    )


def test_window_is_inclusive_and_symmetric() -> None:
    for skew in (-TOLERANCE_SECONDS, 0, TOLERANCE_SECONDS):
        sent = headers(sign(SECRET, NOW + skew, BODY), NOW + skew)
        assert verify(BODY, sent, [SECRET], NOW, TOLERANCE_SECONDS).ok
    old = NOW - TOLERANCE_SECONDS - 1
    verdict = verify(BODY, headers(sign(SECRET, old, BODY), old), [SECRET], NOW, TOLERANCE_SECONDS)
    assert (verdict.status, verdict.reason) == (
        401,
        f"timestamp {TOLERANCE_SECONDS + 1}s old (tolerance {TOLERANCE_SECONDS}s)",
    )
    future = NOW + TOLERANCE_SECONDS + 1
    sent = headers(sign(SECRET, future, BODY), future)
    verdict = verify(BODY, sent, [SECRET], NOW, TOLERANCE_SECONDS)
    assert verdict.status == 401
    assert "in the future" in verdict.reason


def test_stale_timestamp_is_rejected_before_the_signature_is_checked() -> None:
    old = NOW - 10 * TOLERANCE_SECONDS
    verdict = verify(BODY, headers("v0=" + "0" * 64, old), [SECRET], NOW, TOLERANCE_SECONDS)
    assert verdict.status == 401
    assert "old" in verdict.reason


def test_uppercase_hex_and_any_header_case_are_accepted() -> None:
    sent = {"x-spectrum-timestamp": str(NOW), "X-SPECTRUM-SIGNATURE": "v0=" + GOOD[3:].upper()}
    assert verify(BODY, sent, [SECRET], NOW, TOLERANCE_SECONDS).ok


def test_any_configured_secret_matches_and_says_which() -> None:
    new_first = verify(BODY, headers(sign(OLD_SECRET, NOW, BODY)), [SECRET, OLD_SECRET], NOW, 300)
    assert (new_first.ok, new_first.secret_index) == (True, 1)
    assert verify(BODY, headers(GOOD), [SECRET, OLD_SECRET], NOW, 300).secret_index == 0


def test_key_is_the_secret_text_not_hex_decoded() -> None:
    """Pitfall from the spec: a hex-decoded key must not verify."""
    wrong = hmac.new(bytes.fromhex(SECRET), b"v0:%d:" % NOW + BODY, hashlib.sha256).hexdigest()
    assert not verify(BODY, headers("v0=" + wrong), [SECRET], NOW, 300).ok


@pytest.mark.parametrize("secrets", [[], [""], [SECRET, ""]])
def test_empty_secret_is_a_configuration_error(secrets: list[str]) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        verify(BODY, headers(GOOD), secrets, NOW, 300)
    with pytest.raises(ValueError, match="non-empty"):
        sign("", NOW, BODY)
