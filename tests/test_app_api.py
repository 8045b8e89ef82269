"""The App API client against a real FakeCustomerIO over loopback: sends, broadcasts,
validation before I/O, the no-retry-on-unknown-outcome rule, rate limits and lifecycle;
plus the fake's own App API rules, driven with raw HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import socket
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import aiohttp
import pytest
import pytest_asyncio

from customerio_async import (
    APIClient,
    AppRateLimits,
    AuthenticationError,
    BroadcastTrigger,
    ClientStateError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    CustomerIO,
    LimitExceededError,
    Metrics,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimit,
    RateLimitError,
    Region,
    RequestTimeoutError,
    RetryPolicy,
    SendEmailRequest,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendResult,
    SendSMSRequest,
    SendWhatsAppRequest,
    ServerError,
    Timeouts,
    TransportError,
    TriggerErrors,
    UnprocessableEntityError,
    UnsafeRedirectError,
    ValidationError,
)
from customerio_async._http.messages import HTTPHandler, HTTPRequest, HTTPResponse
from customerio_async.testing import FakeCustomerIO, Fault

APP_KEY = "fake-app-key"
NO_LIMITS = AppRateLimits(transactional=None, general=None, broadcast=None)
FAST_RETRY = RetryPolicy(backoff_base=0.0, backoff_cap=1.0, direct_attempts=3)
PERSON = {"id": "42"}


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeCustomerIO]:
    """A fake with the broadcast window disabled (tests that need it build their own)."""
    async with FakeCustomerIO(app_api_key=APP_KEY, broadcast_interval=0.0) as server:
        yield server


@pytest_asyncio.fixture
async def api(fake: FakeCustomerIO) -> AsyncIterator[APIClient]:
    """An open App client on ``fake``: no client-side limits, retries without waiting."""
    async with APIClient(
        APP_KEY, api_url=fake.url, rate_limits=NO_LIMITS, retry=FAST_RETRY
    ) as client:
        yield client


def email(**overrides: Any) -> SendEmailRequest:
    request = SendEmailRequest(
        transactional_message_id=44, to="ada@example.com", identifiers=PERSON
    )
    for name, value in overrides.items():
        setattr(request, name, value)
    return request


# --------------------------------------------------------------------------- sends


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


# --------------------------------------------------------------------------- validation


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


def test_attach() -> None:
    request = email()
    request.attach("a.txt", "é")
    request.attach("b.bin", b"\x00\x01")
    request.attach("c.txt", "aGk=", encode=False)
    request.attach("d.txt", b"aGk=", encode=False)
    assert request.attachments == {
        "a.txt": base64.b64encode("é".encode()).decode(),
        "b.bin": "AAE=",
        "c.txt": "aGk=",
        "d.txt": "aGk=",
    }
    with pytest.raises(ValidationError, match="already exists"):
        request.attach("a.txt", "again")
    with pytest.raises(ValidationError, match="non-empty"):
        request.attach("", "x")
    with pytest.raises(ValidationError, match="base64"):
        request.attach("e.txt", "***", encode=False)
    before = dict(request.attachments)
    with pytest.raises(LimitExceededError) as info:
        request.attach("huge.bin", b"\0" * 2_000_000)
    assert (info.value.size, info.value.limit) == (2_000_008, 2_000_000)
    assert request.attachments == before  # a refused attachment is not added
    request.attach("fits.bin", b"\0" * (2_000_000 - 9))  # total 1,999,999 bytes: < 2 MB


def test_request_repr_hides_values() -> None:
    request = email(message_data={"secret": "s3cr3t"})
    text = repr(request)
    assert text == (
        "SendEmailRequest(fields=[transactional_message_id, to, identifiers, message_data])"
    )
    assert "s3cr3t" not in text
    assert "ada@" not in text
    # The official SDK's private spelling still works.
    assert request._to_dict() == request.to_dict()


# --------------------------------------------------------------------------- idempotency


async def test_reset_after_body_is_outcome_unknown_and_not_retried(
    fake: FakeCustomerIO, api: APIClient
) -> None:
    fake.add_fault(Fault(action="reset_after_body", match="/v1/send/email"))
    with pytest.raises(OutcomeUnknownError) as info:
        await api.send_email(email())
    assert isinstance(info.value, TransportError)
    assert isinstance(info.value.__cause__, ConnectionLostError)
    assert "NOT retried" in str(info.value)
    assert "idempotency" in str(info.value)
    await fake.wait_for_requests(1)
    assert len(fake.requests) == 1  # exactly one attempt
    assert len(fake.sends) == 1  # and the fake applied it: a retry would have sent twice
    stats = api.statistics()
    assert (stats.requests, stats.retries, stats.outcome_unknown) == (1, 0, 1)


async def test_timeout_after_sending_is_outcome_unknown(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=30.0, match="/v1/send/sms"))
    async with APIClient(
        APP_KEY,
        api_url=fake.url,
        rate_limits=NO_LIMITS,
        retry=FAST_RETRY,
        timeouts=Timeouts(total=0.3, connect=0.3, sock_read=0.3),
    ) as api:
        with pytest.raises(OutcomeUnknownError) as info:
            await api.send_sms(SendSMSRequest(1, "+1555", PERSON))
    assert isinstance(info.value.__cause__, RequestTimeoutError)
    assert len(fake.requests) == 1


async def test_trigger_reset_is_outcome_unknown(fake: FakeCustomerIO, api: APIClient) -> None:
    fake.add_fault(Fault(action="reset_after_body", match="/triggers"))
    with pytest.raises(OutcomeUnknownError):
        await api.trigger_broadcast(9)
    await fake.wait_for_requests(1)
    assert len(fake.requests) == 1
    assert len(fake.triggers) == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(status=503, match="/v1/send/email"), id="503"),
        pytest.param(Fault(status=429, headers={"Retry-After": "0"}, match="/v1/send"), id="429"),
        pytest.param(Fault(status=429, match="/v1/send/email"), id="429-no-retry-after"),
        # 408: the server timed out waiting for the request, so it never processed it.
        pytest.param(Fault(status=408, match="/v1/send/email"), id="408"),
        pytest.param(Fault(status=425, match="/v1/send/email"), id="425"),
    ],
)
async def test_refused_before_processing_is_retried(
    fake: FakeCustomerIO, api: APIClient, fault: Fault
) -> None:
    fake.add_fault(fault)
    result = await api.send_email(email())
    assert [r.status for r in fake.requests] == [fault.status, 200]
    assert len(fake.sends) == 1
    assert fake.sends[0].delivery_id == result.delivery_id
    stats = api.statistics()
    assert stats.retries == 1
    assert dict(stats.retries_by_cause) == {f"http_{fault.status}": 1}
    assert fake.requests[1].headers["x-retry-count"] == "1"


@pytest.mark.parametrize("status", [500, 502, 504, 507, 520, 599])
async def test_ambiguous_server_errors_are_not_retried(
    fake: FakeCustomerIO, api: APIClient, status: int
) -> None:
    fake.add_fault(Fault(status=status, match="/v1/send/email"))
    with pytest.raises(ServerError):
        await api.send_email(email())
    assert len(fake.requests) == 1


async def test_refusals_stop_after_direct_attempts(fake: FakeCustomerIO, api: APIClient) -> None:
    fake.add_fault(Fault(status=503, times=3, match="/v1/send/email"))
    with pytest.raises(ServerError) as info:
        await api.send_email(email())
    assert info.value.status_code == 503
    assert len(fake.requests) == 3
    assert fake.sends == []


async def test_long_retry_after_raises_at_once(fake: FakeCustomerIO, api: APIClient) -> None:
    fake.add_fault(Fault(status=429, headers={"Retry-After": "3600"}, match="/v1/send/email"))
    with pytest.raises(RateLimitError) as info:
        await api.send_email(email())
    assert info.value.retry_after == 3600.0
    assert len(fake.requests) == 1


async def test_connect_errors_are_retried_then_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with APIClient(
        APP_KEY, api_url=f"http://127.0.0.1:{port}", rate_limits=NO_LIMITS, retry=FAST_RETRY
    ) as api:
        with pytest.raises(ConnectError) as info:
            await api.send_email(email())
        stats = api.statistics()
    assert info.value.request_sent is False
    assert not isinstance(info.value, OutcomeUnknownError)
    assert (stats.requests, stats.retries, stats.outcome_unknown) == (3, 2, 0)
    assert dict(stats.retries_by_cause) == {"ConnectError": 2}


async def test_reads_are_retried_after_a_reset(fake: FakeCustomerIO, api: APIClient) -> None:
    trigger = await api.trigger_broadcast(9, ids=["a"])
    fake.add_fault(Fault(action="reset_after_body", match="/errors"))
    page = await api.get_trigger_errors(9, trigger.id)
    assert page == TriggerErrors(["line 1: no person with id 'a'"], None)
    assert [r.status for r in fake.requests] == [200, None, 200]


async def test_unsafe_redirect_is_not_outcome_unknown(fake: FakeCustomerIO, api: APIClient) -> None:
    fake.add_fault(
        Fault(status=307, headers={"Location": "https://evil.example/v1/send/email"}, match="/v1/")
    )
    with pytest.raises(UnsafeRedirectError):
        await api.send_email(email())
    assert api.statistics().outcome_unknown == 0


async def test_unexpected_200_body_says_the_send_happened(
    fake: FakeCustomerIO, api: APIClient
) -> None:
    fake.add_fault(Fault(status=200, body=b"<html>ok</html>", match="/v1/send/email"))
    with pytest.raises(ServerError, match="WAS accepted") as info:
        await api.send_email(email())
    assert info.value.status_code == 200
    fake.add_fault(Fault(status=200, body=b'{"id": "x"}', match="/triggers"))
    with pytest.raises(ServerError, match="WAS triggered"):
        await api.trigger_broadcast(9)
    fake.add_fault(Fault(status=200, body=b"[]", match="/errors"))
    with pytest.raises(ServerError, match="errors list"):
        await api.get_trigger_errors(9, 1)
    fake.add_fault(Fault(status=200, body=b'{"id": true}', match="/triggers"))
    with pytest.raises(ServerError, match="WAS triggered"):
        await api.trigger_broadcast(9)
    # Numbers sent as digit strings are read as numbers.
    fake.add_fault(
        Fault(status=200, body=b'{"delivery_id": "d1", "queued_at": "17"}', match="/v1/send")
    )
    assert await api.send_email(email()) == SendResult("d1", 17, None)
    fake.add_fault(Fault(status=200, body=b'{"errors": ["x"], "next": "5"}', match="/errors"))
    assert await api.get_trigger_errors(9, 1) == TriggerErrors(["x"], 5)


async def test_api_errors_map_to_classes(fake: FakeCustomerIO, api: APIClient) -> None:
    request = email()
    request.attach("run.exe", b"MZ")
    with pytest.raises(PermissionDeniedError, match="Forbidden file type exe"):
        await api.send_email(request)
    with pytest.raises(UnprocessableEntityError, match="id_ignore_missing") as info:
        # Sent raw (a dict-shaped trigger is not possible through the typed API), so the
        # server-side rule shows: options must fit the audience.
        await api._request(
            "POST", "/v1/campaigns/9/triggers", b'{"id_ignore_missing":true}', "/t", "broadcast"
        )
    assert info.value.errors[0].field == "/data/attributes/default"


async def test_wrong_key_is_401(fake: FakeCustomerIO) -> None:
    async with APIClient("nope", api_url=fake.url, rate_limits=NO_LIMITS) as api:
        with pytest.raises(AuthenticationError, match="unauthorized") as info:
            await api.send_email(email())
    assert "nope" not in str(info.value)


async def test_http_middleware_sees_every_attempt(fake: FakeCustomerIO) -> None:
    seen: list[tuple[str, str, int]] = []

    async def spy(request: HTTPRequest, call_next: HTTPHandler) -> HTTPResponse:
        seen.append((request.api, request.endpoint, request.attempt))
        return await call_next(request)

    fake.add_fault(Fault(status=503, match="/v1/send/push"))
    async with APIClient(
        APP_KEY, api_url=fake.url, rate_limits=NO_LIMITS, retry=FAST_RETRY, http_middleware=[spy]
    ) as api:
        await api.send_push(SendPushRequest(1, identifiers=PERSON))
        stats = api.statistics()
    assert seen == [("app", "/v1/send/push", 1), ("app", "/v1/send/push", 2)]
    assert stats.bytes_sent == 2 * len(fake.requests[0].body)


# --------------------------------------------------------------------------- broadcasts


@pytest.mark.parametrize(
    ("kwargs", "wire", "audience"),
    [
        ({}, {}, "default"),
        ({"data": {"sale": "30%"}}, {"data": {"sale": "30%"}}, "default"),
        (
            {"recipients": {"segment": {"id": 3}}},
            {"recipients": {"segment": {"id": 3}}},
            "recipients",
        ),
        (
            {"emails": ["a@b.co"], "email_ignore_missing": True, "email_add_duplicates": False},
            {"emails": ["a@b.co"], "email_ignore_missing": True, "email_add_duplicates": False},
            "emails",
        ),
        (
            {"ids": [1, "2"], "id_ignore_missing": True},
            {"ids": ["1", "2"], "id_ignore_missing": True},
            "ids",
        ),
        (
            {"per_user_data": [{"id": 1, "data": {"v": "x"}}, {"email": "a@b.co"}]},
            {"per_user_data": [{"id": "1", "data": {"v": "x"}}, {"email": "a@b.co"}]},
            "per_user_data",
        ),
        (
            {"data_file_url": "https://example.com/users.jsonl", "id_ignore_missing": True},
            {"data_file_url": "https://example.com/users.jsonl", "id_ignore_missing": True},
            "data_file_url",
        ),
    ],
)
async def test_trigger_broadcast_shapes(
    fake: FakeCustomerIO,
    api: APIClient,
    kwargs: dict[str, Any],
    wire: dict[str, Any],
    audience: str,
) -> None:
    trigger = await api.trigger_broadcast(9, **kwargs)
    assert trigger == BroadcastTrigger(fake.triggers[0].trigger_id)
    (req,) = fake.requests
    assert req.path == "/v1/campaigns/9/triggers"
    assert req.json() == wire
    assert fake.triggers[0].audience == audience


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


async def test_trigger_errors_paginate(fake: FakeCustomerIO, api: APIClient) -> None:
    # People the Track API knows are found; the rest are per-recipient errors.
    async with CustomerIO(fake.site_id, fake.api_key, track_url=fake.url, batching=False) as cio:
        await cio.identify("p1", plan="pro")
    trigger = await api.trigger_broadcast(9, ids=["p1", "p2", "p3", "p4"])
    first = await api.get_trigger_errors(9, trigger.id, limit=2)
    assert first == TriggerErrors(
        ["line 2: no person with id 'p2'", "line 3: no person with id 'p3'"], next=2
    )
    assert first.next is not None
    rest = await api.get_trigger_errors(9, trigger.id, start=first.next, limit=2)
    assert rest == TriggerErrors(["line 4: no person with id 'p4'"], None)
    assert fake.requests[-1].query == {"start": "2", "limit": "2"}
    quiet = await api.trigger_broadcast(9, ids=["p2"], id_ignore_missing=True)
    assert (await api.get_trigger_errors(9, quiet.id)).errors == []


# --------------------------------------------------------------------------- rate limits


async def test_client_waits_for_its_broadcast_slot() -> None:
    # The fake allows one trigger per 50 ms; the client spaces them 100 ms apart, so the
    # second trigger waits instead of being refused.
    async with FakeCustomerIO(app_api_key=APP_KEY, broadcast_interval=0.05) as fake:
        limits = AppRateLimits(broadcast=RateLimit(requests_per_second=10.0, burst=1))
        async with APIClient(APP_KEY, api_url=fake.url, rate_limits=limits) as api:
            started = time.monotonic()
            await api.trigger_broadcast(1)
            await api.trigger_broadcast(1)
            elapsed = time.monotonic() - started
        assert [r.status for r in fake.requests] == [200, 200]
    assert elapsed >= 0.09


async def test_fake_refuses_a_second_trigger_within_its_window() -> None:
    async with FakeCustomerIO(app_api_key=APP_KEY, broadcast_interval=3600.0) as fake:
        async with APIClient(
            APP_KEY, api_url=fake.url, rate_limits=NO_LIMITS, retry=FAST_RETRY
        ) as api:
            await api.trigger_broadcast(1)
            with pytest.raises(RateLimitError, match="broadcast limit") as info:
                await api.trigger_broadcast(1)
        assert info.value.retry_after is None  # Customer.io sends no Retry-After
        assert [r.status for r in fake.requests] == [200, 429, 429, 429]
        assert len(fake.triggers) == 1


async def test_a_bare_429_pauses_its_rate_limit_class(fake: FakeCustomerIO) -> None:
    # No Retry-After: the class pauses for one slot of its documented rate (here 50 ms)
    # before the retry goes out.
    limits = AppRateLimits(transactional=RateLimit(requests_per_second=20.0, burst=5))
    fake.add_fault(Fault(status=429, match="/v1/send/email"))
    async with APIClient(APP_KEY, api_url=fake.url, rate_limits=limits, retry=FAST_RETRY) as api:
        started = time.monotonic()
        await api.send_email(email())
        elapsed = time.monotonic() - started
    assert [r.status for r in fake.requests] == [429, 200]
    assert elapsed >= 0.045


# --------------------------------------------------------------------------- configuration


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTOMERIO_APP_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="CUSTOMERIO_APP_API_KEY"):
        APIClient()
    monkeypatch.setenv("CUSTOMERIO_APP_API_KEY", "from-env")
    client = APIClient(region="EU")
    assert client.region is Region.EU
    assert client.origin == "https://api-eu.customer.io"
    assert APIClient("k").origin == "https://api.customer.io"
    assert APIClient("k", api_url="http://127.0.0.1:1/v1/").origin == "http://127.0.0.1:1"
    assert APIClient("k", url="https://proxy.example").origin == "https://proxy.example"
    with pytest.raises(ConfigurationError, match="not both"):
        APIClient("k", api_url="http://a.example", url="http://b.example")
    with pytest.raises(ConfigurationError, match="whitespace"):
        APIClient("k\r\nX-Evil: 1")
    with pytest.raises(ConfigurationError):
        APIClient("k", region="mars")
    with pytest.raises(ConfigurationError):
        APIClient("k", api_url="ftp://x")


async def test_lifecycle_and_repr(fake: FakeCustomerIO) -> None:
    client = APIClient("super-secret-key", api_url=fake.url)
    assert "super-secret-key" not in repr(client)
    assert "state='new'" in repr(client)
    with pytest.raises(ClientStateError, match="not open"):
        await client.send_email(email())
    async with client:
        assert client.statistics().state == "open"
        with pytest.raises(ClientStateError):
            await client.open()
    assert client.statistics().state == "closed"
    await client.aclose()  # idempotent
    with pytest.raises(ClientStateError, match="closed"):
        await client.trigger_broadcast(1)
    with pytest.raises(ClientStateError, match="closed"):
        await client.get_trigger_errors(1, 1)
    assert fake.requests == []


# --------------------------------------------------------------------------- the fake's rules


async def raw(
    fake: FakeCustomerIO,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = APP_KEY,
    data: bytes | None = None,
) -> tuple[int, Any]:
    headers: Mapping[str, str] = {"Authorization": f"Bearer {key}"} if key is not None else {}
    payload = data if data is not None else (b"" if body is None else json.dumps(body).encode())
    # A file-like body: aiohttp warns about raw-bytes bodies over 1 MiB.
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, fake.url + path, data=io.BytesIO(payload), headers=headers
        ) as response,
    ):
        text = await response.read()
        return response.status, json.loads(text) if text else None


SEND = {"transactional_message_id": 1, "to": "a@b.co", "identifiers": {"id": "1"}}
HUGE_B64 = base64.b64encode(b"\0" * (2 * 1024 * 1024)).decode()


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/v1/send/email", {**SEND, "headers": '[{"name":"X","value":"1"}]'}, 200, None),
        ("/v1/send/email", {**SEND, "headers": {"X": 1}}, 400, "headers must be"),
        (
            "/v1/send/email",
            {**SEND, "attachments": {"a.txt": "!!"}},
            400,
            'base64 encoded: "a.txt"',
        ),
        ("/v1/send/email", {**SEND, "attachments": {"a.txt": 5}}, 400, 'base64 encoded: "a.txt"'),
        ("/v1/send/email", {**SEND, "attachments": ["a"]}, 400, "attachments must be"),
        (
            "/v1/send/email",
            {**SEND, "attachments": {"x.BAT": "YQ=="}},
            403,
            "Forbidden file type bat",
        ),
        (
            "/v1/send/email",
            {**SEND, "attachments": {"big.bin": HUGE_B64}},
            413,
            "Total attachment size",
        ),
        (
            "/v1/send/email",
            {**SEND, "cc": ", ".join(f"c{i}@b.co" for i in range(15))},
            400,
            "too many recipients",
        ),
        ("/v1/send/email", {**SEND, "cc": 5}, 400, "must be strings"),
        (
            "/v1/send/email",
            {**SEND, "identifiers": {"id": "1", "email": "a@b.co"}},
            400,
            "exactly one",
        ),
        ("/v1/send/email", {**SEND, "identifiers": {"id": True}}, 400, "non-blank"),
        (
            "/v1/send/email",
            {"to": "a@b.co", "identifiers": {"id": "1"}},
            400,
            "transactional_message_id is required",
        ),
        ("/v1/send/email", {**SEND, "transactional_message_id": True}, 400, "integer or a trigger"),
        ("/v1/send/email", {**SEND, "send_at": "soon"}, 400, "integer unix"),
        ("/v1/send/email", {**SEND, "send_at": 99_999_999_999}, 400, "90 days"),
        ("/v1/send/email", {**SEND, "message_data": []}, 400, "must be an object"),
        ("/v1/send/email", {**SEND, "message_data": {"b": "x" * (1024 * 1024)}}, 413, "too large"),
        (
            "/v1/send/sms",
            {"transactional_message_id": 1, "identifiers": {"id": "1"}},
            400,
            "to is required",
        ),
        ("/v1/send/fax", SEND, 404, "unknown send channel"),
        ("/v1/send/email", [SEND], 400, "must be a JSON object"),
    ],
)
async def test_fake_send_rules(
    fake: FakeCustomerIO, path: str, body: Any, status: int, error: str | None
) -> None:
    got, payload = await raw(fake, "POST", path, body)
    assert got == status
    if error is None:
        assert set(payload) == {"delivery_id", "queued_at"}
    else:
        assert error in payload["meta"]["error"]


async def test_fake_send_body_framing(fake: FakeCustomerIO) -> None:
    assert (await raw(fake, "POST", "/v1/send/email", data=b"{nope"))[0] == 400
    assert (await raw(fake, "POST", "/v1/send/email", data=b" "))[0] == 400


async def test_fake_app_auth(fake: FakeCustomerIO) -> None:
    unauthorized = {"errors": [{"detail": "unauthorized", "status": "401"}]}
    assert await raw(fake, "POST", "/v1/send/email", SEND, key="wrong") == (401, unauthorized)
    assert await raw(fake, "POST", "/v1/send/email", SEND, key=None) == (401, unauthorized)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake.url + "/v1/send/email", json=SEND, headers={"Authorization": f"Basic {APP_KEY}"}
        ) as response,
    ):
        assert response.status == 401
    assert fake.app_api_key == APP_KEY
    assert fake.sends == []


async def test_fake_in_app_can_be_disabled() -> None:
    async with FakeCustomerIO(app_api_key=APP_KEY, in_app_enabled=False) as fake:
        status, payload = await raw(fake, "POST", "/v1/send/in_app", SEND)
    assert status == 403
    assert "in-app" in payload["meta"]["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "detail", "pointer"),
    [
        (
            "/v1/campaigns/9/triggers",
            {"recipients": {}},
            422,
            "empty recipients filter is not valid",
            "/data/attributes/recipients",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"ids": [str(i) for i in range(10_001)]},
            422,
            "more than 10000",
            "/data/attributes/ids",
        ),
        ("/v1/campaigns/9/triggers", {"ids": []}, 422, "non-empty array", "/data/attributes/ids"),
        (
            "/v1/campaigns/9/triggers",
            {"ids": [1]},
            422,
            "non-empty strings",
            "/data/attributes/ids",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"ids": ["1"], "emails": ["a@b.co"]},
            422,
            "only one audience",
            "/data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"emails": ["a@b.co"], "id_ignore_missing": True},
            422,
            "not valid for this audience",
            "/data/attributes/emails",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"ids": ["1"], "id_ignore_missing": 1},
            422,
            "must be a boolean",
            "/data/attributes/id_ignore_missing",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"data": []},
            422,
            "data must be an object",
            "/data/attributes/data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"data": {"b": "x" * 50_000}},
            422,
            "larger than 50000",
            "/data/attributes/data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"data_file_url": 3},
            422,
            "must be a URL",
            "/data/attributes/data_file_url",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"per_user_data": [1]},
            422,
            "must be objects",
            "/data/attributes/per_user_data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"per_user_data": [{"id": 1}]},
            422,
            "exactly one of id or email",
            "/data/attributes/per_user_data",
        ),
        (
            "/v1/campaigns/9/triggers",
            {"per_user_data": [{"id": "1", "data": 1}]},
            422,
            "must be an object",
            "/data/attributes/per_user_data",
        ),
        ("/v1/campaigns/9/triggers", [1], 422, "JSON object", "/data"),
        ("/v1/campaigns/x/triggers", {}, 404, "does not exist", None),
        ("/v1/campaigns/0/triggers", {}, 404, "does not exist", None),
    ],
)
async def test_fake_trigger_rules(
    fake: FakeCustomerIO,
    path: str,
    body: Any,
    status: int,
    detail: str,
    pointer: str | None,
) -> None:
    got, payload = await raw(fake, "POST", path, body)
    assert got == status
    (error,) = payload["errors"]
    assert detail in error["detail"]
    assert error["status"] == str(status)
    assert error.get("source", {}).get("pointer") == pointer
    assert fake.triggers == []


async def test_fake_trigger_errors_endpoint(fake: FakeCustomerIO) -> None:
    status, created = await raw(
        fake, "POST", "/v1/campaigns/9/triggers", {"per_user_data": [{"email": "x@b.co"}]}
    )
    assert status == 200
    errors_path = f"/v1/campaigns/9/triggers/{created['id']}/errors"
    assert await raw(fake, "GET", errors_path) == (
        200,
        {"errors": ["line 1: no person with email 'x@b.co'"]},
    )
    assert (await raw(fake, "GET", "/v1/campaigns/8/triggers/1/errors"))[0] == 404
    assert (await raw(fake, "GET", "/v1/campaigns/9/triggers/99/errors"))[0] == 404
    assert (await raw(fake, "GET", errors_path + "?start=x"))[0] == 400
    assert (await raw(fake, "GET", errors_path + "?limit=0"))[0] == 400
    # Empty body is the default audience.
    assert (await raw(fake, "POST", "/v1/campaigns/9/triggers", data=b""))[0] == 200


async def test_fake_clear_forgets_app_state(fake: FakeCustomerIO, api: APIClient) -> None:
    await api.send_email(email())
    await api.trigger_broadcast(3)
    fake.clear()
    assert (fake.sends, fake.triggers) == ([], [])


def test_fake_rejects_a_negative_broadcast_interval() -> None:
    with pytest.raises(ValueError, match="broadcast_interval"):
        FakeCustomerIO(broadcast_interval=-1.0)


# --------------------------------------------------------------------------- metrics


async def test_metrics_share_a_registry_with_the_track_client(fake: FakeCustomerIO) -> None:
    from prometheus_client import generate_latest

    shared = Metrics()
    fake.add_fault(Fault(status=503, match="/v1/send/email"))
    async with (
        CustomerIO(
            fake.site_id, fake.api_key, track_url=fake.url, batching=False, metrics=shared
        ) as cio,
        APIClient(
            APP_KEY, api_url=fake.url, rate_limits=NO_LIMITS, retry=FAST_RETRY, metrics=shared
        ) as api,
    ):
        assert api.metrics is shared
        assert api.metrics_label == "us:app"
        await cio.identify("42", plan="pro")
        await api.send_email(email())
        text = generate_latest(shared.registry).decode()
        # A second App client for the same region cannot share the same Metrics.
        twin = APIClient(APP_KEY, api_url=fake.url, metrics=shared)
        with pytest.raises(ConfigurationError, match="already attached"):
            await twin.open()
        assert twin.statistics().state == "closed"
    assert 'api="app",endpoint="/v1/send/email",region="us",status_class="2xx"' in text
    assert 'api="app",endpoint="/v1/send/email",region="us",status_class="5xx"' in text
    assert 'api="track"' in text
    assert 'customerio_app_retries_total{cause="http_503",region="us"} 1.0' in text
    assert 'customerio_app_outcome_unknown_total{region="us"} 0.0' in text
    assert 'customerio_app_in_flight_requests{region="us"} 0.0' in text
    sent = sum(len(r.body) for r in fake.requests if r.path == "/v1/send/email")
    assert f'customerio_app_bytes_sent_total{{region="us"}} {float(sent)}' in text


def test_public_methods_have_docstrings() -> None:
    import inspect

    classes = (
        APIClient,
        SendEmailRequest,
        SendPushRequest,
        SendSMSRequest,
        SendWhatsAppRequest,
        SendInboxMessageRequest,
        SendInAppRequest,
    )
    for cls in classes:
        assert cls.__doc__
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"


async def test_fake_app_faults_use_the_app_envelope() -> None:
    async with FakeCustomerIO(app_api_key=APP_KEY, v1_error_envelope="meta.errors") as fake:
        fake.add_fault(Fault(status=503, match="/v1/send/email"))
        assert await raw(fake, "POST", "/v1/send/email", SEND) == (
            503,
            {"meta": {"error": "Service Unavailable"}},
        )
        assert await raw(fake, "GET", "/v1/send/email") == (
            405,
            {"meta": {"error": "method GET is not allowed here"}},
        )
        assert await raw(fake, "POST", "/v1/nothing", SEND) == (
            404,
            {"meta": {"error": "no such endpoint"}},
        )
