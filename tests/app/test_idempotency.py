"""No idempotency key: a send is retried only when it provably did not take effect;
anything else is ``OutcomeUnknownError``. Error statuses map to exception classes."""

from __future__ import annotations

import socket

import pytest

from customerio_async import (
    APIClient,
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    SendPushRequest,
    SendResult,
    SendSMSRequest,
    ServerError,
    Timeouts,
    TransportError,
    TriggerErrors,
    UnprocessableEntityError,
    UnsafeRedirectError,
)
from customerio_async._http.messages import HTTPHandler, HTTPRequest, HTTPResponse
from customerio_async.testing import FakeCustomerIO, Fault

from ._support import APP_KEY, FAST_RETRY, NO_LIMITS, PERSON, email


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
