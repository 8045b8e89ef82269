"""pytest plugin: test your own Customer.io integration against a real fake server, no mocks.

Registered as a pytest plugin (entry point ``pytest11``), so the fixtures are available in
every test session once ``customerio-async`` is installed; ``-p no:customerio_async`` turns
the plugin off. The fixtures are async: they need `pytest-asyncio
<https://pytest-asyncio.readthedocs.io>`_ (strict or auto mode)::

    async def test_signup_is_tracked(customerio_fake):
        await signup(customerio_fake.client, user_id="42")         # your code under test
        ops = await customerio_fake.delivered()                    # flush, then read the fake
        assert [op.action for op in ops] == ["identify", "event"]
        assert customerio_fake.server.people()["id:42"]["plan"] == "free"

``customerio_fake`` yields a :class:`CustomerIOFake`: ``.server`` is a started
:class:`~customerio_async.testing.FakeCustomerIO` on 127.0.0.1 and ``.client`` an open
:class:`~customerio_async.CustomerIO` pointed at it, in the default batched mode with a 5 ms
linger, fast retries and no client-side rate limit, so tests stay fast.

To change how the client is built (direct mode, your middleware, other limits), override the
``customerio_fake_options`` fixture in your ``conftest.py``; it returns keyword arguments for
``CustomerIO``::

    @pytest.fixture
    def customerio_fake_options():
        return {"batching": False}          # direct mode: calls raise on API errors

or open another client on the same server with ``customerio_fake.new_client(...)``.

The same server speaks the Data Pipelines API: ``customerio_fake.pipelines`` is an open
:class:`~customerio_async.PipelinesClient` pointed at it (same fast defaults; override
``customerio_pipelines_options`` to change them), and ``customerio_pipelines`` is that client
as a fixture of its own::

    async def test_order_is_tracked(customerio_fake, customerio_pipelines):
        await customerio_pipelines.track("42", "Order Completed", {"total": 42.5})
        messages = await customerio_fake.pipelines_delivered()
        assert [m.event for m in messages] == ["Order Completed"]
        assert customerio_fake.server.pipelines_drops == []   # nothing silently dropped

The fixtures import the fake server (and aiohttp's server side) only when first used.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from ._cdp.client import PipelinesClient
    from ._pipeline.receipt import FlushResult
    from ._track.client import CustomerIO
    from .testing import AppliedOperation, FakeCustomerIO, PipelinesMessage

__all__ = [
    "CustomerIOFake",
    "customerio_fake",
    "customerio_fake_options",
    "customerio_pipelines",
    "customerio_pipelines_options",
]

_F = TypeVar("_F", bound=Callable[..., Any])

# pytest-asyncio's decorator works in its strict and auto modes alike; without it, a plain
# pytest fixture (anyio's plugin runs those).
_fixture: Any
try:
    import pytest_asyncio

    _fixture = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - the test extra installs pytest-asyncio
    _fixture = pytest.fixture


def _async_fixture(fn: _F) -> _F:
    return cast("_F", _fixture(fn))


def _fast_defaults() -> dict[str, Any]:
    from ._config import BatchConfig, RetryPolicy

    return {
        "batch": BatchConfig(linger=0.005, drain_timeout=5.0, flush_timeout=5.0),
        "retry": RetryPolicy(backoff_base=0.01, backoff_cap=0.1, auth_pause=0.1),
        "rate_limit": None,
    }


class CustomerIOFake:
    """What the ``customerio_fake`` fixture yields: a fake server and clients for it.

    Example::

        async def test_signup(customerio_fake: CustomerIOFake) -> None:
            await signup(customerio_fake.client, user_id="42")
            assert customerio_fake.server.people()["id:42"]["plan"] == "free"

    Attributes:
        server: The started :class:`~customerio_async.testing.FakeCustomerIO`
            (``operations``, ``requests``, ``people()``, ``pipelines_messages``,
            ``add_fault()``…).
        client: An open :class:`~customerio_async.CustomerIO` pointed at ``server``.
        pipelines: An open :class:`~customerio_async.PipelinesClient` pointed at ``server``.
    """

    def __init__(
        self, server: FakeCustomerIO, client: CustomerIO, pipelines: PipelinesClient
    ) -> None:
        self.server: FakeCustomerIO = server
        self.client: CustomerIO = client
        self.pipelines: PipelinesClient = pipelines

    def __repr__(self) -> str:
        return f"<CustomerIOFake url={self.server.url!r} client={self.client!r}>"

    @property
    def url(self) -> str:
        """The fake's base URL (pass it as ``track_url`` to clients of your own).

        Example::

            CustomerIO("fake-site", "fake-key", track_url=customerio_fake.url)
        """
        return self.server.url

    async def flush(self, timeout: float | None = None) -> FlushResult:
        """Flush the client: everything sent so far has reached its outcome afterwards.

        Example::

            await customerio_fake.client.track("42", "opened")
            result = await customerio_fake.flush()
            assert result.delivered == 1
        """
        return await self.client.flush(timeout)

    async def delivered(self) -> list[AppliedOperation]:
        """Flush the client and return every operation the fake applied, in order.

        Example::

            ops = await customerio_fake.delivered()
            assert [op.action for op in ops] == ["identify", "event"]
        """
        await self.client.flush()
        return list(self.server.operations)

    async def pipelines_delivered(self) -> list[PipelinesMessage]:
        """Flush the Pipelines client and return every message the fake accepted, in order.

        Example::

            await customerio_fake.pipelines.identify("42", {"plan": "pro"})
            [message] = await customerio_fake.pipelines_delivered()
        """
        await self.pipelines.flush()
        return list(self.server.pipelines_messages)

    @contextlib.asynccontextmanager
    async def new_client(self, **options: Any) -> AsyncIterator[CustomerIO]:
        """Open another client on the same fake (same fast defaults, ``options`` win).

        Example::

            async with customerio_fake.new_client(batching=False) as direct:
                receipt = await direct.track("42", "clicked")   # delivered on return
        """
        async with _open_client(self.server, options) as client:
            yield client

    @contextlib.asynccontextmanager
    async def new_pipelines_client(self, **options: Any) -> AsyncIterator[PipelinesClient]:
        """Open another Pipelines client on the same fake (fast defaults, ``options`` win).

        Example::

            async with customerio_fake.new_pipelines_client(gzip=False) as analytics:
                await analytics.track("42", "purchased")
        """
        async with _open_pipelines(self.server, options) as client:
            yield client


@contextlib.asynccontextmanager
async def _open_client(
    server: FakeCustomerIO, options: dict[str, Any]
) -> AsyncIterator[CustomerIO]:
    from ._track.client import CustomerIO

    kwargs = {**_fast_defaults(), "track_url": server.url, **options}
    async with CustomerIO(server.site_id, server.api_key, **kwargs) as client:
        yield client


@contextlib.asynccontextmanager
async def _open_pipelines(
    server: FakeCustomerIO, options: dict[str, Any]
) -> AsyncIterator[PipelinesClient]:
    from ._cdp.client import PipelinesClient

    kwargs = {**_fast_defaults(), "host": server.url, **options}
    async with PipelinesClient(server.pipelines_write_key, **kwargs) as client:
        yield client


@pytest.fixture
def customerio_pipelines_options() -> dict[str, Any]:
    """Keyword arguments for the ``customerio_fake.pipelines`` client (``{}``: the fast
    defaults); override it to change them, e.g. ``{"gzip": False}``.

    Example::

        @pytest.fixture
        def customerio_pipelines_options() -> dict[str, Any]:
            return {"gzip": False}
    """
    return {}


@pytest.fixture
def customerio_fake_options() -> dict[str, Any]:
    """Keyword arguments for the ``customerio_fake`` client; override it to change them.

    The default (``{}``) keeps the fixture's fast batched defaults.

    Example::

        # conftest.py
        @pytest.fixture
        def customerio_fake_options() -> dict[str, object]:
            return {"batching": False}          # direct mode: API errors raise
    """
    return {}


@_async_fixture
async def customerio_fake(
    customerio_fake_options: dict[str, Any],
    customerio_pipelines_options: dict[str, Any],
) -> AsyncIterator[CustomerIOFake]:
    """A started ``FakeCustomerIO``, an open ``CustomerIO`` and an open ``PipelinesClient``
    pointed at it.

    The clients are closed (their buffers drained) before the server stops, so everything
    your test sent has reached the fake by teardown.

    Example::

        async def test_tracked(customerio_fake: CustomerIOFake) -> None:
            await customerio_fake.client.track("42", "opened")
            assert len(await customerio_fake.delivered()) == 1
    """
    from .testing import FakeCustomerIO

    async with (
        FakeCustomerIO() as server,
        _open_client(server, customerio_fake_options) as client,
        _open_pipelines(server, customerio_pipelines_options) as pipelines,
    ):
        yield CustomerIOFake(server, client, pipelines)


@_async_fixture
async def customerio_pipelines(customerio_fake: CustomerIOFake) -> PipelinesClient:
    """The open ``PipelinesClient`` of ``customerio_fake`` (its server is
    ``customerio_fake.server``).

    Example::

        async def test_signup(customerio_pipelines, customerio_fake):
            await customerio_pipelines.identify("42", {"plan": "pro"})
            [message] = await customerio_fake.pipelines_delivered()
            assert message.user_id == "42"
    """
    return customerio_fake.pipelines
