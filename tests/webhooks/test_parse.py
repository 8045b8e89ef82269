"""Parsing: the documented example, every typed field, tolerance of unknown values, and
the bodies that are not events."""

from __future__ import annotations

import dataclasses
import json

import pytest

from customerio_async import WebhookVerificationError
from customerio_async.webhooks import WebhookIdentifiers, parse_event

from ._support import TS, event


def test_parse_documented_example() -> None:
    parsed = parse_event(json.dumps(event()).encode())
    assert parsed.event_id == "01E4C4CT6YDC7Y5M7FE1GWWPQJ"
    assert (parsed.object_type, parsed.metric, parsed.timestamp) == ("email", "sent", TS)
    data = parsed.data
    assert data.identifiers == WebhookIdentifiers("42", "test@example.com", "d9c106000001")
    assert (data.action_id, data.broadcast_id, data.campaign_id) == (42, 9, None)
    assert data.delivery_id == "RPILAgUBcRhIBqSfeiIwdIYJKxTY"
    assert data.customer_id == "0200000001"
    assert data.recipient == "test@example.com"
    assert data.get("subject") == "Hi"
    assert data.get("missing", "x") == "x"
    assert parsed.raw["data"] is data.raw


def test_parse_every_documented_field() -> None:
    doc = event(
        object_type="push",
        metric="clicked",
        data={
            "identifiers": {"id": 7, "email": None},
            "campaign_id": 5,
            "newsletter_id": 10,
            "parent_action_id": 1,
            "trigger_id": 3,
            "content_id": 4,
            "link_id": 6,
            "transactional_message_id": "welcome",
            "journey_id": "01GW20GXAAXBKZD8J96M8FNV3R",
            "trigger_event_id": None,
            "failure_message": "boom",
            "href": "https://x.io",
        },
    )
    data = parse_event(json.dumps(doc)).data
    assert data.identifiers == WebhookIdentifiers("7", None, None)
    assert (data.campaign_id, data.newsletter_id, data.parent_action_id) == (5, 10, 1)
    assert (data.trigger_id, data.content_id, data.link_id) == (3, 4, 6)
    assert data.transactional_message_id == "welcome"
    assert data.journey_id == "01GW20GXAAXBKZD8J96M8FNV3R"
    assert data.trigger_event_id is None
    assert (data.failure_message, data.href) == ("boom", "https://x.io")


def test_parse_is_tolerant() -> None:
    doc = event(object_type="carrier_pigeon", metric="landed", extra={"x": 1})
    doc["data"] = {"campaign_id": "5", "link_id": True, "transactional_message_id": [1]}
    parsed = parse_event(json.dumps(doc).encode())
    assert (parsed.object_type, parsed.metric) == ("carrier_pigeon", "landed")
    assert parsed.raw["extra"] == {"x": 1}
    assert parsed.data.campaign_id is None  # wrong JSON type: None, still in raw
    assert parsed.data.link_id is None
    assert parsed.data.transactional_message_id is None
    assert parsed.data.raw["campaign_id"] == "5"
    assert parsed.data.identifiers == WebhookIdentifiers()
    no_data = parse_event(json.dumps({k: v for k, v in event().items() if k != "data"}))
    assert no_data.data.raw == {}
    odd = parse_event(json.dumps(event(data={"identifiers": ["x"]})))
    assert odd.data.identifiers == WebhookIdentifiers()


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"\xff\xfe",
        b"[1]",
        b"null",
        json.dumps({k: v for k, v in event().items() if k != "event_id"}).encode(),
        json.dumps(event(event_id="")).encode(),
        json.dumps(event(metric=None)).encode(),
        json.dumps(event(object_type=1)).encode(),
        json.dumps(event(timestamp="1613063089")).encode(),
        json.dumps(event(timestamp=True)).encode(),
        json.dumps(event(timestamp=1.5)).encode(),
    ],
)
def test_parse_rejects_non_events(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError) as info:
        parse_event(body)
    assert info.value.reason == "invalid_payload"


def test_events_are_frozen_and_slotted() -> None:
    parsed = parse_event(json.dumps(event()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.metric = "opened"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.data.identifiers.id = "x"  # type: ignore[misc]
    for obj in (parsed, parsed.data, parsed.data.identifiers):
        assert not hasattr(obj, "__dict__")
