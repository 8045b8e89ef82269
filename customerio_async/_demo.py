"""The README's first command: run the SDK's main job against the embedded fake server.

``python -m customerio_async demo`` starts :class:`~customerio_async.testing.FakeCustomerIO`
on loopback, sends a realistic mix of Track operations through a batched
:class:`CustomerIO` (the default mode), waits for every outcome, and prints what the fake
received and applied, with admission and end-to-end latencies.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import random
import time
from collections.abc import Awaitable

from ._config import BatchConfig
from ._pipeline.receipt import Receipt
from ._track.builders import Delivery, Object, Person, object_relationship
from ._track.client import CustomerIO


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def run_demo(people: int = 2000, seed: int = 7) -> int:
    """Run the demo and print a report; returns a process exit code (0 = all delivered)."""
    from .testing import FakeCustomerIO  # the fake is optional at import time of the SDK

    rng = random.Random(seed)
    plans = ["free", "pro", "team"]
    pages = ["/", "/pricing", "/docs", "/signup"]
    admission: list[float] = []
    end_to_end: list[float] = []
    loop = asyncio.get_running_loop()

    admitted_at: dict[Receipt, float] = {}

    def on_outcome(receipt: Receipt) -> None:
        started = admitted_at.pop(receipt, None)
        if started is not None:
            end_to_end.append(loop.time() - started)

    async with (
        FakeCustomerIO() as fake,
        CustomerIO(
            "fake-site",
            "fake-key",
            track_url=fake.url,
            batch=BatchConfig(linger=0.05),
            on_outcome=on_outcome,
        ) as cio,
    ):
        print(f"fake Customer.io listening on {fake.url}")
        region = await cio.get_region()
        print(f"workspace region: {region.region.value} (environment {region.environment_id})")
        started = time.perf_counter()
        receipts: list[Receipt] = []

        async def admit(call: Awaitable[Receipt]) -> None:
            t0 = time.perf_counter()
            admitted = loop.time()
            receipt = await call
            admission.append(time.perf_counter() - t0)
            if not receipt.done():
                admitted_at[receipt] = admitted
            receipts.append(receipt)

        for i in range(people):
            pid = f"user-{i}"
            await admit(
                cio.identify(
                    pid,
                    email=f"user{i}@example.com",
                    plan=rng.choice(plans),
                    created_at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
                )
            )
            await admit(cio.pageview(pid, rng.choice(pages), referrer="demo"))
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
        confirmed = await cio.track("user-0", "demo_finished", wait=True)
        flushed = await cio.flush()
        elapsed = time.perf_counter() - started
        stats = cio.statistics()

    print(
        f"\n{stats.accepted} operations admitted and {stats.delivered} delivered in "
        f"{elapsed:.2f} s using {stats.requests} HTTP requests ({stats.batches} batches); "
        f"rejected {stats.rejected}, dropped {stats.dropped}, pending {flushed.pending}"
    )
    print(f"wait=True confirmation: {confirmed.outcome}")
    by_action = collections.Counter(op.action for op in fake.operations)
    statuses = collections.Counter(r.status for r in fake.requests)
    print(f"fake server: {len(fake.requests)} requests, statuses {dict(statuses)}")
    print("operations applied by the fake server:")
    for action, count in sorted(by_action.items()):
        print(f"  {action:<22}{count:>6}")
    print(
        f"\nadmission (await cio.track() returning): p50={_pct(admission, 0.5):.3f} ms  "
        f"p99={_pct(admission, 0.99):.3f} ms"
    )
    print(
        f"end-to-end (admission -> delivered):      p50={_pct(end_to_end, 0.5):.1f} ms  "
        f"p99={_pct(end_to_end, 0.99):.1f} ms  (linger 50 ms)"
    )
    print(f"people known to the fake: {len(fake.people())}")
    ok = stats.delivered == stats.accepted and len(fake.operations) >= stats.accepted
    return 0 if ok else 1
