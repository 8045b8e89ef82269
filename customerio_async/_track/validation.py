"""Call-site validation of the API contract's limits (contract §1.4, §2.1, §2.2, §7).

Every check raises :class:`ValidationError` (or :class:`LimitExceededError`) before any
I/O, naming the field and the limit but never echoing the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._common.wire import dumps
from .._config import (
    MAX_ATTRIBUTE_NAME_BYTES,
    MAX_ATTRIBUTE_VALUE_BYTES,
    MAX_ATTRIBUTES,
    MAX_EVENT_DATA_BYTES,
    MAX_EVENT_NAME_BYTES,
)
from .._exceptions import LimitExceededError, ValidationError
from .._identifiers import check_identifier

__all__ = [
    "check_attributes",
    "check_event_data",
    "check_event_name",
    "check_identifier",
]

# Attribute keys that carry structure rather than a value; the 1000-byte value limit is
# about stored profile values, and these are instructions (relationships, preferences).
STRUCTURAL_KEYS = frozenset({"cio_relationships", "cio_subscription_preferences"})


def check_attributes(attributes: Mapping[str, Any], field: str = "attributes") -> None:
    """Check an attribute map: ≤300 keys, names ≤150 bytes, values ≤1000 bytes serialised.

    Raises:
        ValidationError: For a non-mapping, a non-string or blank name.
        LimitExceededError: For too many attributes, a long name or a large value.
    """
    if not isinstance(attributes, Mapping):
        raise ValidationError(f"{field} must be a mapping", field=field)
    count = len(attributes)
    if count > MAX_ATTRIBUTES:
        raise LimitExceededError(
            f"{field} has {count} attributes; the limit is {MAX_ATTRIBUTES} per call",
            size=count,
            limit=MAX_ATTRIBUTES,
            field=field,
        )
    for name, value in attributes.items():
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{field} names must be non-empty strings", field=field)
        # Fast paths: short ASCII-or-not strings cannot exceed the byte limits (4 bytes per
        # code point at most), so only long names/values pay for an encode.
        if len(name) * 4 > MAX_ATTRIBUTE_NAME_BYTES:
            size = len(name.encode("utf-8", "surrogatepass"))
            if size > MAX_ATTRIBUTE_NAME_BYTES:
                raise LimitExceededError(
                    f"an attribute name in {field} is {size} bytes; "
                    f"the limit is {MAX_ATTRIBUTE_NAME_BYTES}",
                    size=size,
                    limit=MAX_ATTRIBUTE_NAME_BYTES,
                    field=field,
                )
        if value is None or isinstance(value, (bool, float)) or name in STRUCTURAL_KEYS:
            continue
        if isinstance(value, int):
            bits = value.bit_length()
            if bits <= 3000:  # at most 904 digits: always within the value limit
                continue
            # str() is exact below CPython's 4,300-digit cap; past 14,000 bits (4,214+
            # digits) the value is over the limit whatever its exact length.
            size = len(str(value)) if bits <= 14_000 else bits * 3 // 10
        elif isinstance(value, str) and len(value) * 4 <= MAX_ATTRIBUTE_VALUE_BYTES:
            continue
        else:
            size = len(dumps(value, field=f"{field}[{name!r}]"))
        if size > MAX_ATTRIBUTE_VALUE_BYTES:
            raise LimitExceededError(
                f"value of attribute {name!r} in {field} is {size} bytes serialised; "
                f"the limit is {MAX_ATTRIBUTE_VALUE_BYTES}",
                size=size,
                limit=MAX_ATTRIBUTE_VALUE_BYTES,
                field=f"{field}.{name}",
            )


def check_event_name(name: Any, field: str = "name") -> str:
    """Validate an event (or page/screen) name: non-blank after trimming, ≤100 bytes.

    Returns:
        The name with surrounding spaces removed (the server trims them anyway, and the
        limit applies to the trimmed name).
    """
    if not isinstance(name, str):
        raise ValidationError(f"{field} must be a string, got {type(name).__name__}", field=field)
    trimmed = name.strip()
    if not trimmed:
        raise ValidationError(f"{field} cannot be blank", field=field)
    size = len(trimmed.encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT_NAME_BYTES:
        raise LimitExceededError(
            f"{field} is {size} bytes; the limit is {MAX_EVENT_NAME_BYTES}",
            size=size,
            limit=MAX_EVENT_NAME_BYTES,
            field=field,
        )
    return trimmed


def check_event_data(data: Any, field: str = "data") -> dict[str, Any]:
    """Validate event data: a mapping (``None`` means empty). Size is checked on the body.

    Returns:
        The data itself when it is a ``dict`` (it is serialised before the call returns,
        so no defensive copy is needed), else a ``dict`` of it.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValidationError(f"{field} must be a mapping (a JSON object)", field=field)
    for key in data:
        if not isinstance(key, str):
            raise ValidationError(f"{field} keys must be strings", field=field)
    return data if type(data) is dict else dict(data)


def check_event_data_size(data: Mapping[str, Any], body_size: int, field: str = "data") -> None:
    """Enforce the 100,000-byte event-data limit, paying for a second encode only when the
    whole serialised body is already larger than the limit (otherwise ``data`` cannot be).
    """
    if body_size <= MAX_EVENT_DATA_BYTES:
        return
    size = len(dumps(data, field=field))
    if size > MAX_EVENT_DATA_BYTES:
        raise LimitExceededError(
            f"{field} is {size} bytes serialised; the limit is {MAX_EVENT_DATA_BYTES}",
            size=size,
            limit=MAX_EVENT_DATA_BYTES,
            field=field,
        )
