"""Fixtures of the fleet tests: a real Redis server per test (see ``_redis_server.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from customerio_async.fleet import RedisLimiter

from ._redis_server import RedisServer
from ._support import PATIENT


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A started redis-server on a free loopback port, killed after the test."""
    with RedisServer() as server:
        yield server


@pytest_asyncio.fixture
async def limiter(redis_server: RedisServer) -> AsyncIterator[RedisLimiter]:
    """A limiter on ``redis_server`` (patient: see ``_support.PATIENT``)."""
    config = dataclasses.replace(PATIENT, processes=4)
    async with RedisLimiter(redis_server.url, config=config) as shared:
        yield shared
