"""Call-site validation of the API contract's limits (contract §1.4, §2.1, §2.2, §7).

Every check raises :class:`ValidationError` (or :class:`LimitExceededError`) before any
I/O, naming the field and the limit but never echoing the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._common.wire import dumps, to_timestamp
from .._config import (
    MAX_ATTRIBUTE_NAME_BYTES,
    MAX_ATTRIBUTE_VALUE_BYTES,
    MAX_ATTRIBUTES,
    MAX_EVENT_DATA_BYTES,
    MAX_EVENT_NAME_BYTES,
)
from .._exceptions import LimitExceededError, ValidationError
from .._identifiers import json_size

__all__ = [
    "PLATFORMS",
    "TIMESTAMP_ATTRIBUTES",
    "check_attributes",
    "check_event_data",
    "check_event_data_size",
    "check_event_name",
    "check_platform",
]

# Attribute keys that carry structure rather than a value; the 1000-byte value limit is
# about stored profile values, and these are instructions (relationships, preferences).
STRUCTURAL_KEYS = frozenset({"cio_relationships", "cio_subscription_preferences"})


# Attributes the API documents as Unix-second timestamps (contract §2.1): the same rule as
# `timestamp=` applies at the call site (a millisecond value fails here, not later).
TIMESTAMP_ATTRIBUTES = frozenset({"created_at", "_timestamp"})
PLATFORMS = ("ios", "android")


def check_platform(platform: Any) -> str:
    """A device platform: ``"ios"`` or ``"android"`` (the vendor document's enum).

    Raises:
        ValidationError: For anything else.
    """
    if platform not in PLATFORMS:
        raise ValidationError("platform must be 'ios' or 'android'", field="platform")
    return str(platform)


def check_attributes(
    attributes: Mapping[str, Any], field: str = "attributes", *, timestamps: bool = False
) -> None:
    """Check an attribute map: ≤300 keys, names ≤150 bytes, values ≤1000 bytes — sizes as
    the server sees them, in the JSON body: a value counts as serialised (a string with its
    quotes, escapes counted: a control character is 6 bytes), a name without quotes.

    Args:
        attributes: The map.
        field: Its name, for errors.
        timestamps: Also check the documented timestamp attributes (``created_at``,
            ``_timestamp``) like ``timestamp=`` (Unix seconds, not milliseconds).

    Raises:
        ValidationError: For a non-mapping, a non-string or blank name, a bad timestamp.
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
        # Fast paths: no character costs more than 6 bytes in JSON, so short strings cannot
        # exceed a limit and only long ones are measured.
        if len(name) * 6 > MAX_ATTRIBUTE_NAME_BYTES:
            _check_name(name, field)
        if timestamps and name in TIMESTAMP_ATTRIBUTES and value is not None:
            to_timestamp(value, field=f"{field}.{name}")
        if value is None or isinstance(value, (bool, float)) or name in STRUCTURAL_KEYS:
            continue
        if type(value) is str:
            if len(value) * 6 + 2 <= MAX_ATTRIBUTE_VALUE_BYTES:
                continue
            size = json_size(value, f"{field}.{name}") + 2  # serialised: quotes included
        elif isinstance(value, int):
            bits = value.bit_length()
            if bits <= 3000:  # at most 904 digits: always within the value limit
                continue
            # str() is exact below CPython's 4,300-digit cap; past 14,000 bits (4,214+
            # digits) the value is over the limit whatever its exact length.
            size = len(str(value)) if bits <= 14_000 else bits * 3 // 10
        else:
            size = len(dumps(value, field=f"{field}.{name}"))
        if size > MAX_ATTRIBUTE_VALUE_BYTES:
            raise LimitExceededError(
                f"value of attribute {name!r} in {field} is {size} bytes as JSON; "
                f"the limit is {MAX_ATTRIBUTE_VALUE_BYTES}",
                size=size,
                limit=MAX_ATTRIBUTE_VALUE_BYTES,
                field=f"{field}.{name}",
            )


def _check_name(name: str, field: str) -> None:
    size = json_size(name, field)
    if size > MAX_ATTRIBUTE_NAME_BYTES:
        raise LimitExceededError(
            f"an attribute name in {field} is {size} bytes as JSON; "
            f"the limit is {MAX_ATTRIBUTE_NAME_BYTES}",
            size=size,
            limit=MAX_ATTRIBUTE_NAME_BYTES,
            field=field,
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
    size = json_size(trimmed, field) if len(trimmed) * 6 > MAX_EVENT_NAME_BYTES else 0
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
    if type(data) is dict:
        return data
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValidationError(f"{field} must be a mapping (a JSON object)", field=field)
    # Keys at every depth are checked when the operation is serialised (JSON keys are
    # strings; converting 1 and "1" would put duplicate keys on the wire).
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
