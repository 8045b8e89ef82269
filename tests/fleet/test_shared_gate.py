"""The shared gate against a real Redis: one budget and one pause for every process.

Two :class:`RedisLimiter` instances on one server stand for two processes (each has its own
connections, counters and local pause); the multi-process proof is
``test_fleet_processes.py``. Waits are read from the limiters' statistics, which record the
turn Redis gave, so the assertions hold on a busy machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.crc import key_slot

from customerio_async import RateLimit
from customerio_async._exceptions import GiveUp
from customerio_async.fleet import RedisLimiter

from ._redis_server import RedisServer
from ._support import PATIENT, WORKSPACE, gate_of, request, wait_until

SLACK = 0.1  # scheduling noise allowed on a loaded 2-core box, seconds


@pytest_asyncio.fixture
async def other(redis_server: RedisServer) -> AsyncIterator[RedisLimiter]:
    """A second process's limiter on the same server."""
    config = dataclasses.replace(PATIENT, processes=4)
    async with RedisLimiter(redis_server.url, config=config) as shared:
        yield shared


@pytest_asyncio.fixture
async def inspect(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client to look at (and tamper with) the keys."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_two_processes_draw_on_one_budget(limiter: RedisLimiter, other: RedisLimiter) -> None:
    limit = RateLimit(requests_per_second=10, burst=4)
    mine, theirs = gate_of(limiter, limit), gate_of(other, limit)
    for _ in range(4):
        await mine.acquire(request())
    assert limiter.statistics().rate_waits == 0  # the burst
    started = time.monotonic()
    await theirs.acquire(request())  # the other process finds the burst spent
    waited = other.statistics().rate_wait_seconds
    assert 0.1 - SLACK < waited <= 0.1 + 0.01
    assert time.monotonic() - started >= waited - 0.01
    stats = other.statistics()
    assert (stats.acquires, stats.fallbacks, stats.redis_errors) == (1, 0, 0)


async def test_workspaces_apis_and_buckets_have_budgets_of_their_own(
    limiter: RedisLimiter, other: RedisLimiter
) -> None:
    limit = RateLimit(requests_per_second=1, burst=1)
    await gate_of(limiter, limit).acquire(request())
    for gate, bucket in [
        (gate_of(other, limit, workspace="another0workspace"), "default"),
        (gate_of(other, limit, api="app"), "default"),
        (gate_of(other, limit, bucket="broadcast"), "broadcast"),
    ]:
        await gate.acquire(request(bucket))
    assert other.statistics().rate_waits == 0


async def test_the_budget_holds_over_many_requests(
    limiter: RedisLimiter, other: RedisLimiter
) -> None:
    limit = RateLimit(requests_per_second=100, burst=5)
    gates = [gate_of(limiter, limit), gate_of(other, limit)]
    released: list[float] = []
    assert await limiter.ping()
    assert await other.ping()

    async def send(i: int) -> None:
        await gates[i % 2].acquire(request())
        released.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(send(i) for i in range(25)))
    # 5 at once, then one turn every 10 ms, whichever process asks: the k-th request
    # after the burst cannot go sooner than k turns after the start.
    released.sort()
    for k, at in enumerate(released[5:], start=1):
        assert at - started >= 0.01 * k - 0.005, k


async def test_a_pause_set_by_one_process_holds_the_others(
    limiter: RedisLimiter, other: RedisLimiter
) -> None:
    limit = RateLimit(requests_per_second=1000, burst=10)
    mine, theirs = gate_of(limiter, limit), gate_of(other, limit)
    await theirs.acquire(request())
    assert theirs.paused_reason() is None
    await mine.pause(0.3, "rate_limited")
    assert mine.paused_reason() == "rate_limited"
    started = time.monotonic()
    waiting = asyncio.create_task(theirs.acquire(request()))
    # The other process learns the pause (and its reason) from its next script call.
    await wait_until(lambda: theirs.paused_reason() is not None)
    assert theirs.paused_reason() == "rate_limited"
    await waiting
    assert time.monotonic() - started >= 0.3 - SLACK
    stats = other.statistics()
    assert stats.pause_waits == 1
    assert stats.pause_wait_seconds == pytest.approx(0.3, abs=SLACK)
    assert limiter.statistics().pauses_set == 1


async def test_a_pause_past_the_deadline_gives_up_at_once_with_its_reason(
    limiter: RedisLimiter, other: RedisLimiter
) -> None:
    limit = RateLimit(requests_per_second=1000, burst=10)
    await gate_of(limiter, limit).pause(30, "auth_failed")
    theirs = gate_of(other, limit)
    deadline = asyncio.get_running_loop().time() + 1.0
    started = time.monotonic()
    with pytest.raises(GiveUp) as caught:
        await theirs.acquire(request(deadline=deadline))
    assert (caught.value.reason, caught.value.cause) == ("auth_failed", "paused (auth_failed)")
    assert time.monotonic() - started < 0.5  # no waiting out a pause that cannot end in time
    assert theirs.paused_reason() == "auth_failed"


async def test_a_shorter_pause_never_shortens_a_longer_one(
    limiter: RedisLimiter, other: RedisLimiter, inspect: Redis
) -> None:
    await gate_of(limiter, None).pause(5, "auth_failed")
    theirs = gate_of(other, None)
    await theirs.pause(0.1, "rate_limited")
    # The answer tells the second process about the longer pause, and its reason.
    assert theirs.paused_reason() == "auth_failed"
    key = f"{{cio:track:{WORKSPACE}}}:pause"
    assert 4000 < await inspect.pttl(key) <= 5000
    value = await inspect.get(key)
    assert isinstance(value, bytes)
    assert value.endswith(b" auth_failed")
    # A longer pause does extend it, with its own reason.
    await theirs.pause(8, "rate_limited")
    assert 7000 < await inspect.pttl(key) <= 8000
    assert gate_of(limiter, None).paused_reason() is None  # a fresh gate has heard nothing


async def test_unlimited_buckets_only_read_the_pause(limiter: RedisLimiter, inspect: Redis) -> None:
    gate = gate_of(limiter, None)
    for _ in range(50):
        await gate.acquire(request())
    assert await inspect.keys("*") == []  # nothing booked, nothing written
    stats = limiter.statistics()
    assert (stats.rate_waits, stats.redis_calls) == (0, 50)
    await gate.pause(0.2, "rate_limited")
    started = time.monotonic()
    await gate.acquire(request())
    assert time.monotonic() - started >= 0.2 - SLACK


async def test_keys_share_one_hash_tag_and_expire_on_their_own(
    limiter: RedisLimiter, inspect: Redis
) -> None:
    gate = gate_of(limiter, RateLimit(requests_per_second=5, burst=1))
    await gate.acquire(request())
    await gate.pause(1, "rate_limited")
    tag = f"{{cio:track:{WORKSPACE}}}"
    keys = sorted(await inspect.keys("*"))
    assert keys == [f"{tag}:pause".encode(), f"{tag}:rate:default".encode()]
    # One Redis Cluster slot for both, so one script call may touch them.
    assert len({key_slot(k if isinstance(k, bytes) else k.encode()) for k in keys}) == 1
    # The bucket's key lives until the bucket is full again (one 200 ms turn), no longer.
    assert 0 < await inspect.pttl(f"{tag}:rate:default") <= 201


async def test_a_pause_that_begins_during_a_long_wait_voids_the_turn(
    limiter: RedisLimiter, other: RedisLimiter
) -> None:
    limit = RateLimit(requests_per_second=2, burst=1)
    mine, theirs = gate_of(limiter, limit), gate_of(other, limit)
    await mine.acquire(request())
    started = time.monotonic()
    booked = asyncio.create_task(mine.acquire(request()))  # its turn is 0.5 s away
    await wait_until(lambda: limiter.statistics().rate_waits == 1)
    await theirs.pause(0.8, "rate_limited")
    await booked
    # It re-read the pause before its turn, waited the pause out and took a fresh turn
    # (the one after the void turn: 1.0 s after the first).
    assert time.monotonic() - started >= 0.8 - SLACK
    stats = limiter.statistics()
    assert stats.pause_waits == 1
    assert stats.rate_waits == 2
