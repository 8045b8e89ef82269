"""Fixtures of the fake-server tests: a started fake and a raw client bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from customerio_async.testing import FakeCustomerIO

from ._client import Raw


@pytest_asyncio.fixture
async def raw(fake: FakeCustomerIO) -> AsyncIterator[Raw]:
    """A plain aiohttp session bound to the default ``fake`` (no default headers)."""
    async with aiohttp.ClientSession() as session:
        yield Raw(fake, session)
