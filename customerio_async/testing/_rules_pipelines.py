"""Pure rules of the Data Pipelines (CDP) API, as the fake server enforces them.

Contract §5, §7 ("Pipelines" rows), §10 U12, and the vendor Pipelines document (PS), read by
hand (the fake never loads the document at run time): ``POST /identify``, ``/track``,
``/page``, ``/screen``, ``/group``, ``/alias`` and ``/batch`` under ``https://cdp[-eu].customer.io/v1``.

* Messages follow the Segment spec in camelCase. ``identify``/``track``/``page``/``screen``/
  ``group`` need ``userId`` or ``anonymousId`` (non-blank strings; PS "Known User" /
  "Anonymous User" branches), with three documented exceptions: an ``identify`` may pass an
  empty ``userId``/``anonymousId`` when ``traits.email`` identifies the person (PS identify
  description); a ``track`` may name a ``groupId`` instead (PS track "Group" branch); and the
  semantic ``Report Delivery Event`` names a delivery, not a person. ``track`` needs
  ``event``, ``group`` needs ``groupId``, ``alias`` needs ``userId`` and ``previousId``.
* Types as PS declares them (:data:`CONTEXT_SHAPE` and the per-type shapes): ids, names and
  ``messageId`` are strings; ``traits``/``properties``/``context`` objects; ``integrations``
  an object of booleans; ``timestamp``, ``sentAt``, ``originalTimestamp``, ``receivedAt`` and
  ``traits.createdAt`` RFC 3339 date-times (PS ``format: date-time``). Unknown keys are
  allowed, as PS never sets ``additionalProperties: false``.
* Semantic ``track`` events carry the fields PS requires of them (:data:`SEMANTIC_EVENTS`).
* ``/batch`` takes ``{"batch": [...], "context"?, "integrations"?}``; every item names its
  ``type``, one of identify, track, page, screen, group: PS lists no ``alias`` item (its
  ``batch.items`` ``anyOf`` has none), so the fake refuses one rather than let a client depend
  on it (real Pipelines would drop it silently).
* Sizes: "A request is limited to 32KB. A batch request is limited to 500KB total and 32KB per
  call" (PS). Read the way the Track limits are read (:mod:`._rules`): KB = 1024 bytes and a
  body of exactly the limit is allowed, so a message may be 32,768 bytes and a batch
  512,000 bytes. Sizes are measured on the DECODED body (after ``Content-Encoding: gzip``):
  that is the JSON the limits talk about, and compression must not smuggle a bigger message
  through. A batch item is measured as compact JSON, as sent (before batch-level context is
  merged into it).

Every ``check_*`` function returns what it validated or raises :class:`~._rules.RuleViolation`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

from ._rules_base import (
    KB,
    REASON_INVALID,
    REASON_REQUIRED,
    REASON_TOO_LARGE,
    RuleViolation,
    json_size,
)

MAX_MESSAGE_BYTES: Final = 32 * KB  # 32,768
MAX_BATCH_BYTES: Final = 500 * KB  # 512,000
MESSAGE_TYPES: Final = ("identify", "track", "page", "screen", "group", "alias")
BATCH_TYPES: Final = ("identify", "track", "page", "screen", "group")
STRICT_MODE_HEADER: Final = "X-Strict-Mode"

# --------------------------------------------------------------------------- shapes
# A shape is a JSON type (str, bool), NUMBER, DATE_TIME, a tuple of allowed values, a
# one-element list (every item has that shape) or a dict of key -> shape ("*" for any other
# key). Keys a dict shape does not name are left alone.


class _Special:
    def __init__(self, name: str) -> None:
        self.name = name


NUMBER: Final = _Special("a number")
DATE_TIME: Final = _Special("an RFC 3339 date-time string")
Shape = type | _Special | tuple[str, ...] | list[Any] | dict[str, Any]

_STRINGS: Final = {"*": str}
CONTEXT_SHAPE: Final[dict[str, Shape]] = {
    # context_common
    "active": bool,
    "ip": str,
    "locale": str,
    "userAgent": str,
    "channel": ("browser", "server", "mobile"),
    # context_non_mobile
    "campaign": _STRINGS,
    "page": {
        **dict.fromkeys(("name", "path", "referrer", "search", "title", "url"), str),
        "keywords": [str],
    },
    # context_mobile
    "app": dict.fromkeys(("name", "version", "build", "namespace"), str),
    "device": {
        **dict.fromkeys(("id", "advertisingId", "manufacturer", "model", "name", "version"), str),
        "type": ("android", "ios"),
    },
    "network": {"bluetooth": bool, "carrier": str, "cellular": bool, "wifi": bool},
    "os": dict.fromkeys(("name", "version"), str),
}
COMMON_SHAPE: Final[dict[str, Shape]] = {
    **dict.fromkeys(("userId", "anonymousId", "messageId"), str),
    **dict.fromkeys(("timestamp", "sentAt", "originalTimestamp", "receivedAt"), DATE_TIME),
    "version": NUMBER,
    "context": CONTEXT_SHAPE,
    "integrations": {"*": bool},
}
_FLAGS: Final = {"*": bool}
TYPE_SHAPES: Final[Mapping[str, dict[str, Shape]]] = {
    "identify": {
        "traits": {
            "email": str,
            "createdAt": DATE_TIME,
            "unsubscribed": bool,
            "cio_subscription_preferences": {"topics": _FLAGS, "channels": _FLAGS},
        }
    },
    "track": {"event": str, "groupId": str, "properties": {}},
    "page": {
        "name": str,
        "properties": dict.fromkeys(
            ("category", "url", "title", "referrer", "path", "search"), str
        ),
    },
    "screen": {"name": str, "properties": {}},
    "group": {"groupId": str, "traits": {"object_type_id": str, "relationshipAttributes": {}}},
    "alias": {"previousId": str},
}
# Semantic track events (PS info and its track ``oneOf``): required keys (dotted paths into
# the message) and the shape of ``properties``.
SEMANTIC_EVENTS: Final[Mapping[str, tuple[tuple[str, ...], dict[str, Shape]]]] = {
    "Device Created or Updated": (("userId", "context.device.token"), {}),
    "Device Deleted": (("userId", "context.device.token"), {}),
    "User Deleted": (("userId",), {}),
    "User Suppressed": (("userId",), {}),
    "User Unsuppressed": (("userId",), {}),
    "Relationship Deleted": (
        ("userId", "properties.objectId"),
        {"objectId": str, "objectTypeId": int},
    ),
    "Object Deleted": (("anonymousId", "properties"), {"objectId": str, "objectTypeId": int}),
    "Report Delivery Event": (
        ("properties",),
        {
            **dict.fromkeys(("deliveryId", "recipient", "reason", "actionValue", "href"), str),
            "metric": ("delivered", "clicked", "converted", "opened"),
        },
    ),
}
_NO_PERSON_NEEDED: Final = frozenset({"Report Delivery Event"})

_DATE_TIME_TEXT: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)


def _fail(message: str, *, field: str = "", reason: str = REASON_INVALID) -> RuleViolation:
    return RuleViolation(message, field=field, reason=reason)


def is_date_time(value: Any) -> bool:
    """True for an RFC 3339 ``date-time`` string (``2024-05-01T12:30:00.5Z``, ``...+02:00``)."""
    if not isinstance(value, str):
        return False
    match = _DATE_TIME_TEXT.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        # A real calendar date and clock time (no leap second: ":60" is refused, the
        # stricter reading).
        dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    offset_hours, offset_minutes = match.group(8), match.group(9)
    return offset_hours is None or (int(offset_hours) < 24 and int(offset_minutes) < 60)


def _type_ok(value: Any, shape: type | _Special) -> bool:
    if shape is NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if shape is DATE_TIME:
        return is_date_time(value)
    assert isinstance(shape, type)
    return isinstance(value, shape) and not (shape is int and isinstance(value, bool))


def check_shape(value: Any, shape: Shape, *, field: str) -> None:
    """Raise when ``value`` does not have ``shape`` (see the module's shape notation);
    ``field`` names ``value`` in the error (``""`` for the whole message)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise _fail(f"{field or 'a message'} must be an object", field=field)
        for key, item in value.items():
            sub = shape.get(key, shape.get("*"))
            if sub is not None:
                check_shape(item, sub, field=f"{field}.{key}" if field else key)
    elif isinstance(shape, tuple):
        if value not in shape:
            raise _fail(f"{field} must be one of {', '.join(shape)}", field=field)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise _fail(f"{field} must be a list", field=field)
        for index, item in enumerate(value):
            check_shape(item, shape[0], field=f"{field}[{index}]")
    elif not _type_ok(value, shape):
        name = shape.name if isinstance(shape, _Special) else _JSON_NAMES[shape]
        raise _fail(f"{field} must be {name}", field=field)


_JSON_NAMES: Final[Mapping[type, str]] = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
}


def _lookup(message: Mapping[str, Any], path: str) -> Any:
    node: Any = message
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _present(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, str) and bool(value.strip()))


def _check_person(kind: str, message: Mapping[str, Any]) -> None:
    if _present(message.get("userId")) or _present(message.get("anonymousId")):
        return
    traits = message.get("traits")
    email = traits.get("email") if isinstance(traits, dict) else None
    if kind == "identify" and _present(email) and ("userId" in message or "anonymousId" in message):
        return  # "pass an empty userId or anonymousId, and identify people by their email"
    if kind == "track" and (
        _present(message.get("groupId")) or message.get("event") in _NO_PERSON_NEEDED
    ):
        return
    raise _fail("userId or anonymousId is required", field="userId", reason=REASON_REQUIRED)


def _require(message: Mapping[str, Any], *paths: str) -> None:
    for path in paths:
        if not _present(_lookup(message, path)):
            raise _fail(f"{path} is required", field=path, reason=REASON_REQUIRED)


def check_message(kind: str, message: Any) -> dict[str, Any]:
    """Validate one message of type ``kind`` (a single call's body, or a batch item whose
    ``type`` was checked); return it.

    Raises:
        RuleViolation: The first rule the message breaks.
    """
    if not isinstance(message, dict):
        raise _fail("a message must be a JSON object")
    declared = message.get("type", kind)
    if declared != kind:
        raise _fail(f"type must be {kind!r} here", field="type")
    check_shape(message, {**COMMON_SHAPE, **TYPE_SHAPES[kind]}, field="")
    if kind == "alias":
        _require(message, "userId", "previousId")
        return message
    _check_person(kind, message)
    if kind == "track":
        _require(message, "event")
        semantic = SEMANTIC_EVENTS.get(message["event"])
        if semantic is not None:
            required, properties = semantic
            _require(message, *required)
            check_shape(message.get("properties", {}), properties, field="properties")
    elif kind == "group":
        _require(message, "groupId")
    return message


def check_message_size(size: int, *, field: str = "") -> None:
    """A message (a single call's decoded body, or one batch item) is at most 32 KB."""
    if size > MAX_MESSAGE_BYTES:
        raise _fail(
            f"a message cannot be larger than {MAX_MESSAGE_BYTES} bytes",
            field=field,
            reason=REASON_TOO_LARGE,
        )


def check_batch_size(size: int) -> None:
    """A batch request's decoded body is at most 500 KB."""
    if size > MAX_BATCH_BYTES:
        raise _fail(
            f"a batch cannot be larger than {MAX_BATCH_BYTES} bytes", reason=REASON_TOO_LARGE
        )


def check_batch(payload: Mapping[str, Any]) -> list[Any]:
    """Validate the batch envelope (``batch`` list, batch-level ``context``/``integrations``);
    return the items, each still to be checked with :func:`check_batch_item`."""
    items = payload.get("batch")
    if not isinstance(items, list) or not items:
        raise _fail(
            "batch must be a non-empty list of messages", field="batch", reason=REASON_REQUIRED
        )
    for key in ("context", "integrations"):
        if key in payload:
            check_shape(payload[key], COMMON_SHAPE[key], field=key)
    return items


def check_batch_item(item: Any) -> dict[str, Any]:
    """Validate one batch item: its ``type``, its size, then :func:`check_message`."""
    if not isinstance(item, dict):
        raise _fail("a message must be a JSON object")
    kind = item.get("type")
    if kind not in BATCH_TYPES:
        raise _fail(
            f"type must be one of {', '.join(BATCH_TYPES)}", field="type", reason=REASON_REQUIRED
        )
    check_message_size(json_size(item))
    return check_message(str(kind), item)


def merge_batch_level(
    item: Mapping[str, Any], payload: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The effective ``context`` and ``integrations`` of a batch item.

    PS: "the context and integrations objects apply to all calls in the request. You can't
    set different context or integrations values for different calls". The fake merges
    shallowly with the batch-level keys winning, so they apply to every item, and an item's
    own keys that the batch does not set survive (nothing the client sent is lost).
    """
    merged = []
    for key in ("context", "integrations"):
        own = item.get(key)
        shared = payload.get(key)
        merged.append(
            {
                **(own if isinstance(own, dict) else {}),
                **(shared if isinstance(shared, dict) else {}),
            }
        )
    return merged[0], merged[1]
