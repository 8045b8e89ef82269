"""The README's first command: run the SDK's main job against the embedded fake server.

``python -m customerio_async demo`` starts :class:`~customerio_async.testing.FakeCustomerIO`
on loopback, sends a realistic mix of Track operations through a batched
:class:`CustomerIO` (the default mode), waits for every outcome, and prints what the fake
received and applied, with admission and end-to-end latencies.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from customerio_async import (
    BatchConfig,
    CustomerIO,
    Delivery,
    Object,
    Person,
    Receipt,
    object_relationship,
)

if TYPE_CHECKING:
    from customerio_async import FlushResult, Statistics
    from customerio_async.testing import FakeCustomerIO


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


@dataclass
class _Timings:
    """Admission and end-to-end latencies, measured around our own calls."""

    admission: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)
    # id(receipt) -> when its call started; ``receipts`` keeps them alive, so ids stay unique.
    started_at: dict[int, float] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)

    def on_outcome(self, receipt: Receipt) -> None:
        """The client's ``on_outcome``: end-to-end latency of one operation."""
        t0 = self.started_at.pop(id(receipt), None)
        if t0 is not None:
            self.end_to_end.append(time.perf_counter() - t0)

    async def admit(self, call: Awaitable[Receipt]) -> None:
        """Await one Track call, timing its admission."""
        t0 = time.perf_counter()
        receipt = await call
        self.admission.append(time.perf_counter() - t0)
        if not receipt.done():
            self.started_at[id(receipt)] = t0
        self.receipts.append(receipt)


async def _send_mix(cio: CustomerIO, timings: _Timings, people: int, seed: int) -> None:
    """A realistic mix: identifies, page views, events, devices, objects, a delivery."""
    rng = random.Random(seed)
    admit = timings.admit
    for i in range(people):
        pid = f"user-{i}"
        await admit(
            cio.identify(
                pid,
                email=f"user{i}@example.com",
                plan=rng.choice(["free", "pro", "team"]),
                created_at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
            )
        )
        page = rng.choice(["/", "/pricing", "/docs", "/signup"])
        await admit(cio.pageview(pid, page, referrer="demo"))
        await admit(cio.track(pid, "purchased", {"amount": rng.randint(5, 500)}))
        if i % 10 == 0:
            await admit(cio.add_device(pid, f"tok-{i}", "ios", app_version="1.2"))
    await admit(cio.track_anonymous("visitor-1", "viewed_pricing"))
    await admit(cio.add_to_segment(7, [f"user-{i}" for i in range(50)]))
    for op in (
        Object.identify(1, "acme", {"name": "Acme Inc", "seats": 40}),
        Person.add_relationships("user-1", [object_relationship(1, "acme", {"role": "admin"})]),
        Person.event({"email": "user2@example.com"}, "invited_teammate", {"count": 2}),
        Delivery.event("dlv_123", "opened", device_token="tok-0"),  # noqa: S106 - not a secret
    ):
        await admit(cio.send(op))


def _report(
    fake: FakeCustomerIO, stats: Statistics, flushed: FlushResult, timings: _Timings, elapsed: float
) -> None:
    print(
        f"\n{stats.accepted} operations admitted and {stats.delivered} delivered in "
        f"{elapsed:.2f} s using "
        f"{stats.requests} HTTP requests ({stats.batches} batches); "
        f"rejected {stats.rejected}, dropped {stats.dropped}, pending {flushed.pending}"
    )
    by_action = collections.Counter(op.action for op in fake.operations)
    statuses = collections.Counter(r.status for r in fake.requests)
    print(f"fake server: {len(fake.requests)} requests, statuses {dict(statuses)}")
    print("operations applied by the fake server:")
    for action, count in sorted(by_action.items()):
        print(f"  {action:<22}{count:>6}")
    admission, end_to_end = timings.admission, timings.end_to_end
    print(
        f"\nadmission (await cio.track() returning): p50={_pct(admission, 0.5):.3f} ms  "
        f"p99={_pct(admission, 0.99):.3f} ms"
    )
    print(
        f"end-to-end (admission -> delivered):      p50={_pct(end_to_end, 0.5):.1f} ms  "
        f"p99={_pct(end_to_end, 0.99):.1f} ms  (linger 50 ms)"
    )
    print(f"people known to the fake: {len(fake.people())}")


async def run_demo(people: int = 2000, seed: int = 7) -> int:
    """Run the demo and print a report; returns a process exit code (0 = all delivered)."""
    from customerio_async.testing import FakeCustomerIO  # imported only when the demo runs

    timings = _Timings()
    async with FakeCustomerIO() as fake:
        cio = CustomerIO(
            "fake-site",
            "fake-key",
            track_url=fake.url,
            batch=BatchConfig(linger=0.05),
            on_outcome=timings.on_outcome,
        )
        async with cio:
            print(f"fake Customer.io listening on {fake.url}")
            info = await cio.get_region()
            print(f"workspace region: {info.region.value} (environment {info.environment_id})")
            started = time.perf_counter()
            await _send_mix(cio, timings, people, seed)
            confirmed = await cio.track("user-0", "demo_finished", wait=True)
            flushed = await cio.flush()
            elapsed = time.perf_counter() - started
            stats = cio.statistics()
        _report(fake, stats, flushed, timings, elapsed)
        print(f"wait=True confirmation: {confirmed.outcome}")
    ok = stats.delivered == stats.accepted and len(fake.operations) >= stats.accepted
    return 0 if ok else 1
