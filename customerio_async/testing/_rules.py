"""Pure validation rules of the Customer.io Track API, as the fake server enforces them.

Nothing here does I/O or touches server state: every ``check_*`` function either returns
the validated value or raises :class:`RuleViolation`, which the server turns into the
right error envelope (v1 ``meta.error``/``meta.errors``, or v2 ``errors[]``).

The rules come from the shared contract (``customerio-contract.md``): §1.2 (auth), §1.4
(identifiers and escaping), §1.5 (timestamps), §1.6 (event ids), §2 (v1 bodies), §3 (v2
operations) and §9 rule 4 (limits). Error messages reuse the vendor's wording where the
contract quotes it (DOC-ERR), so a client's error parsing sees realistic text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, NoReturn

from ._rules_base import KB as KB
from ._rules_base import REASON_INVALID as REASON_INVALID
from ._rules_base import REASON_REQUIRED as REASON_REQUIRED
from ._rules_base import REASON_TOO_LARGE as REASON_TOO_LARGE
from ._rules_base import REASON_TOO_LONG as REASON_TOO_LONG
from ._rules_base import RuleViolation as RuleViolation
from ._rules_base import credentials_match as credentials_match
from ._rules_base import json_size as json_size
from ._rules_base import parse_basic_credentials as parse_basic_credentials
from ._rules_base import parse_json_object as parse_json_object
from ._rules_base import split_path as split_path
from ._rules_base import utf8_len as utf8_len

# --------------------------------------------------------------------------- limits
# §1.4 / §2.1 / §7: identifiers, attribute names and values.
MAX_IDENTIFIER_BYTES: Final = 150
MAX_ATTRIBUTES: Final = 300
MAX_ATTRIBUTE_NAME_BYTES: Final = 150
MAX_ATTRIBUTE_VALUE_BYTES: Final = 1000
# §2.2: event names and data.
MAX_EVENT_NAME_BYTES: Final = 100
MAX_EVENT_DATA_BYTES: Final = 100_000
# §1.5: a seconds timestamp has at most 11 digits; 12 or more digits means milliseconds.
MAX_TIMESTAMP: Final = 100_000_000_000
# §2 (segments): ``ids`` holds 1..1000 entries (TS ``maxItems``).
MAX_SEGMENT_IDS: Final = 1000
# §3.3: the contract (TS) only says "/entity < 32 KB", "/batch < 500 KB" and "each operation
# <= 32 KB". The fake reads "KB" as 1024 bytes and allows a body of exactly the constant
# (larger is rejected). The SDK keeps its own, lower limits and stays below both readings.
# The Pipelines limits (_rules_pipelines) are read the same way.
MAX_ENTITY_BYTES: Final = 32 * KB  # 32,768
MAX_BATCH_BYTES: Final = 500 * KB  # 512,000
MAX_OP_BYTES: Final = 32 * KB  # 32,768

# Reserved identify keys whose values are structures, not attribute values, so the
# 1000-byte value limit does not apply to them (§2.1).
STRUCTURAL_ATTRIBUTES: Final = frozenset({"cio_relationships", "cio_subscription_preferences"})


# §3.1 action matrix.
V2_ACTIONS: Final[Mapping[str, frozenset[str]]] = {
    "person": frozenset(
        {
            "identify",
            "delete",
            "event",
            "page",
            "screen",
            "add_relationships",
            "delete_relationships",
            "add_device",
            "delete_device",
            "merge",
            "suppress",
            "unsuppress",
        }
    ),
    "object": frozenset(
        {"identify", "identify_anonymous", "delete", "add_relationships", "delete_relationships"}
    ),
    "delivery": frozenset({"event"}),
}
PERSON_IDENTIFIER_KEYS: Final = ("id", "email", "phone", "cio_id")
MERGE_IDENTIFIER_KEYS: Final = ("id", "email", "cio_id")
SEGMENT_ID_TYPES: Final = ("id", "email", "cio_id")
V1_EVENT_TYPES: Final = ("event", "page", "screen")
DELIVERY_EVENT_NAMES: Final = ("opened", "converted", "delivered")

# Crockford base32 without I, L, O, U; the first character is 0-7 because a ULID is 128 bits.
_ULID: Final = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
_OBJECT_TYPE_ID: Final = re.compile(r"[1-9][0-9]*")
_SEGMENT_ID: Final = re.compile(r"[1-9][0-9]*")


def _fail(message: str, *, field: str = "", reason: str = REASON_INVALID) -> NoReturn:
    raise RuleViolation(message, field=field, reason=reason)


# --------------------------------------------------------------------------- scalar rules


def is_ulid(value: object) -> bool:
    """Return True when ``value`` is a ULID string (26 Crockford base32 chars, any case)."""
    return isinstance(value, str) and _ULID.fullmatch(value) is not None


def check_identifier(value: Any, *, field: str) -> str:
    """Validate an identifier value: a non-blank string of at most 150 UTF-8 bytes."""
    if not isinstance(value, str):
        _fail(f"{field} must be a string", field=field)
    if not value.strip():
        _fail(f"{field} must not be blank", field=field, reason=REASON_REQUIRED)
    if utf8_len(value) > MAX_IDENTIFIER_BYTES:
        _fail(
            f"{field} cannot be longer than {MAX_IDENTIFIER_BYTES} bytes",
            field=field,
            reason=REASON_TOO_LONG,
        )
    return value


def check_timestamp(value: Any, *, field: str) -> int:
    """Validate a Unix timestamp: an int (not bool) in seconds, below 100,000,000,000."""
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(f"{field} must be an integer unix timestamp in seconds", field=field)
    if value >= MAX_TIMESTAMP:
        _fail(f"{field} looks like milliseconds; send seconds", field=field)
    return value


def check_event_name(value: Any, *, field: str = "name") -> str:
    """Validate an event name; return it with surrounding whitespace trimmed (§2.2)."""
    if not isinstance(value, str) or not value.strip():
        _fail("event name must not be blank", field=field, reason=REASON_REQUIRED)
    name = value.strip()
    if utf8_len(name) > MAX_EVENT_NAME_BYTES:
        _fail(
            f"event name cannot be longer than {MAX_EVENT_NAME_BYTES} bytes",
            field=field,
            reason=REASON_TOO_LONG,
        )
    return name


def check_event_data(value: Any, *, field: str) -> dict[str, Any]:
    """Validate event data: a JSON object of at most 100,000 bytes."""
    if not isinstance(value, dict):
        _fail("event data must be a hash", field=field)
    if json_size(value) > MAX_EVENT_DATA_BYTES:
        _fail(
            f"event data cannot be longer than {MAX_EVENT_DATA_BYTES} bytes",
            field=field,
            reason=REASON_TOO_LONG,
        )
    return value


def check_event_id(value: Any, *, strict_ulid: bool, field: str = "id") -> str:
    """Validate a present event de-duplication id (§1.6).

    Args:
        value: The ``id`` value; the caller only calls this when the key is present.
        strict_ulid: Require a ULID (§10 U13); otherwise any non-empty string.
        field: Field name for the error.
    """
    if not isinstance(value, str) or not value:
        _fail("event id must be a non-empty string", field=field)
    if strict_ulid and not is_ulid(value):
        _fail("event id must be a ULID", field=field)
    return value


def _check_optional_object(container: Mapping[str, Any], key: str, *, field: str) -> None:
    if key in container and not isinstance(container[key], dict):
        _fail(f"{field} must be an object", field=field)


def _require_string(container: Mapping[str, Any], key: str, *, field: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value.strip():
        _fail(f"{field} is required", field=field, reason=REASON_REQUIRED)
    return value


# --------------------------------------------------------------------------- attributes


def check_attributes(attributes: Mapping[str, Any], *, field: str) -> None:
    """Enforce the per-identify attribute limits (§2.1, §9 rule 4).

    At most 300 attributes; each name non-empty and at most 150 bytes; each value at most
    1000 bytes as compact JSON, except the structural keys in ``STRUCTURAL_ATTRIBUTES``.
    """
    if len(attributes) > MAX_ATTRIBUTES:
        _fail(
            f"cannot identify more than {MAX_ATTRIBUTES} attributes in one request",
            field=field,
            reason=REASON_TOO_LONG,
        )
    for name, value in attributes.items():
        if not name:
            _fail("attribute name must not be blank", field=field, reason=REASON_REQUIRED)
        if utf8_len(name) > MAX_ATTRIBUTE_NAME_BYTES:
            _fail(
                f"attribute name cannot be longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes",
                field=field,
                reason=REASON_TOO_LONG,
            )
        if name in STRUCTURAL_ATTRIBUTES:
            continue
        if json_size(value) > MAX_ATTRIBUTE_VALUE_BYTES:
            _fail(
                f"value for attribute '{name}' cannot be longer than "
                f"{MAX_ATTRIBUTE_VALUE_BYTES} bytes",
                field=f"{field}.{name}" if field else name,
                reason=REASON_TOO_LONG,
            )


def check_person_attributes(attributes: Mapping[str, Any], *, field: str) -> None:
    """Attribute limits plus the typed reserved person attributes (§2.1).

    ``id`` must be a string (DOC-ERR "id attribute must be a string value");
    ``created_at`` and ``_timestamp`` must be second timestamps.
    """
    check_attributes(attributes, field=field)
    prefix = f"{field}." if field else ""
    if "id" in attributes and not isinstance(attributes["id"], str):
        _fail("id attribute must be a string value", field=f"{prefix}id")
    for key in ("created_at", "_timestamp"):
        if key in attributes:
            check_timestamp(attributes[key], field=f"{prefix}{key}")


# --------------------------------------------------------------------------- v1 bodies


def v1_person_identifiers(segment: str) -> dict[str, str]:
    """Infer the identifier a v1 ``/customers/{identifier}`` path addresses (§1.4).

    ``cio_<x>`` is a cio_id (prefix stripped), a value containing ``@`` is an email,
    anything else is an id, which is how the real service reads the path.
    """
    if segment.startswith("cio_"):
        kind, value = "cio_id", segment[len("cio_") :]
    elif "@" in segment:
        kind, value = "email", segment
    else:
        kind, value = "id", segment
    return {kind: check_identifier(value, field=kind)}


def check_v1_event(body: Mapping[str, Any], *, strict_ulid: bool) -> tuple[str, str | None]:
    """Validate a v1 customer or anonymous event body (§2.2, §2.3).

    Returns:
        ``(type, event_id)``: the event type (event, page or screen) and the
        de-duplication id, or None when the body has none.
    """
    check_event_name(body.get("name"))
    event_type = body.get("type", "event")
    if event_type not in V1_EVENT_TYPES:
        _fail("type must be one of event, page, screen", field="type")
    if "data" in body:
        check_event_data(body["data"], field="data")
    if "timestamp" in body:
        check_timestamp(body["timestamp"], field="timestamp")
    if "anonymous_id" in body and not isinstance(body["anonymous_id"], str):
        # An empty string is allowed: the Node SDK sends "" for invite events (§2.3).
        _fail("anonymous_id must be a string", field="anonymous_id")
    event_id = check_event_id(body["id"], strict_ulid=strict_ulid) if "id" in body else None
    return str(event_type), event_id


def check_v1_device(body: Mapping[str, Any]) -> None:
    """Validate a v1 device body: ``device.id`` and ``device.platform`` are required (§2.4)."""
    device = body.get("device")
    if not isinstance(device, dict):
        _fail("device is required", field="device", reason=REASON_REQUIRED)
    _require_string(device, "id", field="device.id")
    _require_string(device, "platform", field="device.platform")
    if "last_used" in device:
        check_timestamp(device["last_used"], field="device.last_used")
    _check_optional_object(device, "attributes", field="device.attributes")


def check_merge_side(value: Any, *, field: str) -> dict[str, str]:
    """Validate a merge ``primary``/``secondary`` object: exactly one of id, email, cio_id."""
    if not isinstance(value, dict) or not value:
        _fail(f"{field} is required", field=field, reason=REASON_REQUIRED)
    if len(value) > 1:
        # The vendor's exact message (TS merge_customers).
        _fail("You cannot have multiple identifiers", field=field)
    ((key, identifier),) = value.items()
    if key not in MERGE_IDENTIFIER_KEYS:
        _fail(f"{field} must be one of id, email, cio_id", field=field)
    return {key: check_identifier(identifier, field=f"{field}.{key}")}


def check_segment_id(segment: str) -> str:
    """Validate a segment id path segment: a positive integer."""
    if _SEGMENT_ID.fullmatch(segment) is None:
        _fail("segment_id must be a positive integer", field="segment_id")
    return segment


def check_segment_request(body: Mapping[str, Any], id_type: str) -> list[str]:
    """Validate a segment add/remove call: ``id_type`` and 1..1000 string ``ids``."""
    if id_type not in SEGMENT_ID_TYPES:
        _fail("id_type must be one of id, email, cio_id", field="id_type")
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids:
        _fail("ids must be a non-empty list", field="ids", reason=REASON_REQUIRED)
    if len(ids) > MAX_SEGMENT_IDS:
        _fail(
            f"ids cannot hold more than {MAX_SEGMENT_IDS} entries",
            field="ids",
            reason=REASON_TOO_LONG,
        )
    if not all(isinstance(entry, str) for entry in ids):
        _fail("ids must be strings", field="ids")
    return ids


# --------------------------------------------------------------------------- v2 operations


def check_v2_identifiers(kind: str, value: Any) -> dict[str, str]:
    """Validate an operation's ``identifiers`` for its ``type`` (§1.4, §3.1)."""
    if not isinstance(value, dict) or not value:
        _fail("identifiers is required", field="identifiers", reason=REASON_REQUIRED)
    keys = set(value)
    if kind == "person":
        if len(keys) != 1 or not keys <= set(PERSON_IDENTIFIER_KEYS):
            _fail(
                "identifiers must hold exactly one of id, email, phone, cio_id",
                field="identifiers",
            )
    elif kind == "object":
        if keys == {"object_type_id", "object_id"}:
            type_id = value["object_type_id"]
            if not isinstance(type_id, str) or _OBJECT_TYPE_ID.fullmatch(type_id) is None:
                _fail(
                    "object_type_id must be an integer string starting at 1",
                    field="identifiers.object_type_id",
                )
        elif keys != {"cio_object_id"}:
            _fail(
                "identifiers must be {object_type_id, object_id} or {cio_object_id}",
                field="identifiers",
            )
    elif keys != {"id"}:
        _fail("identifiers must be {id}", field="identifiers")
    for key, identifier in value.items():
        if key != "object_type_id":
            check_identifier(identifier, field=f"identifiers.{key}")
    return dict(value)


def _check_relationships(op: Mapping[str, Any], *, required: bool) -> None:
    if "cio_relationships" not in op and not required:
        return
    relationships = op.get("cio_relationships")
    if not isinstance(relationships, list) or not relationships:
        _fail(
            "cio_relationships must be a non-empty list",
            field="cio_relationships",
            reason=REASON_REQUIRED,
        )
    for entry in relationships:
        if not isinstance(entry, dict) or not isinstance(entry.get("identifiers"), dict):
            _fail(
                "each relationship needs an identifiers object",
                field="cio_relationships",
            )


def _check_v2_device(op: Mapping[str, Any], *, full: bool) -> None:
    device = op.get("device")
    if not isinstance(device, dict):
        _fail("device is required", field="device", reason=REASON_REQUIRED)
    # v2 calls the device token "token", not v1's "id" (§3.1).
    _require_string(device, "token", field="device.token")
    if full:
        _require_string(device, "platform", field="device.platform")
        if "last_used" in device:
            check_timestamp(device["last_used"], field="device.last_used")
        _check_optional_object(device, "attributes", field="device.attributes")


def _check_person_event(op: Mapping[str, Any], *, strict_ulid: bool) -> None:
    check_event_name(op.get("name"))
    if "attributes" in op:
        check_event_data(op["attributes"], field="attributes")
    if "id" in op:
        check_event_id(op["id"], strict_ulid=strict_ulid)


def _check_delivery_event(op: Mapping[str, Any]) -> None:
    if op.get("name") not in DELIVERY_EVENT_NAMES:
        _fail("name must be one of opened, converted, delivered", field="name")
    attributes = op.get("attributes")
    if not isinstance(attributes, dict):
        _fail("attributes is required", field="attributes", reason=REASON_REQUIRED)
    _require_string(attributes, "device_token", field="attributes.device_token")


def check_v2_operation(op: Any, *, strict_ulid: bool) -> dict[str, Any]:
    """Validate one v2 operation (an ``/entity`` body or one ``/batch`` item), §3.1.

    Args:
        op: The decoded operation.
        strict_ulid: Require event ids to be ULIDs.

    Returns:
        The operation, typed as an object.

    Raises:
        RuleViolation: The first rule the operation breaks.
    """
    if not isinstance(op, dict):
        _fail("operation must be a JSON object")
    kind = op.get("type")
    if not isinstance(kind, str) or kind not in V2_ACTIONS:
        _fail("type must be one of person, object, delivery", field="type")
    action = op.get("action")
    if not isinstance(action, str) or action not in V2_ACTIONS[kind]:
        _fail(f"action {action!r} is not valid for type {kind!r}", field="action")
    if "timestamp" in op:
        check_timestamp(op["timestamp"], field="timestamp")

    if action == "merge":
        if "identifiers" in op:
            _fail("merge takes primary and secondary, not identifiers", field="identifiers")
        check_merge_side(op.get("primary"), field="primary")
        check_merge_side(op.get("secondary"), field="secondary")
        return op
    check_v2_identifiers(kind, op.get("identifiers"))

    if action == "identify":
        attributes = op.get("attributes", {})
        if not isinstance(attributes, dict):
            _fail("attributes must be an object", field="attributes")
        if kind == "person":
            check_person_attributes(attributes, field="attributes")
        else:
            check_attributes(attributes, field="attributes")
        _check_relationships(op, required=False)
    elif action in ("identify_anonymous", "add_relationships", "delete_relationships"):
        _check_relationships(op, required=True)
    elif action == "event" and kind == "delivery":
        _check_delivery_event(op)
    elif action in ("event", "page", "screen"):
        _check_person_event(op, strict_ulid=strict_ulid)
    elif action in ("add_device", "delete_device"):
        _check_v2_device(op, full=action == "add_device")
    # delete, suppress and unsuppress carry nothing beyond identifiers.
    return op
