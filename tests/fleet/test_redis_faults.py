"""Redis faults never fail a send: down at start, killed, restarted, slow, scripts flushed.

Every fault makes the gate fall open to this process's share of the budget (``budget ÷
processes``) after at most ``timeout``; one WARNING per ``warn_interval`` says so (without
credentials or workspace ids); Redis is tried again every ``retry_interval`` and, once it
answers, the shared budget is back (the script reloaded if the server lost it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from customerio_async import RateLimit
from customerio_async._common.logs import LOGGER_NAME
from customerio_async._exceptions import GiveUp
from customerio_async.fleet import RedisLimiter, RedisLimiterConfig

from ._redis_server import RedisServer, free_port
from ._support import PATIENT, WORKSPACE, gate_of, request

SLACK = 0.1
# A share of 10/s (40 ÷ 4 processes), burst 1: turns 0.1 s apart.
LIMIT = RateLimit(requests_per_second=40, burst=4)


@pytest_asyncio.fixture
async def inspect(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client to tamper with the server."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def _warm_up(limiter: RedisLimiter) -> None:
    """Connect and load the script (a first call may take longer than a short timeout)."""
    while not await limiter.ping():  # noqa: ASYNC110 - a probe to repeat, not an event
        await asyncio.sleep(limiter.config.retry_interval)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER_NAME and r.levelno == logging.WARNING
    ]


async def test_redis_down_at_start_paces_each_process_at_its_share(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER_NAME)
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    config = RedisLimiterConfig(processes=4, retry_interval=60)
    async with RedisLimiter(url, config=config) as limiter:
        gate = gate_of(limiter, LIMIT)
        started = time.monotonic()
        await gate.acquire(request())
        assert time.monotonic() - started < config.timeout + SLACK  # never stuck on Redis
        for _ in range(2):
            await gate.acquire(request())
        stats = limiter.statistics()
    # Turns of the share, one after the other: at once, then 0.1 s apart.
    assert stats.rate_wait_seconds == pytest.approx(0.1 + 0.1, abs=0.02)
    assert time.monotonic() - started >= 0.2 - 0.01
    assert (stats.fallbacks, stats.degraded, stats.redis_calls) == (3, True, 1)
    assert stats.redis_errors_by_kind == {"connection": 1}
    (warning,) = _warnings(caplog)  # once, however many requests fell back
    assert "1/4 of the budget" in warning
    for secret in ("hunter2", WORKSPACE, "127.0.0.1", "redis://"):
        assert secret not in caplog.text


async def test_warnings_come_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOGGER_NAME)
    config = RedisLimiterConfig(retry_interval=0, warn_interval=3600)
    async with RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", config=config) as limiter:
        gate = gate_of(limiter, None)
        for _ in range(20):  # every one of them tries Redis (retry_interval=0) and fails
            await gate.acquire(request())
        assert limiter.statistics().redis_errors == 20
    assert len(_warnings(caplog)) == 1


async def test_killed_then_restarted_redis_is_used_again_and_the_script_reloaded(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER_NAME)
    config = dataclasses.replace(PATIENT, processes=4)
    async with RedisLimiter(redis_server.url, config=config) as limiter:
        gate = gate_of(limiter, RateLimit(requests_per_second=1000, burst=100))
        await gate.acquire(request())
        assert limiter.statistics().script_loads == 1  # first use: NOSCRIPT, then EVAL
        await asyncio.to_thread(redis_server.kill)
        await gate.acquire(request())
        assert limiter.statistics().degraded
        await asyncio.to_thread(redis_server.start)  # same port, empty: no script, no keys
        while limiter.statistics().degraded:
            await gate.acquire(request())
        stats = limiter.statistics()
    assert stats.script_loads == 2  # NOSCRIPT on the restarted server, reloaded
    assert stats.redis_errors_by_kind.keys() == {"connection"}
    assert stats.fallbacks >= 1
    assert "Redis is back" in caplog.text


async def test_a_slow_redis_costs_a_request_at_most_the_timeout(
    redis_server: RedisServer,
) -> None:
    config = RedisLimiterConfig(timeout=0.05, retry_interval=0.05)
    async with RedisLimiter(redis_server.url, config=config) as limiter:
        gate = gate_of(limiter, LIMIT)
        await _warm_up(limiter)
        await asyncio.to_thread(redis_server.freeze)  # connections hang: nothing answers
        try:
            started = time.monotonic()
            await gate.acquire(request())
            took = time.monotonic() - started
        finally:
            await asyncio.to_thread(redis_server.thaw)
        assert took < 0.05 + SLACK
        assert limiter.statistics().redis_errors == 1
        while limiter.statistics().degraded:
            await gate.acquire(request())
        assert limiter.statistics().fallbacks >= 1


async def test_an_answer_that_came_during_a_stall_of_this_process_still_counts(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalls = [0.15]  # one stall, three times the timeout
    read = Connection.read_response

    async def stall_then_read(self: Connection, *args: Any, **kwargs: Any) -> Any:
        if stalls:
            # The whole process stops once the call is out, as in a long GC pause: when
            # it resumes, the answer and the deadline are both due.
            time.sleep(stalls.pop())  # noqa: ASYNC251 - the stall is the point
        return await read(self, *args, **kwargs)

    config = RedisLimiterConfig(timeout=0.05)
    async with RedisLimiter(redis_server.url, config=config) as limiter:
        gate = gate_of(limiter, None)
        await _warm_up(limiter)
        before = limiter.statistics()
        monkeypatch.setattr(Connection, "read_response", stall_then_read)
        await gate.acquire(request())
        stats = limiter.statistics()
    assert not stalls
    assert stats.redis_errors == before.redis_errors
    assert (stats.fallbacks, stats.redis_calls - before.redis_calls) == (0, 1)


async def test_flushed_scripts_are_reloaded_without_a_fault(
    limiter: RedisLimiter, inspect: Redis
) -> None:
    gate = gate_of(limiter, None)
    await gate.acquire(request())
    await inspect.script_flush()
    await gate.acquire(request())
    stats = limiter.statistics()
    assert (stats.script_loads, stats.redis_errors, stats.fallbacks) == (2, 0, 0)


async def test_a_script_error_is_a_fault_not_a_failed_send(
    limiter: RedisLimiter, inspect: Redis
) -> None:
    await inspect.lpush(f"{{cio:track:{WORKSPACE}}}:rate:default", "not a number")
    await gate_of(limiter, LIMIT).acquire(request())  # WRONGTYPE inside the script
    stats = limiter.statistics()
    assert (stats.fallbacks, stats.redis_errors_by_kind) == (1, {"response": 1})


class _Failing:
    """A client (with no connection pool, like ``RedisCluster``) whose calls all fail."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def evalsha(self, *args: Any) -> Any:
        self.calls += 1
        raise self.error


async def test_any_other_failure_falls_back_too() -> None:
    limiter = RedisLimiter(client=cast(Any, _Failing(RuntimeError("unexpected"))))
    await gate_of(limiter, LIMIT).acquire(request())
    assert limiter.statistics().redis_errors_by_kind == {"other": 1}
    await limiter.aclose()  # not ours to close: nothing happens


async def test_a_lost_connection_is_tried_once_more_at_once() -> None:
    client = _Failing(RedisConnectionError("reset"))
    limiter = RedisLimiter(client=cast(Any, client))
    await gate_of(limiter, LIMIT).acquire(request())
    assert client.calls == 2  # the pooled connection may have died alone: one more try
    assert limiter.statistics().redis_errors_by_kind == {"connection": 1}


async def test_only_one_request_at_a_time_probes_a_failing_redis(
    redis_server: RedisServer,
) -> None:
    config = RedisLimiterConfig(timeout=0.5, retry_interval=0)
    async with RedisLimiter(redis_server.url, config=config) as limiter:
        gate = gate_of(limiter, None)
        await _warm_up(limiter)
        await asyncio.to_thread(redis_server.freeze)
        try:
            await gate.acquire(request())  # times out: degraded
            calls = limiter.statistics().redis_calls
            # Ten at once: one probes (and waits out the timeout), nine go at once.
            await asyncio.gather(*(gate.acquire(request()) for _ in range(10)))
        finally:
            await asyncio.to_thread(redis_server.thaw)
        stats = limiter.statistics()
    assert stats.redis_calls == calls + 1
    assert stats.fallbacks == 11


async def test_a_pause_while_redis_is_down_holds_this_process() -> None:
    config = RedisLimiterConfig(retry_interval=60)
    async with RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", config=config) as limiter:
        gate = gate_of(limiter, LIMIT)
        await gate.pause(0.3, "auth_failed")  # Redis is down: kept here only
        assert gate.paused_reason() == "auth_failed"
        deadline = asyncio.get_running_loop().time() + 0.1
        with pytest.raises(GiveUp) as caught:
            await gate.acquire(request(deadline=deadline))
        assert caught.value.reason == "auth_failed"
        started = time.monotonic()
        await gate.acquire(request())
        assert time.monotonic() - started >= 0.3 - SLACK
        await gate.acquire(request())  # the share's next turn, after the pause: 0.1 s
        stats = limiter.statistics()
    assert stats.pause_waits == 1
    assert stats.fallbacks == 2


async def test_after_recovery_a_process_keeps_to_its_share_for_a_while() -> None:
    # Processes that have not noticed Redis is back pace themselves at their share, which
    # Redis cannot see; until they have (one retry_interval), this one keeps to it too.
    port = free_port()
    config = dataclasses.replace(PATIENT, processes=4, retry_interval=0.5)
    with RedisServer(port=port) as server:
        await asyncio.to_thread(server.kill)
        async with RedisLimiter(server.url, config=config) as limiter:
            gate = gate_of(limiter, LIMIT)
            await gate.acquire(request())  # Redis down: the share
            await asyncio.to_thread(server.start)
            while not await limiter.ping():  # noqa: ASYNC110 - a probe to repeat
                await asyncio.sleep(0.05)
            before = limiter.statistics().rate_wait_seconds
            started = time.monotonic()
            for _ in range(3):
                await gate.acquire(request())
            took = time.monotonic() - started
            stats = limiter.statistics()
    # Redis alone would let the three go at once (burst 4); the share spaces them 0.1 s.
    assert took >= 0.2 - 0.01
    assert stats.rate_wait_seconds - before >= 0.15  # Redis alone: no wait at all
    assert not stats.degraded
