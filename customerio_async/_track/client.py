"""``CustomerIO``: the Track API client.

Method names and signatures follow the official ``customerio`` 3.x package, as coroutines,
so migrating is "add ``await``". Each call validates its arguments and builds an
:class:`~customerio_async._track.operations.Operation` in the caller's task (errors raise
there, before any I/O); the operation then passes the admission middleware (de-duplication,
yours) and enters the send pipeline — or, in direct mode, is sent at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import Metric

from .._common.lifecycle import SingleUseClient, State, fork_count
from .._common.logs import logger
from .._config import (
    DEFAULT_BATCH,
    DEFAULT_DEDUP,
    DEFAULT_POOL,
    DEFAULT_RATE_LIMIT,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ENV_API_KEY,
    ENV_SITE_ID,
    BatchConfig,
    DedupConfig,
    PoolLimits,
    RateLimit,
    Region,
    RetryPolicy,
    Timeouts,
    env_or,
    resolve_region,
    resolve_track_origin,
)
from .._exceptions import ClientStateError
from .._http.gate import Limiter, LocalLimiter
from .._http.messages import HTTPMiddleware
from .._http.stack import HTTPStack
from .._metrics import Metrics
from .._pipeline.pipeline import Pipeline
from .._pipeline.receipt import FlushResult, OutcomeCallback, Receipt, Statistics
from .admission import AdmissionChain, OperationMiddleware
from .api import TrackAPI, confirm
from .connect import transport_for, workspace_id
from .dedup import Deduplicator
from .direct import DirectSender, adopt
from .metrics import Observables, client_metric_families
from .operations import Operation
from .protocol import batch_accepted, track_format, track_rules
from .results import BatchResult, RegionInfo

__all__ = ["CustomerIO"]


class CustomerIO(SingleUseClient, TrackAPI):
    """Asyncio client for Customer.io's Track API.

    Use it as an async context manager; the pooled aiohttp session and the send pipeline
    live exactly as long as the ``async with`` block (see the example).

    Every Track call validates and serialises its operation in the caller's task (errors raise
    there, before any I/O) and returns a :class:`Receipt`. In the default **batched** mode the
    operation is admitted into the send pipeline, which packs operations into byte-exact
    ``/api/v2/batch`` requests; ``await receipt.wait()`` (or ``wait=True``) yields the terminal
    outcome. In **direct** mode (``batching=False``) each call sends its own request (the
    official SDK's v1 request when there is one) and raises on API errors; its receipt is
    already delivered and carries the parsed ``response``.

    Example::

        async with CustomerIO(site_id, api_key) as cio:
            await cio.identify("42", email="ada@example.com", plan="pro")   # returns at once
            receipt = await cio.track("42", "purchased", {"amount": 42})
            outcome = await receipt.wait()                                   # opt-in confirmation

    Args:
        site_id: Track API site id; defaults to ``$CUSTOMERIO_SITE_ID``.
        api_key: Track API key; defaults to ``$CUSTOMERIO_API_KEY``.
        region: ``"us"``, ``"eu"``, a :class:`Region`, or ``"auto"`` to ask Customer.io at
            ``open()`` (``GET /api/v1/accounts/region``) and use that region's host; with
            ``track_url`` set, ``"auto"`` only records the region.
        track_url: Origin override such as ``http://127.0.0.1:8080`` (``/api/v1`` and
            ``/api/v2`` are appended), for tests and proxies. Our Authorization header is
            only ever sent to this origin or to ``https://*.customer.io``.
        batching: ``True`` (default) for the pipeline, ``False`` for direct mode.
        batch: Pipeline settings (sizes, linger, concurrency, buffer, overflow policy).
        retry: Retry and backoff policy.
        rate_limit: Client-side request rate limit; ``None`` disables it.
        timeouts: Per-request time limits.
        pool: Connection-pool limits (raised to ``batch.max_concurrent_requests`` if lower).
        user_agent: Replaces the default ``customerio-async/<version> …`` User-Agent.
        on_outcome: Called with each receipt when it reaches its outcome (sync or async;
            exceptions are logged, never propagated).
        on_drop: Called with each receipt that is dropped.
        dedup: De-duplication of repeated identifies and event ids (``None`` disables).
        metrics: Where Prometheus metrics go (default: a private registry, see
            ``cio.metrics.registry``); share one :class:`Metrics` between clients of
            different regions to export them together.
        operation_middleware: Your admission middleware, ``async def mw(op, handler)``
            (or an :class:`AdmissionMiddleware`), run after de-duplication.
        http_middleware: Your HTTP middleware, ``async def mw(request, handler)``; they
            run inside the retry and rate-limit layers, once per attempt (see
            ``docs/architecture.md`` for the request path).
        limiter: Where the rate budget and the 429/auth pause live: this process (default)
            or shared by every process (``customerio_async.fleet.RedisLimiter``).
        verify_credentials: Check the site id and API key when the client opens (one
            ``GET /api/v1/accounts/region``); a wrong key then fails ``open()`` with
            :class:`AuthenticationError` instead of pausing the pipeline later.

    Raises:
        ConfigurationError: Missing credentials, unknown region or a bad ``track_url``.
    """

    _usage = "async with CustomerIO(...) as cio:"

    def __init__(
        self,
        site_id: str | None = None,
        api_key: str | None = None,
        *,
        region: Region | str = Region.US,
        track_url: str | None = None,
        batching: bool = True,
        batch: BatchConfig = DEFAULT_BATCH,
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        pool: PoolLimits = DEFAULT_POOL,
        user_agent: str | None = None,
        on_outcome: OutcomeCallback | None = None,
        on_drop: OutcomeCallback | None = None,
        dedup: DedupConfig | None = DEFAULT_DEDUP,
        metrics: Metrics | None = None,
        operation_middleware: Sequence[OperationMiddleware] = (),
        http_middleware: Sequence[HTTPMiddleware] = (),
        limiter: Limiter | None = None,
        verify_credentials: bool = False,
    ) -> None:
        site = env_or(site_id, ENV_SITE_ID, "site_id")
        key = env_or(api_key, ENV_API_KEY, "api_key")
        self._auto_region = isinstance(region, str) and region.strip().lower() == "auto"
        self._region = Region.US if self._auto_region else resolve_region(region)
        self._track_url, self._origin = track_url, resolve_track_origin(self._region, track_url)
        self._batching, self._batch_config = batching, batch
        self._transport = transport_for(self._origin, site, key, timeouts, pool, batch, user_agent)
        self._build_paths(limiter, site, rate_limit, retry, http_middleware, batch)
        self._pipeline = Pipeline(
            self._http.deliver,
            track_format(batch.max_batch_ops),
            batch=batch,
            retry=retry,
            gate=self._gate,
            counters=self._http.counters,
            accounting=self._http.accounting,
            region=self._region.value,
            on_outcome=on_outcome,
            on_drop=on_drop,
        )
        self._verify = verify_credentials
        self._admission(dedup, operation_middleware)
        self.metrics: Metrics = metrics if metrics is not None else Metrics()
        self._state = State.NEW
        self._forks = fork_count()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _build_paths(
        self,
        limiter: Limiter | None,
        site_id: str,
        rate_limit: RateLimit | None,
        retry: RetryPolicy,
        middleware: Sequence[HTTPMiddleware],
        batch: BatchConfig,
    ) -> None:
        """The HTTP path, built once (see _http): retry → gate → yours → accounting."""
        self._gate = (limiter or LocalLimiter()).gate(
            api="track", workspace=workspace_id(site_id), buckets={"default": rate_limit}
        )
        self._http = HTTPStack(
            self._transport,
            rules=track_rules(rate_limit),
            policy=retry,
            gate=self._gate,
            middleware=middleware,
            accept=batch_accepted,
        )
        self._direct = DirectSender(self._http, lambda: self._region.value)

    def _admission(
        self, dedup: DedupConfig | None, middleware: Sequence[OperationMiddleware]
    ) -> None:
        """The operation path, built once: dedup → yours → admission (or a direct send)."""
        self._dedup = Deduplicator(dedup) if dedup is not None else None
        admit: Callable[[Operation], Awaitable[Receipt]] = (
            self._pipeline.admit if self._batching else self._send_direct
        )
        layers: list[OperationMiddleware] = [*([self._dedup] if self._dedup else [])]
        self._handler = admit
        self._chain = AdmissionChain(admit, [*layers, *middleware])
        self._admit = self._chain.call

    def __repr__(self) -> str:
        # Never the site id or key: reprs end up in logs and tracebacks.
        mode = "batched" if self._batching else "direct"
        return (
            f"<CustomerIO region={self._region.value!r} origin={self._origin!r} "
            f"mode={mode} state={self._state.value!r}>"
        )

    @property
    def region(self) -> Region:
        """The configured region."""
        return self._region

    @property
    def origin(self) -> str:
        """The Track API origin requests go to."""
        return self._origin

    @property
    def batching(self) -> bool:
        """Whether calls go through the batching pipeline (else direct mode)."""
        return self._batching

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create the connection pool and start the pipeline. ``async with`` calls this.

        Example::

            cio = CustomerIO(site_id, api_key)
            await cio.open()  # usually: async with CustomerIO(site_id, api_key) as cio

        Raises:
            ClientStateError: When the client was already opened or closed (a client is
                single-use: create a new one instead of reopening).
        """
        self._begin_open()
        self._forks = fork_count()
        await self._transport.open()
        self._state = State.OPEN
        try:
            if self._auto_region:
                await self._discover_region()
            elif self._verify:
                await self.check_credentials()
            self.metrics.attach(self)
        except BaseException:
            await self.aclose()
            raise
        if self._batching:
            self._pipeline.start()
            if self._chain.skips_generated_events:
                self._admit_event = self._pipeline.try_admit
        self._loop = asyncio.get_running_loop()
        self._start_guard()

    async def check_credentials(self) -> RegionInfo:
        """Check the site id and API key now, with the cheapest authenticated request
        (``GET /api/v1/accounts/region``), instead of learning about a wrong key from
        ``auth_failed`` drops later.

        Example::

            async with CustomerIO(site_id, api_key) as cio:
                await cio.check_credentials()   # AuthenticationError if wrong

        Raises:
            AuthenticationError: The credentials are wrong.
            TransportError: Customer.io could not be reached.
        """
        return await self.get_region()

    async def _discover_region(self) -> None:
        info = await self.get_region()
        self._region = info.region
        self._pipeline.region = info.region.value
        if self._track_url is None:
            self._origin = info.region.track_origin
            self._transport.rebase(self._origin)
        logger.info("customerio-async: workspace region is %s", info.region.value)

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop accepting operations, deliver what is buffered, and close the pool.

        Delivery continues until ``timeout`` (default ``batch.drain_timeout``); whatever is
        still undelivered then ends as ``dropped(shutdown_timeout)``, with one summary log
        line. Survives one cancellation of the caller; a second aborts the drain.
        Idempotent; later calls on the client raise :class:`ClientStateError`.

        Example::

            await cio.aclose(timeout=5)  # deliver for up to 5 s, then drop what is left
        """
        if self._state is State.CLOSED:
            return
        forked = self._forks != fork_count()
        if not forked:
            self._check_loop()
        opened = self._state is State.OPEN
        self._state = State.CLOSED
        self._admit_event = None
        if forked:
            return  # a forked child must not drain or close the parent's connections
        guard = self._stop_guard()
        try:
            if opened and self._batching:
                drain = self._batch_config.drain_timeout if timeout is None else timeout
                await self._pipeline.aclose(drain)
        finally:
            await self._transport.aclose()
            if guard is not None and not guard.done():
                await asyncio.wait({guard})  # no task of ours outlives aclose()

    async def _loop_ended(self) -> None:
        # The loop is ending under an open client (see SingleUseClient._start_guard).
        self._admit_event = None
        lost = self._pipeline.abandon("not_closed") if self._batching else 0
        await self._pipeline.ledger.finish_callbacks(0.0)
        logger.warning(
            "customerio-async: CustomerIO was never closed: %d operation(s) were not "
            "delivered; use `async with CustomerIO(...)` or `await cio.aclose()`",
            lost,
        )
        await self._transport.aclose()

    def _check_loop(self) -> None:
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise ClientStateError(
                "this client was opened in another event loop; use it in the loop that opened it"
            )

    def _check_open(self) -> None:
        if self._forks != fork_count():
            # A forked child inherits our sockets and buffer; using them would interleave
            # bytes on the parent's connections and send the parent's operations twice.
            raise ClientStateError(
                "this CustomerIO client was opened in another process (fork); "
                "create a new client in the child"
            )
        self._check_state()
        self._check_loop()

    async def flush(self, timeout: float | None = None) -> FlushResult:
        """Send everything admitted so far now (no linger) and wait for its outcomes.

        A barrier for operations admitted before the call; it does not stop the client.

        Example::

            result = await cio.flush(timeout=5)
            assert result.pending == 0

        Args:
            timeout: Seconds to wait (default ``batch.flush_timeout``); on expiry the result
                reports what is still ``pending`` instead of raising.
        """
        self._check_open()
        if not self._batching:
            return FlushResult()
        return await self._pipeline.flush(
            self._batch_config.flush_timeout if timeout is None else timeout
        )

    def statistics(self) -> Statistics:
        """A cheap snapshot of the pipeline's counters (accepted, delivered, rejected,
        dropped by reason, deduplicated, pending, buffered bytes, requests, retries…).

        Example::

            stats = cio.statistics()
            log.info("delivered=%d pending=%d", stats.delivered, stats.pending)
        """
        stats = self._pipeline.statistics()
        if not self._batching:  # no pipeline runs: the client's own state
            stats = dataclasses.replace(stats, state=self._state.value)
        if self._dedup is not None and self._dedup.hits:
            stats = dataclasses.replace(stats, deduplicated=sum(self._dedup.hits.values()))
        return stats

    # ------------------------------------------------------------------ metrics

    @property
    def metrics_label(self) -> str:
        """The ``region`` label of this client's metrics."""
        return self._region.value

    def metric_families(self, prefix: str) -> Iterable[Metric]:
        """This client's Prometheus families (see :class:`Metrics`).

        Example::

            for family in cio.metric_families("customerio"):
                print(family.name)
        """
        return client_metric_families(self, prefix)

    def observables(self) -> Observables:
        """The counters and histograms the metrics collector reads.

        Example::

            observed = cio.observables()
        """
        hits = self._dedup.hits if self._dedup is not None else {}
        return Observables(self._pipeline.ledger, self._transport, self._http.accounting, hits)

    # ------------------------------------------------------------------ sending

    async def _submit(self, op: Operation) -> Receipt:
        self._check_open()
        return await self._admit(op)

    async def _call(self, op: Operation, wait: bool) -> Receipt:
        # The hot path of every Track call: no coroutine per layer when no admission
        # middleware wants the operation (the usual event), none for admission itself
        # unless the buffer is full.
        if self._state is not State.OPEN or self._forks != fork_count():
            self._check_open()
        chain = self._chain.select(op)
        receipt = None
        if chain is None and self._batching:
            receipt = self._pipeline.try_admit(op)
        if receipt is None:
            receipt = await (chain or self._handler)(op)
        if wait:
            await confirm(receipt)
        return receipt

    def _admit_now(self, op: Operation) -> Receipt | None:
        """Admission without a coroutine: when no admission middleware wants ``op`` and
        the buffer has room (``None`` otherwise: the caller takes :meth:`_call`)."""
        if self._state is not State.OPEN or self._forks != fork_count():
            self._check_open()
        if not self._batching or self._chain.select(op) is not None:
            return None
        return self._pipeline.try_admit(op)

    def _admit_late(self, op: Operation) -> Receipt | None:
        """The sync facade's fallback once its caller waited ``enqueue_timeout``: admit if it
        fits now, else drop(buffer_full) at once; ``None`` when a middleware wants ``op``."""
        receipt = self._admit_now(op)
        if receipt is None and self._chain.select(op) is None:
            receipt = self._pipeline.drop_newest(op)
        return receipt

    async def _send_direct(self, op: Operation) -> Receipt:
        self._check_loop()
        return await self._direct.send(op)

    async def batch(self, operations: Iterable[Operation | Mapping[str, Any]]) -> BatchResult:
        """Send v2 operations in exactly one ``/api/v2/batch`` request, now.

        This is the official SDK's explicit batch: it bypasses the pipeline (use plain calls
        or :meth:`send` for pipelined delivery) but shares the rate limit and retries.

        Example::

            result = await cio.batch([Person.identify("42", {"plan": "pro"}), Person.delete("43")])

        Args:
            operations: :class:`Operation` values or v2 operation dicts (the official
                ``batch()`` input); each ≤ 32,000 bytes, the body < 500,000 bytes.

        Returns:
            The status and, for a 207, the per-operation errors by ``batch_index``;
            operations not listed were accepted.

        Raises:
            ValidationError: Empty input, a v1-only operation, or a size limit.
            APIStatusError: The whole request was refused.
            TransportError: No response.
        """
        self._check_open()
        ops = adopt(operations)
        if self._dedup is not None:
            for op in ops:  # they change people outside the admission path
                self._dedup.forget(op)
        return await self._direct.batch(ops)

    async def get_region(self) -> RegionInfo:
        """Ask Customer.io which region these credentials belong to (always direct).

        Example::

            info = await cio.get_region()

        Raises:
            AuthenticationError: The credentials are wrong.
            APIStatusError: The answer was not the documented shape (HTTP 502).
        """
        self._check_open()
        return await self._direct.region()
