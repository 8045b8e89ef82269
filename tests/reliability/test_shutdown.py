"""Scenario 6: shutdown under load.

Claims proven: ``aclose(timeout)`` returns within its deadline even when the server is a
real TCP blackhole (accepts, reads, never answers) or refuses connections, while producers
are still calling; every operation is accounted for (delivered, or dropped as
``shutdown_timeout``), callers blocked on a full buffer are released at once, and no task
or socket is left behind.
"""

from __future__ import annotations

import asyncio

import pytest

from customerio_async import BatchConfig, ClientStateError, Receipt
from customerio_async.testing import FakeCustomerIO

from ._harness import (
    Heartbeat,
    check_invariant,
    make_client,
    open_fds,
    record_figures,
    sdk_tasks,
)
from ._proxy import FaultProxy, ProxyFault

DEADLINE = 0.5
SLACK = 0.5  # event-loop scheduling and socket teardown on a busy CI machine


@pytest.mark.usefixtures("needs_proc")
@pytest.mark.parametrize("kind", ["blackholed", "refused"])
async def test_aclose_meets_its_deadline_under_load_and_accounts_for_everything(
    fake: FakeCustomerIO, proxy: FaultProxy, kind: str
) -> None:
    if kind == "blackholed":
        proxy.fault = ProxyFault("blackhole")
    else:
        await proxy.refuse()
    fds_before = open_fds()
    loop = asyncio.get_running_loop()
    cio = make_client(proxy.url, batch=BatchConfig(linger=0.005, max_batch_ops=100))
    await cio.open()
    receipts: list[Receipt] = []
    refused_calls = 0

    async def producer(k: int) -> None:
        nonlocal refused_calls
        n = 0
        while True:
            n += 1
            try:
                receipts.append(await cio.track(f"person-{k}-{n % 7}", "e", {"n": n}))
            except ClientStateError:
                refused_calls += 1
                return
            # 1000 operations each at full speed, then a call every 10 ms until refused.
            if n >= 1000 or n % 50 == 0:
                await asyncio.sleep(0.01 if n >= 1000 else 0)

    producers = [asyncio.create_task(producer(k)) for k in range(8)]
    if kind == "blackholed":
        await proxy.wait_for(lambda: proxy.stats.requests >= 4)  # every lane hung in flight
    else:
        await asyncio.sleep(0.2)  # bounded: let connect failures and retries pile up
    assert all(r.outcome is None for r in receipts)
    started = loop.time()
    async with Heartbeat(interval=0.005) as heartbeat:
        await cio.aclose(timeout=DEADLINE)
        took = loop.time() - started
    await asyncio.gather(*producers)
    assert took < DEADLINE + SLACK
    assert refused_calls == 8  # every producer was told the client is closed
    stats = cio.statistics()
    check_invariant(cio)
    assert stats.pending == 0
    assert stats.accepted == len(receipts)
    assert all(r.outcome is not None for r in receipts)
    assert stats.delivered == 0
    assert stats.dropped_by_reason == {"shutdown_timeout": len(receipts)}
    assert sdk_tasks() == set()
    # The client closed its sockets: the proxy's ends of them see EOF and go away too.
    await proxy.wait_for(lambda: proxy.open_connections == 0)
    assert open_fds() <= fds_before
    assert fake.operations == []
    record_figures(
        f"shutdown[{kind}]",
        deadline_s=DEADLINE,
        aclose_took_s=round(took, 3),
        accepted=stats.accepted,
        dropped_shutdown_timeout=stats.dropped,
        delivered=stats.delivered,
        loop_lag_max_ms=round(1000 * heartbeat.max, 1),
    )


async def test_a_partial_drain_delivers_what_it_can_and_drops_the_rest_once(
    fake: FakeCustomerIO, proxy: FaultProxy
) -> None:
    proxy.bandwidth = 250_000  # bytes/s: ~2 MB of operations cannot drain in 0.5 s
    cio = make_client(proxy.url, batch=BatchConfig(linger=0.005, max_batch_ops=100))
    await cio.open()
    receipts = [
        await cio.track(f"person-{i % 13}", "e", {"n": i, "pad": "x" * 1000}) for i in range(2000)
    ]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await cio.aclose(timeout=DEADLINE)
    took = loop.time() - started
    stats = cio.statistics()
    assert took < DEADLINE + SLACK
    check_invariant(cio)
    assert stats.pending == 0
    assert stats.delivered > 0
    assert stats.dropped_by_reason == {"shutdown_timeout": 2000 - stats.delivered}

    def ids(status: str) -> set[str]:
        return {
            str((r.operation.v2 or {})["id"])
            for r in receipts
            if r.outcome is not None and r.outcome.status == status
        }

    applied = set(fake.event_ids())
    # Everything reported delivered reached the server; anything else it holds was dropped
    # while in flight (at-least-once: its answer was lost to the shutdown, never a phantom).
    assert ids("delivered") <= applied
    assert applied - ids("delivered") <= ids("dropped")
    assert len(fake.event_ids()) == len(applied)
    record_figures(
        "shutdown[slow link]",
        aclose_took_s=round(took, 3),
        accepted=stats.accepted,
        delivered=stats.delivered,
        dropped_shutdown_timeout=stats.dropped,
        applied_but_dropped=len(applied - ids("delivered")),
    )


async def test_callers_blocked_on_a_full_buffer_are_released_at_close(
    proxy: FaultProxy,
) -> None:
    proxy.fault = ProxyFault("blackhole")
    cfg = BatchConfig(linger=0, max_buffer_ops=4, overflow="block", enqueue_timeout=30)
    cio = make_client(proxy.url, batch=cfg)
    await cio.open()
    admitted = [await cio.identify(f"p{i}", a=i) for i in range(4)]
    blocked = [asyncio.create_task(cio.identify(f"q{i}", a=i)) for i in range(6)]
    await asyncio.sleep(0.05)  # bounded: they are waiting for space (30 s enqueue_timeout)
    assert not any(t.done() for t in blocked)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await cio.aclose(timeout=DEADLINE)
    results = await asyncio.gather(*blocked, return_exceptions=True)
    assert loop.time() - started < DEADLINE + SLACK
    assert all(isinstance(r, ClientStateError) for r in results)
    stats = cio.statistics()
    assert stats.accepted == 4  # the blocked calls were never admitted
    assert all(r.outcome is not None and r.outcome.reason == "shutdown_timeout" for r in admitted)
    check_invariant(cio)
