"""Call-site validation of the API contract's limits (contract §1.4, §2.1, §2.2, §7).

Every check raises :class:`ValidationError` (or :class:`LimitExceededError`) before any
I/O, naming the field and the limit but never echoing the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

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
    "DELIVERY_METRICS",
    "FORM_IDENTIFIER_KEYS",
    "PLATFORMS",
    "PUSH_EVENTS",
    "TIMESTAMP_ATTRIBUTES",
    "DeliveryMetric",
    "PushEvent",
    "check_attributes",
    "check_event_data",
    "check_event_data_size",
    "check_event_name",
    "check_form_data",
    "check_form_id",
    "check_metric_fields",
    "check_platform",
    "check_push_event",
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


# --------------------------------------------------------------------------- forms, metrics
# The vendor Track document (TS) for the form and delivery-report paths (contract §2 rows
# 13-16).

# ``data`` of ``POST /forms/{form_id}/submit`` names the respondent by "one of—and only one
# of—email or id" (its ``oneOf`` rejects both), and every value "must be formatted as strings".
FORM_IDENTIFIER_KEYS = ("email", "id")

DeliveryMetric = Literal[
    "bounced", "clicked", "converted", "deferred", "delivered", "dropped", "opened", "spammed"
]
"""``POST /api/v1/metrics``: the union of the document's six per-channel ``metric`` enums
(email and webhook: all eight; in-app: clicked, converted, opened; push: converted,
delivered, opened; Slack: clicked, converted, delivered, opened; SMS: bounced, clicked,
delivered, opened)."""
DELIVERY_METRICS: tuple[str, ...] = get_args(DeliveryMetric)

# Only the SMS branch types ``recipient`` as an integer (a phone number), so an integer
# recipient needs an SMS metric. Any other body fits the email branch, which declares every
# metric and ``recipient``/``reason``/``href`` as strings.
_SMS_METRICS = frozenset({"bounced", "clicked", "delivered", "opened"})

PushEvent = Literal["opened", "converted", "delivered"]
"""``POST /api/v1/push/events``: the document's ``event`` enum."""
PUSH_EVENTS: tuple[str, ...] = get_args(PushEvent)


def check_form_id(form_id: Any) -> str:
    """A form id: a non-blank string (the document's type) or an integer, as a string.

    Raises:
        ValidationError: For other types or a blank string.
    """
    if isinstance(form_id, bool) or not isinstance(form_id, (str, int)):
        raise ValidationError(
            f"form_id must be a string or an integer, got {type(form_id).__name__}",
            field="form_id",
        )
    # Past ~180 digits an integer is no form id, and str() may hit CPython's digit limit.
    if isinstance(form_id, int) and form_id.bit_length() > 600:
        raise ValidationError("form_id is too long for an integer form id", field="form_id")
    text = str(form_id)
    if not text.strip():
        raise ValidationError("form_id cannot be blank", field="form_id")
    return text


def check_form_data(data: Any) -> tuple[dict[str, str], str]:
    """Validate form fields: a mapping of non-empty string names to string values that
    carries exactly one of ``email`` and ``id`` (the respondent).

    Returns:
        A ``dict`` of the fields, and which identifier key it carries.

    Raises:
        ValidationError: Naming the offending field (never its value).
    """
    if not isinstance(data, Mapping):
        raise ValidationError("data must be a mapping of form fields", field="data")
    fields = dict(data)
    present = [key for key in FORM_IDENTIFIER_KEYS if key in fields]
    if len(present) != 1:
        raise ValidationError(
            "data must carry exactly one of 'email' or 'id' to identify the respondent",
            field="data",
        )
    for name, value in fields.items():
        if not isinstance(name, str) or not name:
            raise ValidationError("form field names must be non-empty strings", field="data")
        if not isinstance(value, str):
            raise ValidationError(
                f"form field values must be strings; data[{name!r}] is {type(value).__name__}",
                field=f"data.{name}",
            )
    return fields, present[0]


def check_metric_fields(metric: Any, recipient: Any, reason: Any, href: Any) -> dict[str, Any]:
    """Validate a delivery metric and its optional fields against the document's channels.

    Returns:
        ``{"metric": ..., }`` plus the optional fields that were given.

    Raises:
        ValidationError: An unknown metric, a field of the wrong type, or an integer
            ``recipient`` (an SMS phone number) with a metric SMS does not report.
    """
    if metric not in DELIVERY_METRICS:
        raise ValidationError(
            f"metric must be one of {', '.join(DELIVERY_METRICS)}", field="metric"
        )
    fields: dict[str, Any] = {"metric": metric}
    if recipient is not None:
        if isinstance(recipient, bool) or not isinstance(recipient, (str, int)):
            raise ValidationError(
                "recipient must be a string (an email, id or device) or an integer (an SMS "
                f"phone number), got {type(recipient).__name__}",
                field="recipient",
            )
        if isinstance(recipient, int) and metric not in _SMS_METRICS:
            raise ValidationError(
                "an integer recipient is an SMS phone number; SMS reports only "
                f"{', '.join(sorted(_SMS_METRICS))}, not {metric}",
                field="recipient",
            )
        fields["recipient"] = recipient
    for name, value in (("reason", reason), ("href", href)):
        if value is not None:
            if not isinstance(value, str):
                raise ValidationError(
                    f"{name} must be a string, got {type(value).__name__}", field=name
                )
            fields[name] = value
    return fields


def check_push_event(event: Any) -> str:
    """A push metric: ``opened``, ``converted`` or ``delivered``.

    Raises:
        ValidationError: For anything else.
    """
    if event not in PUSH_EVENTS:
        raise ValidationError(f"event must be one of {', '.join(PUSH_EVENTS)}", field="event")
    return str(event)
