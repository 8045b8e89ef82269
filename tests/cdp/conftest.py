"""A Pipelines client on the shared fake, with fast batching and retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from customerio_async import BatchConfig, PipelinesClient, RetryPolicy
from customerio_async.testing import FakeCustomerIO

FAST_BATCH = BatchConfig(linger=0.005, drain_timeout=5.0, flush_timeout=5.0)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_cap=0.05, auth_pause=0.05)


def fast(**options: Any) -> dict[str, Any]:
    """Client options: fast linger and retries, no rate limit; ``options`` win."""
    return {"batch": FAST_BATCH, "retry": FAST_RETRY, "rate_limit": None, **options}


@pytest_asyncio.fixture
async def pipelines(fake: FakeCustomerIO) -> AsyncIterator[PipelinesClient]:
    """An open Pipelines client pointed at ``fake`` (gzip as by default)."""
    async with PipelinesClient(fake.pipelines_write_key, fake.url, **fast()) as client:
        yield client
