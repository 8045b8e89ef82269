"""The send pipeline: admission, byte-exact batching, ordered lanes, retries, accounting.

Shape of the machine::

    caller task ──admit()──▶ lane queue (asyncio.Queue) ──▶ lane worker ──▶ transport
       validate + serialise once      one per ordering lane        one batch in flight per lane
       reserve buffer budget          (hash of the identifier)     retries block only that lane

* **Admission** happens in the caller's task: the operation is already validated and
  serialised (its bytes are reused for every batch and retry), the buffer budget (bytes and
  operations, in-flight and retrying ones included) is reserved per the overflow policy, and
  the :class:`Receipt` is queued on its lane.
* **Batching**: each worker drains its queue into a ``{"batch":[…]}`` body, checking the exact
  byte size *before* appending and carrying an operation that does not fit into the next
  batch. A batch closes on ``max_batch_ops``, ``max_batch_bytes``, ``linger`` since its first
  operation, ``flush()`` or shutdown. Operations v2 cannot carry (anonymous events, segment
  membership) are sent on their own, in lane order.
* **Ordering**: operations on one person/object share a lane, and a lane has one request in
  flight, so an older ``identify`` never lands after a newer one, retries included.
* **Accounting**: every admitted operation ends exactly once as delivered, rejected(reason)
  or dropped(reason); ``accepted == delivered + rejected + dropped + pending`` always holds.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from .._common.histogram import Histogram
from .._common.logs import RateLimitedLog
from .._config import BatchConfig, RetryPolicy
from .._exceptions import BufferFullError, ClientStateError, GiveUp
from .._http.accounting import AccountingLayer
from .._http.errors import parse_error_body
from .._http.messages import HTTPHandler, HTTPRequest, HTTPResponse
from .._http.retry import RetryCounters

if TYPE_CHECKING:
    from .._track.operations import Operation

__all__ = ["FlushResult", "Outcome", "Pipeline", "Receipt", "Statistics"]

logger = logging.getLogger("customerio_async")

_ENVELOPE_HEAD = b'{"batch":['
_ENVELOPE_TAIL = b"]}"
_ENVELOPE = len(_ENVELOPE_HEAD) + len(_ENVELOPE_TAIL)
BATCH_OPS_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
BATCH_BYTES_BUCKETS = (1e3, 5e3, 1e4, 5e4, 1e5, 2e5, 3e5, 4e5, 4.5e5, 5e5)
# A 400 on a multi-operation batch is bisected like a 413, so one malformed operation is
# isolated (and rejected) instead of taking its batch-mates down with it.
_SPLIT = frozenset({400, 413})

OutcomeStatus = Literal["delivered", "rejected", "dropped", "deduplicated"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an admitted operation ended.

    Attributes:
        status: ``"delivered"`` (the API accepted it), ``"rejected"`` (the API refused it;
            never retried), ``"dropped"`` (the SDK gave up) or ``"deduplicated"`` (identical
            to one sent moments ago, so never admitted — not an error).
        reason: Why, when not delivered: the API's ``reason`` or ``http_<status>`` for
            rejections; ``buffer_full``, ``delivery_timeout``, ``retries_exhausted``,
            ``auth_failed``, ``shutdown_timeout``, ``closed`` or ``internal_error`` for drops.
        message: The API's message for a rejection, or our explanation.
        http_status: The last HTTP status seen, when there was one.
    """

    status: OutcomeStatus
    reason: str | None = None
    message: str | None = None
    http_status: int | None = None

    @property
    def delivered(self) -> bool:
        """Whether the API accepted the operation."""
        return self.status == "delivered"


DELIVERED = Outcome("delivered")
DEDUPLICATED = Outcome("deduplicated", "duplicate")


class _Epoch:
    """Operations admitted between two ``flush()`` calls, counted for the barrier."""

    __slots__ = ("delivered", "done", "dropped", "pending", "rejected")

    def __init__(self) -> None:
        self.pending = 0
        self.delivered = 0
        self.rejected = 0
        self.dropped = 0
        self.done: asyncio.Event | None = None


class Receipt:
    """Proof of admission for one operation, and the way to its outcome.

    ``await receipt.wait()`` returns the terminal :class:`Outcome` without raising;
    cancelling that wait never cancels delivery. (A receipt is deliberately not awaitable
    itself: fire-and-forget calls would then trip mypy's ``unused-awaitable`` check.)

    Attributes:
        operation: The admitted operation.
        response: The parsed response body, in direct (unbatched) mode.
    """

    __slots__ = (
        "_epoch",
        "_lane",
        "_pipeline",
        "_seq",
        "_taken",
        "_waiter",
        "admitted_at",
        "data",
        "operation",
        "outcome",
        "response",
    )

    def __init__(
        self,
        operation: Operation,
        data: bytes,
        admitted_at: float,
        outcome: Outcome | None = None,
        response: Any = None,
    ) -> None:
        self.operation: Operation = operation
        self.data: bytes = data
        self.admitted_at: float = admitted_at
        self.outcome: Outcome | None = outcome
        self.response: Any = response
        self._waiter: asyncio.Future[Outcome] | None = None
        self._epoch: _Epoch | None = None
        self._taken = False  # a worker holds it: no longer evictable by drop_oldest
        self._pipeline: Pipeline | None = None  # set while it is buffered
        self._lane = 0
        self._seq = 0

    def __repr__(self) -> str:
        state = self.outcome.status if self.outcome else "pending"
        return f"<Receipt {self.operation.action} {state}>"

    def done(self) -> bool:
        """Whether the operation has reached its terminal outcome."""
        return self.outcome is not None

    async def wait(self, timeout: float | None = None) -> Outcome:
        """Wait for the terminal outcome.

        Args:
            timeout: Seconds to wait; ``None`` waits until the pipeline decides (bounded by
                the delivery deadline and shutdown).

        Raises:
            TimeoutError: The outcome was not known in time (delivery continues).
        """
        if self.outcome is not None:
            return self.outcome
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
            if self._pipeline is not None:
                # Someone is waiting for this one: its batch should not linger.
                self._pipeline.expedite(self)
        # shield: cancelling (or timing out) this wait must not cancel the shared future.
        try:
            return await asyncio.wait_for(asyncio.shield(self._waiter), timeout)
        except asyncio.TimeoutError:  # the builtin TimeoutError (documented) only from 3.11
            raise TimeoutError(f"no outcome within {timeout} s; delivery continues") from None


@dataclass(frozen=True, slots=True)
class FlushResult:
    """Outcomes of the operations a ``flush()`` covered (admitted since the last flush).

    ``pending`` is how many of them were still undecided when the flush returned; 0 means
    the barrier completed.
    """

    delivered: int = 0
    rejected: int = 0
    dropped: int = 0
    pending: int = 0


@dataclass(frozen=True, slots=True)
class Statistics:
    """A cheap snapshot of the pipeline's counters.

    The invariant ``accepted == delivered + rejected + dropped + pending`` holds in every
    snapshot.
    """

    accepted: int
    delivered: int
    rejected: int
    dropped: int
    pending: int
    buffered_ops: int
    buffered_bytes: int
    in_flight_requests: int
    requests: int
    batches: int
    bytes_sent: int
    retries: int
    deduplicated: int = 0
    rejected_by_reason: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    dropped_by_reason: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    retries_by_cause: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    state: str = "open"


OutcomeCallback = Callable[[Receipt], Awaitable[None] | None]


class _Marker:
    """A flush or stop marker travelling through a lane queue."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind


_STOP = _Marker("stop")
_FLUSH = _Marker("flush")


def unmappable_batch_errors(request: HTTPRequest, response: HTTPResponse) -> bool:
    """Whether a 2xx batch response lists errors we cannot map to its operations.

    Such a response is retried like a server error: accepting it would report rejected
    operations as delivered (Customer.io's own integrations treat it as a 502).
    """
    if request.endpoint != "/api/v2/batch":
        return False
    if response.status != 207 and response.body in (b"{}", b""):
        return False
    errors = parse_error_body(response.body)
    if response.status == 207 and not errors:
        # "Some operations failed" without saying which (an empty, truncated or malformed
        # body): settling it would report the failed ones as delivered.
        return True
    return any(e.batch_index is None or not 0 <= e.batch_index < request.ops for e in errors)


class Pipeline:
    """The batching send pipeline behind a batched :class:`CustomerIO` client."""

    def __init__(
        self,
        http: HTTPHandler,
        *,
        batch: BatchConfig,
        retry: RetryPolicy,
        counters: RetryCounters,
        accounting: AccountingLayer,
        region: str = "us",
        on_outcome: OutcomeCallback | None = None,
        on_drop: OutcomeCallback | None = None,
    ) -> None:
        self._http = http
        self._cfg = batch
        self._retry = retry
        self._ws = counters
        self._acct = accounting
        self.region = region
        self._on_outcome = on_outcome
        self._on_drop = on_drop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock = time.monotonic
        self._log = RateLimitedLog()
        n = batch.max_concurrent_requests
        shared = batch.ordering == "none"
        self._n_lanes = 1 if shared else n
        self._queues: list[asyncio.Queue[Receipt | _Marker]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight_batches: list[list[Receipt] | None] = [None] * n
        self._sem = asyncio.Semaphore(n)
        # buffer accounting (admitted and not yet terminal)
        self._buf_ops = 0
        self._buf_bytes = 0
        self._blocked: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._nudged = False
        self._sending = 0  # workers inside a delivery (gate, retries, wire)
        # Per lane: operations enqueued, and how many of them a flush marker already
        # follows (so a waiter behind the last marker knows to add one).
        self._lane_seq = [0] * self._n_lanes
        self._lane_marked = [0] * self._n_lanes
        self._oldest: collections.deque[Receipt] | None = (
            collections.deque() if batch.overflow == "drop_oldest" else None
        )
        # counters
        self.accepted = 0
        self.delivered = 0
        self.rejected = 0
        self.dropped = 0
        self.batches = 0
        self._rejected_by: collections.Counter[str] = collections.Counter()
        self._dropped_by: collections.Counter[str] = collections.Counter()
        self.batch_ops = Histogram(BATCH_OPS_BUCKETS)
        self.batch_bytes = Histogram(BATCH_BYTES_BUCKETS)
        self.end_to_end = Histogram()
        self.admission_wait = Histogram()
        self._epoch = _Epoch()
        self._epochs: collections.deque[_Epoch] = collections.deque([self._epoch])
        self._state = "new"
        self._failure: BaseException | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._callback_tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return (
            f"<Pipeline state={self._state} lanes={self._n_lanes} "
            f"buffered={self._buf_ops} in_flight={self._acct.in_flight}>"
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the lane workers (inside the running loop)."""
        if self._state != "new":
            return
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time
        self._queues = [asyncio.Queue() for _ in range(self._n_lanes)]
        for i in range(self._cfg.max_concurrent_requests):
            queue = self._queues[i % self._n_lanes]
            task = self._loop.create_task(self._worker(i, queue), name=f"customerio-lane-{i}")
            task.add_done_callback(self._worker_done)
            self._workers.append(task)
        self._state = "open"

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            task.exception()  # mark retrieved: we report failures ourselves, below
        if self._state in ("closing", "closed", "failed"):
            return
        # A worker that died (or was cancelled from outside) while we are open must not
        # leave callers hanging: fail loudly, refuse admission, resolve every receipt.
        exc: BaseException = (
            asyncio.CancelledError("a pipeline worker was cancelled")
            if task.cancelled()
            else (task.exception() or RuntimeError("a pipeline worker exited"))
        )
        self._failure = exc
        self._state = "failed"
        logger.error("customerio-async send pipeline failed: %r", exc, exc_info=exc)
        for other in self._workers:
            other.cancel()
        self._drop_everything("internal_error")

    def _check_admission(self) -> None:
        if self._state != "open":
            if self._state == "failed":
                raise ClientStateError(
                    f"the send pipeline failed ({type(self._failure).__name__}); "
                    "create a new client"
                ) from self._failure
            raise ClientStateError(f"the client is {self._state}; no new operations accepted")

    # ------------------------------------------------------------------ admission

    async def admit(self, op: Operation) -> Receipt:
        """Serialise ``op`` (already validated) once and admit it per the overflow policy.

        Raises:
            ValidationError: The operation cannot be serialised or is too large.
            BufferFullError: The buffer is full and the policy is ``"raise"``.
            ClientStateError: The client is not open.
        """
        self._check_admission()
        if op.has_v2:
            data = op.v2_bytes()
            op.compact()  # buffered memory ≈ the bytes we will send, not the dicts
        else:
            v1 = op.v1
            data = (v1.encode_body() if v1 is not None else None) or b""
        size = len(data)
        if (
            self._blocked
            or self._buf_ops >= self._cfg.max_buffer_ops
            or self._buf_bytes + size > self._cfg.max_buffer_bytes
        ):
            policy = self._cfg.overflow
            if policy == "block":
                started = self._clock()
                granted = await self._wait_for_space(size)
                self.admission_wait.observe(self._clock() - started)
                if granted:
                    if self._state != "open":  # closed while we waited: give the space back
                        self._release(size)
                        self._check_admission()
                    return self._enqueue(op, data, reserved=True)
                policy = self._cfg.overflow_fallback
            if policy == "drop_oldest" and self._drop_oldest_for(size):
                return self._enqueue(op, data, reserved=False)
            if policy == "raise":
                raise BufferFullError(
                    f"send buffer full ({self._buf_ops} operations, {self._buf_bytes} bytes)"
                )
            # Accepted and dropped at once: it never held buffer space, so it has no epoch
            # (nothing to release) and is counted in the current flush window directly.
            receipt = Receipt(op, data, self._clock())
            self.accepted += 1
            self._epoch.dropped += 1
            self._log.log(logging.WARNING, "buffer_full", "send buffer full: dropping operations")
            self._finish(receipt, Outcome("dropped", "buffer_full", "send buffer full"))
            return receipt
        self.admission_wait.counts[0] += 1  # no wait: cheaper than observe(0.0)
        return self._enqueue(op, data, reserved=False)

    def _enqueue(self, op: Operation, data: bytes, *, reserved: bool) -> Receipt:
        receipt = Receipt(op, data, self._clock())
        if not reserved:
            self._buf_ops += 1
            self._buf_bytes += len(data)
        self.accepted += 1
        epoch = self._epoch
        epoch.pending += 1
        receipt._epoch = epoch
        if self._oldest is not None:
            self._trim_oldest(compact=True)
            self._oldest.append(receipt)
        lane = hash(op.lane) % self._n_lanes if self._n_lanes > 1 else 0
        receipt._pipeline = self
        receipt._lane = lane
        seq = self._lane_seq[lane] + 1
        self._lane_seq[lane] = seq
        receipt._seq = seq
        self._queues[lane].put_nowait(receipt)
        return receipt

    async def _wait_for_space(self, size: int) -> bool:
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        entry = (size, fut)
        self._blocked.append(entry)
        self._wake_blocked()
        if not fut.done():
            self._nudge()
        try:
            await asyncio.wait_for(asyncio.shield(fut), self._cfg.enqueue_timeout)
            return True
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            return self._abandon_wait(entry)
        except asyncio.CancelledError:
            # Cancelled before admission: nothing is enqueued, give back any reservation.
            if self._abandon_wait(entry):
                self._release(size)
            raise

    def _nudge(self) -> None:
        """A caller is blocked on a full buffer and no lane is sending: close every open
        batch now, since only delivery frees space (a buffer smaller than
        ``max_batch_ops`` × lanes would otherwise stall on linger). While any lane is
        sending, its completion frees space and batches keep filling: closing them then
        would collapse throughput into a spiral of small batches under a rate limit."""
        if self._nudged or self._sending:
            return
        self._nudged = True
        self._put_markers(_FLUSH)

    def expedite(self, receipt: Receipt) -> None:
        """A caller waits for ``receipt``: make sure a flush marker follows it in its lane,
        so its batch closes without lingering (linger is for fire-and-forget traffic)."""
        lane = receipt._lane
        if self._state != "open" or receipt._seq <= self._lane_marked[lane]:
            return
        self._lane_marked[lane] = self._lane_seq[lane]
        self._put_markers(_FLUSH, [self._queues[lane]])

    def _put_markers(
        self, marker: _Marker, queues: list[asyncio.Queue[Receipt | _Marker]] | None = None
    ) -> None:
        # A shared queue (ordering="none") feeds every worker: each needs its own marker.
        per_queue = self._cfg.max_concurrent_requests if self._n_lanes == 1 else 1
        for queue in self._queues if queues is None else queues:
            for _ in range(per_queue):
                queue.put_nowait(marker)

    def _abandon_wait(self, entry: tuple[int, asyncio.Future[None]]) -> bool:
        """Leave the blocked queue; True when space had been reserved for us meanwhile."""
        try:
            self._blocked.remove(entry)
        except ValueError:
            return entry[1].done()  # already granted: the reservation is ours
        return False

    def _wake_blocked(self) -> None:
        # FIFO and proportional to the space freed: wake heads while they fit.
        cfg = self._cfg
        while self._blocked:
            size, fut = self._blocked[0]
            if self._buf_ops >= cfg.max_buffer_ops or self._buf_bytes + size > cfg.max_buffer_bytes:
                return
            self._blocked.popleft()
            if fut.done():  # pragma: no cover - cancelled waiters are removed first
                continue
            self._buf_ops += 1
            self._buf_bytes += size
            fut.set_result(None)

    def _trim_oldest(self, *, compact: bool = False) -> None:
        """Forget receipts drop_oldest can no longer evict (finished or in flight): from the
        front always, everywhere when they pile up behind a slow lane. The deque then stays
        proportional to the buffer instead of holding every receipt ever admitted."""
        oldest = self._oldest
        assert oldest is not None
        while oldest and (oldest[0].outcome is not None or oldest[0]._taken):
            oldest.popleft()
        if compact and len(oldest) > 2 * self._buf_ops + 64:
            self._oldest = collections.deque(
                r for r in oldest if r.outcome is None and not r._taken
            )

    def _drop_oldest_for(self, size: int) -> bool:
        cfg = self._cfg
        oldest = self._oldest
        assert oldest is not None
        while oldest and (
            self._buf_ops >= cfg.max_buffer_ops or self._buf_bytes + size > cfg.max_buffer_bytes
        ):
            victim = oldest.popleft()
            if victim.outcome is None and not victim._taken:
                self._finish(victim, Outcome("dropped", "buffer_full", "evicted by drop_oldest"))
        fits = self._buf_ops < cfg.max_buffer_ops and self._buf_bytes + size <= cfg.max_buffer_bytes
        if not fits:
            return False
        self._log.log(
            logging.WARNING, "drop_oldest", "send buffer full: evicting oldest operations"
        )
        return True

    def _release(self, size: int) -> None:
        self._buf_ops -= 1
        self._buf_bytes -= size
        if self._blocked:
            self._wake_blocked()

    # ------------------------------------------------------------------ outcomes

    def _finish(self, receipt: Receipt, outcome: Outcome) -> None:
        if receipt.outcome is not None:
            return
        receipt.outcome = outcome
        epoch = receipt._epoch
        status = outcome.status
        self.end_to_end.observe(self._clock() - receipt.admitted_at)
        if status == "delivered":
            self.delivered += 1
        elif status == "rejected":
            self.rejected += 1
            self._rejected_by[outcome.reason or "unknown"] += 1
        else:
            self.dropped += 1
            self._dropped_by[outcome.reason or "unknown"] += 1
        if epoch is not None:
            receipt._epoch = None
            self._release(len(receipt.data))
            epoch.pending -= 1
            if status == "delivered":
                epoch.delivered += 1
            elif status == "rejected":
                epoch.rejected += 1
            else:
                epoch.dropped += 1
            if epoch.pending == 0 and epoch.done is not None:
                epoch.done.set()
        if self._oldest is not None:
            self._trim_oldest()
        waiter = receipt._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(outcome)
        if self._on_outcome is not None:
            self._callback(self._on_outcome, receipt)
        if status == "dropped" and self._on_drop is not None:
            self._callback(self._on_drop, receipt)

    def _callback(self, fn: OutcomeCallback, receipt: Receipt) -> None:
        try:
            result = fn(receipt)
        except Exception:  # callbacks are the user's; they must never break delivery
            logger.exception("customerio-async outcome callback raised")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._await_callback(result))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)

    @staticmethod
    async def _await_callback(result: Awaitable[None]) -> None:
        try:
            await result
        except Exception:
            logger.exception("customerio-async outcome callback raised")

    def _finish_delivered(self, batch: list[Receipt]) -> None:
        """``_finish(r, DELIVERED)`` for a whole batch, with the bookkeeping done in bulk:
        the common case, so it is the one path kept tight."""
        if self._on_outcome is not None:  # callbacks: take the general path
            self._finish_all(batch, DELIVERED)
            return
        now = self._clock()
        observe = self.end_to_end.observe
        count = 0
        released = 0
        for r in batch:
            if r.outcome is not None:
                continue
            r.outcome = DELIVERED
            count += 1
            observe(now - r.admitted_at)
            epoch = r._epoch
            if epoch is not None:
                r._epoch = None
                released += len(r.data)
                epoch.pending -= 1
                epoch.delivered += 1
                if epoch.pending == 0 and epoch.done is not None:
                    epoch.done.set()
            waiter = r._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(DELIVERED)
        self.delivered += count
        self._buf_ops -= count
        self._buf_bytes -= released
        if self._oldest is not None:
            self._trim_oldest()
        if self._blocked:
            self._wake_blocked()

    def _finish_all(self, batch: list[Receipt], outcome: Outcome) -> None:
        for r in batch:
            self._finish(r, outcome)

    # ------------------------------------------------------------------ workers

    async def _worker(self, index: int, queue: asyncio.Queue[Receipt | _Marker]) -> None:
        cfg = self._cfg
        max_ops = cfg.max_batch_ops
        max_bytes = cfg.max_batch_bytes
        linger = cfg.linger
        carry: Receipt | _Marker | None = None
        while True:
            item = carry if carry is not None else await queue.get()
            carry = None
            if isinstance(item, _Marker):
                if item is _STOP:
                    return
                self._nudged = False
                continue
            if item.outcome is not None:  # evicted by drop_oldest while queued
                continue
            if not item.operation.has_v2:
                await self._deliver_single(index, item)
                continue
            # Taken as soon as it leaves the queue: drop_oldest must not evict an operation
            # this batch will send, even while the batch lingers for more.
            item._taken = True
            batch = [item]
            size = _ENVELOPE + len(item.data)
            deadline = item.admitted_at + linger
            flushing = False
            while len(batch) < max_ops:
                try:
                    nxt = queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - self._clock()
                    if flushing or remaining <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(queue.get(), remaining)
                    except asyncio.TimeoutError:  # the builtin only from Python 3.11
                        break
                if isinstance(nxt, _Marker):
                    if nxt is _STOP:
                        carry = nxt
                        break
                    # A flush cancels the linger, not the drain: everything already queued
                    # still joins this batch (so concurrent waiters share one request).
                    flushing = True
                    self._nudged = False
                    continue
                if nxt.outcome is not None:
                    continue
                if not nxt.operation.has_v2:
                    carry = nxt
                    break
                grown = size + 1 + len(nxt.data)
                if grown > max_bytes:  # check before appending; carry it to the next batch
                    carry = nxt
                    break
                nxt._taken = True
                batch.append(nxt)
                size = grown
            # Left in place if we are cancelled, so shutdown can account for these.
            self._in_flight_batches[index] = batch
            self._sending += 1
            try:
                await self._deliver_batch(batch, size)
            finally:
                self._sending -= 1
            self._in_flight_batches[index] = None
            if self._blocked and not self._sending:
                self._nudge()  # space is still short and nothing else will free it

    # ------------------------------------------------------------------ delivery

    async def _deliver_batch(self, batch: list[Receipt], size: int) -> None:
        body = b"".join((_ENVELOPE_HEAD, b",".join([r.data for r in batch]), _ENVELOPE_TAIL))
        assert len(body) == size
        self.batches += 1
        self.batch_ops.observe(len(batch))
        self.batch_bytes.observe(size)
        response = await self._attempt(batch, "POST", "/api/v2/batch", body, "/api/v2/batch")
        if response is None:
            return
        status = response.status
        if 200 <= status < 300:
            self._settle_batch(batch, response)
        elif status in _SPLIT and len(batch) > 1:
            half = len(batch) // 2
            for part in (batch[:half], batch[half:]):
                part_size = _ENVELOPE + sum(len(r.data) for r in part) + len(part) - 1
                await self._deliver_batch(part, part_size)
        else:
            self._reject(batch, response)

    def _settle_batch(self, batch: list[Receipt], response: HTTPResponse) -> None:
        body = response.body
        if body in (b"{}", b"") and response.status == 200:
            self._finish_delivered(batch)
            return
        errors = parse_error_body(body)
        rejected: dict[int, Outcome] = {}
        for err in errors:
            if err.batch_index is not None and 0 <= err.batch_index < len(batch):
                rejected[err.batch_index] = Outcome(
                    "rejected", err.reason or "invalid", err.message, response.status
                )
        for i, receipt in enumerate(batch):
            self._finish(receipt, rejected.get(i, DELIVERED))

    def _reject(self, batch: list[Receipt], response: HTTPResponse) -> None:
        errors = parse_error_body(response.body)
        message = "; ".join(e.message for e in errors[:3]) or f"HTTP {response.status}"
        outcome = Outcome("rejected", f"http_{response.status}", message, response.status)
        self._finish_all(batch, outcome)

    async def _deliver_single(self, index: int, receipt: Receipt) -> None:
        v1 = receipt.operation.v1
        assert v1 is not None
        batch = [receipt]
        receipt._taken = True
        self._in_flight_batches[index] = batch
        self._sending += 1
        try:
            response = await self._attempt(
                batch, v1.method, v1.path(), receipt.data or None, "/api/v1" + v1.template
            )
        finally:
            self._sending -= 1
        self._in_flight_batches[index] = None
        if response is None:
            return
        if 200 <= response.status < 300:
            self._finish(receipt, DELIVERED)
        else:
            self._reject(batch, response)

    async def _attempt(
        self,
        batch: list[Receipt],
        method: str,
        path: str,
        body: bytes | None,
        endpoint: str,
    ) -> HTTPResponse | None:
        """Send through the HTTP chain (retries included). Returns the final response (2xx
        or not retryable), or ``None`` when the operations were dropped — they are finished
        then."""
        request = HTTPRequest(
            method,
            path,
            body,
            endpoint,
            region=self.region,
            deadline=min(r.admitted_at for r in batch) + self._retry.delivery_timeout,
            ops=len(batch),
        )
        try:
            async with self._sem:
                return await self._http(request)
        except GiveUp as exc:
            self._log.log(
                logging.WARNING,
                exc.reason,
                "dropping operations: %s (last error: %s)",
                exc.reason,
                exc.cause,
            )
            message = f"last error: {exc.cause}"
            self._finish_all(batch, Outcome("dropped", exc.reason, message, exc.status))
            return None

    # ------------------------------------------------------------------ flush / close

    async def flush(self, timeout: float | None) -> FlushResult:
        """Close open batches now and wait for every operation admitted so far.

        Returns:
            Outcome counts for the operations admitted since the previous flush, and how
            many were still pending at the deadline.
        """
        if self._state not in ("open", "closing"):
            return FlushResult()
        epoch = self._epoch
        self._epoch = _Epoch()
        self._epochs.append(self._epoch)
        self._put_markers(_FLUSH)
        waiting = [e for e in self._epochs if e is not self._epoch and e.pending > 0]
        for e in waiting:
            if e.done is None:
                e.done = asyncio.Event()
        try:
            if waiting:
                await asyncio.wait_for(
                    asyncio.gather(*(e.done.wait() for e in waiting if e.done)), timeout
                )
        except asyncio.TimeoutError:  # the builtin only from Python 3.11
            pass
        self._epochs = collections.deque(
            e for e in self._epochs if e.pending > 0 or e is self._epoch
        )
        return FlushResult(epoch.delivered, epoch.rejected, epoch.dropped, epoch.pending)

    async def aclose(self, timeout: float | None) -> None:
        """Stop admission, drain within ``timeout``, drop the rest as ``shutdown_timeout``.

        Survives one cancellation of the caller (the drain goes on); a second one aborts it,
        and whatever is undelivered is then dropped at once.
        """
        if self._close_task is None:
            if self._loop is None:
                self._state = "closed"
                return
            self._close_task = self._loop.create_task(self._close(timeout))
        task = self._close_task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                task.cancel()
                self._abort()
                raise
            raise

    async def _close(self, timeout: float | None) -> None:
        was_failed = self._state == "failed"
        self._state = "closing"
        # Blocked admitters get an error now instead of waiting out enqueue_timeout.
        for _, fut in list(self._blocked):
            if not fut.done():
                fut.set_exception(ClientStateError("the client is closing"))
        self._blocked.clear()
        self._put_markers(_STOP)
        started = self._clock()
        before = self.dropped
        try:
            if self._workers and not was_failed:
                await asyncio.wait(self._workers, timeout=timeout)
        finally:
            self._abort()
        if self._callback_tasks:
            await asyncio.wait(list(self._callback_tasks), timeout=1.0)
        dropped = self.dropped - before
        logger.log(
            logging.WARNING if dropped else logging.INFO,
            "customerio-async closed in %.2f s: %d delivered, %d rejected, %d dropped "
            "(%d at shutdown)",
            self._clock() - started,
            self.delivered,
            self.rejected,
            self.dropped,
            dropped,
        )

    def _abort(self) -> None:
        """Cancel the workers and drop everything undelivered (synchronous, idempotent)."""
        if self._state != "failed":
            self._state = "closing"
        for task in self._workers:
            task.cancel()
        self._drop_everything("shutdown_timeout")
        self._state = "closed"

    def _drop_everything(self, reason: str) -> None:
        for batch in self._in_flight_batches:
            if batch:
                self._finish_all(batch, Outcome("dropped", reason))
        for queue in self._queues:
            while True:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if isinstance(item, Receipt):
                    self._finish(item, Outcome("dropped", reason))

    # ------------------------------------------------------------------ statistics

    @property
    def state(self) -> str:
        """``new``, ``open``, ``closing``, ``closed`` or ``failed``."""
        return self._state

    def statistics(self) -> Statistics:
        """A consistent snapshot of every counter (cheap: no locks, no I/O)."""
        terminal = self.delivered + self.rejected + self.dropped
        return Statistics(
            accepted=self.accepted,
            delivered=self.delivered,
            rejected=self.rejected,
            dropped=self.dropped,
            pending=self.accepted - terminal,
            buffered_ops=self._buf_ops,
            buffered_bytes=self._buf_bytes,
            in_flight_requests=self._acct.in_flight,
            requests=self._acct.requests,
            batches=self.batches,
            bytes_sent=self._acct.bytes_sent,
            retries=self._ws.retries,
            rejected_by_reason=MappingProxyType(dict(self._rejected_by)),
            dropped_by_reason=MappingProxyType(dict(self._dropped_by)),
            retries_by_cause=MappingProxyType(dict(self._ws.by_cause)),
            state=self._state,
        )
