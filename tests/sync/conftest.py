"""Fixtures of the sync facade's tests: the real FakeCustomerIO served from its own thread
and event loop, so that the tests themselves are plain synchronous code, like a Django view
or a Celery task."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from customerio_async.testing import AppliedOperation, FakeCustomerIO, Fault

T = TypeVar("T")
SITE_ID = "fake-site"
API_KEY = "fake-key"


class ThreadedFake:
    """A :class:`FakeCustomerIO` running in a daemon thread; every access to it goes
    through its loop (the fake is not thread-safe, and need not be)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.fake = self.run(self._make())
        self.url = self.fake.url
        self.site_id, self.api_key = SITE_ID, API_KEY

    async def _make(self) -> FakeCustomerIO:
        fake = FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY)
        await fake.start()
        return fake

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` in the fake's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def operations(self) -> list[AppliedOperation]:
        """What the fake applied so far, in order."""

        async def read() -> list[AppliedOperation]:
            return list(self.fake.operations)

        return self.run(read())

    def wait_for_operations(self, n: int, timeout: float = 20.0) -> list[AppliedOperation]:
        """Wait until the fake applied ``n`` operations; return them."""
        self.run(self.fake.wait_for_operations(n, timeout), timeout + 5)
        return self.operations()

    def add_fault(self, fault: Fault) -> None:
        """Script a fault (in the fake's loop)."""

        async def add() -> None:
            self.fake.add_fault(fault)

        self.run(add())

    def close(self) -> None:
        """Stop the server and its thread."""
        self.run(self.fake.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def server() -> Iterator[ThreadedFake]:
    """A fake Customer.io on 127.0.0.1, served from its own thread."""
    fake = ThreadedFake()
    try:
        yield fake
    finally:
        fake.close()
