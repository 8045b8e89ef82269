"""``PipelinesClient``: the Data Pipelines API client, on the Track client's stack.

The calls (:mod:`.api`, analytics-python's names and argument order) build
:class:`~.messages.PipelinesCall` s in the caller's task; this module admits them into the
same send pipeline as :class:`~customerio_async.CustomerIO` (byte-exact ``/v1/batch``
requests, receipts, ordering per person, retries, the rate-limit gate, drain at close) over
the same HTTP stack, configured by :mod:`.protocol`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .._common.lifecycle import SingleUseClient, State, fork_count
from .._config import (
    DEFAULT_BATCH,
    DEFAULT_PIPELINES_RATE_LIMIT,
    DEFAULT_POOL,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ENV_PIPELINES_WRITE_KEY,
    PIPELINES_GZIP,
    BatchConfig,
    PoolLimits,
    RateLimit,
    Region,
    RetryPolicy,
    Timeouts,
    env_or,
    resolve_pipelines_origin,
    resolve_region,
)
from .._exceptions import ClientStateError, ConfigurationError
from .._http.errors import make_status_error
from .._http.gate import Limiter, LocalLimiter
from .._http.messages import HTTPMiddleware, HTTPRequest
from .._http.stack import HTTPStack
from .._http.transport import AiohttpTransport
from .._metrics import Metrics
from .._pipeline.pipeline import Pipeline
from .._pipeline.receipt import FlushResult, OutcomeCallback, Receipt, Statistics
from .api import PipelinesAPI, confirm
from .messages import PipelinesCall
from .metrics import pipelines_metric_families
from .protocol import BATCH_PATH, STRICT_MODE, basic_auth, pipelines_format, pipelines_rules

if TYPE_CHECKING:
    from prometheus_client.core import Metric

__all__ = ["PipelinesClient"]


def _write_key(write_key: str | None) -> str:
    # Keys read from secret files often end in a newline: strip it (as analytics-python
    # does); whitespace inside is a mistake, never part of a key.
    key = env_or(write_key, ENV_PIPELINES_WRITE_KEY, "write_key").strip()
    if not key or any(c.isspace() or not c.isprintable() for c in key):
        raise ConfigurationError("write_key must be printable, without whitespace")
    return key


class PipelinesClient(SingleUseClient, PipelinesAPI):
    """Asyncio client for Customer.io's Data Pipelines API (``https://cdp[-eu].customer.io/v1``).

    Calls have analytics-python's (``customerio-cdp-analytics``) names and argument order,
    as coroutines; each validates and serialises its message in the caller's task and
    admits it into the batching send pipeline (``/v1/batch``, ≤500,000 bytes a request,
    ≤32,000 a message), which the ``async with`` block drains before it ends.

    Example::

        async with PipelinesClient(write_key) as analytics:
            await analytics.identify("42", {"email": "ada@example.com"})
            receipt = await analytics.track("42", "Order Completed", {"total": 42.5})
            outcome = await receipt.wait()                # opt-in confirmation

    Every request carries ``X-Strict-Mode: 1``, so Customer.io answers 400/401 instead of
    silently dropping what it refuses: a refused message ends ``rejected`` (the rest of its
    batch is delivered), a wrong key pauses sending and ends ``dropped(auth_failed)``.

    Args:
        write_key: The source's API key (Basic auth username, empty password); defaults
            to ``$CUSTOMERIO_PIPELINES_WRITE_KEY``.
        host: Origin override such as ``http://127.0.0.1:8080`` (analytics-python's
            ``host``; ``/v1/...`` is appended), for tests and proxies.
        region: ``"us"`` or ``"eu"`` (or a :class:`Region`): the host when ``host`` is
            not given.
        gzip: Compress ``/v1/batch`` bodies of 1 KB and more (level 1). On by default:
            ~7.5x fewer bytes for ~1.5 µs of CPU per message (README, "Data Pipelines API").
        batch: Pipeline settings (sizes, linger, concurrency, buffer, overflow, drain).
        retry: Retry and backoff policy (``delivery_timeout`` bounds each message).
        rate_limit: Client-side request rate; default 1000 req/s, the documented "3000
            requests per 3 seconds"; ``None`` disables it.
        timeouts: Per-request time limits.
        pool: Connection-pool limits (raised to ``batch.max_concurrent_requests`` if lower).
        user_agent: Replaces the default ``customerio-async/<version> …`` User-Agent.
        on_outcome: Called with each receipt when it reaches its outcome.
        on_drop: Called with each receipt that is dropped.
        metrics: Where Prometheus metrics go (default: a private registry); its families
            are ``customerio_pipelines_*`` and ``customerio_http_request_duration_seconds``
            with ``api="pipelines"``.
        http_middleware: Your HTTP middleware, ``async def mw(request, handler)``, run once
            per attempt inside the retry and rate-limit layers.
        limiter: Where the rate budget and the 429/auth pause live (default: this client).

    Raises:
        ConfigurationError: A missing write key, an unknown region or a bad ``host``.
    """

    _usage = "async with PipelinesClient(...) as analytics:"

    def __init__(
        self,
        write_key: str | None = None,
        host: str | None = None,
        *,
        region: Region | str = Region.US,
        gzip: bool = PIPELINES_GZIP,
        batch: BatchConfig = DEFAULT_BATCH,
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limit: RateLimit | None = DEFAULT_PIPELINES_RATE_LIMIT,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        pool: PoolLimits = DEFAULT_POOL,
        user_agent: str | None = None,
        on_outcome: OutcomeCallback | None = None,
        on_drop: OutcomeCallback | None = None,
        metrics: Metrics | None = None,
        http_middleware: Sequence[HTTPMiddleware] = (),
        limiter: Limiter | None = None,
    ) -> None:
        key = _write_key(write_key)
        self._region = resolve_region(region)
        self._origin = resolve_pipelines_origin(self._region, host)
        self._gzip = bool(gzip)
        self._batch_config = batch
        self._transport = AiohttpTransport(
            origin=self._origin,
            authorization=basic_auth(key),
            timeouts=timeouts,
            # A connection per request slot, else requests would queue inside aiohttp.
            pool=_pool_for(pool, batch),
            user_agent=user_agent,
        )
        self._build_stack(key, limiter, rate_limit, retry, http_middleware)
        self._pipeline = Pipeline(
            self._http.deliver,
            pipelines_format(batch.max_batch_ops, gzip=self._gzip),
            batch=batch,
            retry=retry,
            gate=self._gate,
            counters=self._http.counters,
            accounting=self._http.accounting,
            region=self._region.value,
            on_outcome=on_outcome,
            on_drop=on_drop,
        )
        self.metrics: Metrics = metrics if metrics is not None else Metrics()
        self._state = State.NEW
        self._forks = fork_count()

    def _build_stack(
        self,
        key: str,
        limiter: Limiter | None,
        rate_limit: RateLimit | None,
        retry: RetryPolicy,
        middleware: Sequence[HTTPMiddleware],
    ) -> None:
        """The HTTP path, built once (see _http): retry → gate → yours → accounting."""
        self._gate = (limiter or LocalLimiter()).gate(
            api="pipelines",
            # A digest, never the key: a Limiter may store or show workspace ids.
            workspace=hashlib.sha256(key.encode()).hexdigest()[:16],
            buckets={"default": rate_limit},
        )
        self._http = HTTPStack(
            self._transport,
            rules=pipelines_rules(rate_limit),
            policy=retry,
            gate=self._gate,
            middleware=middleware,
        )

    def __repr__(self) -> str:
        # Never the write key: reprs end up in logs and tracebacks.
        return (
            f"<PipelinesClient region={self._region.value!r} origin={self._origin!r} "
            f"gzip={self._gzip} state={self._state.value!r}>"
        )

    @property
    def region(self) -> Region:
        """The configured region.

        Example::

            assert PipelinesClient(key, region="eu").region is Region.EU
        """
        return self._region

    @property
    def origin(self) -> str:
        """The Data Pipelines origin requests go to.

        Example::

            PipelinesClient(key, region="eu").origin      # 'https://cdp-eu.customer.io'
        """
        return self._origin

    @property
    def gzip(self) -> bool:
        """Whether batch bodies are gzipped.

        Example::

            assert PipelinesClient(key, gzip=False).gzip is False
        """
        return self._gzip

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create the connection pool and start the pipeline. ``async with`` calls this.

        Example::

            analytics = PipelinesClient(key)
            await analytics.open()
            try:
                await analytics.track("42", "Signed Up")
            finally:
                await analytics.aclose()

        Raises:
            ClientStateError: The client was already opened or closed (single-use).
        """
        self._begin_open()
        self._forks = fork_count()
        await self._transport.open()
        self._state = State.OPEN
        try:
            self.metrics.attach(self)
        except BaseException:
            await self.aclose()
            raise
        self._pipeline.start()

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop accepting calls, deliver what is buffered, close the pool.

        Delivery continues until ``timeout`` (default ``batch.drain_timeout``); whatever is
        still undelivered then ends ``dropped(shutdown_timeout)``. Idempotent.

        Example::

            await analytics.aclose(timeout=5)
        """
        if self._state is State.CLOSED:
            return
        opened = self._state is State.OPEN
        self._state = State.CLOSED
        if self._forks != fork_count():
            return  # a forked child must not drain or close the parent's connections
        try:
            if opened:
                drain = self._batch_config.drain_timeout if timeout is None else timeout
                await self._pipeline.aclose(drain)
        finally:
            await self._transport.aclose()

    def _check_open(self) -> None:
        if self._forks != fork_count():
            raise ClientStateError(
                "this PipelinesClient was opened in another process (fork); "
                "create a new client in the child"
            )
        self._check_state()

    async def flush(self, timeout: float | None = None) -> FlushResult:
        """Send everything admitted so far now and wait for its outcomes (a barrier; the
        client stays open). analytics-python's ``flush()``, as a coroutine.

        Example::

            result = await analytics.flush(timeout=5)
            assert result.pending == 0

        Args:
            timeout: Seconds to wait (default ``batch.flush_timeout``); on expiry the result
                reports what is still ``pending``.
        """
        self._check_open()
        wait = self._batch_config.flush_timeout if timeout is None else timeout
        return await self._pipeline.flush(wait)

    def statistics(self) -> Statistics:
        """A cheap snapshot of the pipeline's counters.

        Example::

            stats = analytics.statistics()
            print(stats.delivered, stats.rejected, dict(stats.dropped_by_reason))
        """
        return self._pipeline.statistics()

    async def check_credentials(self) -> None:
        """Check the write key now: one ``POST /v1/batch`` with an empty batch in strict
        mode, which applies nothing. A 401/403 raises; any other answer means the key was
        accepted (an empty batch may well be answered 400).

        Example::

            async with PipelinesClient(key) as analytics:
                await analytics.check_credentials()      # AuthenticationError if wrong

        Raises:
            AuthenticationError: The write key was refused (``PermissionDeniedError`` for
                a 403).
            APIStatusError: Rate limited or a server error, after the allowed retries.
            TransportError: Customer.io could not be reached.
        """
        self._check_open()
        request = HTTPRequest(
            "POST",
            BATCH_PATH,
            b'{"batch":[]}',
            BATCH_PATH,
            api="pipelines",
            region=self._region.value,
            headers=dict(STRICT_MODE),
        )
        response = await self._http.call(request)
        status = response.status
        if status < 300 or status == 400:
            return
        raise make_status_error(status, response.body, response.headers, endpoint=BATCH_PATH)

    # ------------------------------------------------------------------ metrics

    @property
    def metrics_label(self) -> str:
        """This client's key in a shared :class:`Metrics` (``"us:pipelines"``).

        Example::

            PipelinesClient(key).metrics_label     # 'us:pipelines'
        """
        return f"{self._region.value}:pipelines"

    def metric_families(self, prefix: str) -> Iterable[Metric]:
        """This client's Prometheus families (see :class:`Metrics`).

        Example::

            names = [f.name for f in analytics.metric_families("customerio_")]
        """
        return pipelines_metric_families(
            self._region.value, self.statistics(), self._pipeline.ledger, self._http, prefix
        )

    # ------------------------------------------------------------------ sending

    async def _submit(self, call: PipelinesCall, wait: bool) -> Receipt:
        # The hot path: admission is one synchronous call unless the buffer is full.
        if self._state is not State.OPEN or self._forks != fork_count():
            self._check_open()
        receipt = self._pipeline.try_admit(call)
        if receipt is None:
            receipt = await self._pipeline.admit(call)
        if wait:
            await confirm(receipt)
        return receipt

    # The sync facade's admission path (customerio_async.sync.PipelinesClient).

    @property
    def batching(self) -> bool:
        """Always ``True``: every Pipelines message goes through the send pipeline.

        The sync facade reads it to choose its hand-off path, as it does on the Track client.

        Example::

            assert PipelinesClient(key).batching is True
        """
        return True

    def _admit_now(self, call: PipelinesCall) -> Receipt | None:
        if self._state is not State.OPEN or self._forks != fork_count():
            self._check_open()
        return self._pipeline.try_admit(call)

    def _admit_late(self, call: PipelinesCall) -> Receipt | None:
        # Its caller already waited enqueue_timeout: admitted if it fits now, else dropped.
        receipt = self._admit_now(call)
        return receipt if receipt is not None else self._pipeline.drop_newest(call)

    async def _call(self, call: PipelinesCall, wait: bool) -> Receipt:
        return await self._submit(call, wait)


def _pool_for(pool: PoolLimits, batch: BatchConfig) -> PoolLimits:
    if pool.max_connections_per_host >= batch.max_concurrent_requests:
        return pool
    return PoolLimits(
        max_connections=max(pool.max_connections, batch.max_concurrent_requests),
        max_connections_per_host=batch.max_concurrent_requests,
        keepalive_timeout=pool.keepalive_timeout,
        dns_cache_ttl=pool.dns_cache_ttl,
    )
