"""API-triggered broadcasts: audience shapes, trigger errors and the broadcast rate limit."""

from __future__ import annotations

import time
from typing import Any

import pytest

from customerio_async import (
    APIClient,
    AppRateLimits,
    BroadcastTrigger,
    CustomerIO,
    RateLimit,
    RateLimitError,
    TriggerErrors,
)
from customerio_async.testing import FakeCustomerIO, Fault

from ._support import APP_KEY, FAST_RETRY, NO_LIMITS, email


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
