"""Transactional sends on every channel, against a real FakeCustomerIO over loopback."""

from __future__ import annotations

import base64
import datetime as dt
import time
from typing import Any

import pytest

from customerio_async import (
    APIClient,
    SendEmailRequest,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendResult,
    SendSMSRequest,
    SendWhatsAppRequest,
)
from customerio_async.testing import FakeCustomerIO

from ._support import APP_KEY, PERSON


async def test_send_email_round_trip(fake: FakeCustomerIO, api: APIClient) -> None:
    request = SendEmailRequest(
        transactional_message_id=44,
        to="Ada <ada@example.com>",
        identifiers={"id": 42},
        _from="shop@example.com",
        headers={"X-Tag": "receipts"},
        message_data={"order": 1},
    )
    request.attach("receipt.txt", "thanks!")
    request.attach("logo.png", b"\x89PNG")
    result = await api.send_email(request)
    assert isinstance(result, SendResult)
    assert result.send_at is None
    (send,) = fake.sends
    assert send.channel == "email"
    assert result == SendResult(send.delivery_id, send.queued_at)
    body = send.body
    assert body["identifiers"] == {"id": "42"}  # ids are strings on the wire
    assert body["from"] == "shop@example.com"
    assert body["attachments"] == {
        "receipt.txt": base64.b64encode(b"thanks!").decode(),
        "logo.png": base64.b64encode(b"\x89PNG").decode(),
    }
    (req,) = fake.requests
    assert req.path == "/v1/send/email"
    assert req.headers["authorization"] == f"Bearer {APP_KEY}"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("customerio-async/")


@pytest.mark.parametrize(
    ("method", "request_", "path", "wire"),
    [
        pytest.param(
            "send_push",
            SendPushRequest(
                transactional_message_id="welcome",
                identifiers={"email": "ada@example.com"},
                title="Hi",
                device={"token": "tok", "platform": "ios"},
                sound="none",
            ),
            "/v1/send/push",
            {
                "transactional_message_id": "welcome",
                "identifiers": {"email": "ada@example.com"},
                "title": "Hi",
                "custom_device": {"token": "tok", "platform": "ios"},
                "sound": "none",
            },
            id="push",
        ),
        pytest.param(
            "send_sms",
            SendSMSRequest(7, "+15551234567", {"cio_id": "cio_a3000001"}),
            "/v1/send/sms",
            {
                "transactional_message_id": 7,
                "to": "+15551234567",
                "identifiers": {"cio_id": "a3000001"},
            },
            id="sms",
        ),
        pytest.param(
            "send_whatsapp",
            SendWhatsAppRequest(7, "+15551234567", PERSON, tracked=False),
            "/v1/send/whatsapp",
            {
                "transactional_message_id": 7,
                "to": "+15551234567",
                "identifiers": PERSON,
                "tracked": False,
            },
            id="whatsapp",
        ),
        pytest.param(
            "send_inbox_message",
            SendInboxMessageRequest(7, PERSON, message_data={"n": 1}, language="fr"),
            "/v1/send/inbox_message",
            {
                "transactional_message_id": 7,
                "identifiers": PERSON,
                "message_data": {"n": 1},
                "language": "fr",
            },
            id="inbox",
        ),
        pytest.param(
            "send_in_app",
            SendInAppRequest(7, "ada@example.com", queue_draft=True),
            "/v1/send/in_app",
            {
                "transactional_message_id": 7,
                "identifiers": {"email": "ada@example.com"},
                "queue_draft": True,
            },
            id="in_app",
        ),
    ],
)
async def test_every_channel(
    fake: FakeCustomerIO,
    api: APIClient,
    method: str,
    request_: Any,
    path: str,
    wire: dict[str, Any],
) -> None:
    result = await getattr(api, method)(request_)
    assert isinstance(result, SendResult)
    (req,) = fake.requests
    assert req.path == path
    assert req.json() == wire
    assert fake.sends[0].delivery_id == result.delivery_id


async def test_wire_shaped_dict_is_accepted(fake: FakeCustomerIO, api: APIClient) -> None:
    payload = {"transactional_message_id": 1, "to": "a@b.co", "identifiers": {"id": "1"}}
    await api.send_email(payload)
    await api.send_sms({"transactional_message_id": 1, "to": "+1555", "identifiers": PERSON})
    assert [s.channel for s in fake.sends] == ["email", "sms"]
    assert payload == {"transactional_message_id": 1, "to": "a@b.co", "identifiers": {"id": "1"}}


async def test_template_less_email(fake: FakeCustomerIO, api: APIClient) -> None:
    request = SendEmailRequest(
        to="a@b.co", identifiers=PERSON, _from="s@b.co", subject="S", body="B"
    )
    await api.send_email(request)
    assert "transactional_message_id" not in fake.sends[0].body


async def test_send_at_scheduling(fake: FakeCustomerIO, api: APIClient) -> None:
    later = int(time.time()) + 3600
    result = await api.send_sms(SendSMSRequest(1, "+1555", PERSON, send_at=later))
    assert result.send_at == later
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=89)
    result = await api.send_push(SendPushRequest(1, identifiers=PERSON, send_at=when))
    assert result.send_at == int(when.timestamp())
    past = await api.send_push(SendPushRequest(1, identifiers=PERSON, send_at=1_000_000_000))
    assert past.send_at is None  # a past send_at sends at once
    assert [s.send_at for s in fake.sends] == [later, int(when.timestamp()), None]
