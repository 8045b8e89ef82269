"""The batching send pipeline, end to end against FakeCustomerIO over loopback.

Timings are kept short through configuration (linger, backoff, deadlines), never by sleeping
to paper over races; where a test must observe that something does *not* happen, it waits a
bounded time and says so.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from customerio_async import (
    BatchConfig,
    BufferFullError,
    ClientStateError,
    CustomerIO,
    HTTPRequest,
    HTTPResponse,
    OperationDroppedError,
    OperationRejectedError,
    Outcome,
    Person,
    RateLimit,
    Receipt,
    RetryPolicy,
)
from customerio_async.testing import FakeCustomerIO, Fault

FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_cap=0.05, delivery_timeout=5.0)


def client(fake: FakeCustomerIO, **kwargs: Any) -> CustomerIO:
    """A batched client with test-friendly timings; ``kwargs`` override."""
    batch = kwargs.pop("batch", BatchConfig(linger=0.01))
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("rate_limit", None)
    return CustomerIO("fake-site", "fake-key", track_url=fake.url, batch=batch, **kwargs)


def batch_bodies(fake: FakeCustomerIO) -> list[list[dict[str, Any]]]:
    return [r.json()["batch"] for r in fake.requests if r.path == "/api/v2/batch" and r.body]


def check_invariant(cio: CustomerIO) -> None:
    s = cio.statistics()
    assert s.accepted == s.delivered + s.rejected + s.dropped + s.pending
    assert sum(s.dropped_by_reason.values()) == s.dropped
    assert sum(s.rejected_by_reason.values()) == s.rejected


@pytest_asyncio.fixture
async def bcio(fake: FakeCustomerIO) -> AsyncIterator[CustomerIO]:
    async with client(fake) as c:
        yield c


# ----------------------------------------------------------------------------- admission


async def test_admission_returns_a_receipt_and_delivery_is_opt_in(
    fake: FakeCustomerIO, bcio: CustomerIO
) -> None:
    receipt = await bcio.track("42", "purchased", {"amount": 5})
    assert isinstance(receipt, Receipt)
    assert not receipt.done()
    assert repr(receipt) == "<Receipt event pending>"
    outcome = await receipt.wait(timeout=5)
    assert outcome == Outcome("delivered")
    assert outcome.delivered
    assert receipt.done()
    assert fake.operations[0].action == "event"
    confirmed = await bcio.track("42", "again", wait=True)
    assert confirmed.outcome is not None
    assert confirmed.outcome.delivered
    check_invariant(bcio)


async def test_validation_errors_raise_at_the_call_site(bcio: CustomerIO) -> None:
    from customerio_async import ValidationError

    with pytest.raises(ValidationError):
        await bcio.track("42", "")
    with pytest.raises(ValidationError):
        await bcio.identify("42", v=float("nan"))
    assert bcio.statistics().accepted == 0


async def test_official_calls_travel_as_v2_operations(
    fake: FakeCustomerIO, bcio: CustomerIO
) -> None:
    await bcio.identify("cio_abc", plan="pro")
    await bcio.identify("ada@example.com", plan="pro")
    await bcio.identify({"id": "bob@example.com"}, plan="pro")
    await bcio.add_device("7", "tok", "ios", last_used=1714514400, app_version="1")
    await bcio.delete_device("7", "tok")
    await bcio.merge_customers("id", "7", "email", "old@example.com")
    await bcio.suppress("8")
    await bcio.unsuppress("8")
    await bcio.delete("9")
    await bcio.pageview("7", "/home")
    await bcio.screen("7", "Home")
    await bcio.backfill("7", "old", 1500000000)
    await bcio.send(Person.event("7", "typed"))
    result = await bcio.flush(timeout=5)
    assert result.delivered == 13
    assert result.pending == 0
    ops = [op for body in batch_bodies(fake) for op in body]
    # Three people, three lanes: their batches may reach the server in any order.
    identified = sorted(str(o["identifiers"]) for o in ops if o["action"] == "identify")
    expected = [{"cio_id": "abc"}, {"email": "ada@example.com"}, {"id": "bob@example.com"}]
    assert identified == sorted(str(i) for i in expected)
    (device,) = [o["device"] for o in ops if o["action"] == "add_device"]
    assert device == {
        "token": "tok",
        "platform": "ios",
        "last_used": 1714514400,
        "attributes": {"app_version": "1"},
    }
    assert sorted(o["action"] for o in ops) == sorted(
        ["identify", "identify", "identify", "add_device", "delete_device", "merge",
         "suppress", "unsuppress", "delete", "page", "screen", "event", "event"]
    )  # fmt: skip
    # One person's operations keep their admission order across the batches.
    person7 = [o["action"] for o in ops if o.get("identifiers") == {"id": "7"}]
    assert person7 == ["add_device", "delete_device", "page", "screen", "event", "event"]
    assert all(r.path == "/api/v2/batch" for r in fake.requests)


async def test_v1_only_operations_go_through_the_pipeline_in_lane_order(
    fake: FakeCustomerIO, bcio: CustomerIO
) -> None:
    await bcio.track_anonymous("anon-1", "first")
    await bcio.track_anonymous("anon-1", "second")
    await bcio.add_to_segment(3, ["1", "2"])
    await bcio.remove_from_segment(3, ["1"])
    await bcio.flush(timeout=5)
    paths = [r.path for r in fake.requests]
    assert paths.count("/api/v1/events") == 2
    events = [r.json()["name"] for r in fake.requests if r.path == "/api/v1/events"]
    assert events == ["first", "second"]
    seg = [r.path.rsplit("/", 1)[1] for r in fake.requests if "segments" in r.path]
    assert seg == ["add_customers", "remove_customers"]
    assert bcio.statistics().delivered == 4


# ----------------------------------------------------------------------------- batching


async def test_batches_are_byte_exact_and_carry_the_overflow(fake: FakeCustomerIO) -> None:
    limit = 40_000
    cfg = BatchConfig(linger=10, max_batch_bytes=limit, max_concurrent_requests=1)
    async with client(fake, batch=cfg) as cio:
        sizes = [1000, 5000, 12_000, 300, 20_000, 7000, 9000, 31_000, 100, 2500] * 3
        for i, n in enumerate(sizes):
            await cio.track(f"p{i}", "e", {"pad": "x" * n})
        await cio.flush(timeout=5)
        stats = cio.statistics()
    bodies = [r.body for r in fake.requests]
    assert stats.delivered == len(sizes)
    assert sum(len(json.loads(b)["batch"]) for b in bodies) == len(sizes)
    assert all(len(b) <= limit for b in bodies)
    # Check before append: each batch closed only because the next operation (carried into
    # the following batch) would have pushed it over the limit.
    for body, following in itertools.pairwise(bodies):
        first = json.loads(following)["batch"][0]
        first_size = len(json.dumps(first, separators=(",", ":"), ensure_ascii=False).encode())
        assert len(body) + 1 + first_size > limit


async def test_batch_closes_on_op_count(fake: FakeCustomerIO) -> None:
    async with client(
        fake, batch=BatchConfig(linger=10, max_batch_ops=3, max_concurrent_requests=1)
    ) as cio:
        for i in range(7):
            await cio.identify(str(i), n=i)
        await fake.wait_for_requests(2)
        assert [len(b) for b in batch_bodies(fake)] == [3, 3]
        result = await cio.flush(timeout=5)
    assert [len(b) for b in batch_bodies(fake)] == [3, 3, 1]
    assert result.delivered == 7


async def test_batch_closes_on_linger_without_flush(fake: FakeCustomerIO) -> None:
    async with client(fake, batch=BatchConfig(linger=0.05)) as cio:
        receipt = await cio.identify("1", a=1)
        outcome = await receipt.wait(timeout=5)
    assert outcome.delivered
    assert len(fake.requests) == 1


async def test_flush_is_a_barrier_and_skips_linger(fake: FakeCustomerIO) -> None:
    async with client(fake, batch=BatchConfig(linger=60)) as cio:
        receipts = [await cio.identify(str(i), a=i) for i in range(10)]
        result = await asyncio.wait_for(cio.flush(), 5)
        assert all(r.done() for r in receipts)
        assert (result.delivered, result.rejected, result.dropped, result.pending) == (10, 0, 0, 0)
        empty = await cio.flush(timeout=1)
        assert empty.pending == 0


async def test_shutdown_sends_what_is_buffered(fake: FakeCustomerIO) -> None:
    cio = client(fake, batch=BatchConfig(linger=60))
    async with cio:
        for i in range(25):
            await cio.identify(str(i), a=i)
    stats = cio.statistics()
    assert stats.delivered == 25
    assert stats.state == "closed"
    assert len(fake.operations) == 25
    with pytest.raises(ClientStateError):
        await cio.identify("x")


# ----------------------------------------------------------------------------- concurrency


async def test_in_flight_requests_are_bounded(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.3, times=100))
    async with client(
        fake, batch=BatchConfig(linger=0, max_batch_ops=1, max_concurrent_requests=3)
    ) as cio:
        for i in range(12):
            await cio.identify(f"person-{i}", a=i)
        flushing = asyncio.create_task(cio.flush(timeout=10))  # every batch urgent now
        await fake.wait_for_arrivals(3, timeout=5)
        # Observe that a fourth request does NOT start while three are stalled.
        with pytest.raises(TimeoutError):
            await fake.wait_for_arrivals(4, timeout=0.15)
        assert cio.statistics().in_flight_requests == 3
        assert (await flushing).pending == 0
    assert cio.statistics().delivered == 12


async def test_bulk_batches_leave_half_the_slots_to_callers_who_wait(
    fake: FakeCustomerIO,
) -> None:
    fake.add_fault(Fault(delay=0.5, times=100, match="/api/v2/batch"))
    cfg = BatchConfig(linger=0, max_batch_ops=1, max_concurrent_requests=4)
    async with client(fake, batch=cfg) as cio:
        for i in range(12):
            await cio.identify(f"person-{i}", a=i)  # fire-and-forget: bulk
        await fake.wait_for_arrivals(2, timeout=5)
        with pytest.raises(TimeoutError):  # bulk holds 2 of the 4 slots, no more
            await fake.wait_for_arrivals(3, timeout=0.15)
        assert cio.statistics().in_flight_requests == 2
        # A confirmed call leaves at once, beside the stalled bulk requests.
        confirmed = asyncio.create_task(cio.track("someone-else", "paid", wait=True))
        await fake.wait_for_arrivals(3, timeout=0.4)
        assert cio.statistics().in_flight_requests == 3
        assert (await confirmed).outcome == Outcome("delivered")
        assert (await cio.flush(timeout=10)).pending == 0
    assert cio.statistics().delivered == 13


async def test_per_identifier_order_survives_retries(fake: FakeCustomerIO) -> None:
    # Every other batch fails once; a lane retries its own batch before sending the next.
    fake.add_fault(Fault(status=503, times=5, match="/api/v2/batch"))
    async with client(fake, batch=BatchConfig(linger=0, max_batch_ops=2)) as cio:
        for version in range(30):
            for person in ("ann", "bob", "cid"):
                await cio.identify(person, version=version)
        await cio.flush(timeout=10)
        assert cio.statistics().retries >= 5
    for person in ("ann", "bob", "cid"):
        versions = [
            op.body["attributes"]["version"]
            for op in fake.operations
            if op.identifiers == {"id": person}
        ]
        assert versions == list(range(30))
        assert fake.people()[f"id:{person}"]["version"] == 29


async def test_ordering_none_spreads_batches(fake: FakeCustomerIO) -> None:
    async with client(fake, batch=BatchConfig(linger=0, ordering="none")) as cio:
        for i in range(50):
            await cio.identify(str(i % 5), i=i)
        result = await cio.flush(timeout=5)
    assert result.delivered == 50


# ----------------------------------------------------------------------------- retries


async def test_retryable_statuses_are_retried(fake: FakeCustomerIO) -> None:
    for status in (408, 500, 502, 503, 504):
        fake.add_fault(Fault(status=status))
    async with client(fake) as cio:
        receipt = await cio.identify("1", a=1)
        assert (await receipt.wait(timeout=10)).delivered
        stats = cio.statistics()
    assert stats.retries == 5
    assert stats.retries_by_cause == {
        "http_408": 1, "http_500": 1, "http_502": 1, "http_503": 1, "http_504": 1
    }  # fmt: skip
    assert [r.headers.get("x-retry-count") for r in fake.requests] == [
        None, "1", "2", "3", "4", "5"
    ]  # fmt: skip


async def test_429_with_retry_after_pauses_every_lane(fake: FakeCustomerIO) -> None:
    saw_429 = asyncio.Event()

    async def watch(
        request: HTTPRequest, call_next: Callable[[HTTPRequest], Awaitable[HTTPResponse]]
    ) -> HTTPResponse:
        response = await call_next(request)
        if response.status == 429:
            # The retry layer (outside this one) sets the pause before the loop runs again.
            saw_429.set()
        return response

    fake.add_fault(Fault(status=429, headers={"Retry-After": "0.3"}))
    cfg = BatchConfig(linger=0, max_batch_ops=1)
    async with client(fake, batch=cfg, http_middleware=[watch]) as cio:
        first = await cio.identify("a", x=1)
        await asyncio.wait_for(saw_429.wait(), timeout=5)
        others = [await cio.identify(p, x=1) for p in ("b", "c", "d")]
        for r in [first, *others]:
            assert (await r.wait(timeout=5)).delivered
    t429 = fake.requests[0].received_at
    assert fake.requests[0].status == 429
    # No request of any lane started before the pause ended.
    assert all(r.received_at >= t429 + 0.3 for r in fake.requests[1:])


@pytest.mark.parametrize(
    "headers", [{}, {"Retry-After": "garbage"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}]
)
async def test_429_without_usable_retry_after_backs_off(
    fake: FakeCustomerIO, headers: dict[str, str]
) -> None:
    fake.add_fault(Fault(status=429, headers=headers, times=2))
    async with client(fake) as cio:
        receipt = await cio.identify("a", x=1)
        assert (await receipt.wait(timeout=5)).delivered
        assert cio.statistics().retries_by_cause == {"http_429": 2}


async def test_413_splits_the_batch(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=413, match="/api/v2/batch"))
    async with client(fake, batch=BatchConfig(linger=10, max_concurrent_requests=1)) as cio:
        for i in range(6):
            await cio.identify(str(i), a=i)
        result = await cio.flush(timeout=5)
    assert result.delivered == 6
    assert [len(b) for b in batch_bodies(fake)] == [6, 3, 3]


async def test_a_single_operation_413_is_rejected(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=413))
    async with client(fake) as cio:
        with pytest.raises(OperationRejectedError) as info:
            await cio.track("1", "e", wait=True)
    assert info.value.outcome.reason == "http_413"
    assert info.value.outcome.http_status == 413


async def test_400_bisects_to_isolate_the_bad_operation(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=400, times=3, match="/api/v2/batch"))
    async with client(fake, batch=BatchConfig(linger=10, max_concurrent_requests=1)) as cio:
        receipts = [await cio.identify(str(i), a=i) for i in range(4)]
        await cio.flush(timeout=5)
    # [0..3] 400 → [0,1] 400 → [0] 400 (rejected), then [1] and [2,3] succeed.
    outcomes = [r.outcome.status if r.outcome else None for r in receipts]
    assert outcomes == ["rejected", "delivered", "delivered", "delivered"]


async def test_207_rejects_only_the_indexed_operations(fake: FakeCustomerIO) -> None:
    async with client(fake, batch=BatchConfig(linger=10, max_concurrent_requests=1)) as cio:
        good = await cio.send(Person.identify("1", {"a": 1}))
        # The API (and the fake) require a string "id" attribute; the SDK does not check.
        bad = await cio.send(Person.identify("2", {"id": 5}))
        also_good = await cio.send(Person.identify("3", {"a": 3}))
        await cio.flush(timeout=5)
        stats = cio.statistics()
    assert good.outcome == Outcome("delivered")
    assert bad.outcome is not None
    assert bad.outcome.status == "rejected"
    assert bad.outcome.http_status == 207
    assert also_good.outcome == Outcome("delivered")
    assert len(fake.requests) == 1  # nothing delivered is re-sent
    assert stats.rejected == 1


async def test_scripted_207_and_wait_raises(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(action="reject_indexes", indexes=(0,)))
    async with client(fake) as cio:
        with pytest.raises(OperationRejectedError, match="rejected") as info:
            await cio.track("1", "e", wait=True)
    assert info.value.outcome.status == "rejected"


async def test_unmappable_2xx_errors_are_retried(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=200, body=b'{"errors":[{"reason":"weird"}]}'))
    fake.add_fault(Fault(status=207, body=b'{"errors":[{"batch_index":99,"reason":"x"}]}'))
    async with client(fake) as cio:
        receipt = await cio.identify("1", a=1)
        assert (await receipt.wait(timeout=5)).delivered
        assert cio.statistics().retries_by_cause == {"invalid_response": 2}


async def test_unparseable_2xx_counts_as_delivered(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=200, body=b"<html>ok</html>"))
    async with client(fake) as cio:
        assert (await (await cio.identify("1", a=1)).wait(timeout=5)).delivered


async def test_non_retryable_statuses_reject(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=422, body=b'{"errors":[{"reason":"bad","message":"nope"}]}'))
    async with client(fake) as cio:
        with pytest.raises(OperationRejectedError, match="nope"):
            await cio.track_anonymous("a", "e", wait=True)


async def test_auth_failure_pauses_and_reports(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    retry = RetryPolicy(backoff_base=0.01, backoff_cap=0.02, delivery_timeout=0.4, auth_pause=0.1)
    caplog.set_level(logging.ERROR, logger="customerio_async")
    async with CustomerIO(
        "fake-site", "wrong-key", track_url=fake.url, retry=retry, rate_limit=None,
        batch=BatchConfig(linger=0),
    ) as cio:  # fmt: skip
        first = await cio.identify("1", a=1)
        with pytest.raises(OperationDroppedError) as info:
            await cio.track("1", "e", wait=True)
        assert first.outcome is not None
        assert first.outcome.reason == "auth_failed"
        stats = cio.statistics()
    assert info.value.outcome.reason == "auth_failed"
    # Paused between probes instead of burning the buffer: a handful of requests, not dozens.
    assert 2 <= len(fake.requests) <= 6
    assert "check the site id and API key" in caplog.text
    assert "wrong-key" not in caplog.text
    assert stats.dropped_by_reason["auth_failed"] == 2


async def test_delivery_deadline_drops(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=503, times=1000))
    retry = RetryPolicy(
        backoff_base=0.01, backoff_cap=0.05, delivery_timeout=0.3, max_attempts=1000
    )
    dropped: list[Receipt] = []
    async with client(fake, retry=retry, on_drop=dropped.append) as cio:
        receipt = await cio.identify("1", a=1)
        outcome = await receipt.wait(timeout=5)
    assert outcome.status == "dropped"
    assert outcome.reason == "delivery_timeout"
    assert outcome.http_status == 503
    assert dropped == [receipt]


async def test_max_attempts_drops(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=500, times=1000))
    retry = RetryPolicy(backoff_base=0.001, backoff_cap=0.002, max_attempts=3)
    async with client(fake, retry=retry) as cio:
        outcome = await (await cio.identify("1", a=1)).wait(timeout=5)
    assert outcome.reason == "retries_exhausted"
    assert len(fake.requests) == 3


async def test_retry_budget_slows_retries_down(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=500, times=1000))
    retry = RetryPolicy(
        backoff_base=0.001, backoff_cap=0.2, budget=2.0, budget_refill=0.1, delivery_timeout=0.5
    )
    async with client(fake, retry=retry) as cio:
        outcome = await (await cio.identify("1", a=1)).wait(timeout=5)
    assert outcome.reason == "delivery_timeout"
    # Without the budget, ~0.001 s backoffs would have made hundreds of attempts in 0.5 s;
    # with it spent after two failures, attempts are spaced ≥ backoff_cap / 2 apart.
    assert len(fake.requests) <= 6


async def test_connection_reset_is_retried_transparently(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(action="reset_before_body", match="/api/v2/batch"))
    async with client(fake) as cio:
        receipt = await cio.track("1", "e")
        assert (await receipt.wait(timeout=5)).delivered
        assert cio.statistics().retries_by_cause == {"connection_lost": 1}


async def test_timeout_after_apply_is_deduplicated_by_event_id(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(action="reset_after_body", match="/api/v2/batch"))
    async with client(fake) as cio:
        receipts = [await cio.track("same-person", "paid") for _ in range(5)]
        await cio.flush(timeout=5)
    assert all(r.outcome == Outcome("delivered") for r in receipts)
    assert len(fake.event_ids()) == 5
    assert len(fake.duplicate_event_ids) == 5
    assert len(fake.requests) == 2


async def test_rate_limiter_spaces_requests(fake: FakeCustomerIO) -> None:
    async with client(
        fake,
        rate_limit=RateLimit(requests_per_second=20, burst=1),
        batch=BatchConfig(linger=0, max_batch_ops=1, max_concurrent_requests=4),
    ) as cio:
        for i in range(5):
            await cio.identify(str(i), a=i)
        await cio.flush(timeout=5)
    times = sorted(r.received_at for r in fake.requests)
    assert times[-1] - times[0] >= 4 / 20 * 0.9


# ----------------------------------------------------------------------------- buffer


async def test_overflow_raise(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.5, times=10))
    cfg = BatchConfig(linger=0, max_buffer_ops=2, overflow="raise", max_concurrent_requests=1)
    async with client(fake, batch=cfg) as cio:
        await cio.identify("1", a=1)
        await cio.identify("2", a=1)
        with pytest.raises(BufferFullError):
            await cio.identify("3", a=1)
        stats = cio.statistics()
        assert (stats.accepted, stats.buffered_ops) == (2, 2)


async def test_overflow_drop_newest(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.3, times=10))
    cfg = BatchConfig(linger=0, max_buffer_ops=2, overflow="drop_newest")
    async with client(fake, batch=cfg) as cio:
        kept = [await cio.identify(str(i), a=1) for i in range(2)]
        dropped = await cio.identify("3", a=1)
        assert dropped.outcome == Outcome("dropped", "buffer_full", "send buffer full")
        with pytest.raises(OperationDroppedError):
            await cio.track("4", "e", wait=True)
        await cio.flush(timeout=5)
        assert all(r.outcome == Outcome("delivered") for r in kept)
        assert cio.statistics().dropped_by_reason == {"buffer_full": 2}
        check_invariant(cio)


async def test_overflow_drop_oldest_evicts_only_queued_operations(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.3, times=10))
    cfg = BatchConfig(linger=0, max_buffer_ops=3, overflow="drop_oldest", max_concurrent_requests=1)
    async with client(fake, batch=cfg) as cio:
        in_flight = await cio.identify("same", v=0)
        await fake.wait_for_arrivals(1)
        queued = [await cio.identify("same", v=i) for i in (1, 2)]
        newest = await cio.identify("same", v=3)
        await cio.flush(timeout=5)
    assert in_flight.outcome == Outcome("delivered")  # in flight: never evicted
    assert queued[0].outcome is not None
    assert queued[0].outcome.reason == "buffer_full"
    assert queued[1].outcome == Outcome("delivered")
    assert newest.outcome == Outcome("delivered")


async def test_overflow_block_waits_fifo_then_admits(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.2, times=1))
    cfg = BatchConfig(linger=0, max_buffer_ops=1, overflow="block", enqueue_timeout=5)
    async with client(fake, batch=cfg) as cio:
        first = await cio.identify("1", a=1)
        order: list[str] = []

        async def admit(pid: str) -> Receipt:
            r = await cio.identify(pid, a=1)
            order.append(pid)
            return r

        rest = await asyncio.gather(admit("2"), admit("3"), admit("4"))
        await cio.flush(timeout=5)
    assert order == ["2", "3", "4"]
    assert all(r.outcome == Outcome("delivered") for r in [first, *rest])


async def test_overflow_block_times_out_into_fallback(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=1.0, times=1))
    cfg = BatchConfig(
        linger=0, max_buffer_ops=1, overflow="block", enqueue_timeout=0.05,
        overflow_fallback="raise",
    )  # fmt: skip
    async with client(fake, batch=cfg) as cio:
        await cio.identify("1", a=1)
        with pytest.raises(BufferFullError):
            await cio.identify("2", a=1)
        assert cio.statistics().accepted == 1


async def test_cancel_while_blocked_admits_nothing(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.3, times=1))
    cfg = BatchConfig(linger=0, max_buffer_ops=1, overflow="block", enqueue_timeout=5)
    async with client(fake, batch=cfg) as cio:
        await cio.identify("1", a=1)
        task = asyncio.create_task(cio.identify("2", a=2))
        await asyncio.sleep(0)  # let it block
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await cio.flush(timeout=5)
        stats = cio.statistics()
        assert stats.accepted == 1
        assert stats.buffered_ops == 0
        # The space it waited for is usable again.
        assert (await (await cio.identify("3", a=3)).wait(timeout=5)).delivered
    assert [op.identifiers for op in fake.operations] == [{"id": "1"}, {"id": "3"}]


async def test_cancelling_a_delivery_wait_never_cancels_delivery(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.2))
    async with client(fake) as cio:
        receipt = await cio.identify("1", a=1)
        with pytest.raises(TimeoutError):
            await receipt.wait(timeout=0.01)
        waiter = asyncio.create_task(receipt.wait())
        await asyncio.sleep(0)
        waiter.cancel()
        assert (await receipt.wait(timeout=5)).delivered


async def test_buffer_budget_counts_bytes(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.3))
    cfg = BatchConfig(linger=0, max_buffer_bytes=40_000, overflow="raise")
    async with client(fake, batch=cfg) as cio:
        await cio.track("1", "e", {"pad": "x" * 20_000})
        with pytest.raises(BufferFullError):
            await cio.track("2", "e", {"pad": "x" * 20_000})
        assert cio.statistics().buffered_bytes > 20_000


# ----------------------------------------------------------------------------- outcomes


async def test_callbacks_sync_async_and_isolated(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    async_seen: list[str] = []

    def on_outcome(receipt: Receipt) -> None:
        seen.append(receipt.operation.action)
        if receipt.operation.action == "delete":
            raise RuntimeError("user bug")

    async def on_drop(receipt: Receipt) -> None:
        async_seen.append(str(receipt.outcome.reason if receipt.outcome else "?"))
        raise RuntimeError("async user bug")

    cfg = BatchConfig(linger=0, max_buffer_ops=1, overflow="drop_newest")
    fake.add_fault(Fault(delay=0.2))
    async with client(fake, batch=cfg, on_outcome=on_outcome, on_drop=on_drop) as cio:
        await cio.delete("1")
        await cio.identify("2", a=1)  # dropped: buffer full
        await cio.flush(timeout=5)
    assert sorted(seen) == ["delete", "identify"]
    assert async_seen == ["buffer_full"]
    assert caplog.text.count("outcome callback raised") == 2


async def test_statistics_snapshot(fake: FakeCustomerIO, bcio: CustomerIO) -> None:
    for i in range(10):
        await bcio.identify(str(i), a=i)
    mid = bcio.statistics()
    assert mid.accepted == 10
    assert mid.pending == 10 - mid.delivered
    await bcio.flush(timeout=5)
    s = bcio.statistics()
    assert (s.accepted, s.delivered, s.pending, s.buffered_ops, s.buffered_bytes) == (
        10,
        10,
        0,
        0,
        0,
    )
    assert s.requests == len(fake.requests)
    assert s.bytes_sent == sum(len(r.body) for r in fake.requests)
    assert "Pipeline" not in repr(bcio)


# ----------------------------------------------------------------------------- shutdown


async def test_close_with_a_blackholed_server_meets_its_deadline(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=30, times=100))
    loop = asyncio.get_running_loop()
    cio = client(fake)
    await cio.open()
    receipts = [await cio.identify(str(i), a=i) for i in range(20)]
    started = loop.time()
    await cio.aclose(timeout=0.3)
    assert loop.time() - started < 2
    assert all(r.outcome is not None for r in receipts)
    stats = cio.statistics()
    assert stats.dropped_by_reason == {"shutdown_timeout": 20}
    check_invariant(cio)


async def test_close_survives_one_cancellation(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.3))
    cio = client(fake)
    await cio.open()
    receipt = await cio.identify("1", a=1)
    closer = asyncio.create_task(cio.aclose(timeout=5))
    await asyncio.sleep(0.05)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    # The drain went on after the first cancellation and delivered the operation.
    assert receipt.outcome == Outcome("delivered")


async def test_second_cancellation_aborts_the_drain(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=30))
    cio = client(fake)
    await cio.open()
    receipt = await cio.identify("1", a=1)
    closer = asyncio.create_task(cio.aclose(timeout=60))
    await asyncio.sleep(0.05)
    closer.cancel()
    await asyncio.sleep(0.05)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    assert receipt.outcome is not None
    assert receipt.outcome.reason == "shutdown_timeout"


async def test_a_dying_send_task_drops_only_its_batch(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=5, times=1))
    cio = client(fake)
    await cio.open()
    receipt = await cio.identify("1", a=1, wait=False)
    waiting = asyncio.ensure_future(receipt.wait(timeout=5))
    await fake.wait_for_arrivals(1)
    dispatch = cio._pipeline._dispatch
    assert dispatch is not None
    for task in list(dispatch.tasks):  # something outside cancels our task
        task.cancel()
    outcome = await waiting
    assert outcome.status == "dropped"
    assert outcome.reason == "internal_error"
    # The rest keeps running: the client is not failed, later operations are delivered.
    later = await cio.identify("2", a=2)
    assert (await later.wait(timeout=5)).delivered
    assert cio.statistics().state == "open"
    await cio.aclose()


async def test_direct_mode_flush_and_statistics(fake: FakeCustomerIO) -> None:
    async with CustomerIO("fake-site", "fake-key", track_url=fake.url, batching=False) as cio:
        assert not cio.batching
        r = await cio.track("1", "e")
        assert r.outcome == Outcome("delivered")
        assert r.response == {}
        assert (await cio.flush()).pending == 0
        assert cio.statistics().requests == 1


async def test_direct_mode_retries_then_raises(fake: FakeCustomerIO) -> None:
    from customerio_async import RateLimitError, ServerError

    fake.add_fault(Fault(status=503, times=2))
    async with CustomerIO(
        "fake-site", "fake-key", track_url=fake.url, batching=False, retry=FAST_RETRY
    ) as cio:
        assert (await cio.identify("1", a=1)).response == {}
        assert len(fake.requests) == 3
        fake.add_fault(Fault(status=500, times=3))
        with pytest.raises(ServerError):
            await cio.identify("1", a=2)
        # A long server-requested wait is not slept through in direct mode.
        fake.add_fault(Fault(status=429, headers={"Retry-After": "3600"}))
        with pytest.raises(RateLimitError) as info:
            await cio.identify("1", a=3)
        assert info.value.retry_after == 3600


async def test_a_blocked_admission_closes_open_batches(fake: FakeCustomerIO) -> None:
    # A buffer smaller than one batch: without closing batches when admission blocks, every
    # batch would wait out the 60 s linger.
    cfg = BatchConfig(linger=60, max_buffer_ops=10, enqueue_timeout=5)
    async with client(fake, batch=cfg) as cio:

        async def produce() -> list[Receipt]:
            return [await cio.identify(str(i % 7), n=i) for i in range(100)]

        receipts = await asyncio.wait_for(produce(), timeout=10)
        await cio.flush(timeout=5)
        stats = cio.statistics()
    assert all(r.outcome == Outcome("delivered") for r in receipts)
    assert stats.dropped == 0
    assert stats.batches > 1


async def test_waiting_for_an_outcome_skips_the_linger(fake: FakeCustomerIO) -> None:
    # linger is for fire-and-forget traffic: a caller awaiting the outcome closes the batch.
    async with client(fake, batch=BatchConfig(linger=60)) as cio:
        background = [await cio.identify(str(i), a=i) for i in range(3)]
        confirmed = await asyncio.wait_for(cio.track("7", "checkout", wait=True), timeout=5)
        assert confirmed.outcome == Outcome("delivered")
        later = await cio.identify("8", a=1)
        assert (await asyncio.wait_for(later.wait(), timeout=5)).delivered
        await cio.flush(timeout=5)
        assert all(r.done() for r in background)


async def test_sustained_overload_keeps_batches_full(fake: FakeCustomerIO) -> None:
    # A producer faster than a rate-limited sender fills the buffer and blocks. Blocking
    # must not close half-empty batches while lanes are sending: that would spend the
    # request budget on small batches and collapse throughput.
    cfg = BatchConfig(linger=0.5, max_batch_ops=100, max_buffer_ops=1000, enqueue_timeout=10)
    rate = RateLimit(requests_per_second=40, burst=1)
    async with client(fake, batch=cfg, rate_limit=rate) as cio:
        for i in range(4000):
            await cio.track(f"p{i % 50}", "e")
        await cio.flush(timeout=20)
        stats = cio.statistics()
    assert stats.delivered == 4000
    assert stats.dropped == 0
    assert stats.delivered / stats.batches >= 80


async def test_concurrent_waiters_each_skip_the_linger(fake: FakeCustomerIO) -> None:
    # Waiters that arrive while an expedited batch is on the wire expedite the next batch
    # too: confirmation costs round trips, never a linger.
    fake.add_fault(Fault(delay=0.1, times=1))
    cfg = BatchConfig(linger=30, max_concurrent_requests=1)
    async with client(fake, batch=cfg) as cio:
        first = asyncio.create_task(cio.track("a", "e", wait=True))
        await fake.wait_for_arrivals(1)  # the first batch is on the wire (stalled 100 ms)
        rest = [asyncio.create_task(cio.track(str(i), "e", wait=True)) for i in range(5)]
        done = await asyncio.wait_for(asyncio.gather(first, *rest), timeout=5)
    assert all(r.outcome == Outcome("delivered") for r in done)
