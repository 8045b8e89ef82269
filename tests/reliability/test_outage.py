"""Scenario 1: the server fails for a while (503, refused, blackholed, SYNs dropped), then
recovers.

Claims proven: nothing admitted within the buffer budget is lost (every event the client
admitted during the outage reaches the server exactly once afterwards, and the books balance
at every sample taken during the outage); and the retries of many clients are spread by
jitter instead of arriving in lock-step.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest

from customerio_async import BatchConfig, Receipt, RetryPolicy, Timeouts
from customerio_async.testing import FakeCustomerIO, Fault

from ._harness import (
    batch_event_ids,
    by_header,
    check_invariant,
    make_client,
    record_figures,
    spread,
)
from ._proxy import PASS, FaultProxy, ProxyFault

OUTAGE = 1.2  # seconds; long enough for several backoff rounds on every lane


@pytest.mark.parametrize("kind", ["503", "refused", "blackholed", "connect-timeout"])
async def test_nothing_within_the_buffer_budget_is_lost_across_an_outage(
    fake: FakeCustomerIO, proxy: FaultProxy, kind: str
) -> None:
    retry = RetryPolicy(
        backoff_base=0.02, backoff_cap=0.2, delivery_timeout=30.0, max_attempts=10_000
    )
    # A blackholed request is only given up by the client's own timeouts.
    timeouts = Timeouts(total=0.5, connect=0.3, sock_read=0.3)
    cfg = BatchConfig(linger=0.02, max_buffer_ops=1000, max_batch_ops=50)
    async with make_client(proxy.url, retry=retry, timeouts=timeouts, batch=cfg) as cio:
        warm = await cio.track("warm", "before_outage")
        assert (await warm.wait(5)).delivered
        if kind == "503":
            proxy.fault = ProxyFault("respond", status=503)
        elif kind == "blackholed":
            proxy.fault = ProxyFault("blackhole")
        elif kind == "refused":
            await proxy.refuse()
        else:
            await proxy.stall_connects()
        loop = asyncio.get_running_loop()
        started = loop.time()
        requests_before = proxy.stats.requests
        receipts: list[Receipt] = []
        # Produce steadily through the outage: 300 events, well within the 1000-op budget.
        while loop.time() - started < OUTAGE:
            for i in range(10):
                receipts.append(
                    await cio.track(f"person-{i}", "during_outage", {"n": len(receipts)})
                )
            check_invariant(cio)
            assert all(r.outcome is None for r in receipts)  # nothing given up meanwhile
            await asyncio.sleep(OUTAGE / 30)
        attempts_in_outage = proxy.stats.requests - requests_before
        stats = cio.statistics()
        assert stats.delivered == 1  # only the warm-up: the outage was real
        assert stats.retries > 0
        if kind in ("refused", "connect-timeout"):
            await proxy.restore()
        proxy.fault = PASS
        recovered_at = loop.time()
        result = await cio.flush(timeout=20)
        drained_in = loop.time() - recovered_at
        check_invariant(cio)
        stats = cio.statistics()
    assert result.pending == 0
    assert (result.delivered, result.rejected, result.dropped) == (len(receipts) + 1, 0, 0)
    assert all(r.outcome is not None and r.outcome.delivered for r in receipts)
    assert stats.dropped == 0
    # Server side: every admitted event applied exactly once, nothing extra.
    sent = {str((r.operation.v2 or {})["id"]) for r in receipts}
    applied = fake.event_ids()
    assert len(applied) == len(set(applied))
    assert set(applied) == sent | {str((warm.operation.v2 or {})["id"])}
    assert fake.duplicate_event_ids == []
    record_figures(
        f"outage[{kind}]",
        outage_s=OUTAGE,
        admitted=len(receipts) + 1,
        delivered=stats.delivered,
        dropped=stats.dropped,
        attempts_during_outage=attempts_in_outage,
        retries=stats.retries,
        drained_in_s=round(drained_in, 3),
    )


async def test_retries_of_many_clients_are_spread_by_jitter(fake: FakeCustomerIO) -> None:
    """Ten clients fail at the same instant; their retries must not come back together."""
    n = 10
    base = 0.5
    fake.add_fault(Fault(status=503, times=2 * n, match="/api/v2/batch"))
    retry = RetryPolicy(backoff_base=base, backoff_cap=10.0, delivery_timeout=30.0)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                make_client(
                    fake.url,
                    retry=retry,
                    batch=BatchConfig(linger=0),
                    user_agent=f"reliability-client-{i}",
                )
            )
            for i in range(n)
        ]
        receipts = await asyncio.gather(*(c.track("same-person", "e") for c in clients))
        outcomes = await asyncio.gather(*(r.wait(10) for r in receipts))
    assert all(o.delivered for o in outcomes)
    # Per client, the gap before retry k is its own backoff (plus a loopback round trip):
    # full jitter draws it from uniform(0, base * 2**(k-1)).
    gaps: dict[int, list[float]] = {}
    retry_arrivals: dict[int, list[float]] = {}
    for agent, requests in by_header(fake.requests, "user-agent").items():
        assert agent.startswith("reliability-client-")
        for prev, cur in itertools.pairwise(requests):
            k = int(cur.headers["x-retry-count"])
            gaps.setdefault(k, []).append(cur.received_at - prev.received_at)
            retry_arrivals.setdefault(k, []).append(cur.received_at)
    first = [rs[0].received_at for rs in by_header(fake.requests, "user-agent").values()]
    for k, values in gaps.items():
        assert max(values) <= base * 2 ** (k - 1) + 0.1, (k, values)  # never above the ceiling
    round1 = gaps[1]
    assert len(round1) >= n - 1
    # Not lock-step: the first retries are spread over the jitter window (the expected
    # standard deviation of uniform(0, 0.5) is 0.144 s) and land in many distinct 10 ms slots.
    assert spread(round1) > 0.05, round1
    assert len({int(t / 0.01) for t in retry_arrivals[1]}) >= 6, retry_arrivals[1]
    record_figures(
        "jitter[10 clients, 503]",
        first_attempt_spread_ms=round(1000 * spread(first), 2),
        retry1_spread_ms=round(1000 * spread(round1), 1),
        retry1_range_ms=round(1000 * (max(round1) - min(round1)), 1),
        distinct_10ms_slots=len({int(t / 0.01) for t in retry_arrivals[1]}),
    )


async def test_outage_events_reach_the_server_in_per_person_order(
    fake: FakeCustomerIO, proxy: FaultProxy
) -> None:
    """After recovery, each person's identifies land in the order they were made."""
    proxy.fault = ProxyFault("respond", status=503)
    async with make_client(proxy.url, batch=BatchConfig(linger=0, max_batch_ops=3)) as cio:
        for version in range(20):
            for person in ("ann", "bob", "cid", "dee", "eve"):
                await cio.identify(person, version=version)
        await proxy.wait_for(lambda: proxy.stats.faults["respond"] >= 10)
        proxy.fault = PASS
        result = await cio.flush(timeout=10)
    assert result.pending == 0
    assert result.delivered == 100
    for person in ("ann", "bob", "cid", "dee", "eve"):
        versions = [
            op.body["attributes"]["version"]
            for op in fake.operations
            if op.identifiers == {"id": person}
        ]
        assert versions == list(range(20))
    assert batch_event_ids(fake.requests) == []  # identifies carry no event id
