"""The wire form of a Pipelines message: JSON as the Segment spec expects it, and the time.

``datetime`` values anywhere become RFC 3339 strings in UTC (naive = UTC) and ``Decimal`` a
number, as analytics-python sends them; NaN, sets and other values JSON cannot carry are refused
at the call site, and so is a message over 32,000 bytes.
"""

from __future__ import annotations

import decimal
import math
import time
from collections.abc import Mapping
from typing import Any

import orjson

from .._config import MAX_PIPELINES_MESSAGE_BYTES
from .._exceptions import LimitExceededError, ValidationError

__all__ = ["encode", "now"]

_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_DATACLASS
_orjson_dumps = orjson.dumps


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise TypeError("NaN and Infinity cannot be sent")
        return float(value)
    if isinstance(value, (set, frozenset)):
        raise TypeError("sets have no order in JSON; pass a list")
    raise TypeError(f"values of type {type(value).__name__} are not JSON-serialisable")


def _problem(exc: TypeError) -> str:
    """orjson's refusal in words (never the value)."""
    text = str(exc)
    if isinstance(exc.__cause__, TypeError):  # our _default's own words
        return str(exc.__cause__)
    if "64-bit" in text:
        return "integers must fit in 64 bits"
    if "key must be str" in text:
        return "keys must be strings (at every depth)"
    if "UTF-8" in text:
        return "contains a lone surrogate, which is not valid UTF-8"
    if "ecursion" in text:
        return "contains a circular reference or nests too deeply"
    return "values must be JSON-serialisable"  # pragma: no cover - orjson's other refusals


def _non_finite(value: Any) -> bool:
    """Whether a NaN or an infinity hides in ``value`` (orjson writes them as null)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_non_finite(item) for item in value)
    return False


def encode(message: Mapping[str, Any], kind: str) -> bytes:
    """Serialise ``message`` (datetimes as RFC 3339 in UTC) and check its size.

    Raises:
        ValidationError: NaN/Infinity, non-string keys, integers beyond 64 bits or values JSON
            cannot carry (the message names the problem, never the value).
        LimitExceededError: Over 32,000 bytes.
    """
    try:
        data = _orjson_dumps(message, _default, _OPTIONS)
    except TypeError as exc:
        raise ValidationError(f"{kind}: {_problem(exc)}", field=kind) from None
    # Only output with a null can hide a NaN: Customer.io's parser refuses NaN, and a null
    # instead would silently change the value.
    if data.find(b"null") != -1 and _non_finite(message):
        raise ValidationError(
            f"{kind} contains NaN or Infinity, which JSON cannot carry", field=kind
        )
    if len(data) > MAX_PIPELINES_MESSAGE_BYTES:
        raise LimitExceededError(
            f"the {kind} message is {len(data)} bytes serialised; a Pipelines message may be at "
            f"most {MAX_PIPELINES_MESSAGE_BYTES} (the API silently drops larger ones)",
            size=len(data),
            limit=MAX_PIPELINES_MESSAGE_BYTES,
            field=kind,
        )
    return b"".join((data, b""))  # right-sized (see _common.wire.dumps)


_last_ms = -1
_now_text = ""


def now() -> str:
    """The current time as the message ``timestamp`` (formatted once per millisecond)."""
    global _last_ms, _now_text
    ms = time.time_ns() // 1_000_000
    if ms != _last_ms:
        _last_ms = ms
        seconds, millis = divmod(ms, 1000)
        _now_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    return _now_text
