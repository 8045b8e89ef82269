"""The Data Pipelines rules, checked at the call site: what the vendor document (PS) declares.

Read from ``shared/openapi/customer-io-pipelines-api-openapi.json`` by hand (the client never
loads it) and kept independent of the fake server's reading (``customerio_async.testing``):

* ``identify``, ``track``, ``page``, ``screen`` and ``group`` address a person by ``userId``
  or ``anonymousId`` (non-blank strings; analytics-python's integer ids are turned into
  strings). Two documented exceptions: an ``identify`` may carry an empty ``userId`` when
  ``traits.email`` names the person (PS identify description), and the semantic ``Report
  Delivery Event`` names a delivery, not a person. ``alias`` needs ``userId`` and
  ``previousId``.
* Types as PS declares them: ``traits``/``properties``/``context`` are objects, the known
  ``context`` keys have their declared types (:data:`CONTEXT`), ``integrations`` maps names
  to booleans, ``timestamp`` and ``traits.createdAt`` are RFC 3339 date-times with an offset.
* Semantic ``track`` events carry what PS requires of them (:data:`SEMANTIC_EVENTS`).
* Sizes (≤32,000 bytes a message) are checked on the serialised bytes (:mod:`.messages`).

Errors name the field and the rule, never the value.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import ValidationError

__all__ = [
    "CONTEXT",
    "SEMANTIC_EVENTS",
    "check_context",
    "check_integrations",
    "check_semantic",
    "check_traits",
    "identifier",
    "is_rfc3339",
    "mapping",
    "name",
    "require_person",
    "timestamp",
]

Check = Callable[[Any, str], None]
_UTC = _dt.timezone.utc


def _refuse(field: str, what: str) -> ValidationError:
    return ValidationError(f"{field} must be {what}", field=field)


def _string(value: Any, field: str) -> None:
    if not isinstance(value, str):
        raise _refuse(field, "a string")


def _boolean(value: Any, field: str) -> None:
    if not isinstance(value, bool):
        raise _refuse(field, "a boolean")


def _integer(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(field, "an integer")


def _date_time(value: Any, field: str) -> None:
    if isinstance(value, _dt.datetime):
        return  # serialised as RFC 3339 (naive values read as UTC)
    if not is_rfc3339(value):
        raise _refuse(field, "a datetime or an RFC 3339 date-time string with an offset")


def _one_of(*choices: str) -> Check:
    def check(value: Any, field: str) -> None:
        if value not in choices:
            raise _refuse(field, "one of " + ", ".join(choices))

    return check


def _list_of(item: Check) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, (list, tuple)):
            raise _refuse(field, "a list")
        for index, element in enumerate(value):
            item(element, f"{field}[{index}]")

    return check


def _object(known: Mapping[str, Check], rest: Check | None = None) -> Check:
    """An object whose ``known`` keys have their checks (and the others ``rest``, if set)."""

    def check(value: Any, field: str) -> None:
        if not isinstance(value, Mapping):
            raise _refuse(field, "a mapping")
        for key, element in value.items():
            sub = known.get(key, rest) if isinstance(key, str) else None
            if sub is not None:
                sub(element, f"{field}.{key}")

    return check


def _strings(*keys: str) -> dict[str, Check]:
    return dict.fromkeys(keys, _string)


# PS context_common, context_non_mobile (campaign, page) and context_mobile (app, device,
# network, os); the semantic device events add context.device.token.
CONTEXT: Check = _object(
    {
        "active": _boolean,
        **_strings("ip", "locale", "userAgent"),
        "channel": _one_of("browser", "server", "mobile"),
        "campaign": _object({}, rest=_string),
        "page": _object(
            {
                **_strings("name", "path", "referrer", "search", "title", "url"),
                "keywords": _list_of(_string),
            }
        ),
        "app": _object(_strings("name", "version", "build", "namespace")),
        "device": _object(
            {
                **_strings(
                    "id", "advertisingId", "manufacturer", "model", "name", "version", "token"
                ),
                "type": _one_of("android", "ios"),
            }
        ),
        "network": _object(
            {"bluetooth": _boolean, "carrier": _string, "cellular": _boolean, "wifi": _boolean}
        ),
        "os": _object(_strings("name", "version")),
    }
)
_FLAGS = _object({}, rest=_boolean)
_TRAITS: Mapping[str, Check] = {
    "identify": _object(
        {
            "email": _string,
            "createdAt": _date_time,
            "unsubscribed": _boolean,
            "cio_subscription_preferences": _object({"topics": _FLAGS, "channels": _FLAGS}),
        }
    ),
    "group": _object({"object_type_id": _string, "relationshipAttributes": _object({})}),
}
_PAGE_PROPERTIES = _object(_strings("category", "url", "title", "referrer", "path", "search"))
_OBJECT_REF = _object({"objectId": _string, "objectTypeId": _integer})
# Semantic track events (PS info and the track oneOf): the dotted paths each requires and the
# check of its properties.
SEMANTIC_EVENTS: Mapping[str, tuple[tuple[str, ...], Check | None]] = {
    "Device Created or Updated": (("userId", "context.device.token"), None),
    "Device Deleted": (("userId", "context.device.token"), None),
    "User Deleted": (("userId",), None),
    "User Suppressed": (("userId",), None),
    "User Unsuppressed": (("userId",), None),
    "Relationship Deleted": (("userId", "properties.objectId"), _OBJECT_REF),
    "Object Deleted": (("anonymousId", "properties"), _OBJECT_REF),
    "Report Delivery Event": (
        ("properties",),
        _object(
            {
                **_strings("deliveryId", "recipient", "reason", "actionValue", "href"),
                "metric": _one_of("delivered", "clicked", "converted", "opened"),
            }
        ),
    ),
}

# ----------------------------------------------------------------------------- values


def identifier(value: Any, field: str) -> str | None:
    """A ``userId``/``anonymousId``/``groupId``/``previousId``: ``None`` stays absent, an
    integer becomes its decimal string (as analytics-python sends it).

    Raises:
        ValidationError: Anything but a string or an integer.
    """
    if value is None or type(value) is str:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return str(value)
    raise _refuse(field, "a string or an integer")


def _present(value: str | None) -> bool:
    return value is not None and not value.isspace() and value != ""


def require_person(kind: str, user_id: str | None, anonymous_id: str | None, email: Any) -> None:
    """``userId`` or ``anonymousId`` must be non-blank (an identify may use ``traits.email``).

    Raises:
        ValidationError: Neither is given.
    """
    if _present(user_id) or _present(anonymous_id):
        return
    if kind == "identify" and isinstance(email, str) and email.strip():
        return
    extra = " (or traits.email, for identify)" if kind == "identify" else ""
    raise ValidationError(
        f"{kind} needs a non-blank user_id or anonymous_id{extra}", field="user_id"
    )


def name(value: Any, field: str, *, required: bool = False) -> str:
    """An event, page or screen name: a string; ``required`` ones must not be blank.

    Raises:
        ValidationError: Not a string, or blank when required.
    """
    if not isinstance(value, str):
        raise _refuse(field, "a string")
    if required and not value.strip():
        raise ValidationError(f"{field} must not be blank", field=field)
    return value


def mapping(value: Any, field: str) -> dict[str, Any] | None:
    """``traits``, ``properties``, ``context``, ``integrations``: a mapping or ``None``.

    Raises:
        ValidationError: Anything else.
    """
    if value is None or type(value) is dict:
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise _refuse(field, "a mapping")


def check_context(context: Mapping[str, Any]) -> None:
    """The known ``context`` keys have the types PS declares (others pass)."""
    CONTEXT(context, "context")


def check_integrations(integrations: Mapping[str, Any]) -> None:
    """``integrations`` maps destination names to booleans (PS ``integrations``)."""
    _FLAGS(integrations, "integrations")


def check_traits(kind: str, traits: Mapping[str, Any]) -> None:
    """The reserved traits of an identify or a group have their declared types."""
    _TRAITS[kind](traits, "traits")


def check_page_properties(properties: Mapping[str, Any]) -> None:
    """The page properties PS declares (``url``, ``title``…) are strings."""
    _PAGE_PROPERTIES(properties, "properties")


def check_semantic(message: Mapping[str, Any]) -> None:
    """A semantic event (one of :data:`SEMANTIC_EVENTS`) carries what PS requires of it (e.g.
    ``User Deleted`` a ``userId``).

    Raises:
        ValidationError: A required field is missing, or a property has the wrong type.
    """
    required, properties = SEMANTIC_EVENTS[message["event"]]
    for path in required:
        node: Any = message
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None or node == "" or (isinstance(node, str) and node.isspace()):
            raise ValidationError(f"the {message['event']!r} event needs {path}", field=path)
    if properties is not None:
        properties(message.get("properties", {}), "properties")


# ----------------------------------------------------------------------------- time

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))"
)


def is_rfc3339(value: Any) -> bool:
    """Whether ``value`` is an RFC 3339 date-time string: a real date and time, with ``Z``
    or an offset (PS ``format: date-time``; a leap second ``:60`` is refused)."""
    if not isinstance(value, str):
        return False
    match = _RFC3339.fullmatch(value)
    if match is None:
        return False
    y, mo, d, h, mi, s = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    try:
        _dt.datetime(y, mo, d, h, mi, s)
    except ValueError:
        return False
    oh, om = match.group(8, 9)
    return oh is None or (int(oh) < 24 and int(om) < 60)


def format_datetime(value: _dt.datetime) -> str:
    """``value`` as RFC 3339 in UTC with milliseconds: ``2024-05-01T12:30:00.000Z`` (naive
    values are read as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    elif value.utcoffset():
        value = value.astimezone(_UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def timestamp(value: Any) -> str:
    """The wire form of a message ``timestamp``: a ``datetime`` (naive = UTC) as RFC 3339 in
    UTC, or an RFC 3339 string as it is.

    Raises:
        ValidationError: Anything else (Unix seconds included: Pipelines takes ISO-8601).
    """
    if isinstance(value, _dt.datetime):
        return format_datetime(value)
    if is_rfc3339(value):
        return str(value)
    raise _refuse("timestamp", "a datetime or an RFC 3339 date-time string with an offset")
