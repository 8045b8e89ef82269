"""Signature verification: vectors computed outside Python, tolerated spellings, every
rejection reason and the replay window."""

from __future__ import annotations

import time

import pytest

import customerio_async
from customerio_async import CustomerIOError, WebhookVerificationError
from customerio_async.webhooks import verify_signature

from ._support import BODY, BODY_SIGNATURE, EMPTY_SIGNATURE, KEY, TS, sign


def test_vectors_match_an_external_implementation() -> None:
    assert sign(BODY, TS) == BODY_SIGNATURE
    assert sign(b"", TS) == EMPTY_SIGNATURE
    assert verify_signature(BODY, str(TS), BODY_SIGNATURE, KEY, now=TS) == TS
    assert verify_signature(b"", TS, EMPTY_SIGNATURE, KEY.encode(), now=TS + 1) == TS


@pytest.mark.parametrize(
    "signature",
    [BODY_SIGNATURE.upper(), "v0=" + BODY_SIGNATURE, f"  {BODY_SIGNATURE}  "],
)
def test_tolerated_signature_spellings(signature: str) -> None:
    assert verify_signature(BODY, str(TS), signature, KEY, now=TS) == TS


@pytest.mark.parametrize("body", [bytearray(BODY), memoryview(BODY)])
def test_bytes_like_bodies(body: bytearray | memoryview) -> None:
    assert verify_signature(body, TS, BODY_SIGNATURE, KEY, now=TS) == TS  # type: ignore[arg-type]


def test_verify_uses_the_clock_by_default() -> None:
    now = int(time.time())
    assert verify_signature(BODY, now, sign(BODY, now), KEY) == now


@pytest.mark.parametrize(
    ("body", "timestamp", "signature", "key", "reason", "message"),
    [
        (BODY + b" ", str(TS), BODY_SIGNATURE, KEY, "bad_signature", "does not match"),
        (BODY.replace(b"42", b"43"), str(TS), BODY_SIGNATURE, KEY, "bad_signature", "modified"),
        (BODY, str(TS), BODY_SIGNATURE, "other-key", "bad_signature", "wrong signing key"),
        (BODY, str(TS + 1), BODY_SIGNATURE, KEY, "bad_signature", "does not match"),
        (BODY, str(TS), BODY_SIGNATURE[:-1], KEY, "bad_signature", "does not match"),
        (BODY, str(TS), "é" * 64, KEY, "bad_signature", "does not match"),
        (BODY, None, BODY_SIGNATURE, KEY, "missing_header", "X-CIO-Timestamp header is missing"),
        (BODY, "", BODY_SIGNATURE, KEY, "missing_header", "X-CIO-Timestamp header is missing"),
        (BODY, str(TS), None, KEY, "missing_header", "X-CIO-Signature header is missing"),
        (BODY, str(TS), "", KEY, "missing_header", "X-CIO-Signature header is missing"),
        (BODY, "16130630.5", BODY_SIGNATURE, KEY, "invalid_timestamp", "not Unix seconds"),
        (BODY, "-1613063089", BODY_SIGNATURE, KEY, "invalid_timestamp", "not Unix seconds"),
        (BODY, "١٦١٣٠٦٣٠٨٩", BODY_SIGNATURE, KEY, "invalid_timestamp", "not Unix seconds"),
    ],
)
def test_rejections(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    key: str,
    reason: str,
    message: str,
) -> None:
    with pytest.raises(WebhookVerificationError, match=message) as info:
        verify_signature(body, timestamp, signature, key, now=TS)
    assert info.value.reason == reason
    assert KEY not in str(info.value)


def test_replay_window_has_distinct_errors() -> None:
    # Exactly at the tolerance passes; one second beyond fails, in either direction.
    assert verify_signature(BODY, TS, BODY_SIGNATURE, KEY, now=TS + 300) == TS
    assert verify_signature(BODY, TS, BODY_SIGNATURE, KEY, now=TS - 300) == TS
    with pytest.raises(WebhookVerificationError, match="signed 301s ago") as old:
        verify_signature(BODY, TS, BODY_SIGNATURE, KEY, now=TS + 301)
    with pytest.raises(WebhookVerificationError, match="301s in the future") as new:
        verify_signature(BODY, TS, BODY_SIGNATURE, KEY, now=TS - 301)
    assert (old.value.reason, new.value.reason) == ("too_old", "too_new")
    assert str(old.value) != str(new.value)
    # A custom window.
    with pytest.raises(WebhookVerificationError, match="5s tolerance"):
        verify_signature(BODY, TS, BODY_SIGNATURE, KEY, tolerance=5, now=TS + 6)


def test_a_forged_stale_request_reports_the_signature_not_the_age() -> None:
    with pytest.raises(WebhookVerificationError) as info:
        verify_signature(BODY, TS, "0" * 64, KEY, now=TS + 10_000)
    assert info.value.reason == "bad_signature"


def test_str_bodies_are_refused() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        verify_signature(BODY.decode(), TS, BODY_SIGNATURE, KEY, now=TS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signing_key"):
        verify_signature(BODY, TS, BODY_SIGNATURE, "", now=TS)


def test_error_class() -> None:
    assert issubclass(WebhookVerificationError, CustomerIOError)
    assert issubclass(WebhookVerificationError, ValueError)
    assert customerio_async.webhooks.WebhookVerificationError is WebhookVerificationError


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("9" * 400, id="400-digits"),
        pytest.param("1" + "0" * 5000, id="beyond-int-parsing"),
        pytest.param("1" + "0" * 19, id="20-digits"),
        pytest.param(10**400, id="huge-int"),
        pytest.param(-1, id="negative-int"),
    ],
)
def test_timestamps_too_long_to_be_unix_seconds_are_invalid(timestamp: str | int) -> None:
    # Correctly signed, so only the timestamp can be refused: before the fix, the age
    # arithmetic raised OverflowError (and int() ValueError past 4,300 digits).
    with pytest.raises(WebhookVerificationError, match="not Unix seconds") as info:
        verify_signature(BODY, timestamp, sign(BODY, timestamp), KEY, now=TS)
    assert info.value.reason == "invalid_timestamp"


def test_the_longest_accepted_timestamp_is_judged_by_age() -> None:
    far = "9" * 19  # as many digits as 64-bit Unix seconds have
    with pytest.raises(WebhookVerificationError) as info:
        verify_signature(BODY, far, sign(BODY, far), KEY, now=TS)
    assert info.value.reason == "too_new"
