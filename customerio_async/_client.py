"""``CustomerIO``: the Track API client.

Method names and signatures follow the official ``customerio`` 3.x package, as coroutines,
so migrating is "add ``await``". Each call validates its arguments and builds an
:class:`~customerio_async._operations.Operation` in the caller's task (errors raise there,
before any I/O), then sends it over the client's pooled transport.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from . import _operations as ops
from ._config import (
    DEFAULT_BATCH,
    DEFAULT_POOL,
    DEFAULT_RATE_LIMIT,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ENV_API_KEY,
    ENV_SITE_ID,
    MAX_BATCH_BYTES,
    MAX_ENTITY_BYTES,
    BatchConfig,
    PoolLimits,
    RateLimit,
    Region,
    RetryPolicy,
    Timeouts,
    env_or,
    resolve_region,
    resolve_track_origin,
)
from ._exceptions import (
    ClientStateError,
    CustomerIOError,
    OperationDroppedError,
    OperationError,
    OperationRejectedError,
    ValidationError,
    make_status_error,
    parse_error_body,
)
from ._identifiers import IdentifierLike
from ._middleware import (
    AccountingLayer,
    GateLayer,
    HTTPMiddleware,
    HTTPRequest,
    RetryLayer,
    WorkspaceState,
    build_chain,
)
from ._operations import Operation
from ._pipeline import (
    DELIVERED,
    FlushResult,
    OutcomeCallback,
    Pipeline,
    Receipt,
    Statistics,
    unmappable_batch_errors,
)
from ._retry import parse_retry_after
from ._transport import AiohttpTransport, HTTPResponse
from ._validation import check_size

__all__ = ["BatchResult", "CustomerIO", "RegionInfo"]


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


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
    errors: tuple[OperationError, ...] = ()

    @property
    def rejected_indexes(self) -> frozenset[int]:
        """Indexes of the operations the API rejected."""
        return frozenset(e.batch_index for e in self.errors if e.batch_index is not None)


def _basic_auth(site_id: str, api_key: str) -> str:
    token = base64.b64encode(f"{site_id}:{api_key}".encode()).decode("ascii")
    return f"Basic {token}"


def _parse_json(body: bytes) -> Any:
    # Customer.io answers "{}" (or nothing, for 204); a 2xx body we cannot parse is still a
    # success, so it must not turn into an exception.
    if not body:
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}


class CustomerIO:
    """Asyncio client for Customer.io's Track API.

    Use it as an async context manager; the pooled aiohttp session and the send pipeline
    live exactly as long as the ``async with`` block::

        async with CustomerIO(site_id, api_key) as cio:
            await cio.identify("42", email="ada@example.com", plan="pro")   # returns at once
            receipt = await cio.track("42", "purchased", {"amount": 42})
            outcome = await receipt                                          # opt-in confirmation

    Every Track call validates and serialises its operation in the caller's task (errors raise
    there, before any I/O) and returns a :class:`Receipt`. In the default **batched** mode the
    operation is admitted into the send pipeline, which packs operations into byte-exact
    ``/api/v2/batch`` requests; ``await receipt`` (or ``wait=True``) yields the terminal
    outcome. In **direct** mode (``batching=False``) each call sends its own request (the
    official SDK's v1 request when there is one) and raises on API errors; its receipt is
    already delivered and carries the parsed ``response``.

    Args:
        site_id: Track API site id; defaults to ``$CUSTOMERIO_SITE_ID``.
        api_key: Track API key; defaults to ``$CUSTOMERIO_API_KEY``.
        region: ``"us"``, ``"eu"`` or a :class:`Region`.
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
        http_middleware: Your HTTP middleware, ``async def mw(request, call_next)``; they
            run inside the retry and rate-limit layers, once per attempt (see
            :mod:`customerio_async._middleware` for the onion).

    Raises:
        ConfigurationError: Missing credentials, unknown region or a bad ``track_url``.
    """

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
        http_middleware: Sequence[HTTPMiddleware] = (),
    ) -> None:
        site = env_or(site_id, ENV_SITE_ID, "site_id")
        key = env_or(api_key, ENV_API_KEY, "api_key")
        self._region = resolve_region(region)
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
        # The HTTP onion, built once (see _middleware): retry → gate → yours → accounting.
        self._workspace = WorkspaceState(retry)
        self._accounting = AccountingLayer()
        inner: list[HTTPMiddleware] = [
            GateLayer(self._workspace, rate_limit),
            *http_middleware,
            self._accounting,
        ]
        terminal = self._transport_handler
        self._http_pipeline = build_chain(
            terminal,
            [RetryLayer(retry, self._workspace, unmappable=unmappable_batch_errors), *inner],
        )
        self._http_direct = build_chain(
            terminal, [RetryLayer(retry, self._workspace, direct=True), *inner]
        )
        self._pipeline = Pipeline(
            self._http_pipeline,
            batch=batch,
            retry=retry,
            state=self._workspace,
            accounting=self._accounting,
            region=self._region.value,
            on_outcome=on_outcome,
            on_drop=on_drop,
        )
        self._state = _State.NEW

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

    async def __aenter__(self) -> CustomerIO:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Create the connection pool and start the pipeline. ``async with`` calls this.

        Raises:
            ClientStateError: When the client was already opened or closed (a client is
                single-use: create a new one instead of reopening).
        """
        if self._state is not _State.NEW:
            raise ClientStateError(
                f"this CustomerIO client is {self._state.value}; a client can be opened once"
            )
        await self._transport.open()
        if self._batching:
            self._pipeline.start()
        self._state = _State.OPEN

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop accepting operations, deliver what is buffered, and close the pool.

        Delivery continues until ``timeout`` (default ``batch.drain_timeout``); whatever is
        still undelivered then ends as ``dropped(shutdown_timeout)``, with one summary log
        line. Survives one cancellation of the caller; a second aborts the drain.
        Idempotent; later calls on the client raise :class:`ClientStateError`.
        """
        if self._state is _State.CLOSED:
            return
        opened = self._state is _State.OPEN
        self._state = _State.CLOSED
        try:
            if opened and self._batching:
                drain = self._batch_config.drain_timeout if timeout is None else timeout
                await self._pipeline.aclose(drain)
        finally:
            await self._transport.aclose()

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            if self._state is _State.NEW:
                raise ClientStateError(
                    "the client is not open: use `async with CustomerIO(...) as cio:`"
                )
            raise ClientStateError("the client is closed")

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
        dropped by reason, pending, buffered bytes, requests, retries…)."""
        return self._pipeline.statistics()

    # ------------------------------------------------------------------ sending

    async def _transport_handler(self, request: HTTPRequest) -> HTTPResponse:
        return await self._transport.request(
            request.method,
            request.path,
            body=request.body,
            headers=request.headers or None,
            endpoint=request.endpoint,
        )

    async def _request(
        self, method: str, path: str, body: bytes | None, endpoint: str
    ) -> HTTPResponse:
        self._check_open()
        request = HTTPRequest(method, path, body, endpoint, region=self._region.value)
        response = await self._http_direct(request)
        if 200 <= response.status < 300:
            return response
        raise make_status_error(
            response.status,
            response.body,
            response.headers,
            endpoint=endpoint,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    async def _send_v1(self, req: ops.V1Request) -> Any:
        body = req.encode_body()
        response = await self._request(req.method, req.path(), body, "/api/v1" + req.template)
        return _parse_json(response.body)

    async def _send_entity(self, op: Operation) -> Any:
        body = op.v2_bytes()
        check_size(len(body), MAX_ENTITY_BYTES, "/api/v2/entity body")
        response = await self._request("POST", "/api/v2/entity", body, "/api/v2/entity")
        return _parse_json(response.body)

    async def _submit(self, op: Operation, wait: bool, *, prefer_v1: bool = True) -> Receipt:
        self._check_open()
        if self._batching:
            receipt = await self._pipeline.admit(op)
            if wait:
                outcome = await receipt.wait()
                if outcome.status == "rejected":
                    raise OperationRejectedError(
                        f"{op.action} rejected: {outcome.message or outcome.reason}",
                        outcome=outcome,
                    )
                if outcome.status == "dropped":
                    raise OperationDroppedError(
                        f"{op.action} dropped: {outcome.reason}", outcome=outcome
                    )
            return receipt
        # Direct mode: official-style calls keep the official SDK's v1 request when the v1
        # server can address the person; otherwise (explicit identifier objects it would
        # misread, typed v2 operations) they travel through /api/v2/entity.
        if op.v1 is not None and (prefer_v1 or op.v2 is None):
            response = await self._send_v1(op.v1)
        else:
            response = await self._send_entity(op)
        return Receipt(op, b"", 0.0, outcome=DELIVERED, response=response)

    async def send(self, operation: Operation, *, wait: bool = False) -> Receipt:
        """Send one operation built with :class:`Person`, :class:`Object` or :class:`Delivery`.

        Batched mode admits it into the pipeline; direct mode POSTs it to
        ``/api/v2/entity`` (v1-only operations go to their v1 endpoint).

        Args:
            operation: The operation.
            wait: Wait for the terminal outcome; raise :class:`DeliveryError` unless
                delivered.

        Raises:
            ValidationError: The operation is invalid or larger than 32,000 bytes.
            APIStatusError: Direct mode: the API refused it.
            TransportError: Direct mode: no response.
        """
        if not isinstance(operation, Operation):
            raise ValidationError("operation must be an Operation", field="operation")
        return await self._submit(operation, wait, prefer_v1=False)

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

    # ------------------------------------------------------------------ official API

    async def identify(self, id: IdentifierLike, **kwargs: Any) -> Receipt:
        """Create or update a person with the given attributes.

        Methods that take ``**kwargs`` attributes have no ``wait`` flag (it would shadow an
        attribute of that name): confirm with ``await (await cio.identify(...)).wait()``.

        Args:
            id: The person: a bare identifier (``cio_…`` → cio_id, an email → email, else
                id) or an explicit object such as ``{"id": "a@b.c"}``.
            **kwargs: Attributes (≤300; names ≤150 bytes; values ≤1000 bytes).
        """
        return await self._submit(ops.identify(id, kwargs), False)

    async def delete(self, customer_id: IdentifierLike, *, wait: bool = False) -> Receipt:
        """Delete a person."""
        return await self._submit(ops.delete(customer_id), wait)

    async def track(
        self,
        customer_id: IdentifierLike,
        name: str,
        data: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Track an event for a person.

        Args:
            customer_id: The person (see :meth:`identify`).
            name: Event name, non-blank, ≤100 bytes.
            data: Event data, a mapping ≤100,000 bytes serialised.
            id: Event de-duplication id (a ULID); generated when omitted, so a retry of
                this operation is applied once by Customer.io.
            timestamp: ``datetime`` or Unix seconds; defaults to receipt time.
            wait: Wait for the terminal outcome (raises :class:`DeliveryError` unless
                delivered).
        """
        op = ops.event(customer_id, name, data, id=id, timestamp=timestamp)
        return await self._submit(op, wait)

    async def track_anonymous(
        self,
        anonymous_id: str | None,
        name: str,
        data: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Track an event for an anonymous visitor, or an invite event when
        ``anonymous_id`` is ``None``/empty (put the ``recipient`` in ``data``).

        v2 cannot carry anonymous events, so they travel as individual v1 requests
        through the same pipeline."""
        op = ops.anonymous_event(anonymous_id, name, data, id=id, timestamp=timestamp)
        return await self._submit(op, wait)

    async def pageview(self, customer_id: IdentifierLike, page: str, **data: Any) -> Receipt:
        """Track a page view; ``page`` is the URL or page name."""
        return await self._submit(ops.event(customer_id, page, data, kind="page"), False)

    async def screen(self, customer_id: IdentifierLike, name: str, **data: Any) -> Receipt:
        """Track a mobile screen view."""
        return await self._submit(ops.event(customer_id, name, data, kind="screen"), False)

    async def backfill(
        self, customer_id: IdentifierLike, name: str, timestamp: Any, **data: Any
    ) -> Receipt:
        """Track a historical event; ``timestamp`` is required."""
        if timestamp is None:
            raise ValidationError("timestamp is required in backfill", field="timestamp")
        op = ops.event(customer_id, name, data, timestamp=timestamp)
        return await self._submit(op, False)

    async def add_device(
        self, customer_id: IdentifierLike, device_id: str, platform: str, **data: Any
    ) -> Receipt:
        """Add or update a push device (``platform`` is ``"ios"`` or ``"android"``)."""
        return await self._submit(ops.add_device(customer_id, device_id, platform, data), False)

    async def delete_device(
        self, customer_id: IdentifierLike, device_id: str, *, wait: bool = False
    ) -> Receipt:
        """Remove a push device from a person."""
        return await self._submit(ops.delete_device(customer_id, device_id), wait)

    async def suppress(self, customer_id: IdentifierLike, *, wait: bool = False) -> Receipt:
        """Delete a person and block their identifier from being re-added."""
        return await self._submit(ops.suppress(customer_id), wait)

    async def unsuppress(self, customer_id: IdentifierLike, *, wait: bool = False) -> Receipt:
        """Unblock a suppressed identifier (the profile is not restored)."""
        return await self._submit(ops.unsuppress(customer_id), wait)

    async def merge_customers(
        self,
        primary_id_type: str,
        primary_id: str,
        secondary_id_type: str,
        secondary_id: str,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Merge the secondary person into the primary one (irreversible).

        Id types are ``"id"``, ``"email"`` or ``"cio_id"``.
        """
        op = ops.merge_customers(primary_id_type, primary_id, secondary_id_type, secondary_id)
        return await self._submit(op, wait)

    # ------------------------------------------------------------------ ours

    async def add_to_segment(
        self,
        segment_id: int,
        ids: Sequence[str | int],
        *,
        id_type: str = "id",
        wait: bool = False,
    ) -> Receipt:
        """Add 1–1000 people to a manual segment (``id_type``: id, email or cio_id)."""
        return await self._submit(ops.segment_membership(True, segment_id, ids, id_type), wait)

    async def remove_from_segment(
        self,
        segment_id: int,
        ids: Sequence[str | int],
        *,
        id_type: str = "id",
        wait: bool = False,
    ) -> Receipt:
        """Remove 1–1000 people from a manual segment."""
        return await self._submit(ops.segment_membership(False, segment_id, ids, id_type), wait)

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
