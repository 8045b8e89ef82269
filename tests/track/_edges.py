"""Shared helpers of the ``test_edges_*`` regression tests (issue: correctness at the edges)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from customerio_async import BatchConfig, CustomerIO, RetryPolicy
from customerio_async.testing import FakeCustomerIO

SITE_ID = "fake-site"
API_KEY = "fake-key"
FAST_BATCH = BatchConfig(linger=0.005, drain_timeout=5.0, flush_timeout=5.0)
FAST_RETRY = RetryPolicy(backoff_base=0.01, backoff_cap=0.05)


@asynccontextmanager
async def batched(
    fake: FakeCustomerIO, api_key: str = API_KEY, **options: Any
) -> AsyncIterator[CustomerIO]:
    """An open batched client on ``fake`` with test-speed batching and retries."""
    options.setdefault("batch", FAST_BATCH)
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("rate_limit", None)
    async with CustomerIO(SITE_ID, api_key, track_url=fake.url, **options) as client:
        yield client


@asynccontextmanager
async def direct(fake: FakeCustomerIO, **options: Any) -> AsyncIterator[CustomerIO]:
    """An open direct-mode client on ``fake`` (one attempt per call unless overridden)."""
    options.setdefault("retry", RetryPolicy(direct_attempts=1, max_attempts=1))
    async with CustomerIO(
        SITE_ID, API_KEY, track_url=fake.url, batching=False, **options
    ) as client:
        yield client
