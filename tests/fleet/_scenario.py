"""The fleet scenario: several OS processes, one shared budget, one fake Customer.io.

Used by ``test_fleet_processes.py`` (the proof) and ``benchmarks/bench_fleet.py`` (the
figures). Each worker (``_worker.py``) is its own ``CustomerIO`` client in direct mode with
a few concurrent loops, so on its own it would send far more than its share; all of them
share one :class:`~customerio_async.fleet.RedisLimiter` budget. While they run, the driver
can answer one request with a 429 (``Retry-After``) and kill and restart the Redis server.

Example::

    with RedisServer() as server:
        run = await run_fleet(server, Plan(duration=10, pause_at=3, kill_at=6, restart_at=7))
        assert max(fixed_windows(run.arrivals)[1:]) <= 210
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customerio_async.testing import FakeCustomerIO, Fault

from ._redis_server import RedisServer

__all__ = ["FleetRun", "Plan", "fixed_windows", "run_fleet", "silence", "sliding_max"]

WORKER = Path(__file__).with_name("_worker.py")
_START_TIMEOUT = 40.0  # four interpreters importing aiohttp and redis on two busy cores


@dataclass(frozen=True)
class Plan:
    """What the fleet does, and when (seconds after the go signal; ``None``: never)."""

    workers: int = 4
    rate: float = 200.0
    burst: int = 1
    duration: float = 10.0
    concurrency: int = 2
    retry_interval: float = 0.25
    pause_at: float | None = 3.0
    retry_after: float = 2.0
    kill_at: float | None = 6.0
    restart_at: float | None = 7.0


@dataclass
class FleetRun:
    """What happened: the fake's arrivals, the 429, and each worker's report."""

    plan: Plan
    go: float
    arrivals: list[float]
    throttled_at: float | None
    reports: list[dict[str, Any]]
    applied_event_ids: list[str]
    redis_killed_at: float | None = None
    redis_back_at: float | None = None
    stderr: list[str] = field(default_factory=list)

    @property
    def delivered_ids(self) -> list[str]:
        """Event ids the workers saw delivered."""
        return [i for r in self.reports for i in r["delivered"]]

    @property
    def errors(self) -> list[str]:
        """Exceptions the workers' calls raised (type names)."""
        return [e for r in self.reports for e in r["errors"]]

    def total(self, key: str) -> int:
        """A limiter statistic summed over the workers."""
        return sum(int(r["stats"][key]) for r in self.reports)


def fixed_windows(arrivals: Sequence[float], width: float = 1.0) -> list[int]:
    """Arrivals per consecutive ``width`` window, from the first arrival."""
    if not arrivals:
        return []
    start = arrivals[0]
    counts = [0] * (int((arrivals[-1] - start) // width) + 1)
    for t in arrivals:
        counts[int((t - start) // width)] += 1
    return counts


def sliding_max(arrivals: Sequence[float], width: float = 1.0, skip: float = 1.0) -> int:
    """The most arrivals in any ``width`` window starting ``skip`` s after the first."""
    if not arrivals:
        return 0
    best = 0
    first = bisect.bisect_left(arrivals, arrivals[0] + skip)
    for i in range(first, len(arrivals)):
        best = max(best, bisect.bisect_left(arrivals, arrivals[i] + width) - i)
    return best


def silence(arrivals: Sequence[float], after: float) -> tuple[int, float]:
    """Around the 429 at ``after``: (requests that arrived within the first 0.25 s, the time
    from ``after`` to the first arrival after that)."""
    grace = after + 0.25
    i = bisect.bisect_right(arrivals, after)
    j = bisect.bisect_right(arrivals, grace)
    return j - i, (arrivals[j] - after if j < len(arrivals) else float("inf"))


async def _start_worker(index: int, settings: dict[str, Any]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        json.dumps({**settings, "index": index}),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


async def _drive(plan: Plan, fake: FakeCustomerIO, server: RedisServer, go: float) -> FleetRun:
    """Act out the plan's events on time while the workers run."""
    run = FleetRun(plan, go, [], None, [], [])

    async def at(offset: float | None) -> bool:
        if offset is None:
            return False
        await asyncio.sleep(max(0.0, go + offset - time.monotonic()))
        return True

    events = sorted(
        (t, name)
        for t, name in ((plan.pause_at, "pause"), (plan.kill_at, "kill"), (plan.restart_at, "up"))
        if t is not None
    )
    for offset, name in events:
        await at(offset)
        if name == "pause":
            fake.add_fault(
                Fault(status=429, headers={"Retry-After": f"{plan.retry_after:g}"}, match="/w1-")
            )
        elif name == "kill":
            await asyncio.to_thread(server.kill)  # blocking: keep the fake's loop serving
            run.redis_killed_at = time.monotonic()
        else:
            await asyncio.to_thread(server.start)
            run.redis_back_at = time.monotonic()
    return run


async def run_fleet(server: RedisServer, plan: Plan = Plan()) -> FleetRun:
    """Run ``plan`` against a fresh fake and ``server``; return what happened."""
    # The fake timestamps arrivals in this process, a big one under pytest, whose full
    # garbage collections pause it for ~100 ms: requests arriving meanwhile would be stamped
    # together afterwards, a bunch the workers never sent. No collection during the run.
    gc.collect()
    gc.disable()
    try:
        return await _run(server, plan)
    finally:
        gc.enable()


async def _run(server: RedisServer, plan: Plan) -> FleetRun:
    async with FakeCustomerIO() as fake:
        settings = {
            "fake_url": fake.url,
            "site_id": fake.site_id,
            "api_key": fake.api_key,
            "redis_url": server.url,
            "processes": plan.workers,
            "rate": plan.rate,
            "burst": plan.burst,
            "duration": plan.duration,
            "concurrency": plan.concurrency,
            "retry_interval": plan.retry_interval,
        }
        procs = [await _start_worker(i, settings) for i in range(plan.workers)]
        try:
            for proc in procs:
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), _START_TIMEOUT)
                assert line.strip() == b"ready", line
            go = time.monotonic()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            run = await _drive(plan, fake, server, go)
            outputs = await asyncio.wait_for(
                asyncio.gather(*(p.communicate() for p in procs)), plan.duration + 30
            )
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        for stdout, stderr in outputs:
            run.reports.append(json.loads(stdout.decode().strip().splitlines()[-1]))
            run.stderr.append(stderr.decode())
        records = [r for r in fake.requests if r.received_at >= go]
        run.arrivals = sorted(r.received_at for r in records)
        throttled = [r.received_at for r in records if r.status == 429]
        run.throttled_at = throttled[0] if throttled else None
        run.applied_event_ids = fake.event_ids()
        return run
