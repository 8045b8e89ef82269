"""Parsing: a verified reporting-webhook body into a typed :class:`WebhookEvent`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .._exceptions import WebhookVerificationError

__all__ = ["EventData", "ObjectType", "WebhookEvent", "WebhookIdentifiers", "parse_event"]

ObjectType: TypeAlias = Literal[
    "customer", "email", "push", "in_app", "sms", "slack", "webhook", "whatsapp"
]
"""The documented ``object_type`` values; :attr:`WebhookEvent.object_type` is a plain ``str``
so that types Customer.io adds later still parse.

Example::

    def channel(event: WebhookEvent) -> ObjectType | None:
        kind = event.object_type
        return kind if kind in typing.get_args(ObjectType) else None
"""


@dataclass(frozen=True, slots=True)
class WebhookIdentifiers:
    """Who the event is about (``data.identifiers``); any of them may be ``None``.

    Example::

        who = event.data.identifiers
        person = who.id or who.email or who.cio_id
    """

    id: str | None = None
    email: str | None = None
    cio_id: str | None = None


_NO_IDENTIFIERS = WebhookIdentifiers()


@dataclass(frozen=True, slots=True)
class EventData:
    """The ``data`` object of an event, with the documented fields typed.

    Which fields are present depends on what produced the message: campaigns set
    ``campaign_id``/``action_id``, API-triggered broadcasts ``broadcast_id``/``trigger_id``,
    newsletters ``newsletter_id``/``content_id``, transactional messages
    ``transactional_message_id``; failures add ``failure_message`` and clicks ``href`` and
    ``link_id``. A field of an unexpected JSON type reads as ``None``; :attr:`raw` always
    holds the object exactly as received, unknown fields included.

    Example::

        data = event.data
        if event.metric == "bounced":
            await suppress(data.recipient, reason=data.failure_message)
        subject = data.get("subject")       # an undocumented field, from raw

    Attributes:
        identifiers: The person (``id``, ``email``, ``cio_id``).
        customer_id: Deprecated by Customer.io in favour of ``identifiers.id``.
        delivery_id: The message instance (matches :attr:`SendResult.delivery_id`).
        recipient: The address, number or device the message went to.
        raw: The whole ``data`` object.
    """

    identifiers: WebhookIdentifiers
    customer_id: str | None
    delivery_id: str | None
    recipient: str | None
    campaign_id: int | None
    broadcast_id: int | None
    newsletter_id: int | None
    action_id: int | None
    parent_action_id: int | None
    trigger_id: int | None
    content_id: int | None
    link_id: int | None
    transactional_message_id: int | str | None
    journey_id: str | None
    trigger_event_id: str | None
    failure_message: str | None
    href: str | None
    raw: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        """A field of :attr:`raw`, e.g. ``data.get("subject")``.

        Example::

            subject = event.data.get("subject", "(no subject)")
        """
        return self.raw.get(key, default)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One reporting-webhook event.

    ``object_type`` and ``metric`` are plain strings (see :data:`ObjectType` and contract
    §6 for the documented values), so events Customer.io adds later still parse.

    Example::

        async def on_event(event: WebhookEvent) -> None:
            if (event.object_type, event.metric) == ("email", "opened"):
                await mark_opened(event.data.delivery_id, at=event.timestamp)

    Attributes:
        event_id: Unique id of the event (ULID-like); retried deliveries repeat it.
        object_type: ``customer``, ``email``, ``push``, ``in_app``, ``sms``, ``slack``,
            ``webhook``, ``whatsapp``, or something newer.
        metric: ``sent``, ``delivered``, ``opened``, ``clicked``, ``bounced``...
        timestamp: Unix seconds when the event happened.
        data: The typed ``data`` object.
        raw: The whole decoded event.
    """

    event_id: str
    object_type: str
    metric: str
    timestamp: int
    data: EventData
    raw: Mapping[str, Any]


def _invalid(message: str) -> WebhookVerificationError:
    return WebhookVerificationError(message, reason="invalid_payload")


def _s(value: Any) -> str | None:
    # Strings as they are; ints (ids some producers send unquoted) as text.
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None


def _i(value: Any) -> int | None:
    return value if type(value) is int else None


def _decode(raw_body: bytes | str) -> dict[str, Any]:
    try:
        # Decoding ourselves skips json's encoding sniffing (Customer.io sends UTF-8).
        doc = json.loads(raw_body if isinstance(raw_body, str) else bytes(raw_body).decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _invalid("the webhook body is not valid JSON") from None
    if type(doc) is not dict:
        raise _invalid("the webhook body is not a JSON object")
    return doc


def _event_data(data: dict[str, Any]) -> EventData:
    ids = data.get("identifiers")
    identifiers = (
        WebhookIdentifiers(_s(ids.get("id")), _s(ids.get("email")), _s(ids.get("cio_id")))
        if type(ids) is dict
        else _NO_IDENTIFIERS
    )
    get = data.get
    template = get("transactional_message_id")
    return EventData(
        identifiers,
        _s(get("customer_id")),
        _s(get("delivery_id")),
        _s(get("recipient")),
        _i(get("campaign_id")),
        _i(get("broadcast_id")),
        _i(get("newsletter_id")),
        _i(get("action_id")),
        _i(get("parent_action_id")),
        _i(get("trigger_id")),
        _i(get("content_id")),
        _i(get("link_id")),
        template if type(template) in (int, str) else None,
        _s(get("journey_id")),
        _s(get("trigger_event_id")),
        _s(get("failure_message")),
        _s(get("href")),
        data,
    )


def parse_event(raw_body: bytes | str) -> WebhookEvent:
    """Decode a reporting-webhook body into a :class:`WebhookEvent`.

    Parse only after :func:`verify_signature` has accepted the body. Unknown object types,
    metrics and fields are kept, not rejected.

    Example::

        verify_signature(raw_body, timestamp, signature, SIGNING_KEY)
        event = parse_event(raw_body)
        print(event.object_type, event.metric, event.data.identifiers.id)

    Args:
        raw_body: The request body.

    Returns:
        The event.

    Raises:
        WebhookVerificationError: ``reason="invalid_payload"`` when the body is not JSON or
            lacks ``event_id``, ``object_type``, ``metric`` or an integer ``timestamp``.
    """
    doc = _decode(raw_body)
    event_id = doc.get("event_id")
    object_type = doc.get("object_type")
    metric = doc.get("metric")
    timestamp = doc.get("timestamp")
    if (
        type(event_id) is not str
        or not event_id
        or type(object_type) is not str
        or type(metric) is not str
        or type(timestamp) is not int
    ):
        raise _invalid(
            "the webhook body needs a string event_id, object_type and metric, and an "
            "integer timestamp"
        )
    data = doc.get("data")
    return WebhookEvent(
        event_id,
        object_type,
        metric,
        timestamp,
        _event_data(data if type(data) is dict else {}),
        doc,
    )
