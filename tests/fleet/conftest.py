"""Fixtures of the fleet tests: a real Redis server per test (see ``_redis_server.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from customerio_async.fleet import RedisLimiter, RedisLimiterConfig

from ._redis_server import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A started redis-server on a free loopback port, killed after the test."""
    with RedisServer() as server:
        yield server


@pytest_asyncio.fixture
async def limiter(redis_server: RedisServer) -> AsyncIterator[RedisLimiter]:
    """A limiter on ``redis_server`` that retries a failed Redis quickly (tests are short)."""
    config = RedisLimiterConfig(processes=4, retry_interval=0.05)
    async with RedisLimiter(redis_server.url, config=config) as shared:
        yield shared
