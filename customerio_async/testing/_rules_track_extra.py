"""Pure rules of the Track routes outside the identify/event core: forms, unsubscribe, metrics.

Contract §2 rows 13-16, §1.2 (which of them take no credentials) and §1.7 (forms answer 204),
read together with the vendor Track document (TS) for these paths:

* ``POST /api/v1/forms/{form_id}/submit`` (Basic auth): ``{"data": {...}}``; ``data`` carries
  exactly one of ``email``/``id`` (TS: "one of—and only one of"; its ``oneOf`` rejects both)
  and every value is a string ("Values for form fields must be formatted as strings").
* ``POST /unsubscribe/{delivery_id}`` at the host root (no auth): requires
  ``Content-Type: application/json`` (TS: "This endpoint requires a Content-type:
  application/json header"); body ``{"unsubscribe": <bool>}``.
* ``POST /api/v1/metrics`` (no auth): ``delivery_id`` and ``metric`` required; the body is one
  of six per-channel shapes (:data:`METRIC_CHANNELS`), told apart only by the ``metric``
  value and the optional fields' types.
* ``POST /api/v1/push/events`` (no auth, deprecated in TS): ``delivery_id``, ``device_id`` and
  ``event`` in opened/converted/delivered (TS marks none required; the contract and every
  SDK send all three, so the fake requires them).

Every ``check_*`` function returns what it validated or raises :class:`~._rules.RuleViolation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from . import _rules as rules
from ._rules import REASON_REQUIRED, RuleViolation

# Keys Customer.io ignores inside form ``data`` (TS submitForm).
FORM_RESERVED_KEYS: Final = frozenset(
    {"form_id", "form_name", "form_type", "form_url", "form_url_param"}
)
FORM_IDENTIFIER_KEYS: Final = ("email", "id")
PUSH_EVENTS: Final = ("opened", "converted", "delivered")

_EMAIL_METRICS: Final = frozenset(
    {"bounced", "clicked", "converted", "deferred", "delivered", "dropped", "opened", "spammed"}
)
# The six branches of the ``POST /api/v1/metrics`` body (TS ``oneOf`` over ``allOf``
# [track-metrics, channel]): channel -> (its ``metric`` enum, the optional fields it declares
# and their JSON type). Nothing in the body names the channel, so a body is accepted when at
# least one channel claims it: its ``metric`` is in the channel's enum and every optional field
# present is one that channel declares, with that type. (TS leaves undeclared fields open; the
# fake is stricter there, so everything it accepts is still spec-valid.)
METRIC_CHANNELS: Final[Mapping[str, tuple[frozenset[str], Mapping[str, type]]]] = {
    "email": (_EMAIL_METRICS, {"recipient": str, "reason": str, "href": str}),
    "in_app": (frozenset({"clicked", "converted", "opened"}), {"recipient": str, "href": str}),
    "push": (frozenset({"converted", "delivered", "opened"}), {"recipient": str}),
    "slack": (frozenset({"clicked", "converted", "delivered", "opened"}), {"href": str}),
    # TS types the SMS recipient (a phone number) as an integer.
    "sms": (
        frozenset({"bounced", "clicked", "delivered", "opened"}),
        {"recipient": int, "reason": str, "href": str},
    ),
    "webhook": (_EMAIL_METRICS, {"reason": str, "href": str}),
}
DELIVERY_METRICS: Final = frozenset().union(*(m for m, _ in METRIC_CHANNELS.values()))
_METRIC_FIELDS: Final = ("recipient", "reason", "href")


def _fail(message: str, *, field: str = "", reason: str = rules.REASON_INVALID) -> RuleViolation:
    return RuleViolation(message, field=field, reason=reason)


def _required_string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{key} is required", field=key, reason=REASON_REQUIRED)
    return value


def _is_json_type(value: Any, kind: type) -> bool:
    # JSON has no bool-is-an-int: true is not an integer recipient.
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


# --------------------------------------------------------------------------- forms


def check_form_id(form_id: str) -> str:
    """Validate the ``{form_id}`` path segment: any non-blank string (TS: "a value that
    makes sense to you"; an unknown id creates a new form connection)."""
    if not form_id.strip():
        raise _fail("form_id must not be blank", field="form_id", reason=REASON_REQUIRED)
    return form_id


def check_form_submission(body: Mapping[str, Any]) -> dict[str, str]:
    """Validate a form submission body; return the respondent's identifier object.

    Returns:
        ``{"email": ...}`` or ``{"id": ...}``.
    """
    data = body.get("data")
    if not isinstance(data, dict):
        raise _fail("data must be an object of form fields", field="data", reason=REASON_REQUIRED)
    present = [key for key in FORM_IDENTIFIER_KEYS if key in data]
    if len(present) != 1:
        raise _fail("data must carry exactly one of email or id", field="data")
    for name, value in data.items():
        if not isinstance(value, str):
            raise _fail("form field values must be strings", field=f"data.{name}")
    (key,) = present
    return {key: rules.check_identifier(data[key], field=f"data.{key}")}


def form_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes a valid submission sets: its ``data`` minus the reserved ``form_*``
    keys (form fields map to attributes of the same name by default, TS)."""
    data: dict[str, Any] = body["data"]
    return {name: value for name, value in data.items() if name not in FORM_RESERVED_KEYS}


# --------------------------------------------------------------------------- unsubscribe


def is_json_content_type(header: str | None) -> bool:
    """True for ``application/json`` with any parameters (``; charset=utf-8``), any case."""
    media_type = (header or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def check_json_content_type(header: str | None) -> None:
    """Require ``Content-Type: application/json`` (checked before the body is read)."""
    if not is_json_content_type(header):
        raise _fail("Content-Type: application/json is required", field="Content-Type")


def check_unsubscribe(delivery_id: str, body: Mapping[str, Any]) -> bool:
    """Validate ``POST /unsubscribe/{delivery_id}``; return the ``unsubscribe`` flag."""
    if not delivery_id.strip():
        raise _fail("delivery_id must not be blank", field="delivery_id", reason=REASON_REQUIRED)
    flag = body.get("unsubscribe")
    if not isinstance(flag, bool):
        raise _fail(
            "unsubscribe must be true or false", field="unsubscribe", reason=REASON_REQUIRED
        )
    return flag


# --------------------------------------------------------------------------- metrics


def metric_channels(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The channels of :data:`METRIC_CHANNELS` that claim ``body`` (possibly none)."""
    metric = body.get("metric")
    present = [name for name in _METRIC_FIELDS if name in body]
    return tuple(
        channel
        for channel, (metrics, fields) in METRIC_CHANNELS.items()
        if metric in metrics
        and all(name in fields and _is_json_type(body[name], fields[name]) for name in present)
    )


def check_metric(body: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Validate ``POST /api/v1/metrics``.

    Returns:
        ``(delivery_id, channels)``: the channels whose shape the body fits.
    """
    delivery_id = _required_string(body, "delivery_id")
    metric = body.get("metric")
    if not isinstance(metric, str) or metric not in DELIVERY_METRICS:
        raise _fail(f"metric must be one of {', '.join(sorted(DELIVERY_METRICS))}", field="metric")
    if "timestamp" in body:
        rules.check_timestamp(body["timestamp"], field="timestamp")
    channels = metric_channels(body)
    if not channels:
        fields = ", ".join(name for name in _METRIC_FIELDS if name in body)
        raise _fail(
            f"no channel reports a {metric!r} metric with these fields and types: {fields}",
            field=next(name for name in _METRIC_FIELDS if name in body),
        )
    return delivery_id, channels


# --------------------------------------------------------------------------- push events


def check_push_event(body: Mapping[str, Any]) -> tuple[str, str, str]:
    """Validate ``POST /api/v1/push/events``; return ``(delivery_id, device_id, event)``."""
    delivery_id = _required_string(body, "delivery_id")
    device_id = _required_string(body, "device_id")
    event = body.get("event")
    if event not in PUSH_EVENTS:
        raise _fail("event must be one of opened, converted, delivered", field="event")
    if "timestamp" in body:
        rules.check_timestamp(body["timestamp"], field="timestamp")
    return delivery_id, device_id, str(event)
