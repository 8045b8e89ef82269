"""Track API operations: validated once, rendered for v1 paths or v2 batch bodies.

An :class:`Operation` is what every Track call becomes at the call site. It holds the v2
operation dict (when v2 can carry it) and/or the v1 request the official SDK would send.
Direct mode sends the v1 request when there is one (byte-compatible with the official SDK)
and the v2 dict through ``/api/v2/entity`` otherwise; the batcher packs v2 dicts into
``/api/v2/batch`` and sends v1-only operations (anonymous events, segments) individually.

The public v2 builders are the :class:`Person`, :class:`Object` and :class:`Delivery`
namespaces at the end of this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._common.ulid import new_ulid
from .._common.wire import check_size, dumps, path_segment, to_timestamp
from .._config import MAX_OP_BYTES, MAX_SEGMENT_IDS
from .._exceptions import ValidationError
from .._identifiers import (
    MERGE_KEYS,
    IdentifierLike,
    PersonRef,
    check_identifier,
    merge_identifier,
    person_ref,
)
from .validation import (
    check_attributes,
    check_event_data,
    check_event_data_size,
    check_event_name,
)

__all__ = ["Delivery", "Object", "Operation", "Person", "V1Request"]


@dataclass(frozen=True, slots=True)
class V1Request:
    """A v1 request: method, path segments below ``/api/v1`` (unencoded) and JSON body.

    Attributes:
        method: HTTP method.
        segments: Path segments after ``/api/v1``; each is percent-encoded as ONE segment
            when the URL is built, so ``/`` inside an identifier survives as ``%2F``.
        template: The endpoint template for logs and metrics (never a concrete id).
        body: The JSON body, or ``None`` to send no body.
        query: Already-encoded query string without ``?``.
        event_data: For events, the ``data`` object whose 100,000-byte limit is checked.
    """

    method: str
    segments: tuple[str, ...]
    template: str
    body: dict[str, Any] | None
    query: str = ""
    event_data: Mapping[str, Any] | None = None

    def path(self) -> str:
        """The encoded path, ``/api/v1/...`` plus the query string."""
        p = "/api/v1/" + "/".join(path_segment(s) for s in self.segments)
        return f"{p}?{self.query}" if self.query else p

    def encode_body(self) -> bytes | None:
        """Serialise the body, enforcing the event-data limit; ``None`` when bodyless.

        Raises:
            ValidationError: For values JSON cannot carry.
            LimitExceededError: For event data over 100,000 bytes.
        """
        if self.body is None:
            return None
        data = dumps(self.body, field="body")
        if self.event_data is not None:
            check_event_data_size(self.event_data, len(data))
        return data


class Operation:
    """One validated Track operation.

    Build operations with the :class:`Person`, :class:`Object` and :class:`Delivery`
    helpers (or get them implicitly from ``CustomerIO.identify()`` and friends) and send
    them with ``CustomerIO.send()`` or ``CustomerIO.batch()``.

    Once admitted into the send pipeline an operation keeps only its serialised bytes (the
    dict form is released to keep buffered memory close to the bytes on the wire);
    ``v2`` then re-reads the bytes on demand.

    Attributes:
        action: The v2 action (``identify``, ``event``…) or a v1-only name
            (``anonymous_event``, ``add_to_segment``, ``remove_from_segment``).
        lane: Ordering key: operations with the same lane are delivered in order.
        explicit_id: The caller supplied the event ``id`` (so repeats are meaningful).
        v1_path_id: The person identifier for v1 ``/customers/{id}`` paths, when the v1
            server would read it correctly (else ``None``).
    """

    __slots__ = ("_v1", "_v2", "_v2_bytes", "action", "explicit_id", "lane", "v1_path_id")

    def __init__(
        self,
        action: str,
        *,
        v2: dict[str, Any] | None,
        v1: V1Request | None = None,
        lane: str,
        explicit_id: bool = False,
        v1_path_id: str | None = None,
    ) -> None:
        self.action: str = action
        self._v2 = v2
        self._v1 = v1
        self.lane: str = lane
        self.explicit_id: bool = explicit_id
        self.v1_path_id: str | None = v1_path_id
        self._v2_bytes: bytes | None = None

    @property
    def has_v2(self) -> bool:
        """Whether ``/api/v2`` can carry this operation (cheap, unlike ``v2``)."""
        return self._v2 is not None or self._v2_bytes is not None

    @property
    def v2(self) -> dict[str, Any] | None:
        """The v2 operation dict, or ``None`` when only v1 can carry it."""
        if self._v2 is not None:
            return self._v2
        if self._v2_bytes is not None:
            parsed: dict[str, Any] = json.loads(self._v2_bytes)
            return parsed
        return None

    @property
    def v1(self) -> V1Request | None:
        """The v1 request the official SDK would send, or ``None`` when v1 cannot address
        it (typed v2 operations, explicit identifiers the v1 server would misread)."""
        if self._v1 is not None:
            return self._v1
        if self.v1_path_id is None:
            return None
        v2 = self.v2
        assert v2 is not None  # person operations with a v1 path always have a v2 form
        return _v1_for(self.action, self.v1_path_id, v2)

    def v2_bytes(self) -> bytes:
        """The v2 operation serialised once and cached (reused across retries).

        Raises:
            ValidationError: When v2 cannot carry this operation.
            LimitExceededError: When the operation exceeds 32,000 bytes.
        """
        if self._v2_bytes is None:
            if self._v2 is None:
                raise ValidationError(
                    f"{self.action} operations have no v2 form; send them on their own"
                )
            data = dumps(self._v2, field=self.action)
            check_size(len(data), MAX_OP_BYTES, f"{self.action} operation")
            self._v2_bytes = data
        return self._v2_bytes

    def compact(self) -> None:
        """Release the dict form once the bytes exist (called at pipeline admission)."""
        if self._v2_bytes is not None:
            self._v2 = None

    def __repr__(self) -> str:
        # No identifiers or payload: reprs end up in logs.
        return f"<Operation {self.action}>"


def _v1_for(action: str, pid: str, v2: dict[str, Any]) -> V1Request | None:
    """Derive the official SDK's v1 request from a person operation's v2 form."""
    if action == "identify":
        return V1Request("PUT", ("customers", pid), "/customers/{id}", v2["attributes"])
    if action in ("event", "page", "screen"):
        body: dict[str, Any] = {"name": v2["name"], "data": v2["attributes"], "id": v2["id"]}
        if action != "event":
            body["type"] = action
        if "timestamp" in v2:
            body["timestamp"] = v2["timestamp"]
        return V1Request(
            "POST",
            ("customers", pid, "events"),
            "/customers/{id}/events",
            body,
            event_data=v2["attributes"],
        )
    if action == "add_device":
        # The v1 device object (contract §2.4): id + platform, last_used, and custom
        # attributes under "attributes" as the spec (and the Node SDK) put them.
        device = v2["device"]
        v1_device: dict[str, Any] = {"id": device["token"], "platform": device["platform"]}
        for key in ("last_used", "attributes"):
            if key in device:
                v1_device[key] = device[key]
        return V1Request(
            "PUT",
            ("customers", pid, "devices"),
            "/customers/{id}/devices",
            {"device": v1_device},
        )
    if action == "delete_device":
        return V1Request(
            "DELETE",
            ("customers", pid, "devices", v2["device"]["token"]),
            "/customers/{id}/devices/{device_id}",
            {},
        )
    if action == "delete":
        # The official SDK sends "{}" on these; Customer.io accepts both, we match it.
        return V1Request("DELETE", ("customers", pid), "/customers/{id}", {})
    if action in ("suppress", "unsuppress"):
        return V1Request("POST", ("customers", pid, action), f"/customers/{{id}}/{action}", {})
    return None  # pragma: no cover - every person action with a v1 path is listed above


def _lane(ref: PersonRef) -> str:
    return ref.lane


_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def _event_id(id: str | None) -> str:
    # Customer.io de-duplicates events on this id and documents it as a ULID; we check the
    # shape here instead of letting the API refuse (or silently ignore) a whole batch later.
    if id is None:
        return new_ulid()
    if not isinstance(id, str) or not _ULID.fullmatch(id.upper()):
        raise ValidationError(
            "id must be a ULID (26 Crockford base32 characters); omit it to get one",
            field="id",
        )
    return id.upper()


# ----------------------------------------------------------------------- official-style calls


def _person_op(
    action: str, ref: PersonRef, extra: dict[str, Any] | None = None, *, explicit_id: bool = False
) -> Operation:
    v2: dict[str, Any] = {"type": "person", "action": action, "identifiers": ref.identifiers}
    if extra:
        v2.update(extra)
    return Operation(
        action, v2=v2, lane=_lane(ref), explicit_id=explicit_id, v1_path_id=ref.v1_path_id
    )


def identify(customer_id: IdentifierLike, attributes: Mapping[str, Any]) -> Operation:
    """Build ``identify`` (v1 ``PUT /customers/{id}``; v2 person identify)."""
    ref = person_ref(customer_id, "id")
    check_attributes(attributes)
    return _person_op("identify", ref, {"attributes": attributes})


def delete(customer_id: IdentifierLike) -> Operation:
    """Build ``delete`` (v1 ``DELETE /customers/{id}``)."""
    return _person_op("delete", person_ref(customer_id))


def suppress(customer_id: IdentifierLike) -> Operation:
    """Build ``suppress`` (v1 ``POST /customers/{id}/suppress``)."""
    return _person_op("suppress", person_ref(customer_id))


def unsuppress(customer_id: IdentifierLike) -> Operation:
    """Build ``unsuppress`` (v1 ``POST /customers/{id}/unsuppress``)."""
    return _person_op("unsuppress", person_ref(customer_id))


def event(
    customer_id: IdentifierLike,
    name: str,
    data: Mapping[str, Any] | None,
    *,
    kind: Literal["event", "page", "screen"] = "event",
    id: str | None = None,
    timestamp: Any = None,
) -> Operation:
    """Build a person event, page view or screen view (v1 ``POST /customers/{id}/events``)."""
    ref = person_ref(customer_id)
    extra: dict[str, Any] = {
        "name": check_event_name(name),
        "id": _event_id(id),
        "attributes": check_event_data(data),
    }
    if timestamp is not None:
        extra["timestamp"] = to_timestamp(timestamp)
    return _person_op(kind, ref, extra, explicit_id=id is not None)


def anonymous_event(
    anonymous_id: str | None,
    name: str,
    data: Mapping[str, Any] | None,
    *,
    id: str | None = None,
    timestamp: Any = None,
) -> Operation:
    """Build an anonymous or invite event (v1 ``POST /events``; v2 has no form for it)."""
    name = check_event_name(name)
    payload = check_event_data(data)
    body: dict[str, Any] = {"name": name, "data": payload, "id": _event_id(id)}
    lane = "anonymous:"
    if anonymous_id is not None and anonymous_id != "":
        body["anonymous_id"] = check_identifier(anonymous_id, "anonymous_id")
        lane += body["anonymous_id"]
    if timestamp is not None:
        body["timestamp"] = to_timestamp(timestamp)
    v1 = V1Request("POST", ("events",), "/events", body, event_data=payload)
    return Operation("anonymous_event", v2=None, v1=v1, lane=lane, explicit_id=id is not None)


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
    if not isinstance(platform, str) or not platform:
        raise ValidationError("platform must be a non-empty string", field="platform")
    device: dict[str, Any] = {"token": token, "platform": platform}
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
    return _person_op("add_device", ref, {"device": device})


def delete_device(customer_id: IdentifierLike, device_id: str) -> Operation:
    """Build ``delete_device`` (v1 ``DELETE /customers/{id}/devices/{device_id}``)."""
    ref = person_ref(customer_id)
    token = check_identifier(device_id, "device_id")
    return _person_op("delete_device", ref, {"device": {"token": token}})


def merge_customers(
    primary_id_type: str, primary_id: str, secondary_id_type: str, secondary_id: str
) -> Operation:
    """Build ``merge_customers`` (v1 ``POST /merge_customers``; v2 person ``merge``)."""
    primary = merge_identifier(primary_id_type, primary_id, "primary")
    secondary = merge_identifier(secondary_id_type, secondary_id, "secondary")
    body = {"primary": primary, "secondary": secondary}
    v1 = V1Request("POST", ("merge_customers",), "/merge_customers", body)
    v2 = {"type": "person", "action": "merge", **body}
    ((key, value),) = primary.items()
    return Operation("merge", v2=v2, v1=v1, lane=f"person:{key}:{value}")


def segment_membership(
    add: bool, segment_id: int, ids: Sequence[str | int], id_type: str = "id"
) -> Operation:
    """Build ``add_customers``/``remove_customers`` for a manual segment (v1 only)."""
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
    v1 = V1Request(
        "POST",
        ("segments", str(segment_id), verb),
        f"/segments/{{segment_id}}/{verb}",
        {"ids": values},
        query=f"id_type={id_type}",
    )
    action = "add_to_segment" if add else "remove_from_segment"
    return Operation(action, v2=None, v1=v1, lane=f"segment:{segment_id}")


def from_mapping(op: Mapping[str, Any], index: int) -> Operation:
    """Adopt a caller-built v2 operation dict (the official ``batch()`` input).

    Only the envelope is checked here (``type``, ``action``, JSON-serialisable, ≤32,000
    bytes); the API reports anything else per operation.
    """
    field = f"operations[{index}]"
    if not isinstance(op, Mapping):
        raise ValidationError(f"{field} must be a mapping or an Operation", field=field)
    if op.get("type") not in ("person", "object", "delivery"):
        raise ValidationError(f"{field}.type must be person, object or delivery", field=field)
    if not isinstance(op.get("action"), str) or not op["action"]:
        raise ValidationError(f"{field}.action must be a non-empty string", field=field)
    v2 = dict(op)
    ids = v2.get("identifiers") or v2.get("primary") or {}
    lane = f"{v2['type']}:" + ":".join(f"{k}={v}" for k, v in sorted(dict(ids).items()))
    return Operation(str(v2["action"]), v2=v2, v1=None, lane=lane)


# ----------------------------------------------------------------------------- v2 builders


def _v2_person(
    action: str, identifiers: IdentifierLike, extra: dict[str, Any] | None = None
) -> Operation:
    ref = person_ref(identifiers, "identifiers")
    v2: dict[str, Any] = {"type": "person", "action": action, "identifiers": ref.identifiers}
    if extra:
        v2.update(extra)
    return Operation(action, v2=v2, v1=None, lane=_lane(ref))


def _relationships(items: Sequence[Mapping[str, Any]], field: str) -> list[dict[str, Any]]:
    if isinstance(items, Mapping) or not isinstance(items, Sequence) or not items:
        raise ValidationError(f"{field} must be a non-empty list", field=field)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("identifiers"), Mapping):
            raise ValidationError(f"{field}[{i}] needs an 'identifiers' mapping", field=field)
        rel = {"identifiers": dict(item["identifiers"])}
        if item.get("relationship_attributes") is not None:
            check_attributes(
                item["relationship_attributes"], f"{field}[{i}].relationship_attributes"
            )
            rel["relationship_attributes"] = dict(item["relationship_attributes"])
        out.append(rel)
    return out


def object_relationship(
    object_type_id: str | int, object_id: str, attributes: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A person→object relationship entry for ``cio_relationships``."""
    rel: dict[str, Any] = {"identifiers": _object_identifiers(object_type_id, object_id, None)}
    if attributes is not None:
        rel["relationship_attributes"] = dict(attributes)
    return rel


def _object_identifiers(
    object_type_id: str | int | None, object_id: str | None, cio_object_id: str | None
) -> dict[str, str]:
    if cio_object_id is not None:
        if object_type_id is not None or object_id is not None:
            raise ValidationError(
                "pass either cio_object_id or object_type_id + object_id", field="identifiers"
            )
        return {"cio_object_id": check_identifier(cio_object_id, "cio_object_id")}
    type_id = (
        check_identifier(object_type_id, "object_type_id") if object_type_id is not None else ""
    )
    if not type_id.isdigit() or int(type_id) < 1:
        raise ValidationError(
            "object_type_id must be a positive integer (as int or string)", field="object_type_id"
        )
    return {"object_type_id": type_id, "object_id": check_identifier(object_id, "object_id")}


class Person:
    """Builders for v2 ``person`` operations (send with ``send()`` or ``batch()``).

    ``identifiers`` is a bare identifier (inferred: ``cio_…`` → cio_id, an email → email,
    else id) or an explicit one-key object such as ``{"email": ...}`` or ``{"phone": ...}``.
    """

    @staticmethod
    def identify(
        identifiers: IdentifierLike,
        attributes: Mapping[str, Any] | None = None,
        *,
        timestamp: Any = None,
        cio_relationships: Sequence[Mapping[str, Any]] | None = None,
    ) -> Operation:
        """Create or update a person."""
        extra: dict[str, Any] = {}
        if attributes is not None:
            check_attributes(attributes)
            extra["attributes"] = dict(attributes)
        if timestamp is not None:
            extra["timestamp"] = to_timestamp(timestamp)
        if cio_relationships is not None:
            extra["cio_relationships"] = _relationships(cio_relationships, "cio_relationships")
        return _v2_person("identify", identifiers, extra)

    @staticmethod
    def event(
        identifiers: IdentifierLike,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        timestamp: Any = None,
    ) -> Operation:
        """Track an event for a person (a ULID ``id`` is generated when omitted)."""
        return Person._event("event", identifiers, name, attributes, id, timestamp)

    @staticmethod
    def page(
        identifiers: IdentifierLike,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        timestamp: Any = None,
    ) -> Operation:
        """Track a page view (``name`` is the URL or page name)."""
        return Person._event("page", identifiers, name, attributes, id, timestamp)

    @staticmethod
    def screen(
        identifiers: IdentifierLike,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        timestamp: Any = None,
    ) -> Operation:
        """Track a mobile screen view."""
        return Person._event("screen", identifiers, name, attributes, id, timestamp)

    @staticmethod
    def _event(
        action: str,
        identifiers: IdentifierLike,
        name: str,
        attributes: Mapping[str, Any] | None,
        id: str | None,
        timestamp: Any,
    ) -> Operation:
        extra: dict[str, Any] = {
            "name": check_event_name(name),
            "id": _event_id(id),
            "attributes": check_event_data(attributes, "attributes"),
        }
        if timestamp is not None:
            extra["timestamp"] = to_timestamp(timestamp)
        op = _v2_person(action, identifiers, extra)
        op.explicit_id = id is not None
        return op

    @staticmethod
    def delete(identifiers: IdentifierLike) -> Operation:
        """Delete a person."""
        return _v2_person("delete", identifiers)

    @staticmethod
    def suppress(identifiers: IdentifierLike) -> Operation:
        """Delete a person and block their identifier from being re-added."""
        return _v2_person("suppress", identifiers)

    @staticmethod
    def unsuppress(identifiers: IdentifierLike) -> Operation:
        """Unblock a suppressed identifier (does not restore the profile)."""
        return _v2_person("unsuppress", identifiers)

    @staticmethod
    def add_device(
        identifiers: IdentifierLike,
        token: str,
        platform: Literal["ios", "android"] | str,
        *,
        last_used: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Add or update a push device."""
        device: dict[str, Any] = {"token": check_identifier(token, "token")}
        if not isinstance(platform, str) or not platform:
            raise ValidationError("platform must be a non-empty string", field="platform")
        device["platform"] = platform
        if last_used is not None:
            device["last_used"] = to_timestamp(last_used, field="last_used")
        if attributes is not None:
            check_attributes(attributes, "device attributes")
            device["attributes"] = dict(attributes)
        return _v2_person("add_device", identifiers, {"device": device})

    @staticmethod
    def delete_device(identifiers: IdentifierLike, token: str) -> Operation:
        """Remove a push device."""
        return _v2_person(
            "delete_device", identifiers, {"device": {"token": check_identifier(token, "token")}}
        )

    @staticmethod
    def add_relationships(
        identifiers: IdentifierLike, relationships: Sequence[Mapping[str, Any]]
    ) -> Operation:
        """Relate a person to objects (see :func:`object_relationship`)."""
        rels = _relationships(relationships, "relationships")
        return _v2_person("add_relationships", identifiers, {"cio_relationships": rels})

    @staticmethod
    def delete_relationships(
        identifiers: IdentifierLike, relationships: Sequence[Mapping[str, Any]]
    ) -> Operation:
        """Remove person→object relationships."""
        rels = _relationships(relationships, "relationships")
        return _v2_person("delete_relationships", identifiers, {"cio_relationships": rels})

    @staticmethod
    def merge(primary: Mapping[str, str], secondary: Mapping[str, str]) -> Operation:
        """Merge ``secondary`` into ``primary`` (each exactly one of id, email, cio_id)."""
        objs = []
        for name, obj in (("primary", primary), ("secondary", secondary)):
            if not isinstance(obj, Mapping) or len(obj) != 1:
                raise ValidationError(f"{name} must have exactly one identifier", field=name)
            ((k, v),) = obj.items()
            objs.append(merge_identifier(k, v, name))
        v2 = {"type": "person", "action": "merge", "primary": objs[0], "secondary": objs[1]}
        ((key, value),) = objs[0].items()
        return Operation("merge", v2=v2, v1=None, lane=f"person:{key}:{value}")


class Object:
    """Builders for v2 ``object`` operations (companies, accounts, …).

    An object is addressed by ``object_type_id`` (a positive integer, sent as a string) plus
    ``object_id``, or by ``cio_object_id``.
    """

    @staticmethod
    def _op(
        action: str,
        object_type_id: str | int | None,
        object_id: str | None,
        cio_object_id: str | None,
        extra: dict[str, Any],
    ) -> Operation:
        ids = _object_identifiers(object_type_id, object_id, cio_object_id)
        lane = "object:" + ":".join(ids.values())
        v2: dict[str, Any] = {"type": "object", "action": action, "identifiers": ids, **extra}
        return Operation(action, v2=v2, v1=None, lane=lane)

    @staticmethod
    def identify(
        object_type_id: str | int | None = None,
        object_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        cio_object_id: str | None = None,
        cio_relationships: Sequence[Mapping[str, Any]] | None = None,
    ) -> Operation:
        """Create or update an object; ``None``/``""`` attribute values remove attributes."""
        extra: dict[str, Any] = {}
        if attributes is not None:
            check_attributes(attributes)
            extra["attributes"] = dict(attributes)
        if cio_relationships is not None:
            extra["cio_relationships"] = _relationships(cio_relationships, "cio_relationships")
        return Object._op("identify", object_type_id, object_id, cio_object_id, extra)

    @staticmethod
    def identify_anonymous(
        object_type_id: str | int,
        object_id: str,
        anonymous_ids: Sequence[str],
        attributes: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Create or update an object and relate it to anonymous visitors."""
        rels = [
            {"identifiers": {"anonymous_id": check_identifier(a, "anonymous_ids[]")}}
            for a in anonymous_ids
        ]
        if not rels:
            raise ValidationError("anonymous_ids must not be empty", field="anonymous_ids")
        extra: dict[str, Any] = {"cio_relationships": rels}
        if attributes is not None:
            check_attributes(attributes)
            extra["attributes"] = dict(attributes)
        return Object._op("identify_anonymous", object_type_id, object_id, None, extra)

    @staticmethod
    def delete(
        object_type_id: str | int | None = None,
        object_id: str | None = None,
        *,
        cio_object_id: str | None = None,
    ) -> Operation:
        """Delete an object."""
        return Object._op("delete", object_type_id, object_id, cio_object_id, {})

    @staticmethod
    def add_relationships(
        object_type_id: str | int,
        object_id: str,
        people: Sequence[IdentifierLike],
        *,
        relationship_attributes: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Relate people (bare or explicit identifiers) to an object."""
        return Object._op(
            "add_relationships",
            object_type_id,
            object_id,
            None,
            {"cio_relationships": _people_rels(people, relationship_attributes)},
        )

    @staticmethod
    def delete_relationships(
        object_type_id: str | int, object_id: str, people: Sequence[IdentifierLike]
    ) -> Operation:
        """Remove people's relationships to an object."""
        return Object._op(
            "delete_relationships",
            object_type_id,
            object_id,
            None,
            {"cio_relationships": _people_rels(people, None)},
        )


def _people_rels(
    people: Sequence[IdentifierLike], attributes: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    if isinstance(people, (str, Mapping)) or not people:
        raise ValidationError("people must be a non-empty list of identifiers", field="people")
    if attributes is not None:
        check_attributes(attributes, "relationship_attributes")
    out = []
    for p in people:
        rel: dict[str, Any] = {"identifiers": person_ref(p, "people[]").identifiers}
        if attributes is not None:
            rel["relationship_attributes"] = dict(attributes)
        out.append(rel)
    return out


class Delivery:
    """Builders for v2 ``delivery`` operations (message metrics reported by you)."""

    METRICS = ("opened", "converted", "delivered")

    @staticmethod
    def event(
        delivery_id: str,
        metric: Literal["opened", "converted", "delivered"],
        *,
        device_token: str,
        timestamp: Any = None,
    ) -> Operation:
        """Report that a push message was delivered, opened or converted on a device.

        The API requires the ``device_token`` the message was sent to.
        """
        did = check_identifier(delivery_id, "delivery_id")
        if metric not in Delivery.METRICS:
            raise ValidationError(
                f"metric must be one of {', '.join(Delivery.METRICS)}", field="metric"
            )
        v2: dict[str, Any] = {
            "type": "delivery",
            "action": "event",
            "identifiers": {"id": did},
            "name": metric,
            "attributes": {"device_token": check_identifier(device_token, "device_token")},
        }
        if timestamp is not None:
            v2["timestamp"] = to_timestamp(timestamp)
        return Operation("delivery_event", v2=v2, v1=None, lane=f"delivery:{did}")
