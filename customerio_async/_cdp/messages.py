"""Pipelines calls: what ``identify()``, ``track()``… become at the call site.

Each builder validates its arguments (:mod:`.validation`), completes the message the way
analytics-python does (``type``, a ``timestamp`` and a ``messageId`` when absent, the library
in ``context.library``) and serialises it ONCE into a :class:`PipelinesCall`: the bytes the
send pipeline appends to a ``/v1/batch`` body, so a retried batch carries the same
``messageId`` s. ``alias`` travels as its own ``POST /v1/alias`` (the vendor document lists no
alias item for ``/v1/batch``).

Values are serialised by :mod:`.wire` as the Segment spec expects.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import orjson

from .._common.ulid import new_ulid
from .._exceptions import ValidationError
from .._pipeline.protocol import SingleRequest
from .._version import __version__
from . import validation as v
from .wire import encode, now

__all__ = [
    "LIBRARY",
    "PipelinesCall",
    "alias",
    "from_dict",
    "group",
    "identify",
    "page",
    "screen",
    "track",
]

LIBRARY = {"name": "customerio-async", "version": __version__}
_CONTEXT = {"library": LIBRARY}  # serialised, never changed
_new_call = object.__new__
ALIAS = SingleRequest("POST", "/v1/alias", "/v1/alias")


class PipelinesCall:
    """One validated, serialised Data Pipelines message.

    :class:`PipelinesClient` builds one per call; build one yourself from a Segment-spec
    message with :meth:`from_dict` (in a worker thread, say) and send it with
    :meth:`PipelinesClient.send`.

    Example::

        call = PipelinesCall.from_dict({"type": "track", "userId": "42", "event": "Signed Up"})
        receipt = await client.send(call)

    Attributes:
        action: ``identify``, ``track``, ``page``, ``screen``, ``group`` or ``alias``.
        data: The serialised message (≤32,000 bytes).
        key: The ordering key: the ``userId`` (else the ``anonymousId``, else the
            ``groupId``); one person's messages are delivered in call order.
        more_keys: The ``anonymousId`` of a message that also names a ``userId``, and the
            ``previousId`` of an alias: ordered with those people's messages too.
        single: The request of its own an alias travels in (``None``: a batch item).
        message_id: The ``messageId``.
    """

    __slots__ = ("action", "data", "key", "message_id", "more_keys", "single")

    def __init__(
        self,
        action: str,
        data: bytes,
        key: Hashable | None,
        message_id: str,
        more_keys: tuple[Hashable, ...] = (),
        single: SingleRequest | None = None,
    ) -> None:
        self.action = action
        self.data = data
        self.key = key
        self.message_id = message_id
        self.more_keys = more_keys
        self.single = single

    def __repr__(self) -> str:
        # No identifiers or payload: reprs end up in logs.
        return f"<PipelinesCall {self.action}>"

    @property
    def event_id(self) -> str:
        """The ``messageId`` (what :attr:`Receipt.event_id` reports).

        Example::

            receipt = await client.track("42", "Signed Up")
            assert receipt.event_id == receipt.operation.event_id
        """
        return self.message_id

    @property
    def message(self) -> dict[str, Any]:
        """The message as a dict (parsed from its bytes).

        Example::

            PipelinesCall.from_dict({"type": "alias", "previousId": "a", "userId": "1"}).message
        """
        parsed: dict[str, Any] = orjson.loads(self.data)
        return parsed

    @classmethod
    def from_dict(cls, message: Mapping[str, Any]) -> PipelinesCall:
        """Validate a Segment-spec message (camelCase: ``type``, ``userId``, ``event``,
        ``properties``…) and serialise it; see :func:`from_dict`.

        Example::

            PipelinesCall.from_dict({"type": "identify", "userId": "42", "traits": {}})
        """
        return from_dict(message)


def _message_id(value: Any) -> str:
    if value is None:
        return new_ulid()  # OS randomness (see _common.ulid); fixed from here on
    # analytics-python takes any id (a UUID, an int) and sends its string.
    text = value if isinstance(value, str) else str(value)
    if not text or text.isspace():
        raise ValidationError("message_id must not be blank", field="message_id")
    return text


def _finish(
    msg: dict[str, Any],
    context: Any,
    integrations: Any,
    timestamp: Any,
    message_id: Any,
) -> str:
    """Add the fields every message carries; return its ``messageId``."""
    ctx = v.mapping(context, "context")
    if ctx:
        v.check_context(ctx)
        msg["context"] = ctx if "library" in ctx else {**ctx, "library": LIBRARY}
    else:
        msg["context"] = {"library": LIBRARY}
    flags = v.mapping(integrations, "integrations")
    if flags:
        v.check_integrations(flags)
    msg["integrations"] = flags if flags is not None else {}  # as analytics-python sends it
    msg["timestamp"] = now() if timestamp is None else v.timestamp(timestamp)
    mid = msg["messageId"] = _message_id(message_id)
    return mid


def _keys(
    user: str | None, anonymous: str | None, group_id: str | None = None
) -> tuple[Hashable | None, tuple[Hashable, ...]]:
    """Ordering keys: the user (and their anonymous id), the anonymous id, or the group."""
    if user:
        return ("user", user), (("anonymous", anonymous),) if anonymous else ()
    if anonymous:
        return ("anonymous", anonymous), ()
    return (("group", group_id) if group_id else None), ()


def _people(msg: dict[str, Any], user_id: Any, anonymous_id: Any) -> tuple[str | None, str | None]:
    user = v.identifier(user_id, "user_id")
    anonymous = v.identifier(anonymous_id, "anonymous_id")
    if user is not None:
        msg["userId"] = user
    if anonymous is not None:
        msg["anonymousId"] = anonymous
    return user, anonymous


def _call(
    kind: str, msg: dict[str, Any], user: str | None, anonymous: str | None, mid: str
) -> PipelinesCall:
    key, more = _keys(user, anonymous, msg.get("groupId"))
    return PipelinesCall(kind, encode(msg, kind), key, mid, more)


# ----------------------------------------------------------------------------- the calls


def identify(
    user_id: Any = None,
    traits: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> PipelinesCall:
    """Build an ``identify`` (analytics-python's argument order)."""
    msg: dict[str, Any] = {"type": "identify"}
    user, anonymous = _people(msg, user_id, anonymous_id)
    attrs = v.mapping(traits, "traits")
    msg["traits"] = attrs = attrs if attrs is not None else {}
    v.require_person("identify", user, anonymous, attrs.get("email"))
    if attrs:
        v.check_traits("identify", attrs)
    mid = _finish(msg, context, integrations, timestamp, message_id)
    return _call("identify", msg, user, anonymous, mid)


def track(
    user_id: Any = None,
    event: Any = None,
    properties: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
    *,
    group_id: Any = None,
) -> PipelinesCall:
    """Build a ``track`` (analytics-python's argument order; ``group_id`` is ours: PS lets a
    group-level event name a ``groupId`` instead of a person)."""
    if (
        type(user_id) is str
        and type(event) is str
        and (properties is None or type(properties) is dict)
        and context is None is timestamp is anonymous_id is integrations is message_id is group_id
    ):
        fast = _plain_track(user_id, event, properties)
        if fast is not None:
            return fast
    msg: dict[str, Any] = {"type": "track"}
    user, anonymous = _people(msg, user_id, anonymous_id)
    name = msg["event"] = v.name(event, "event", required=True)
    props = v.mapping(properties, "properties")
    msg["properties"] = props if props is not None else {}
    group = v.identifier(group_id, "group_id")
    if group is not None:
        msg["groupId"] = group
    if not (group and group.strip()) and name != "Report Delivery Event":
        v.require_person("track", user, anonymous, None)
    mid = _finish(msg, context, integrations, timestamp, message_id)
    if name in v.SEMANTIC_EVENTS:
        v.check_semantic(msg)
    return _call("track", msg, user, anonymous, mid)


def _plain_track(user: str, event: str, properties: dict[str, Any] | None) -> PipelinesCall | None:
    """The hottest call, ``track(user_id, event, properties)``: the same message as the
    general path, built without its checks of absent arguments; ``None`` sends the call to
    the general path (blank ids or names, semantic events)."""
    if not user or user.isspace() or not event or event.isspace() or event in v.SEMANTIC_EVENTS:
        return None
    mid = new_ulid()
    msg = {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": properties if properties is not None else {},
        "context": _CONTEXT,
        "integrations": {},
        "timestamp": now(),
        "messageId": mid,
    }
    call = _new_call(PipelinesCall)
    call.action, call.data, call.key, call.message_id = (
        "track",
        encode(msg, "track"),
        ("user", user),
        mid,
    )
    call.more_keys, call.single = (), None
    return call


def _view(
    kind: str,
    user_id: Any,
    category: Any,
    name: Any,
    properties: Any,
    rest: tuple[Any, Any, Any, Any, Any],
) -> PipelinesCall:
    """A ``page`` or a ``screen``: ``rest`` is ``(context, timestamp, anonymous_id,
    integrations, message_id)``."""
    context, timestamp, anonymous_id, integrations, message_id = rest
    msg: dict[str, Any] = {"type": kind}
    user, anonymous = _people(msg, user_id, anonymous_id)
    v.require_person(kind, user, anonymous, None)
    if category is not None:
        msg["category"] = v.name(category, "category")
    if name is not None:
        msg["name"] = v.name(name, "name")
    props = v.mapping(properties, "properties")
    msg["properties"] = props = props if props is not None else {}
    if props and kind == "page":
        v.check_page_properties(props)
    mid = _finish(msg, context, integrations, timestamp, message_id)
    return _call(kind, msg, user, anonymous, mid)


def page(
    user_id: Any = None,
    category: Any = None,
    name: Any = None,
    properties: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> PipelinesCall:
    """Build a ``page`` (analytics-python's argument order)."""
    rest = (context, timestamp, anonymous_id, integrations, message_id)
    return _view("page", user_id, category, name, properties, rest)


def screen(
    user_id: Any = None,
    category: Any = None,
    name: Any = None,
    properties: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> PipelinesCall:
    """Build a ``screen`` (analytics-python's argument order)."""
    rest = (context, timestamp, anonymous_id, integrations, message_id)
    return _view("screen", user_id, category, name, properties, rest)


def group(
    user_id: Any = None,
    group_id: Any = None,
    traits: Any = None,
    context: Any = None,
    timestamp: Any = None,
    anonymous_id: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> PipelinesCall:
    """Build a ``group`` (analytics-python's argument order)."""
    msg: dict[str, Any] = {"type": "group"}
    user, anonymous = _people(msg, user_id, anonymous_id)
    v.require_person("group", user, anonymous, None)
    gid = v.identifier(group_id, "group_id")
    if gid is None or not gid.strip():
        raise ValidationError("group needs a non-blank group_id", field="group_id")
    msg["groupId"] = gid
    attrs = v.mapping(traits, "traits")
    msg["traits"] = attrs = attrs if attrs is not None else {}
    if attrs:
        v.check_traits("group", attrs)
    mid = _finish(msg, context, integrations, timestamp, message_id)
    return _call("group", msg, user, anonymous, mid)


def alias(
    previous_id: Any = None,
    user_id: Any = None,
    context: Any = None,
    timestamp: Any = None,
    integrations: Any = None,
    message_id: Any = None,
) -> PipelinesCall:
    """Build an ``alias``, sent as ``POST /v1/alias`` (analytics-python's argument order).

    Ordered with the messages of both the user and the previous id (a user id or an
    anonymous id), so nothing sent before the alias lands after it.
    """
    msg: dict[str, Any] = {"type": "alias"}
    previous = v.identifier(previous_id, "previous_id")
    user = v.identifier(user_id, "user_id")
    for field, value in (("previous_id", previous), ("user_id", user)):
        if value is None or not value.strip():
            raise ValidationError(f"alias needs a non-blank {field}", field=field)
    msg["previousId"], msg["userId"] = previous, user
    mid = _finish(msg, context, integrations, timestamp, message_id)
    more = (("user", previous), ("anonymous", previous))
    return PipelinesCall("alias", encode(msg, "alias"), ("user", user), mid, more, ALIAS)


# ----------------------------------------------------------------------------- from a dict

_COMMON = {
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "context": "context",
    "integrations": "integrations",
    "timestamp": "timestamp",
    "messageId": "message_id",
}
_VIEW = {**_COMMON, "category": "category", "name": "name", "properties": "properties"}
_FIELDS: Mapping[str, Mapping[str, str]] = {
    "identify": {**_COMMON, "traits": "traits"},
    "track": {**_COMMON, "event": "event", "properties": "properties", "groupId": "group_id"},
    "page": _VIEW,
    "screen": _VIEW,
    "group": {**_COMMON, "groupId": "group_id", "traits": "traits"},
    "alias": {
        k: a for k, a in {**_COMMON, "previousId": "previous_id"}.items() if k != "anonymousId"
    },
}
_BUILDERS: Mapping[str, Any] = {
    "identify": identify,
    "track": track,
    "page": page,
    "screen": screen,
    "group": group,
    "alias": alias,
}


def from_dict(message: Mapping[str, Any]) -> PipelinesCall:
    """Build a call from a Segment-spec message: ``type`` picks the call, the camelCase
    fields (``userId``, ``anonymousId``, ``traits``, ``event``, ``properties``, ``name``,
    ``category``, ``groupId``, ``previousId``, ``context``, ``integrations``, ``timestamp``,
    ``messageId``) its arguments. The same rules as the calls apply.

    Raises:
        ValidationError: Not a mapping, an unknown ``type`` or field, or a call's rule.
    """
    if not isinstance(message, Mapping):
        raise ValidationError("a message must be a mapping", field="message")
    kind = message.get("type")
    names = _FIELDS.get(kind) if isinstance(kind, str) else None
    if names is None or not isinstance(kind, str):
        raise ValidationError(f"type must be one of {', '.join(_FIELDS)}", field="type")
    kwargs: dict[str, Any] = {}
    for key, value in message.items():
        if key == "type":
            continue
        arg = names.get(key) if isinstance(key, str) else None
        if arg is None:
            raise ValidationError(
                f"unknown field {str(key)[:60]!r} for {kind}; use {', '.join(names)}",
                field=str(key)[:60],
            )
        kwargs[arg] = value
    call: PipelinesCall = _BUILDERS[kind](**kwargs)
    return call
