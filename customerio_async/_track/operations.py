"""Track operations: what every Track call becomes at the call site.

An :class:`Operation` is validated and serialised once, where it is created: ``data`` holds
the bytes the send pipeline appends to a ``/api/v2/batch`` body (or, for operations v2
cannot carry, the body of their own v1 request, described by ``single``). Direct mode sends
the official SDK's v1 request when the v1 server can address the person (derived on demand
from the bytes) and ``/api/v2/entity`` otherwise.

Builders: the official-style calls in :mod:`.calls` and the typed v2 :class:`Person`,
:class:`Object` and :class:`Delivery` namespaces in :mod:`.builders`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from .._common.wire import dumps, path_segment, serialise
from .._config import MAX_OP_BYTES
from .._exceptions import LimitExceededError, ValidationError
from .._identifiers import OrderingKey, PersonRef
from .._pipeline.protocol import SingleRequest
from .validation import check_event_data_size

__all__ = ["Operation", "V1Request", "from_mapping", "sized", "too_large", "v1_single"]

_new = object.__new__


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
        root: The path is below the host root instead of ``/api/v1`` (custom unsubscribe).
        authenticated: ``False`` for calls the API defines as unauthenticated.
    """

    method: str
    segments: tuple[str, ...]
    template: str
    body: dict[str, Any] | None
    query: str = ""
    event_data: Mapping[str, Any] | None = None
    root: bool = False
    authenticated: bool = True

    @property
    def endpoint(self) -> str:
        """The endpoint template including its prefix (``/api/v1/...``)."""
        return self.template if self.root else "/api/v1" + self.template

    def path(self) -> str:
        """The encoded path plus the query string."""
        prefix = "/" if self.root else "/api/v1/"
        p = prefix + "/".join(path_segment(s) for s in self.segments)
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

    Example::

        op = Person.event("42", "purchased", {"amount": 42})
        receipt = await cio.send(op)

    Attributes:
        action: The v2 action (``identify``, ``event``…) or a v1-only name
            (``anonymous_event``, ``add_to_segment``, ``submit_form``…).
        data: The serialised operation: a v2 batch element, or a single request's body.
        key: The ordering key of the person or object it addresses (``None``: none).
        more_keys: Further keys it touches (a merge's secondary person, a segment's people).
        single: Set when only a request of its own can carry it (v1-only operations).
        event_id: The event's ULID ``id``, for events.
        explicit_id: The caller supplied the event ``id`` (so repeats are meaningful).
        person: The addressed person, when there is one.
    """

    __slots__ = (
        "_v1",
        "action",
        "data",
        "event_id",
        "explicit_id",
        "key",
        "more_keys",
        "person",
        "single",
    )

    def __init__(
        self,
        action: str,
        data: bytes,
        key: OrderingKey | None,
        person: PersonRef | None = None,
        event_id: str | None = None,
        explicit_id: bool = False,
        more_keys: tuple[OrderingKey, ...] = (),
        single: SingleRequest | None = None,
        v1: V1Request | None = None,
    ) -> None:
        self.action = action
        self.data = data
        self.key = key
        self.person = person
        self.event_id = event_id
        self.explicit_id = explicit_id
        self.more_keys = more_keys
        self.single = single
        self._v1 = v1

    def __repr__(self) -> str:
        # No identifiers or payload: reprs end up in logs.
        return f"<Operation {self.action}>"

    @classmethod
    def _event(
        cls,
        action: str,
        data: bytes,
        key: OrderingKey,
        person: PersonRef,
        event_id: str,
        explicit_id: bool,
    ) -> Operation:
        """A batched person event (the hottest constructor: no ``__init__`` frame)."""
        op = _new(cls)
        op.action = action
        op.data = data
        op.key = key
        op.person = person
        op.event_id = event_id
        op.explicit_id = explicit_id
        op.more_keys = ()
        op.single = None
        op._v1 = None
        return op

    @property
    def has_v2(self) -> bool:
        """Whether ``/api/v2`` can carry this operation."""
        return self.single is None

    @property
    def v2(self) -> dict[str, Any] | None:
        """The v2 operation as a dict (parsed from its bytes), or ``None`` for operations
        only v1 can carry."""
        if self.single is not None:
            return None
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed

    @property
    def v1(self) -> V1Request | None:
        """The v1 request the official SDK would send, or ``None`` when v1 cannot address
        it (typed v2 operations, identifiers the v1 server could misread)."""
        if self._v1 is not None:
            return self._v1
        person = self.person
        if person is None or person.v1_path_id is None:
            return None
        v2 = self.v2
        assert v2 is not None  # a person operation without its own v1 request is v2
        return _v1_for(self.action, person.v1_path_id, v2)

    def v2_bytes(self) -> bytes:
        """The serialised v2 operation.

        Example::

            body = Person.identify("42", {"plan": "pro"}).v2_bytes()

        Raises:
            ValidationError: When v2 cannot carry this operation.
        """
        if self.single is not None:
            raise ValidationError(f"{self.action} operations have no v2 form; send them alone")
        return self.data


def too_large(field: str, size: int, why: str = "") -> NoReturn:
    """Refuse a v2 operation over 32,000 bytes (the per-operation limit of
    ``/api/v2/batch`` and ``/api/v2/entity``); ``why`` explains why v2 had to carry it.

    Raises:
        LimitExceededError: Always.
    """
    raise LimitExceededError(
        f"the {field} operation is {size} bytes serialised; a v2 operation may be at most "
        f"{MAX_OP_BYTES}{why}",
        size=size,
        limit=MAX_OP_BYTES,
        field=field,
    )


def sized(v2: dict[str, Any], field: str) -> bytes:
    """Serialise a v2 operation; refuse it over 32,000 bytes.

    Raises:
        LimitExceededError: Over the limit.
        ValidationError: For values JSON cannot carry.
    """
    data = serialise(v2, field)
    if len(data) > MAX_OP_BYTES:
        too_large(field, len(data))
    return data


def v1_single(request: V1Request) -> tuple[bytes, SingleRequest]:
    """The body bytes and the pipeline's request description of a v1-only operation."""
    body = request.encode_body()
    single = SingleRequest(
        request.method,
        request.path(),
        request.endpoint,
        authenticated=request.authenticated,
        has_body=body is not None,
    )
    return body or b"", single


def _v1_for(action: str, pid: str, v2: dict[str, Any]) -> V1Request | None:
    """Derive the official SDK's v1 request from a person operation's v2 form."""
    if action == "identify":
        return V1Request("PUT", ("customers", pid), "/customers/{id}", v2.get("attributes", {}))
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
            "PUT", ("customers", pid, "devices"), "/customers/{id}/devices", {"device": v1_device}
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
    return None  # typed v2 actions without a v1 form (relationships…) go through /entity


def from_mapping(op: Mapping[str, Any], index: int) -> Operation:
    """Adopt a caller-built v2 operation dict (the official ``batch()`` input).

    Only the envelope is checked here (``type``, ``action``, JSON-serialisable, ≤32,000
    bytes); the API reports anything else per operation.

    Raises:
        ValidationError: A malformed envelope.
        LimitExceededError: Over 32,000 bytes.
    """
    field = f"operations[{index}]"
    if not isinstance(op, Mapping):
        raise ValidationError(f"{field} must be a mapping or an Operation", field=field)
    if op.get("type") not in ("person", "object", "delivery"):
        raise ValidationError(f"{field}.type must be person, object or delivery", field=field)
    if not isinstance(op.get("action"), str) or not op["action"]:
        raise ValidationError(f"{field}.action must be a non-empty string", field=field)
    keys = [_key_of(op.get(name)) for name in ("identifiers", "primary", "secondary")]
    present = [k for k in keys if k is not None] if op.get("type") == "person" else []
    key = present[0] if present else None
    return Operation(str(op["action"]), sized(dict(op), field), key, more_keys=tuple(present[1:]))


def _key_of(identifiers: Any) -> OrderingKey | None:
    """The person key of a one-key identifier object in a caller-built operation."""
    if isinstance(identifiers, Mapping) and len(identifiers) == 1:
        ((id_type, value),) = identifiers.items()
        if isinstance(id_type, str) and isinstance(value, (str, int)):
            text = str(value)
            # Only a cio_id drops its prefix (as person_ref does): {"id": "cio_1"} is the
            # id "cio_1", another person than {"cio_id": "1"}.
            if id_type == "cio_id":
                text = text.removeprefix("cio_")
            return OrderingKey("person", id_type, text)
    return None
