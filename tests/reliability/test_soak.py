"""Scenario 10: soak — steady load with 1 % of requests faulted, bounded in time.

The client runs in a child process (``_driver.py``: 500 operations/s of events, identifies
and anonymous events) against the fake through the fault proxy, which faults 1 % of requests
at random (seeded): a reset mid-request, the answer lost after the server applied it, a
response cut mid-way, a withheld answer (client timeout), garbage instead of HTTP, 503, 500
and 429. Every second the child reports RSS, open file descriptors, live tasks and the
pipeline's counters. Claims proven:

* the accounting invariant holds at every sample;
* RSS, task count and file descriptors stay flat (no leak);
* at the end nothing is pending or lost: every operation was delivered, and the server holds
  exactly the delivered events (re-sends after a lost answer were recognised as duplicates).

The CI version runs ``CI_SECONDS``; ``nox -s soak`` runs the ``slow`` one for
``$CIO_SOAK_SECONDS`` (300 by default there), which is skipped unless that is set.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from typing import Any

import pytest

from customerio_async.testing import FakeCustomerIO

from ._harness import API_KEY, SITE_ID, record_figures, run_driver
from ._proxy import FaultProxy, ProxyFault

CI_SECONDS = 20.0
SOAK_SECONDS = float(os.environ.get("CIO_SOAK_SECONDS") or 0)
RATE = 500  # operations/s
FAULT_RATE = 0.01
CHAOS = (
    ProxyFault("reset_request", reset_after=300),
    ProxyFault("close_after_response"),
    ProxyFault("cut_response", cut_after=20),
    ProxyFault("stall_response"),
    ProxyFault("garbage", body=b"HTTP/9 what\r\n\r\n"),
    ProxyFault("respond", status=503),
    ProxyFault("respond", status=500),
    ProxyFault("respond", status=429, headers={"Retry-After": "0"}),
)


class Harvest:
    """Moves what the fake recorded into compact totals and clears it, so the parent's
    memory stays bounded however long the soak runs. Exact: it only clears when every
    request that has arrived is finished (so no handler is half-way through applying)."""

    def __init__(self) -> None:
        self.event_ids: set[str] = set()
        self.duplicates = 0  # re-sends the server recognised (or that straddled a clear)
        self.operations = 0
        self.requests = 0

    async def collect(self, fake: FakeCustomerIO) -> bool:
        n = len(fake.requests)
        await fake.wait_for_requests(n, timeout=30)
        if len(fake.requests) != n:
            return False  # a request arrived meanwhile: try again later
        for event_id in fake.event_ids():
            if event_id in self.event_ids:
                self.duplicates += 1
            else:
                self.event_ids.add(event_id)
        self.duplicates += len(fake.duplicate_event_ids)
        self.operations += len(fake.operations)
        self.requests += n
        fake.clear()
        return True


async def soak(duration: float) -> None:
    samples: list[dict[str, Any]] = []
    delivered: list[str] = []  # event ids the client reports delivered, streamed per sample

    def on_sample(sample: dict[str, Any]) -> None:
        delivered.extend(sample.pop("delivered_ids"))
        samples.append(sample)

    harvest = Harvest()
    async with FakeCustomerIO() as fake, FaultProxy(fake.port, seed=20240501) as proxy:
        proxy.chaos = FAULT_RATE
        proxy.chaos_faults = CHAOS
        done = asyncio.Event()

        async def harvester() -> None:
            while not done.is_set():
                await harvest.collect(fake)
                with_timeout = asyncio.ensure_future(asyncio.wait_for(done.wait(), 2.0))
                await asyncio.gather(with_timeout, return_exceptions=True)

        harvesting = asyncio.create_task(harvester())
        result = await run_driver(
            {
                "mode": "soak",
                "url": proxy.url,
                "site_id": SITE_ID,
                "api_key": API_KEY,
                "duration": duration,
                "rate": RATE,
                "lanes": 4,
                "linger": 0.05,
                "sample_every": 1.0,
                "sock_read": 1.0,
            },
            timeout=duration + 180,
            on_sample=on_sample,
        )
        done.set()
        await harvesting
        while not await harvest.collect(fake):
            pass
        faults = sum(proxy.stats.faults.values())
        proxy_requests = proxy.stats.requests

    books = result["books"]
    # The books balanced at every sample (the child asserts it too) and at the end.
    assert len(samples) >= duration - 2
    for s in samples:
        assert s["accepted"] == s["delivered"] + s["rejected"] + s["dropped"] + s["pending"]
    assert result["flush_pending"] == 0
    assert books["pending"] == 0
    assert books["accepted"] == result["operations"]
    assert books["delivered"] == books["accepted"], (result["dropped_by_reason"], books)
    # The faults really happened, at about the intended rate, and were absorbed.
    assert faults >= 0.4 * FAULT_RATE * proxy_requests
    assert sum(result["retries_by_cause"].values()) >= faults
    # Nothing lost, nothing invented: the server holds exactly the delivered events.
    delivered += result["delivered_ids"]
    delivered_ids = set(delivered)
    assert len(delivered_ids) == len(delivered)
    assert harvest.event_ids == delivered_ids
    # Flat resources once warm (the first quarter is warm-up: pools, caches, allocator).
    steady = samples[len(samples) // 4 :]
    half = len(steady) // 2
    rss_early = statistics.median(s["rss"] for s in steady[:half])
    rss_late = statistics.median(s["rss"] for s in steady[half:])
    rss_growth = rss_late - rss_early
    assert rss_growth < 8 * 2**20, f"RSS grew {rss_growth / 2**20:.1f} MiB while steady"
    tasks = [s["tasks"] for s in steady]
    assert max(tasks) - min(tasks) <= 4, tasks  # transient aiohttp tasks come and go
    fds = [s["fds"] for s in samples]
    assert max(fds) - min(fds) <= 8, fds  # a few pooled connections come and go with faults
    assert result["fds_after_close"] <= min(fds)
    assert result["tasks_after_close"] == 1  # only the driver's main task
    record_figures(
        f"soak[{duration:g}s]",
        operations=result["operations"],
        requests=proxy_requests,
        faults_injected=faults,
        retries=sum(result["retries_by_cause"].values()),
        delivered=books["delivered"],
        rejected=books["rejected"],
        dropped=books["dropped"],
        server_events=len(harvest.event_ids),
        server_duplicates_recognised=harvest.duplicates,
        rss_start_mib=round(samples[0]["rss"] / 2**20, 1),
        rss_steady_growth_mib=round(rss_growth / 2**20, 2),
        rss_by_fifth_mib=[
            round(samples[min(len(samples) - 1, i * len(samples) // 5)]["rss"] / 2**20, 1)
            for i in range(1, 6)
        ],
        max_rss_mib=round(result["max_rss"] / 2**20, 1),
        tasks=f"{min(tasks)}..{max(tasks)}",
        fds=f"{min(fds)}..{max(fds)}",
        lag_p99_ms=round(1000 * result["lag_p99"], 2),
        lag_max_ms=round(1000 * result["lag_max"], 2),
    )


@pytest.mark.timeout(CI_SECONDS + 120)
@pytest.mark.usefixtures("needs_proc")
async def test_soak_ci() -> None:
    await soak(CI_SECONDS)


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 300)
@pytest.mark.usefixtures("needs_proc")
@pytest.mark.skipif(not SOAK_SECONDS, reason="set CIO_SOAK_SECONDS (nox -s soak) to run")
async def test_soak_long() -> None:
    await soak(SOAK_SECONDS)
