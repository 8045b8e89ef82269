"""Signature verification: is this request really from Customer.io, and recent?"""

from __future__ import annotations

import hmac
import time

from .._config import WEBHOOK_TOLERANCE
from .._exceptions import WebhookVerificationError

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "verify_signature"]

TIMESTAMP_HEADER = "X-CIO-Timestamp"
"""The header carrying the Unix seconds at which Customer.io signed the request.

Example::

    timestamp = request.headers.get(TIMESTAMP_HEADER)
"""

SIGNATURE_HEADER = "X-CIO-Signature"
"""The header carrying the hex HMAC-SHA256 of ``v0:{timestamp}:{raw body}``.

Example::

    signature = request.headers.get(SIGNATURE_HEADER)
"""

# Unix seconds fit in 64 bits: at most 19 digits. Longer values are not times; they would
# also overflow the float arithmetic of the age check (and int() refuses 4,300+ digits).
_MAX_TIMESTAMP_DIGITS = 19
_TIMESTAMP_LIMIT = 10**_MAX_TIMESTAMP_DIGITS


def _missing(header: str) -> WebhookVerificationError:
    return WebhookVerificationError(f"the {header} header is missing", reason="missing_header")


def _timestamp_text(timestamp: str | int) -> str:
    """The timestamp exactly as signed, once it is known to be plausible Unix seconds."""
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        # Checked as a number: str() of a huge int is slow, and refused past 4,300 digits.
        text = str(timestamp) if 0 <= timestamp < _TIMESTAMP_LIMIT else ""
    else:
        text = str(timestamp)
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_TIMESTAMP_DIGITS):
        raise WebhookVerificationError(
            f"the {TIMESTAMP_HEADER} header is not Unix seconds", reason="invalid_timestamp"
        )
    return text


def _check_signature(key: bytes, ts_text: str, raw_body: bytes, signature: str) -> None:
    expected = hmac.digest(key, b"v0:" + ts_text.encode() + b":" + raw_body, "sha256")
    given = signature.strip()
    if given[:3] in ("v0=", "V0="):
        given = given[3:]
    if not (given.isascii() and hmac.compare_digest(expected.hex(), given.lower())):
        raise WebhookVerificationError(
            f"the {SIGNATURE_HEADER} header does not match the body (wrong signing key, or a "
            "modified or re-serialised body)",
            reason="bad_signature",
        )


def _check_age(ts: int, now: float, tolerance: float) -> None:
    age = now - ts
    if age > tolerance:
        raise WebhookVerificationError(
            f"the request was signed {age:.0f}s ago, more than the {tolerance:g}s tolerance "
            "(a replay, or a clock far behind)",
            reason="too_old",
        )
    if -age > tolerance:
        raise WebhookVerificationError(
            f"the request is signed {-age:.0f}s in the future, more than the {tolerance:g}s "
            "tolerance (check this server's clock)",
            reason="too_new",
        )


def verify_signature(
    raw_body: bytes,
    timestamp: str | int | None,
    signature: str | None,
    signing_key: str | bytes,
    *,
    tolerance: float = WEBHOOK_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check that a request really comes from Customer.io, and recently.

    The signature is compared in constant time. It is checked before the timestamp, so
    "too old" and "too new" are only ever reported for genuine (but stale or early)
    requests. A ``v0=`` prefix and upper-case hex in the header are tolerated.

    Example::

        try:
            verify_signature(
                raw_body,
                headers.get(TIMESTAMP_HEADER),
                headers.get(SIGNATURE_HEADER),
                SIGNING_KEY,
            )
        except WebhookVerificationError as exc:
            return 401, exc.reason          # "bad_signature", "too_old", ...

    Args:
        raw_body: The request body exactly as received (``bytes``, never re-serialised).
        timestamp: The ``X-CIO-Timestamp`` header as received (``None`` when absent).
        signature: The ``X-CIO-Signature`` header (``None`` when absent).
        signing_key: The webhook's signing key.
        tolerance: Largest accepted ``|now - timestamp|`` in seconds (Customer.io documents
            none; 300 s is the usual replay window).
        now: Current Unix time, for tests; defaults to ``time.time()``.

    Returns:
        The verified timestamp, in Unix seconds.

    Raises:
        WebhookVerificationError: ``reason`` is ``"missing_header"``, ``"invalid_timestamp"``
            (not decimal digits, or more than 19 of them), ``"bad_signature"``,
            ``"too_old"`` or ``"too_new"``, each with its own message.
        TypeError: ``raw_body`` is not bytes (a ``str`` body has usually been re-encoded).
        ValueError: ``signing_key`` is empty.
    """
    if not isinstance(raw_body, (bytes, bytearray, memoryview)):
        raise TypeError("raw_body must be the raw request body as bytes")
    if timestamp is None or timestamp == "":
        raise _missing(TIMESTAMP_HEADER)
    if not signature:
        raise _missing(SIGNATURE_HEADER)
    ts_text = _timestamp_text(timestamp)
    key = signing_key.encode() if isinstance(signing_key, str) else signing_key
    if not key:
        raise ValueError("signing_key is required")
    _check_signature(key, ts_text, bytes(raw_body), signature)
    ts = int(ts_text)
    _check_age(ts, time.time() if now is None else now, tolerance)
    return ts
