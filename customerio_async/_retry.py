"""Retry decisions as pure functions: what is retryable, and how long to wait.

Constants live in :mod:`customerio_async._config`; this module only computes.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time

__all__ = ["parse_retry_after"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header into non-negative seconds.

    Accepts delay-seconds (``"2"``, ``"1.5"``) and an HTTP-date (naive dates read as UTC).
    Customer.io documents no ``Retry-After``, so absence and garbage both yield ``None``
    and the caller falls back to its own backoff.

    Args:
        value: The header value, or ``None`` when absent.
        now: Current Unix time, for tests; defaults to ``time.time()``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            # "-0000" dates parse naive; reading them as local time is the bug Segment had.
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
