"""The official-style Track calls as operations: validated and serialised once, here.

Each function is what one ``CustomerIO`` method builds (``identify``, ``track``…). Person
operations are v2 batch elements; what v2 cannot carry (anonymous and invite events, manual
segment membership, event data beyond v2's 32,000-byte operation limit, form submissions,
custom unsubscribes, delivery and push metrics) becomes a v1 request of its own, ordered with
the other operations on the same person (or delivery).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from .._common.ulid import ULID_PATTERN, new_ulid
from .._common.wire import dumps, serialise, to_timestamp
from .._config import MAX_OP_BYTES, MAX_SEGMENT_IDS
from .._exceptions import ValidationError
from .._identifiers import (
    MERGE_KEYS,
    REF_CACHE,
    IdentifierLike,
    OrderingKey,
    PersonRef,
    check_identifier,
    merge_identifier,
    person_ref,
)
from .operations import Operation, V1Request, sized, too_large, v1_single
from .validation import (
    FORM_IDENTIFIER_KEYS,
    check_attributes,
    check_event_data,
    check_event_name,
    check_form_data,
    check_form_id,
    check_metric_fields,
    check_platform,
    check_push_event,
)

__all__ = [
    "add_device",
    "anonymous_event",
    "delete",
    "delete_device",
    "delivery_metric",
    "event",
    "event_id",
    "identify",
    "merge_customers",
    "person_op",
    "push_metric",
    "segment_membership",
    "submit_form",
    "suppress",
    "unsubscribe",
    "unsuppress",
]


def event_id(id: str | None) -> str:
    """A new ULID, or the caller's id checked and upper-cased.

    Customer.io de-duplicates events on this id and documents it as a ULID; the shape is
    checked here instead of letting the API refuse (or silently ignore) a batch later.
    """
    if id is None:
        return new_ulid()
    if not isinstance(id, str) or not ULID_PATTERN.fullmatch(id.upper()):
        raise ValidationError(
            "id must be a ULID (26 Crockford base32 characters); omit it to get one",
            field="id",
        )
    return id.upper()


# Event names repeat: validating each distinct name once is enough. Bounded; cleared whole.
_NAMES: dict[str, str] = {}
_NAMES_MAX = 4096


def event_name(name: Any) -> str:
    """:func:`check_event_name`, remembering the names that passed."""
    trimmed = check_event_name(name)
    if len(_NAMES) >= _NAMES_MAX:
        _NAMES.clear()
    _NAMES[name] = trimmed
    return trimmed


def person_op(
    action: str,
    ref: PersonRef,
    extra: dict[str, Any] | None = None,
    *,
    event: str | None = None,
    explicit_id: bool = False,
) -> Operation:
    """A v2 person operation (≤32,000 bytes serialised)."""
    v2: dict[str, Any] = {"type": "person", "action": action, "identifiers": ref.identifiers}
    if extra:
        v2.update(extra)
    return Operation(action, sized(v2, action), ref.key, ref, event, explicit_id)


def identify(customer_id: IdentifierLike, attributes: Mapping[str, Any]) -> Operation:
    """Build ``identify`` (v1 ``PUT /customers/{id}``; v2 person identify)."""
    ref = person_ref(customer_id, "id")
    check_attributes(attributes, timestamps=True)
    return person_op("identify", ref, {"attributes": attributes})


def delete(customer_id: IdentifierLike) -> Operation:
    """Build ``delete`` (v1 ``DELETE /customers/{id}``)."""
    return person_op("delete", person_ref(customer_id))


def suppress(customer_id: IdentifierLike) -> Operation:
    """Build ``suppress`` (v1 ``POST /customers/{id}/suppress``)."""
    return person_op("suppress", person_ref(customer_id))


def unsuppress(customer_id: IdentifierLike) -> Operation:
    """Build ``unsuppress`` (v1 ``POST /customers/{id}/unsuppress``)."""
    return person_op("unsuppress", person_ref(customer_id))


def event(
    customer_id: IdentifierLike,
    name: str,
    data: Mapping[str, Any] | None,
    kind: Literal["event", "page", "screen"] = "event",
    id: str | None = None,
    timestamp: Any = None,
) -> Operation:
    """Build a person event, page view or screen view.

    Batched as a v2 operation; event data that makes the operation larger than v2's
    32,000 bytes travels as the v1 request (``POST /customers/{id}/events``, data up to
    100,000 bytes), still in order with the person's other operations.

    The hottest builder of the SDK: repeated people and names come from caches of
    already-validated values, and the common case makes no call it can avoid.
    """
    ref = REF_CACHE.get(customer_id) if type(customer_id) is str else None
    if ref is None:
        ref = person_ref(customer_id)
    eid = new_ulid() if id is None else event_id(id)
    attributes = data if type(data) is dict else check_event_data(data)
    trimmed = _NAMES.get(name) if type(name) is str else None
    v2: dict[str, Any] = {
        "type": "person",
        "action": kind,
        "identifiers": ref.identifiers,
        "name": trimmed or event_name(name),
        "id": eid,
        "attributes": attributes,
    }
    if timestamp is not None:
        v2["timestamp"] = to_timestamp(timestamp)
    encoded = serialise(v2, kind)
    if len(encoded) <= MAX_OP_BYTES:
        return Operation._event(kind, encoded, ref.key, ref, eid, id is not None)
    path_id = ref.v1_path_id
    if path_id is None:  # only v2 can address this person: its limit applies
        too_large(kind, len(encoded), _V2_ONLY)
    body: dict[str, Any] = {"name": v2["name"], "data": attributes, "id": eid}
    if kind != "event":
        body["type"] = kind
    if timestamp is not None:
        body["timestamp"] = v2["timestamp"]
    request = V1Request(
        "POST",
        ("customers", path_id, "events"),
        "/customers/{id}/events",
        body,
        event_data=attributes,
    )
    payload, single = v1_single(request)
    return Operation(kind, payload, ref.key, ref, eid, id is not None, single=single, v1=request)


_V2_ONLY = (
    " (event data up to 100,000 bytes travels as a v1 request, but this person can only be "
    "addressed through v2: a phone, or an identifier the v1 path could misread; address "
    "them by email or cio_id for larger events)"
)


def anonymous_event(
    anonymous_id: str | None,
    name: str,
    data: Mapping[str, Any] | None,
    *,
    id: str | None = None,
    timestamp: Any = None,
) -> Operation:
    """Build an anonymous or invite event (v1 ``POST /events``; v2 has no form for it)."""
    eid = event_id(id)
    payload = check_event_data(data)
    body: dict[str, Any] = {"name": check_event_name(name), "data": payload, "id": eid}
    key: OrderingKey | None = None
    if anonymous_id is not None and anonymous_id != "":
        body["anonymous_id"] = check_identifier(anonymous_id, "anonymous_id")
        key = OrderingKey("anonymous", "anonymous_id", body["anonymous_id"])
    if timestamp is not None:
        body["timestamp"] = to_timestamp(timestamp)
    request = V1Request("POST", ("events",), "/events", body, event_data=payload)
    data_bytes, single = v1_single(request)
    return Operation(
        "anonymous_event", data_bytes, key, None, eid, id is not None, single=single, v1=request
    )


def add_device(
    customer_id: IdentifierLike, device_id: str, platform: str, data: Mapping[str, Any]
) -> Operation:
    """Build ``add_device`` (v1 ``PUT /customers/{id}/devices``; v2 ``add_device``).

    ``last_used`` stays on the device; every other keyword becomes a custom device
    attribute under ``device.attributes`` (an explicit ``attributes`` mapping is merged in),
    in both v1 and v2, as the API documents the device object.
    """
    ref = person_ref(customer_id)
    token = check_identifier(device_id, "device_id")
    device: dict[str, Any] = {"token": token, "platform": check_platform(platform)}
    attributes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "last_used":
            device["last_used"] = to_timestamp(value, field="last_used")
        elif key == "attributes" and isinstance(value, Mapping):
            attributes.update(value)
        else:
            attributes[key] = value
    if attributes:
        check_attributes(attributes, "device attributes")
        device["attributes"] = attributes
    return person_op("add_device", ref, {"device": device})


def delete_device(customer_id: IdentifierLike, device_id: str) -> Operation:
    """Build ``delete_device`` (v1 ``DELETE /customers/{id}/devices/{device_id}``)."""
    ref = person_ref(customer_id)
    token = check_identifier(device_id, "device_id")
    return person_op("delete_device", ref, {"device": {"token": token}})


def merge_customers(
    primary_id_type: str, primary_id: str, secondary_id_type: str, secondary_id: str
) -> Operation:
    """Build ``merge_customers`` (v2 person ``merge``; v1 ``POST /merge_customers``).

    Ordered on BOTH people: it waits for undecided operations of the primary and of the
    secondary, so an older identify of the secondary cannot land after the merge and
    re-create the merged-away profile.
    """
    primary = merge_identifier(primary_id_type, primary_id, "primary")
    secondary = merge_identifier(secondary_id_type, secondary_id, "secondary")
    v2 = {"type": "person", "action": "merge", "primary": primary, "secondary": secondary}
    request = V1Request(
        "POST",
        ("merge_customers",),
        "/merge_customers",
        {"primary": primary, "secondary": secondary},
    )
    return Operation(
        "merge",
        dumps(v2, field="merge"),
        _merge_key(primary),
        more_keys=(_merge_key(secondary),),
        v1=request,
    )


def _merge_key(identifier: dict[str, str]) -> OrderingKey:
    ((id_type, value),) = identifier.items()
    return OrderingKey("person", id_type, value)


def segment_membership(
    add: bool, segment_id: int, ids: Sequence[str | int], id_type: str = "id"
) -> Operation:
    """Build ``add_customers``/``remove_customers`` for a manual segment (v1 only), ordered
    with each listed person's other operations."""
    if isinstance(segment_id, bool) or not isinstance(segment_id, int) or segment_id < 1:
        raise ValidationError("segment_id must be a positive integer", field="segment_id")
    if id_type not in MERGE_KEYS:
        raise ValidationError(f"id_type must be one of {', '.join(MERGE_KEYS)}", field="id_type")
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise ValidationError("ids must be a list of identifiers", field="ids")
    values = [check_identifier(v, "ids[]") for v in ids]
    if not 1 <= len(values) <= MAX_SEGMENT_IDS:
        raise ValidationError(
            f"ids must hold 1 to {MAX_SEGMENT_IDS} identifiers, got {len(values)}", field="ids"
        )
    verb = "add_customers" if add else "remove_customers"
    request = V1Request(
        "POST",
        ("segments", str(segment_id), verb),
        f"/segments/{{segment_id}}/{verb}",
        {"ids": values},
        query=f"id_type={id_type}",
    )
    data, single = v1_single(request)
    keys = tuple(
        OrderingKey("person", id_type, v.removeprefix("cio_") if id_type == "cio_id" else v)
        for v in dict.fromkeys(values)
    )
    action = "add_to_segment" if add else "remove_from_segment"
    return Operation(action, data, keys[0], more_keys=keys[1:], single=single, v1=request)


def submit_form(form_id: str | int, data: Mapping[str, str]) -> Operation:
    """Build ``submit_form`` (v1 ``POST /forms/{form_id}/submit``, answered 204), ordered
    with the respondent's other operations (``data``'s ``email`` or ``id`` names them)."""
    fid = check_form_id(form_id)
    fields, id_type = check_form_data(data)
    ref = person_ref({id_type: fields[id_type]}, "data", v2_keys=FORM_IDENTIFIER_KEYS)
    request = V1Request(
        "POST", ("forms", fid, "submit"), "/forms/{form_id}/submit", {"data": fields}
    )
    body, single = v1_single(request)
    return Operation("submit_form", body, ref.key, ref, single=single, v1=request)


def _delivery_op(action: str, delivery_id: str, request: V1Request) -> Operation:
    """A v1-only operation about one delivery, ordered with that delivery's others."""
    body, single = v1_single(request)
    key = OrderingKey("delivery", "delivery_id", delivery_id)
    return Operation(action, body, key, single=single, v1=request)


def unsubscribe(delivery_id: str, flag: bool) -> Operation:
    """Build a custom unsubscribe (``POST /unsubscribe/{delivery_id}`` at the host root,
    outside ``/api/v1``; the API takes no credentials there)."""
    did = check_identifier(delivery_id, "delivery_id")
    if flag is not True and flag is not False:
        raise ValidationError("unsubscribe must be True or False", field="unsubscribe")
    request = V1Request(
        "POST",
        ("unsubscribe", did),
        "/unsubscribe/{delivery_id}",
        {"unsubscribe": flag},
        root=True,
        authenticated=False,
    )
    return _delivery_op("unsubscribe", did, request)


def delivery_metric(
    delivery_id: str,
    metric: str,
    *,
    timestamp: Any = None,
    recipient: str | int | None = None,
    reason: str | None = None,
    href: str | None = None,
) -> Operation:
    """Build ``report_metric`` (v1 ``POST /metrics``, no credentials)."""
    did = check_identifier(delivery_id, "delivery_id")
    body: dict[str, Any] = {"delivery_id": did}
    body.update(check_metric_fields(metric, recipient, reason, href))
    if timestamp is not None:
        body["timestamp"] = to_timestamp(timestamp)
    request = V1Request("POST", ("metrics",), "/metrics", body, authenticated=False)
    return _delivery_op("report_metric", did, request)


def push_metric(delivery_id: str, device_id: str, event: str, timestamp: Any = None) -> Operation:
    """Build ``report_push_metric`` (v1 ``POST /push/events``, no credentials)."""
    did = check_identifier(delivery_id, "delivery_id")
    body: dict[str, Any] = {
        "delivery_id": did,
        "device_id": check_identifier(device_id, "device_id"),
        "event": check_push_event(event),
    }
    if timestamp is not None:
        body["timestamp"] = to_timestamp(timestamp)
    request = V1Request("POST", ("push", "events"), "/push/events", body, authenticated=False)
    return _delivery_op("report_push_metric", did, request)
