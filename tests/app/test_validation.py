"""Sends and triggers are validated in the caller's task: errors raise before any I/O."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest

from customerio_async import (
    APIClient,
    LimitExceededError,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendSMSRequest,
    SendWhatsAppRequest,
    ValidationError,
)
from customerio_async.testing import FakeCustomerIO

from ._support import PERSON, email

BAD_REQUESTS: list[Any] = [
    pytest.param(email(identifiers=None), "identifiers", id="no-identifiers"),
    pytest.param(email(identifiers={"id": "1", "email": "a@b.co"}), "identifiers", id="two-ids"),
    pytest.param(email(identifiers={"phone": "+1555"}), "identifiers", id="phone-not-allowed"),
    pytest.param(email(identifiers={"id": ""}), "identifiers.id", id="blank-id"),
    pytest.param(email(transactional_message_id=None), "transactional_message_id", id="no-tpl"),
    pytest.param(email(transactional_message_id=True), "transactional_message_id", id="bool-tpl"),
    pytest.param(email(transactional_message_id=0), "transactional_message_id", id="zero-tpl"),
    pytest.param(email(transactional_message_id=" "), "transactional_message_id", id="blank-tpl"),
    pytest.param(email(transactional_message_id=1.5), "transactional_message_id", id="float-tpl"),
    pytest.param(email(to=None), "to", id="no-to"),
    pytest.param(email(to=" "), "to", id="blank-to"),
    pytest.param(email(to=["a@b.co"]), "to", id="list-to"),
    pytest.param(
        email(
            to=", ".join(f"u{i}@b.co" for i in range(10)),
            cc="c1@b.co, c2@b.co",
            bcc="x@b.co, y@b.co, z@b.co, w@b.co",
        ),
        "to",
        id="16-recipients",
    ),
    pytest.param(email(headers=["X-A: 1"]), "headers", id="headers-list"),
    pytest.param(email(headers={"X-A": 1}), "headers", id="headers-int-value"),
    pytest.param(email(attachments={"a.txt": "not base64!"}), "attachments.a.txt", id="b64"),
    pytest.param(email(attachments={"a.txt": b"YQ=="}), "attachments.a.txt", id="b64-bytes"),
    pytest.param(email(attachments=["a.txt"]), "attachments", id="attachments-list"),
    pytest.param(email(tracked="yes"), "tracked", id="bool-field"),
    pytest.param(email(subject=3), "subject", id="string-field"),
    pytest.param(email(message_data=[1]), "message_data", id="message-data-list"),
    pytest.param(email(message_data={1: "x"}), "message_data", id="message-data-keys"),
    pytest.param(email(send_at=int(time.time()) + 91 * 86_400), "send_at", id="send-at-91d"),
    pytest.param(email(send_at=int(time.time() * 1000)), "send_at", id="send-at-ms"),
    pytest.param(email(send_at="tomorrow"), "send_at", id="send-at-text"),
    pytest.param(email(message_data={"x": float("nan")}), "request", id="nan"),
    pytest.param("not a request", "request", id="wrong-type"),
    pytest.param(SendSMSRequest(1, "+1555", PERSON), "request", id="wrong-class"),
]


@pytest.mark.parametrize(("request_", "field"), BAD_REQUESTS)
async def test_invalid_email_is_refused_before_io(
    fake: FakeCustomerIO, api: APIClient, request_: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await api.send_email(request_)
    assert info.value.field == field
    assert fake.requests == []


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("send_push", SendPushRequest(identifiers=PERSON), "transactional_message_id"),
        (
            "send_push",
            SendPushRequest(1, identifiers=PERSON, device=cast(Any, ["tok"])),
            "custom_device",
        ),
        ("send_sms", SendSMSRequest(1, None, PERSON), "to"),
        ("send_whatsapp", SendWhatsAppRequest(1, None, PERSON), "to"),
        ("send_in_app", SendInAppRequest(1, None), "identifiers"),
        ("send_inbox_message", SendInboxMessageRequest(None, PERSON), "transactional_message_id"),
    ],
)
async def test_invalid_other_channels(
    fake: FakeCustomerIO, api: APIClient, method: str, request_: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await getattr(api, method)(request_)
    assert info.value.field == field
    assert fake.requests == []


async def test_recipient_count_understands_display_names(api: APIClient) -> None:
    # 15 addresses, two of them with quoted display names containing commas: allowed.
    to = '"Doe, Jane" <jane@b.co>, "Roe, Rick" <rick@b.co>, ' + ", ".join(
        f"u{i}@b.co" for i in range(13)
    )
    await api.send_email(email(to=to))


async def test_message_data_and_body_limits(fake: FakeCustomerIO, api: APIClient) -> None:
    big = "x" * 1_000_100
    with pytest.raises(LimitExceededError) as info:
        await api.send_email(email(message_data={"blob": big}))
    assert info.value.limit == 1_000_000
    assert big not in str(info.value)
    # Attachments do not count toward the 1,000,000-byte body limit: this body is over it
    # (kept under 1 MiB, where aiohttp starts warning about raw-bytes bodies).
    request = email(message_data={"blob": "x" * 700_000})
    request.attach("big.bin", b"\0" * 240_000)
    await api.send_email(request)
    assert 1_000_000 < len(fake.requests[-1].body) < 1024 * 1024
    assert fake.sends[0].channel == "email"


@pytest.mark.parametrize(
    ("kwargs", "field", "cls"),
    [
        ({"ids": ["1"], "emails": ["a@b.co"]}, "emails", ValidationError),
        ({"recipients": {}}, "recipients", ValidationError),
        ({"recipients": [1]}, "recipients", ValidationError),
        ({"ids": []}, "ids", ValidationError),
        ({"ids": "abc"}, "ids", ValidationError),
        ({"ids": [str(i) for i in range(10_001)]}, "ids", LimitExceededError),
        ({"emails": [""]}, "emails[0]", ValidationError),
        ({"per_user_data": [{"id": "1", "email": "a@b.co"}]}, "per_user_data[0]", ValidationError),
        ({"per_user_data": [{"id": "1", "extra": 1}]}, "per_user_data[0]", ValidationError),
        ({"per_user_data": ["1"]}, "per_user_data[0]", ValidationError),
        ({"per_user_data": [{"id": "1", "data": [1]}]}, "per_user_data[0].data", ValidationError),
        ({"data_file_url": "ftp://x/y"}, "data_file_url", ValidationError),
        ({"data": {"blob": "x" * 50_000}}, "data", LimitExceededError),
        ({"data": ["x"]}, "data", ValidationError),
        ({"id_ignore_missing": True}, "id_ignore_missing", ValidationError),
        ({"ids": ["1"], "email_ignore_missing": True}, "email_ignore_missing", ValidationError),
        ({"emails": ["a@b.co"], "id_ignore_missing": True}, "id_ignore_missing", ValidationError),
        (
            {"recipients": {"segment": {"id": 1}}, "email_add_duplicates": True},
            "email_add_duplicates",
            ValidationError,
        ),
        ({"ids": ["1"], "id_ignore_missing": "yes"}, "id_ignore_missing", ValidationError),
    ],
)
async def test_trigger_validation(
    fake: FakeCustomerIO,
    api: APIClient,
    kwargs: dict[str, Any],
    field: str,
    cls: type[ValidationError],
) -> None:
    with pytest.raises(cls) as info:
        await api.trigger_broadcast(9, **kwargs)
    assert type(info.value) is cls
    assert info.value.field == field
    assert fake.requests == []


@pytest.mark.parametrize("bad", [0, -1, True, "9", 1.0])
async def test_ids_must_be_positive_integers(api: APIClient, bad: Any) -> None:
    with pytest.raises(ValidationError, match="broadcast_id"):
        await api.trigger_broadcast(bad)
    with pytest.raises(ValidationError, match="trigger_id"):
        await api.get_trigger_errors(9, bad)
    with pytest.raises(ValidationError, match="start"):
        await api.get_trigger_errors(9, 1, start=-1)
    with pytest.raises(ValidationError, match="limit"):
        await api.get_trigger_errors(9, 1, limit=True)
