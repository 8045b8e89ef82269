"""Middleware: one signature, two levels, chains built once per client.

A middleware has aiohttp's shape, ``async def mw(request, call_next) -> response``:

* **Operation level** — ``request`` is an :class:`~customerio_async.Operation`, the response a
  :class:`~customerio_async.Receipt`. It runs in the caller's task at admission, before the
  operation is buffered (de-duplication and region routing live here). Returning a receipt
  without calling ``call_next`` short-circuits: nothing is sent.
* **HTTP level** — ``request`` is an :class:`HTTPRequest`, the response an ``HTTPResponse``.
  It runs around every request the client sends (a batch, a v1 call, a direct call).

The onion, outermost first, for HTTP requests::

    retry → gate (429/auth pause, rate limit) → your HTTP middleware → accounting → transport

so retries and the rate limit wrap *every attempt*, your middleware sees each attempt (with
``request.attempt``), and the accounting layer (counters, latency histogram) times exactly the
network exchange. Operation middleware runs once per operation, whatever happens later to the
batch it travels in: batching and retries are below it.

A chain is built once (``build_chain``); disabled layers are simply not in it, so they cost
nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ._config import RateLimit, RetryPolicy
from ._exceptions import ConnectionLostError, TransportError
from ._ratelimit import RateLimitedLog, TokenBucket
from ._retry import parse_retry_after
from ._transport import HTTPResponse

if TYPE_CHECKING:
    from ._operations import Operation
    from ._pipeline import Receipt

__all__ = [
    "LATENCY_BUCKETS",
    "AccountingLayer",
    "GateLayer",
    "GiveUp",
    "HTTPHandler",
    "HTTPMiddleware",
    "HTTPRequest",
    "OperationHandler",
    "OperationMiddleware",
    "RetryLayer",
    "WorkspaceState",
    "build_chain",
]

logger = logging.getLogger("customerio_async")

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Req], Awaitable[Resp]]
Middleware = Callable[[Req, Callable[[Req], Awaitable[Resp]]], Awaitable[Resp]]

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
AUTH = frozenset({401, 403})

# Sub-millisecond through multi-second: loopback and in-process paths land in the first
# buckets, cross-ocean requests and retried operations in the last ones.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 300.0,
)  # fmt: skip


@dataclass(slots=True)
class HTTPRequest:
    """One HTTP request as HTTP middleware sees it.

    Attributes:
        method: HTTP method.
        path: Percent-encoded path and query below the origin.
        body: Body bytes, or ``None``.
        endpoint: Endpoint template (``/api/v2/batch``, ``/api/v1/customers/{id}``), safe
            for logs and metric labels: never a concrete identifier.
        api: ``"track"`` or ``"app"``.
        region: The workspace region (``"us"``/``"eu"``).
        headers: Extra request headers; middleware may add to them.
        deadline: Loop time after which retrying is pointless (``None``: no deadline).
        attempt: 1 for the first attempt, 2 for the first retry, …
        ops: Operations carried by this request (for metrics).
    """

    method: str
    path: str
    body: bytes | None
    endpoint: str
    api: str = "track"
    region: str = "us"
    headers: dict[str, str] = field(default_factory=dict)
    deadline: float | None = None
    attempt: int = 1
    ops: int = 1


HTTPHandler = Callable[[HTTPRequest], Awaitable[HTTPResponse]]
HTTPMiddleware = Callable[[HTTPRequest, HTTPHandler], Awaitable[HTTPResponse]]
OperationHandler = Callable[["Operation"], Awaitable["Receipt"]]
OperationMiddleware = Callable[["Operation", OperationHandler], Awaitable["Receipt"]]


def build_chain(
    handler: Handler[Req, Resp], middlewares: Sequence[Middleware[Req, Resp]]
) -> Handler[Req, Resp]:
    """Compose ``middlewares`` (outermost first) around ``handler``, once."""
    for mw in reversed(middlewares):
        handler = functools.partial(mw, call_next=handler)  # type: ignore[call-arg]
    return handler


class GiveUp(Exception):
    """Raised by the pipeline's retry layer when a request will not be retried any more.

    Attributes:
        reason: The drop reason (``delivery_timeout``, ``retries_exhausted``, ``auth_failed``).
        cause: The last failure (``http_503``, ``ConnectError``…).
        status: The last HTTP status, if any.
    """

    def __init__(self, reason: str, cause: str, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.status = status


class WorkspaceState:
    """What every sender of one workspace shares: the pause gate and the retry budget."""

    __slots__ = ("budget", "clock", "paused_until", "retries", "retries_by_cause")

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.paused_until = 0.0
        self.budget = policy.budget
        self.retries = 0
        self.retries_by_cause: collections.Counter[str] = collections.Counter()

    def pause(self, seconds: float) -> None:
        """Hold every sender for ``seconds`` (never shortens an existing pause)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)


class GateLayer:
    """Waits out a workspace pause (429, auth failure), then takes a rate-limit token."""

    def __init__(self, state: WorkspaceState, rate_limit: RateLimit | None) -> None:
        self._state = state
        self._bucket = TokenBucket(rate_limit, state.clock) if rate_limit else None

    async def __call__(self, request: HTTPRequest, call_next: HTTPHandler) -> HTTPResponse:
        state = self._state
        # Re-check after sleeping: another sender may have extended the pause meanwhile.
        while True:
            wait = state.paused_until - state.clock()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        if self._bucket is not None and (wait := self._bucket.reserve()) > 0:
            await asyncio.sleep(wait)
        return await call_next(request)


class RetryLayer:
    """Retries 408/429/5xx/transport failures with full-jitter backoff.

    ``pipeline`` mode (batched sends) retries until the request's deadline or
    ``max_attempts`` and then raises :class:`GiveUp`; a 2xx whose ``errors[]`` cannot be
    mapped to the batch is retried too (``unmappable`` callback). ``direct`` mode retries up
    to ``direct_attempts`` and returns the last response (or raises the last transport
    error); a server-requested wait longer than ``backoff_cap`` is returned at once instead
    of slept through, so the caller can raise :class:`RateLimitError` promptly.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        state: WorkspaceState,
        *,
        direct: bool = False,
        unmappable: Callable[[HTTPRequest, HTTPResponse], bool] | None = None,
    ) -> None:
        self._policy = policy
        self._state = state
        self._direct = direct
        self._unmappable = unmappable
        self._log = RateLimitedLog()

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        policy = self._policy
        if self._state.budget < policy.budget / 2:
            # Retry budget spent: probe slowly instead of hammering a struggling API.
            delay = policy.backoff_cap / 2 + random.uniform(0, policy.backoff_cap / 2)
        else:
            ceiling = min(policy.backoff_cap, policy.backoff_base * (2 ** (attempt - 1)))
            delay = random.uniform(0, ceiling)  # full jitter
        if retry_after is not None:
            # A floor, plus up to 10 % jitter so clients told the same value do not return
            # in lock-step.
            floor = min(retry_after, policy.max_retry_after)
            delay = max(delay, floor) + random.uniform(0, 0.1 * floor)
        return delay

    def _retry_count(self, cause: str) -> None:
        self._state.retries += 1
        self._state.retries_by_cause[cause] += 1

    async def __call__(self, request: HTTPRequest, call_next: HTTPHandler) -> HTTPResponse:
        policy = self._policy
        state = self._state
        max_attempts = policy.direct_attempts if self._direct else policy.max_attempts
        reset_retried = False
        last_status: int | None = None
        while True:
            retry_after: float | None = None
            try:
                response = await call_next(request)
            except ConnectionLostError as exc:
                cause = "connection_lost"
                # A reset on a reused keep-alive socket is retried once at once (the server
                # closed an idle connection under us); event ULIDs make it safe.
                if not reset_retried and not self._direct:
                    reset_retried = True
                    self._retry_count(cause)
                    request.attempt += 1
                    request.headers["X-Retry-Count"] = str(request.attempt - 1)
                    continue
                if self._direct and request.attempt >= max_attempts:
                    raise
                error: TransportError | None = exc
            except TransportError as exc:
                cause = type(exc).__name__
                if self._direct and request.attempt >= max_attempts:
                    raise
                error = exc
            else:
                error = None
                status = response.status
                last_status = status
                if status < 300 and not (
                    self._unmappable is not None and self._unmappable(request, response)
                ):
                    state.budget = min(policy.budget, state.budget + policy.budget_refill)
                    return response
                if status in AUTH and not self._direct:
                    cause = "auth_failed"
                    state.pause(policy.auth_pause)
                    self._log.log(
                        logging.ERROR,
                        "auth",
                        "Customer.io answered %d: check the site id and API key; "
                        "sending is paused for %.0f s",
                        status,
                        policy.auth_pause,
                    )
                elif status in RETRYABLE or status < 300:
                    cause = f"http_{status}" if status >= 300 else "invalid_response"
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    if status == 429:
                        self._pause_for_429(retry_after, request.attempt)
                    if self._direct and (
                        request.attempt >= max_attempts or (retry_after or 0.0) > policy.backoff_cap
                    ):
                        return response
                else:
                    return response  # not retryable: the caller decides
            state.budget = max(0.0, state.budget - 1.0)
            delay = self.backoff(request.attempt, retry_after)
            if not self._direct:
                if request.attempt >= max_attempts:
                    raise GiveUp("retries_exhausted", cause, last_status) from error
                if request.deadline is not None and state.clock() + delay >= request.deadline:
                    reason = "auth_failed" if cause == "auth_failed" else "delivery_timeout"
                    raise GiveUp(reason, cause, last_status) from error
            self._retry_count(cause)
            logger.debug("retrying %s in %.3f s after %s", request.endpoint, delay, cause)
            await asyncio.sleep(delay)
            request.attempt += 1
            request.headers["X-Retry-Count"] = str(request.attempt - 1)

    def _pause_for_429(self, retry_after: float | None, attempt: int) -> None:
        policy = self._policy
        if retry_after is not None:
            pause = min(retry_after, policy.max_retry_after)
        else:
            ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (attempt - 1))
            pause = random.uniform(0, ceiling)
        self._state.pause(pause)


class Histogram:
    """A fixed-bucket histogram cheap enough for hot paths (no locks: one event loop)."""

    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last slot is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one value."""
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """Values recorded."""
        return sum(self.counts)


class LabelledHistograms:
    """Histograms keyed by a label tuple, created on first use (bounded label sets only)."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self._buckets = tuple(buckets)
        self.series: dict[Any, Histogram] = {}

    def get(self, key: Any) -> Histogram:
        """The histogram for ``key``."""
        hist = self.series.get(key)
        if hist is None:
            hist = self.series[key] = Histogram(self._buckets)
        return hist


def status_class(status: int | None) -> str:
    """``2xx``…``5xx``, or ``error`` when there was no response."""
    return f"{status // 100}xx" if status is not None else "error"


class AccountingLayer:
    """Innermost layer: counts requests, bytes and in-flight requests, and times each
    network exchange into a histogram labelled by api, endpoint template, region and
    status class (a bounded label set: never an identifier)."""

    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.bytes_sent = 0
        self.latency = LabelledHistograms()
        self._clock = time.perf_counter

    async def __call__(self, request: HTTPRequest, call_next: HTTPHandler) -> HTTPResponse:
        self.requests += 1
        self.in_flight += 1
        self.bytes_sent += len(request.body) if request.body else 0
        started = self._clock()
        status: int | None = None
        try:
            response = await call_next(request)
            status = response.status
            return response
        finally:
            self.in_flight -= 1
            key = (request.api, request.endpoint, request.region, status_class(status))
            self.latency.get(key).observe(self._clock() - started)
