"""App API fixtures: a fake with the App routes and an open client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from customerio_async import APIClient
from customerio_async.testing import FakeCustomerIO

from ._support import APP_KEY, FAST_RETRY, NO_LIMITS


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeCustomerIO]:
    """A fake with the broadcast window disabled (tests that need it build their own)."""
    async with FakeCustomerIO(app_api_key=APP_KEY, broadcast_interval=0.0) as server:
        yield server


@pytest_asyncio.fixture
async def api(fake: FakeCustomerIO) -> AsyncIterator[APIClient]:
    """An open App client on ``fake``: no client-side limits, retries without waiting."""
    async with APIClient(
        APP_KEY, api_url=fake.url, rate_limits=NO_LIMITS, retry=FAST_RETRY
    ) as client:
        yield client
