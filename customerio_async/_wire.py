"""Wire-format primitives: compact JSON, Unix-second timestamps, ULIDs, path escaping.

Everything that turns Python values into bytes on the wire lives here, so the rules are
applied identically by every endpoint and every mode (direct or batched).
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import random
import time
import uuid
from typing import Any
from urllib.parse import quote

try:  # orjson serialises ~20x faster than the stdlib; the stdlib stays the reference.
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson has no wheel
    orjson = None  # type: ignore[assignment]

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
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        raise TypeError("sets have no order in JSON; pass a list")
    raise TypeError(f"values of type {type(value).__name__} are not JSON-serialisable")


# allow_nan=False: Customer.io's JSON parser rejects NaN/Infinity, so we refuse them at the
# call site instead of letting the whole batch fail later. ensure_ascii=False keeps byte
# counts honest (an escaped "é" costs 6 bytes instead of 2).
_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default
)
# Datetimes and dataclasses go through _default, as with the stdlib: Unix seconds, and a
# dataclass is refused rather than silently serialised by one encoder and not the other.
_ORJSON_OPTIONS = (
    (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)
    if orjson is not None
    else 0
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
    if orjson is not None:
        try:
            data = orjson.dumps(value, default=_default, option=_ORJSON_OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            pass  # let the stdlib decide, so errors read the same with or without orjson
        else:
            # orjson writes NaN/Infinity as null: only output containing null needs the
            # strict stdlib pass (which refuses NaN); everything else is byte-identical.
            if b"null" not in data:
                # orjson >= 3.12 never trims its output buffer: a 1 KB result keeps a
                # 16 KiB allocation (4 KiB at least). Buffered operations hold these bytes
                # for their whole life, so right-size them (a two-part join always copies
                # into an exact-size object: ~40 ns) or max_buffer_bytes would understate
                # real memory ~10×.
                return b"".join((data, b""))
    return _stdlib_dumps(value, field)


def _stdlib_dumps(value: Any, field: str) -> bytes:
    try:
        return _encoder.encode(value).encode()
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{field} contains a lone surrogate, which is not valid UTF-8", field=field
        ) from exc
    except ValueError as exc:
        problem = (
            "a circular reference"
            if "ircular" in str(exc)
            else "an integer too long to serialise"
            if "digits" in str(exc)
            else "NaN or Infinity, which JSON cannot carry"
        )
        raise ValidationError(f"{field} contains {problem}", field=field) from exc
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


_last_ms = -1
_last_prefix = ""


def new_ulid(now: float | None = None) -> str:
    """Return a new ULID: 48-bit millisecond time + 80 random bits, Crockford base32.

    Used as the event ``id`` Customer.io de-duplicates on, so a retried event is applied
    once. ``random`` is reseeded after ``fork`` by CPython, so children never repeat ids.
    """
    global _last_ms, _last_prefix
    ms = int((time.time() if now is None else now) * 1000)
    pairs = _PAIRS
    if ms != _last_ms:
        # The 10-character time prefix changes once per millisecond: cache it.
        _last_prefix = (
            _CROCKFORD[(ms >> 45) & 0x7]
            + "".join(pairs[(ms >> shift) & 0x3FF] for shift in (35, 25, 15, 5))
            + _CROCKFORD[ms & 0x1F]
        )
        _last_ms = ms
    # 80 random bits as two 40-bit halves: small-int arithmetic instead of a bigint.
    hi = random.getrandbits(40)
    lo = random.getrandbits(40)
    m = 0x3FF
    return (
        _last_prefix
        + pairs[hi >> 30] + pairs[(hi >> 20) & m] + pairs[(hi >> 10) & m] + pairs[hi & m]
        + pairs[lo >> 30] + pairs[(lo >> 20) & m] + pairs[(lo >> 10) & m] + pairs[lo & m]
    )  # fmt: skip


def path_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one URL path segment (``/`` → ``%2F``, ``@`` → ``%40``).

    The result is used with ``encoded=True`` URLs so yarl does not normalise it again.
    """
    return quote(value, safe="")
