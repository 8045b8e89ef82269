"""Wire-format primitives: compact JSON, Unix-second timestamps, ULIDs, path escaping.

Everything that turns Python values into bytes on the wire lives here, so the rules are
applied identically by every endpoint and every mode (direct or batched).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
import time
from typing import Any
from urllib.parse import quote

from ._config import MAX_TIMESTAMP_SECONDS
from ._exceptions import ValidationError

__all__ = ["dumps", "new_ulid", "path_segment", "to_timestamp"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _default(value: Any) -> Any:
    # datetimes anywhere in a payload become Unix seconds, like the official SDK does;
    # naive ones are read as UTC.
    if isinstance(value, _dt.datetime):
        return datetime_to_seconds(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        raise TypeError("sets have no order in JSON; pass a list")
    raise TypeError(f"values of type {type(value).__name__} are not JSON-serialisable")


# allow_nan=False: Customer.io's JSON parser rejects NaN/Infinity, so we refuse them at the
# call site instead of letting the whole batch fail later. ensure_ascii=False keeps byte
# counts honest (an escaped "é" costs 6 bytes instead of 2).
_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default
)


def dumps(value: Any, *, field: str = "payload") -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON bytes.

    Args:
        value: A JSON-compatible structure; ``datetime`` values become Unix seconds.
        field: Name used in the error message.

    Raises:
        ValidationError: For NaN/Infinity, non-string keys, or values JSON cannot carry.
            The message names the problem and the field, never the value.
    """
    try:
        return _encoder.encode(value).encode()
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{field} contains a lone surrogate, which is not valid UTF-8", field=field
        ) from exc
    except ValueError as exc:
        raise ValidationError(
            f"{field} contains NaN or Infinity, which JSON cannot carry", field=field
        ) from exc
    except (TypeError, RecursionError) as exc:
        # json raises "keys must be str, int, float, bool or None" for odd keys: keep our
        # own wording and never echo the value.
        msg = (
            str(exc)
            if str(exc).startswith(("values of type", "sets have"))
            else ("keys must be strings and values JSON-serialisable")
        )
        raise ValidationError(f"{field}: {msg}", field=field) from exc


def datetime_to_seconds(value: _dt.datetime) -> int:
    """Convert a datetime to integer Unix seconds (naive values are read as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return int((value - _EPOCH).total_seconds())


def to_timestamp(value: Any, *, field: str = "timestamp") -> int:
    """Normalise a timestamp to integer Unix seconds.

    Accepts ``datetime`` (naive = UTC), ``int``, integral ``float`` and strings of digits
    (the official SDK coerces those too).

    Raises:
        ValidationError: For negative values, booleans, non-numeric values, and values of
            100,000,000,000 or more, which are milliseconds, not seconds.
    """
    if isinstance(value, _dt.datetime):
        seconds = datetime_to_seconds(value)
    elif isinstance(value, bool):
        raise ValidationError(f"{field} must be Unix seconds, not a boolean", field=field)
    elif isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and math.isfinite(value):
        seconds = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    else:
        raise ValidationError(
            f"{field} must be a datetime or integer Unix seconds, got {type(value).__name__}",
            field=field,
        )
    if seconds < 0:
        raise ValidationError(f"{field} must not be before 1970", field=field)
    if seconds >= MAX_TIMESTAMP_SECONDS:
        raise ValidationError(
            f"{field} looks like milliseconds; Customer.io takes Unix seconds", field=field
        )
    return seconds


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two characters per table entry: a 10-bit chunk encodes to two base32 digits in one lookup.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


def new_ulid(now: float | None = None) -> str:
    """Return a new ULID: 48-bit millisecond time + 80 random bits, Crockford base32.

    Used as the event ``id`` Customer.io de-duplicates on, so a retried event is applied
    once. ``random`` is reseeded after ``fork`` by CPython, so children never repeat ids.
    """
    ms = int((time.time() if now is None else now) * 1000)
    value = (ms << 80) | random.getrandbits(80)
    # 130 bits of output for 128 bits of value: the leading digit carries 3 bits (0-7).
    pairs = _PAIRS
    out = [_CROCKFORD[value >> 125]]
    for shift in range(115, 4, -10):  # twelve 10-bit pairs: bits 124..5
        out.append(pairs[(value >> shift) & 0x3FF])
    out.append(_CROCKFORD[value & 0x1F])
    return "".join(out)


def path_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one URL path segment (``/`` → ``%2F``, ``@`` → ``%40``).

    The result is used with ``encoded=True`` URLs so yarl does not normalise it again.
    """
    return quote(value, safe="")
