"""``CustomerIO``: the Track API client.

Method names and signatures follow the official ``customerio`` 3.x package, as coroutines,
so migrating is "add ``await``". Each call validates its arguments and builds an
:class:`~customerio_async._operations.Operation` in the caller's task (errors raise there,
before any I/O), then sends it over the client's pooled transport.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from .._common.lifecycle import SingleUseClient, State
from .._common.logs import logger
from .._common.wire import check_size
from .._config import (
    DEFAULT_BATCH,
    DEFAULT_DEDUP,
    DEFAULT_POOL,
    DEFAULT_RATE_LIMIT,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ENV_API_KEY,
    ENV_SITE_ID,
    MAX_BATCH_BYTES,
    MAX_ENTITY_BYTES,
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
from .._exceptions import ClientStateError, CustomerIOError, ValidationError
from .._http.errors import ErrorDetail, make_status_error, parse_error_body
from .._http.gate import Limiter, LocalLimiter
from .._http.messages import HTTPMiddleware, HTTPRequest, HTTPResponse
from .._http.stack import HTTPStack
from .._http.transport import AiohttpTransport
from .._metrics import Metrics, counter, gauge, histogram_family
from .._pipeline.core import (
    DELIVERED,
    FlushResult,
    OutcomeCallback,
    Pipeline,
    Receipt,
    Statistics,
    unmappable_batch_errors,
)
from . import operations as ops
from .admission import AdmissionChain, OperationMiddleware
from .api import TrackAPI, confirm
from .dedup import Deduplicator
from .operations import Operation
from .protocol import track_rules

__all__ = ["BatchResult", "CustomerIO", "RegionInfo"]


@dataclass(frozen=True, slots=True)
class RegionInfo:
    """The answer of ``GET /api/v1/accounts/region``.

    Attributes:
        region: The workspace's region.
        url: The Track origin for that region.
        environment_id: The workspace (environment) id.
    """

    region: Region
    url: str
    environment_id: int


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of one ``/api/v2/batch`` request.

    Attributes:
        status: HTTP status (200, or 207 when some operations were rejected).
        errors: One entry per rejected operation, with its ``batch_index``.
    """

    status: int
    errors: tuple[ErrorDetail, ...] = ()

    @property
    def rejected_indexes(self) -> frozenset[int]:
        """Indexes of the operations the API rejected."""
        return frozenset(e.batch_index for e in self.errors if e.batch_index is not None)


def _basic_auth(site_id: str, api_key: str) -> str:
    token = base64.b64encode(f"{site_id}:{api_key}".encode()).decode("ascii")
    return f"Basic {token}"


def _workspace_id(site_id: str) -> str:
    # Gates (and shared limiters' keys) are per workspace; a digest keeps the site id out of
    # anything a shared store or a log could show.
    return hashlib.sha256(site_id.encode()).hexdigest()[:16]


def _batch_accepted(request: HTTPRequest, response: HTTPResponse) -> bool:
    return not unmappable_batch_errors(request, response)


def _parse_json(body: bytes) -> Any:
    # Customer.io answers "{}" (or nothing, for 204); a 2xx body we cannot parse is still a
    # success, so it must not turn into an exception.
    if not body:
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}


class CustomerIO(SingleUseClient, TrackAPI):
    """Asyncio client for Customer.io's Track API.

    Use it as an async context manager; the pooled aiohttp session and the send pipeline
    live exactly as long as the ``async with`` block::

        async with CustomerIO(site_id, api_key) as cio:
            await cio.identify("42", email="ada@example.com", plan="pro")   # returns at once
            receipt = await cio.track("42", "purchased", {"amount": 42})
            outcome = await receipt.wait()                                   # opt-in confirmation

    Every Track call validates and serialises its operation in the caller's task (errors raise
    there, before any I/O) and returns a :class:`Receipt`. In the default **batched** mode the
    operation is admitted into the send pipeline, which packs operations into byte-exact
    ``/api/v2/batch`` requests; ``await receipt.wait()`` (or ``wait=True``) yields the terminal
    outcome. In **direct** mode (``batching=False``) each call sends its own request (the
    official SDK's v1 request when there is one) and raises on API errors; its receipt is
    already delivered and carries the parsed ``response``.

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
        operation_middleware: Your operation middleware, ``async def mw(op, call_next)``,
            run at admission after de-duplication.
        http_middleware: Your HTTP middleware, ``async def mw(request, call_next)``; they
            run inside the retry and rate-limit layers, once per attempt (see
            :mod:`customerio_async._middleware` for the onion).

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
    ) -> None:
        site = env_or(site_id, ENV_SITE_ID, "site_id")
        key = env_or(api_key, ENV_API_KEY, "api_key")
        self._auto_region = isinstance(region, str) and region.strip().lower() == "auto"
        self._region = Region.US if self._auto_region else resolve_region(region)
        self._track_url = track_url
        self._origin = resolve_track_origin(self._region, track_url)
        self._batching = batching
        self._batch_config = batch
        # The connector must allow every lane its own connection, or lanes would queue
        # inside aiohttp and the concurrency setting would be a lie.
        if pool.max_connections_per_host < batch.max_concurrent_requests:
            pool = dataclasses.replace(
                pool,
                max_connections=max(pool.max_connections, batch.max_concurrent_requests),
                max_connections_per_host=batch.max_concurrent_requests,
            )
        self._transport = AiohttpTransport(
            origin=self._origin,
            authorization=_basic_auth(site, key),
            timeouts=timeouts,
            pool=pool,
            user_agent=user_agent,
        )
        # The HTTP path, built once (see _http): retry → gate → yours → accounting.
        self._gate = (limiter or LocalLimiter()).gate(
            api="track", workspace=_workspace_id(site), buckets={"default": rate_limit}
        )
        self._http = HTTPStack(
            self._transport,
            rules=track_rules(rate_limit),
            policy=retry,
            gate=self._gate,
            middleware=http_middleware,
            accept=_batch_accepted,
        )
        self._accounting = self._http.accounting
        self._pipeline = Pipeline(
            self._http.deliver,
            batch=batch,
            retry=retry,
            counters=self._http.counters,
            accounting=self._accounting,
            region=self._region.value,
            on_outcome=on_outcome,
            on_drop=on_drop,
        )
        # The operation path, built once: dedup → yours → admission (or a direct send).
        self._dedup = Deduplicator(dedup) if dedup is not None else None
        admit: Callable[[Operation], Awaitable[Receipt]] = (
            self._pipeline.admit if batching else self._send_direct
        )
        layers: list[OperationMiddleware] = [*([self._dedup] if self._dedup else [])]
        self._admit = AdmissionChain(admit, [*layers, *operation_middleware]).call
        self.metrics: Metrics = metrics if metrics is not None else Metrics()
        self._state = State.NEW
        self._pid = os.getpid()

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

        Raises:
            ClientStateError: When the client was already opened or closed (a client is
                single-use: create a new one instead of reopening).
        """
        self._begin_open()
        self._pid = os.getpid()
        await self._transport.open()
        self._state = State.OPEN
        try:
            if self._auto_region:
                await self._discover_region()
            self.metrics.attach(self)
        except BaseException:
            await self.aclose()
            raise
        if self._batching:
            self._pipeline.start()

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
        """
        if self._state is State.CLOSED:
            return
        opened = self._state is State.OPEN
        self._state = State.CLOSED
        if self._pid != os.getpid():
            return  # a forked child must not drain or close the parent's connections
        try:
            if opened and self._batching:
                drain = self._batch_config.drain_timeout if timeout is None else timeout
                await self._pipeline.aclose(drain)
        finally:
            await self._transport.aclose()

    def _check_open(self) -> None:
        if self._pid != os.getpid():
            # A forked child inherits our sockets and buffer; using them would interleave
            # bytes on the parent's connections and send the parent's operations twice.
            raise ClientStateError(
                "this CustomerIO client was opened in another process (fork); "
                "create a new client in the child"
            )
        self._check_state()

    async def flush(self, timeout: float | None = None) -> FlushResult:
        """Send everything admitted so far now (no linger) and wait for its outcomes.

        A barrier for operations admitted before the call; it does not stop the client.

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
        dropped by reason, deduplicated, pending, buffered bytes, requests, retries…)."""
        stats = self._pipeline.statistics()
        if self._dedup is not None and self._dedup.hits:
            stats = dataclasses.replace(stats, deduplicated=sum(self._dedup.hits.values()))
        return stats

    # ------------------------------------------------------------------ metrics

    @property
    def metrics_label(self) -> str:
        """The ``region`` label of this client's metrics."""
        return self._region.value

    def metric_families(self, prefix: str) -> Iterable[Metric]:
        """This client's Prometheus families (see :class:`Metrics`)."""
        return client_metric_families(self, prefix)

    # ------------------------------------------------------------------ sending

    async def _request(
        self, method: str, path: str, body: bytes | None, endpoint: str
    ) -> HTTPResponse:
        self._check_open()
        request = HTTPRequest(method, path, body, endpoint, region=self._region.value)
        return await self._http.call_ok(request)

    async def _send_v1(self, req: ops.V1Request) -> Any:
        body = req.encode_body()
        response = await self._request(req.method, req.path(), body, "/api/v1" + req.template)
        return _parse_json(response.body)

    async def _send_entity(self, op: Operation) -> Any:
        body = op.v2_bytes()
        check_size(len(body), MAX_ENTITY_BYTES, "/api/v2/entity body")
        response = await self._request("POST", "/api/v2/entity", body, "/api/v2/entity")
        return _parse_json(response.body)

    async def _submit(self, op: Operation) -> Receipt:
        self._check_open()
        return await self._admit(op)

    async def _call(self, op: Operation, wait: bool) -> Receipt:
        # The hot path of every Track call: one coroutine hop fewer than TrackAPI._call.
        if self._state is not State.OPEN or self._pid != os.getpid():
            self._check_open()
        receipt = await self._admit(op)
        if wait:
            await confirm(receipt)
        return receipt

    async def _send_direct(self, op: Operation) -> Receipt:
        # Direct mode: official-style calls keep the official SDK's v1 request when the v1
        # server can address the person; otherwise (explicit identifier objects it would
        # misread, typed v2 operations) they travel through /api/v2/entity.
        if op.v1 is not None:
            response = await self._send_v1(op.v1)
        else:
            response = await self._send_entity(op)
        return Receipt(op, b"", 0.0, outcome=DELIVERED, response=response)

    async def batch(self, operations: Iterable[Operation | Mapping[str, Any]]) -> BatchResult:
        """Send v2 operations in exactly one ``/api/v2/batch`` request, now.

        This is the official SDK's explicit batch: it bypasses the pipeline (use plain calls
        or :meth:`send` for pipelined delivery) but shares the rate limit and retries.

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
        parts: list[bytes] = []
        for index, item in enumerate(operations):
            op = item if isinstance(item, Operation) else ops.from_mapping(item, index)
            parts.append(op.v2_bytes())
        if not parts:
            raise ValidationError("operations cannot be empty in batch", field="operations")
        body = b'{"batch":[' + b",".join(parts) + b"]}"
        check_size(len(body), MAX_BATCH_BYTES, "/api/v2/batch body")
        response = await self._request("POST", "/api/v2/batch", body, "/api/v2/batch")
        errors = tuple(parse_error_body(response.body))
        return BatchResult(status=response.status, errors=errors)

    async def get_region(self) -> RegionInfo:
        """Ask Customer.io which region these credentials belong to (always direct).

        Raises:
            AuthenticationError: The credentials are wrong.
            ServerError: The answer was not the documented shape.
        """
        response = await self._request(
            "GET", "/api/v1/accounts/region", None, "/api/v1/accounts/region"
        )
        doc = _parse_json(response.body)
        try:
            return RegionInfo(
                region=resolve_region(doc["region"]),
                url=str(doc["url"]),
                environment_id=int(doc["environment_id"]),
            )
        except (KeyError, TypeError, ValueError, CustomerIOError) as exc:
            raise make_status_error(
                502, b"", response.headers, endpoint="/api/v1/accounts/region (unexpected body)"
            ) from exc


def client_metric_families(client: CustomerIO, prefix: str) -> list[Metric]:
    """Turn one client's counters and histograms into Prometheus families."""
    region = client.metrics_label
    pipeline = client._pipeline
    stats = pipeline.statistics()
    transport = client._transport
    dedup_hits = dict(client._dedup.hits) if client._dedup is not None else {}
    outcomes: list[tuple[list[str], float]] = [
        ([region, "delivered", ""], stats.delivered),
        *(([region, "rejected", k], v) for k, v in stats.rejected_by_reason.items()),
        *(([region, "dropped", k], v) for k, v in stats.dropped_by_reason.items()),
    ]
    if dedup_hits:
        outcomes.append(([region, "deduplicated", ""], sum(dedup_hits.values())))
    latency = [
        ([region, api, endpoint, status], hist)
        for (api, endpoint, _, status), hist in list(client._accounting.latency.series.items())
    ]
    histograms = [
        ("operation_duration_seconds", "Admission to terminal outcome.", pipeline.end_to_end),
        ("batch_operations", "Operations per batch request.", pipeline.batch_ops),
        ("batch_bytes", "Body bytes per batch request.", pipeline.batch_bytes),
        ("admission_wait_seconds", "Waits for buffer space at admission.", pipeline.admission_wait),
    ]
    counters = [
        ("operations_accepted", "Operations admitted.", stats.accepted),
        ("bytes_sent", "Request body bytes sent.", stats.bytes_sent),
        ("pool_connections_created", "Connections opened.", transport.connections_created),
        (
            "pool_connections_reused",
            "Requests on a reused connection.",
            transport.connections_reused,
        ),
    ]
    gauges = [
        ("buffered_operations", "Operations admitted, not yet decided.", stats.buffered_ops),
        ("buffered_bytes", "Bytes admitted, not yet decided.", stats.buffered_bytes),
        ("in_flight_requests", "Requests on the wire now.", stats.in_flight_requests),
        ("pool_connections_in_use", "Connections serving a request.", transport.connections_in_use),
    ]
    only = ["region"]
    return [
        histogram_family(
            f"{prefix}http_request_duration_seconds",
            "HTTP request latency per attempt (endpoint templates only).",
            ["region", "api", "endpoint", "status_class"],
            latency,
        ),
        *(histogram_family(prefix + n, d, only, [([region], h)]) for n, d, h in histograms),
        *(counter(prefix + n, d, only, [([region], v)]) for n, d, v in counters),
        *(gauge(prefix + n, d, only, [([region], v)]) for n, d, v in gauges),
        counter(
            f"{prefix}operations",
            "Operations by terminal outcome and reason.",
            ["region", "outcome", "reason"],
            outcomes,
        ),
        counter(
            f"{prefix}retries",
            "Retried attempts by cause.",
            ["region", "cause"],
            [([region, k], v) for k, v in stats.retries_by_cause.items()],
        ),
        counter(
            f"{prefix}dedup_hits",
            "Operations skipped as duplicates.",
            ["region", "kind"],
            [([region, k], v) for k, v in dedup_hits.items()],
        ),
    ]
