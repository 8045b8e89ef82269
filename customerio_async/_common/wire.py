"""Wire-format primitives: compact JSON, Unix-second timestamps, path escaping.

Everything that turns Python values into bytes on the wire lives here, so the rules are
applied identically by every endpoint and every mode (direct or batched).
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
import uuid
from typing import Any
from urllib.parse import quote

import orjson

from .._config import MAX_TIMESTAMP_SECONDS
from .._exceptions import LimitExceededError, ValidationError

__all__ = [
    "check_size",
    "datetime_to_seconds",
    "dumps",
    "path_segment",
    "serialise",
    "to_timestamp",
]

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
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_orjson_dumps = orjson.dumps
_find = bytes.find


def dumps(value: Any, *, field: str = "payload") -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON bytes (the bytes that go on the wire).

    Args:
        value: A JSON-compatible structure; ``datetime`` values become Unix seconds.
        field: Name used in the error message.

    Raises:
        ValidationError: For NaN/Infinity, non-string keys (at any depth: JSON has only
            string keys, and converting ``1`` and ``"1"`` would put duplicate keys on the
            wire), lone surrogates, circular references, or values JSON cannot carry. The
            message names the problem and the field, never the value.
    """
    try:
        data = orjson.dumps(value, default=_default, option=_ORJSON_OPTIONS)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        text = str(exc)
        if "exceeds 64-bit range" not in text:
            raise ValidationError(f"{field}: {_orjson_problem(text)}", field=field) from None
        # Integers beyond 64 bits are valid JSON; only the stdlib writes them.
        return _stdlib_dumps(value, field)
    # orjson writes NaN/Infinity as null: only output containing null needs the strict
    # stdlib pass (which refuses NaN); everything else is byte-identical.
    if _find(data, b"null") != -1:
        return _stdlib_dumps(value, field)
    # orjson >= 3.12 never trims its output buffer: a 1 KB result keeps a 16 KiB
    # allocation. Buffered operations hold these bytes for their whole life, so right-size
    # them (a two-part join copies into an exact-size object: ~40 ns) or max_buffer_bytes
    # would understate real memory ~10x.
    return b"".join((data, b""))


def serialise(value: Any, field: str) -> bytes:
    """:func:`dumps` for the hot path: one C call when the value is plain JSON (no NaN,
    nothing to convert), the full rules otherwise. Same bytes as :func:`dumps`."""
    try:
        data = _orjson_dumps(value, None, _ORJSON_OPTIONS)
    except TypeError:  # a datetime, a non-string key, an unsupported type: full rules
        return dumps(value, field=field)
    # `find` rather than `in`: bytes.__contains__ first tries the needle as an int (an
    # internal TypeError), which costs more than the search itself.
    if _find(data, b"null") != -1:
        return dumps(value, field=field)
    return b"".join((data, b""))


def _orjson_problem(text: str) -> str:
    if "key must be str" in text:
        return "keys must be strings (at every depth)"
    if "surrogates not allowed" in text or "not valid UTF-8" in text:
        return "contains a lone surrogate, which is not valid UTF-8"
    if "ecursion" in text:
        return "contains a circular reference or nests too deeply"
    if text.startswith(("values of type", "sets have")):
        return text
    return "values must be JSON-serialisable (str, int, float, bool, None, list, dict)"


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
    except (TypeError, RecursionError) as exc:  # pragma: no cover - orjson refused these first
        raise ValidationError(f"{field}: {_orjson_problem(str(exc))}", field=field) from exc


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


def path_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one URL path segment (``/`` → ``%2F``, ``@`` → ``%40``).

    The result is used with ``encoded=True`` URLs so yarl does not normalise it again. The
    dot segments ``.`` and ``..`` are encoded as ``%2E`` / ``%2E%2E``: raw, any URL layer
    (ours, a proxy, the server's router) would resolve them, and
    ``/customers/ada/devices/..`` would address the person instead of a device.
    """
    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")
    return encoded


def check_size(size: int, limit: int, what: str) -> None:
    """Raise :class:`LimitExceededError` when ``size`` exceeds ``limit`` bytes."""
    if size > limit:
        raise LimitExceededError(
            f"{what} is {size} bytes; the limit is {limit}", size=size, limit=limit, field=what
        )
