"""Shared fixtures: a real FakeCustomerIO on loopback and a client pointed at it; and the
skip-or-fail rule for tests that validate against a vendor OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from _openapi import VENDOR_DOCUMENT_MARKER, require_document

from customerio_async import CustomerIO, RetryPolicy
from customerio_async.testing import FakeCustomerIO

SITE_ID = "fake-site"
API_KEY = "fake-key"
NO_RETRY = RetryPolicy(direct_attempts=1, max_attempts=1)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``vendor_document`` marker (``--strict-markers`` is on)."""
    config.addinivalue_line(
        "markers",
        f"{VENDOR_DOCUMENT_MARKER}(path): validates against the vendor OpenAPI document at "
        "path; skipped when it is absent, failed instead when CI=true (see tests/_openapi.py)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture of a marked test runs (some load the document), require it."""
    for marker in item.iter_markers(VENDOR_DOCUMENT_MARKER):
        require_document(marker.args[0])


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeCustomerIO]:
    """A started fake Customer.io server on 127.0.0.1 (random port)."""
    async with FakeCustomerIO(site_id=SITE_ID, api_key=API_KEY) as server:
        yield server


@pytest_asyncio.fixture
async def cio(fake: FakeCustomerIO) -> AsyncIterator[CustomerIO]:
    """An open direct-mode client talking to ``fake``: one request per call, no retries, so
    every scripted fault surfaces as the exception it maps to."""
    async with CustomerIO(
        SITE_ID, API_KEY, track_url=fake.url, batching=False, retry=NO_RETRY
    ) as client:
        yield client
