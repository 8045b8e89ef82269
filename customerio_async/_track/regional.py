"""Region routing: one client API in front of a US and an EU workspace.

US and EU workspaces have their own credentials and hosts. :class:`RegionalCustomerIO` holds
one :class:`~customerio_async.CustomerIO` per region and sends each operation to the right
one — chosen per call with ``using("eu")``, or per person by an async resolver (which may
hit your database) cached with ``async-lru``, falling back to a default region. Each client
keeps its own credentials, transport and pipeline, so one region's credentials can never
reach the other region's host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable

from async_lru import alru_cache

from .._common.lifecycle import SingleUseClient, State
from .._config import Region, resolve_region
from .._exceptions import ClientStateError, ConfigurationError
from .._identifiers import Identifier
from .._pipeline.receipt import FlushResult, Receipt, Statistics
from .api import TrackAPI
from .client import CustomerIO
from .operations import Operation

__all__ = ["RegionResolver", "RegionalCustomerIO"]

RegionResolver = Callable[[Identifier], Awaitable["Region | str | None"]]
"""``async def resolver(person: Identifier) -> "us" | "eu" | None`` (``None``: default).
``person.type`` is ``id``, ``email``, ``cio_id`` or ``phone`` and ``person.value`` its value
(without the ``cio_`` prefix), so ``id`` "abc" and ``cio_id`` "abc" are different people."""


_NO_SUBJECT = frozenset({"add_to_segment", "remove_from_segment"})


def subject_of(op: Operation) -> Identifier | None:
    """The person an operation is about (a merge: its primary), or ``None`` (objects,
    deliveries, segment membership, invite events): those go to the default region."""
    key = op.key
    if key is None or key.kind != "person" or op.action in _NO_SUBJECT:
        return None
    return Identifier(key.id_type, key.value)


class RegionalCustomerIO(SingleUseClient, TrackAPI):
    """Routes every Track call to the workspace of the person's region.

    Every method of :class:`CustomerIO`'s Track API is available and returns the chosen
    client's :class:`Receipt`.

    Example::

        async with RegionalCustomerIO(
            [CustomerIO(us_site, us_key, region="us"), CustomerIO(eu_site, eu_key, region="eu")],
            resolver=lookup_region,  # async def lookup_region(person: Identifier) -> "eu"...
        ) as cio:
            await cio.identify("42", plan="pro")           # resolver decides
            await cio.using("eu").track("42", "login")      # explicit region

    Args:
        clients: One :class:`CustomerIO` per region (``region="auto"`` clients are mapped by
            the region they discover when opened). Opened and closed with this object.
        resolver: Async function from a person identifier to a region; ``None`` (or a
            ``None`` answer) means ``default_region``. Its exceptions propagate to the call.
        default_region: Where operations without a person, or without an answer, go.
        resolver_ttl: Seconds a resolver answer is cached.
        resolver_cache_size: Answers kept in the cache.

    Raises:
        ConfigurationError: No clients, or two clients for one region.
    """

    _usage = "async with RegionalCustomerIO(...) as cio:"

    def __init__(
        self,
        clients: Iterable[CustomerIO],
        *,
        resolver: RegionResolver | None = None,
        default_region: Region | str = Region.US,
        resolver_ttl: float = 300.0,
        resolver_cache_size: int = 10_000,
    ) -> None:
        self._all = list(clients)
        if not self._all:
            raise ConfigurationError("RegionalCustomerIO needs at least one client")
        self._default = resolve_region(default_region)
        self._clients: dict[Region, CustomerIO] = {}
        self._resolve: Callable[[Identifier], Awaitable[Region | str | None]] | None = None
        if resolver is not None:

            async def resolve(person: Identifier) -> Region | str | None:
                return await resolver(person)

            # async-lru also coalesces concurrent lookups of one person into one call.
            self._resolve = alru_cache(maxsize=resolver_cache_size, ttl=resolver_ttl)(resolve)
        self._stack: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        regions = ",".join(sorted(r.value for r in self._clients)) or "unopened"
        return f"<RegionalCustomerIO regions={regions} default={self._default.value!r}>"

    async def open(self) -> None:
        """Open every regional client (``async with`` calls this).

        Example::

            await regional.open()  # usually: async with regional

        Raises:
            ConfigurationError: Two clients for one region.
            ClientStateError: Opened twice (it is single-use, like the clients).
        """
        self._begin_open()
        stack = contextlib.AsyncExitStack()
        try:
            for client in self._all:
                await stack.enter_async_context(client)
                if client.region in self._clients:
                    raise ConfigurationError(
                        f"two clients for region {client.region.value!r}; give one per region"
                    )
                self._clients[client.region] = client
        except BaseException:
            self._state = State.CLOSED
            await stack.aclose()
            raise
        self._stack = stack
        self._state = State.OPEN

    async def aclose(self) -> None:
        """Drain and close every regional client.

        Example::

            await regional.aclose()
        """
        self._state = State.CLOSED
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def client(self, region: Region | str) -> CustomerIO:
        """The client for ``region``.

        Example::

            eu = regional.client("eu")

        Raises:
            ClientStateError: Not opened yet.
            ConfigurationError: No client for that region.
        """
        if self._stack is None:
            raise ClientStateError("use `async with RegionalCustomerIO(...)` first")
        target = resolve_region(region)
        try:
            return self._clients[target]
        except KeyError:
            raise ConfigurationError(f"no client configured for region {target.value!r}") from None

    def using(self, region: Region | str) -> CustomerIO:
        """The client for ``region``, to send a call there explicitly.

        Example::

            await regional.using("eu").track("42", "login")
        """
        return self.client(region)

    async def region_for(self, person: Identifier | None) -> Region:
        """The region an operation about ``person`` goes to (resolver, then default).

        Example::

            region = await regional.region_for(Identifier("id", "42"))
        """
        if person is None or self._resolve is None:
            return self._default
        answer = await self._resolve(person)
        if answer is None:
            return self._default
        try:
            return resolve_region(answer)
        except ConfigurationError:
            raise ConfigurationError(
                f"the region resolver returned {answer!r}; expected 'us', 'eu' or None"
            ) from None

    async def _submit(self, op: Operation) -> Receipt:
        region = await self.region_for(subject_of(op))
        return await self.client(region)._submit(op)

    async def flush(self, timeout: float | None = None) -> dict[Region, FlushResult]:
        """Flush every regional client; results by region.

        Example::

            results = await regional.flush(timeout=5)  # {"us": FlushResult, "eu": ...}
        """
        return {region: await c.flush(timeout) for region, c in self._clients.items()}

    def statistics(self) -> dict[Region, Statistics]:
        """Each regional client's statistics.

        Example::

            delivered = {region: s.delivered for region, s in regional.statistics().items()}
        """
        return {region: c.statistics() for region, c in self._clients.items()}
