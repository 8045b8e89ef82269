"""Correctness after admission: credentials, visible failures, large events (issue
"Correctness at the edges", items 2, 3 and 8).

Each test states how the code before the pipeline rebuild (commit 46e3948) failed it.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from customerio_async import (
    AuthenticationError,
    BatchConfig,
    ClientStateError,
    CustomerIO,
    LimitExceededError,
    OperationDroppedError,
    Region,
    RetryPolicy,
)
from customerio_async.testing import FakeCustomerIO, Fault

from ._edges import SITE_ID, batched, direct

LOGGER = "customerio_async"
SECRET_PERSON = "person-7c1f"
SECRET_VALUE = "4111-1111-1111-1111"

# ---------------------------------------------------------------- 2. a wrong API key


@pytest.mark.parametrize(("auth_pause", "delivery_timeout"), [(30.0, 1.0), (0.2, 0.5)])
async def test_wait_true_with_a_wrong_key_ends_within_delivery_timeout(
    fake: FakeCustomerIO, auth_pause: float, delivery_timeout: float
) -> None:
    """Before: ``wait=True`` waited out the 30 s auth pause (and probed again) although
    ``delivery_timeout`` was 1 s. Now the operation is dropped as ``auth_failed`` as soon
    as the pause is known to outlast its deadline (after probing while it does not)."""
    retry = RetryPolicy(
        delivery_timeout=delivery_timeout,
        auth_pause=auth_pause,
        backoff_base=0.01,
        backoff_cap=0.05,
    )
    async with batched(fake, api_key="wrong-key", retry=retry) as cio:
        started = time.monotonic()
        with pytest.raises(OperationDroppedError) as info:
            await asyncio.wait_for(cio.track("42", "e", wait=True), 10)
        assert time.monotonic() - started < delivery_timeout + 0.5
        assert info.value.outcome.reason == "auth_failed"
        assert cio.statistics().dropped_by_reason == {"auth_failed": 1}
    statuses = [r.status for r in fake.requests]  # a probe per pause that ends in time
    assert statuses == [401] * len(statuses)
    assert 1 <= len(statuses) <= delivery_timeout / auth_pause + 1


async def test_operations_dropped_at_close_during_an_auth_pause_are_auth_failed(
    fake: FakeCustomerIO,
) -> None:
    """Before: operations still waiting out an auth pause when the client closed were
    counted ``shutdown_timeout``, hiding the cause."""
    async with batched(fake, api_key="wrong-key") as cio:  # auth_pause 30 s < deadline 300 s
        await cio.track("42", "first")
        await fake.wait_for_requests(1)  # the 401: sending is paused
        for n in range(3):
            await cio.track(str(n), "later")
        await cio.aclose(timeout=0.2)
    stats = cio.statistics()
    assert stats.dropped_by_reason == {"auth_failed": 4}
    assert stats.accepted == stats.dropped == 4


async def test_check_credentials_uses_one_cheap_authenticated_request(
    fake: FakeCustomerIO,
) -> None:
    """Before: nothing let a user check credentials up front (a wrong key was learnt from
    drops, 30 s later)."""
    async with batched(fake, api_key="wrong-key") as cio:
        with pytest.raises(AuthenticationError):
            await cio.check_credentials()
    async with batched(fake) as cio:
        info = await cio.check_credentials()
        assert info.region is Region.US
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/api/v1/accounts/region")] * 2


@pytest.mark.parametrize("batching", [True, False])
async def test_verify_credentials_fails_open(fake: FakeCustomerIO, batching: bool) -> None:
    cio = CustomerIO(
        SITE_ID, "wrong-key", track_url=fake.url, batching=batching, verify_credentials=True
    )
    with pytest.raises(AuthenticationError):
        await cio.open()
    assert cio.statistics().state == "closed"
    with pytest.raises(ClientStateError, match="closed"):
        await cio.track("42", "e")
    assert [r.path for r in fake.requests] == ["/api/v1/accounts/region"]
    async with batched(fake, verify_credentials=True) as good:
        await good.track("42", "e", wait=True)


# ---------------------------------------------------------------- 3. failures are logged


async def test_rejects_are_logged_naming_reason_and_field_never_values(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: in batched mode a rejected operation was invisible unless the user had
    registered ``on_outcome``/``on_drop``."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    fake.add_fault(Fault(action="reject_indexes", indexes=(0,), match="/api/v2/batch"))
    async with batched(fake) as cio:
        receipt = await cio.identify(SECRET_PERSON, card=SECRET_VALUE)
        await cio.flush()
    assert receipt.outcome is not None
    assert receipt.outcome.status == "rejected"
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any("1 track operation(s) rejected: invalid" in line for line in lines), lines
    assert all(SECRET_PERSON not in line and SECRET_VALUE not in line for line in lines)
    assert all(r.levelno == logging.WARNING for r in caplog.records if "rejected" in r.message)


async def test_many_failures_are_summarised_with_counts_per_reason(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    """The first five failures of a kind are logged one by one, the rest counted and
    summarised (here: at close), so a failing stream cannot flood the log."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    rejected = 8
    fake.add_fault(
        Fault(action="reject_indexes", indexes=(0,), match="/api/v2/batch", times=rejected)
    )
    async with batched(fake) as cio:
        for n in range(rejected):
            await (await cio.track(f"p{n}", "e")).wait()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("rejected: invalid" in line for line in lines) == 5
    assert any("since the last summary: 3 rejected (invalid)" in line for line in lines), lines


# ---------------------------------------------------------------- 8. event data up to 100,000


@pytest.mark.parametrize("mode", [batched, direct])
async def test_event_data_up_to_100_000_bytes_is_delivered_in_order(
    fake: FakeCustomerIO, mode: object
) -> None:
    """Before: batched mode refused events above 32,000 bytes (the v2 operation limit)
    although the README promised event data up to 100,000 bytes. Such an event now
    travels as a v1 request, in order with the person's other operations."""
    blob = "x" * 90_000
    async with mode(fake) as cio:  # type: ignore[operator]
        await cio.identify("42", step=1)
        big = await cio.track("42", "big", {"blob": blob})
        page = await cio.pageview("42", "https://example.com/", blob=blob)
        await cio.identify("42", step=2)
        await cio.flush()
    assert big.outcome is not None
    assert big.outcome.delivered
    assert page.outcome is not None
    assert page.outcome.delivered
    assert [(op.action, op.source) for op in fake.operations][1:3] == [
        ("event", "v1"),
        ("page", "v1"),
    ]
    assert [op.action for op in fake.operations] == ["identify", "event", "page", "identify"]
    assert fake.operations[1].body["data"] == {"blob": blob}
    assert fake.people() == {"id:42": {"step": 2}}


async def test_event_data_over_100_000_bytes_is_refused_in_both_modes(
    fake: FakeCustomerIO,
) -> None:
    for mode in (batched, direct):
        async with mode(fake) as cio:
            with pytest.raises(LimitExceededError) as info:
                await cio.track("42", "big", {"blob": "x" * 100_000})
            assert info.value.limit == 100_000
            assert info.value.field == "data"
    assert fake.requests == []


async def test_a_v2_only_person_says_why_its_event_is_limited_to_32_000(
    fake: FakeCustomerIO,
) -> None:
    """A person only v2 can address (here an ``id`` containing ``@``) has no v1 events
    endpoint: the 32,000-byte operation limit applies, and the error says so."""
    async with batched(fake, batch=BatchConfig(linger=0.005)) as cio:
        with pytest.raises(LimitExceededError) as info:
            await cio.track("a@b@c", "big", {"blob": "x" * 40_000})
    assert info.value.limit == 32_000
    assert "can only be addressed through v2" in str(info.value)
    assert "a@b@c" not in str(info.value)
