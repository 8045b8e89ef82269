"""Dispatch: which batch goes next, at most ``max_concurrent_requests`` on the wire, and
what each answer means for its operations.

A batch that should go (full, linger over, someone waits, flush, released by its
predecessors) joins the queue; whenever a request slot is free the queue's head is sealed
(an open batch keeps taking operations until that moment) and sent by a task of its own.

Bulk batches (nobody waits for them, no flush or close hurries them) may hold at most half
the slots (at least one); the rest stay free for urgent ones. A confirmed call then never
queues behind a pipeline full of fire-and-forget traffic, and bulk traffic fills fewer,
fuller requests (more slots for it only meant more half-empty batches at once: less
throughput and more of the rate budget spent).

One task per request, not per operation or per lane: a task that dies takes only its own
batch down (``dropped(internal_error)``), and the rest keeps running.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._common.logs import logger
from .._exceptions import GiveUp
from .._http.errors import parse_error_body
from .._http.gate import Gate
from .._http.messages import HTTPHandler, HTTPRequest, HTTPResponse
from .batch import DONE, OPEN, READY, SENDING, Batch
from .receipt import DELIVERED, Outcome

if TYPE_CHECKING:
    from .ledger import Ledger
    from .protocol import BatchFormat

__all__ = ["Dispatcher", "bulk_share"]

Finish = Callable[[Batch, Outcome, "dict[int, Outcome] | None"], None]


def bulk_share(max_in_flight: int) -> int:
    """Request slots bulk batches may hold: half of ``max_in_flight``, at least one.

    Example::

        assert bulk_share(16) == 8 and bulk_share(1) == 1
    """
    return max(1, max_in_flight // 2)


class Dispatcher:
    """Sends batches (see the module docstring).

    Args:
        http: The HTTP chain in ``deliver`` mode (retries until the deadline, raises
            ``GiveUp``).
        fmt: The API's batch request.
        finish: Records a batch's outcome (the pipeline's accounting).
        seal: Turns an open batch into a ready one.
        loop: The event loop.
        max_in_flight: Requests on the wire at most.
        region: Request label.
        delivery_timeout: Seconds from a batch's oldest operation to its deadline.
        ledger: Where batch sizes are recorded.
        gate: The workspace's gate, passed before a batch is sealed.
    """

    def __init__(
        self,
        http: HTTPHandler,
        fmt: BatchFormat,
        *,
        finish: Finish,
        seal: Callable[[Batch], None],
        loop: asyncio.AbstractEventLoop,
        max_in_flight: int,
        region: str,
        delivery_timeout: float,
        ledger: Ledger,
        gate: Gate,
    ) -> None:
        self._ledger = ledger
        self._gate = gate
        self._http = http
        self._fmt = fmt
        self._finish = finish
        self._seal = seal
        self._loop = loop
        self._max = max_in_flight
        self._max_bulk = bulk_share(max_in_flight)
        self._bulk: set[asyncio.Task[None]] = set()  # send tasks of bulk batches
        self._region = region
        self._timeout = delivery_timeout
        self.queue: collections.deque[Batch] = collections.deque()
        self.tasks: dict[asyncio.Task[None], Batch] = {}
        self.sent = 0  # batch requests started (a split counts once)
        self._scheduled = False
        # A send task cancelled by anyone but our own close is an internal failure.
        self.reason_on_cancel = "internal_error"
        self.stopped = False
        self.on_idle: Callable[[], None] | None = None

    @property
    def in_flight(self) -> int:
        """Batches on the wire (or retrying)."""
        return len(self.tasks)

    def want(self, batch: Batch) -> None:
        """``batch`` should go as soon as a slot is free (idempotent)."""
        if self.stopped:
            return
        if not batch.queued:
            batch.queued = True
            self.queue.append(batch)
        self.schedule()

    def schedule(self) -> None:
        """Pump in the next loop tick: everything that becomes due in this tick (several
        waiters, say) shares the same request."""
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._scheduled = False
        queue = self.queue
        waiting: list[Batch] = []  # bulk batches past the bulk share, kept in their order
        while queue and len(self.tasks) < self._max and not self.stopped:
            batch = queue.popleft()
            if batch.state != OPEN and batch.state != READY:
                batch.queued = False
                continue  # decided meanwhile (dropped at close)
            bulk = not batch.urgent
            if bulk and len(self._bulk) >= self._max_bulk:
                waiting.append(batch)
                continue
            # Still `queued`: it is never queued twice while its task waits for the gate.
            task = self._loop.create_task(self._send(batch), name="customerio-send")
            self.tasks[task] = batch
            if bulk:
                self._bulk.add(task)
            task.add_done_callback(self._sent)
        if waiting:
            queue.extendleft(reversed(waiting))

    def _sent(self, task: asyncio.Task[None]) -> None:
        batch = self.tasks.pop(task)
        self._bulk.discard(task)
        if batch.state != DONE:
            if task.cancelled():
                outcome = Outcome("dropped", self.reason_on_cancel, "the send was cancelled")
            else:
                exc = task.exception()
                logger.error(
                    "customerio-async: internal error while sending a %s batch; its %d "
                    "operation(s) are dropped",
                    self._fmt.api,
                    batch.count,
                    exc_info=exc,
                )
                outcome = Outcome("dropped", "internal_error", type(exc).__name__)
            self._finish(batch, outcome, None)
        elif not task.cancelled():
            task.exception()  # retrieved: a late failure after the batch was decided
        if self.queue:
            self.schedule()
        elif not self.tasks and self.on_idle is not None:
            self.on_idle()

    # ------------------------------------------------------------------ one request

    def _probe(self, batch: Batch) -> HTTPRequest:
        """What the gate needs to know of the batch's first request: its deadline."""
        return HTTPRequest(
            "POST",
            self._fmt.path,
            None,
            self._fmt.path,
            api=self._fmt.api,
            region=self._region,
            deadline=batch.first_at + self._timeout,
        )

    def _request(self, batch: Batch, lo: int, hi: int) -> HTTPRequest:
        single = batch.single
        deadline = batch.first_at + self._timeout
        if single is not None:
            body = batch.parts[0] if single.has_body else None
            return HTTPRequest(
                single.method,
                single.path,
                body,
                single.endpoint,
                api=self._fmt.api,
                region=self._region,
                headers=dict(self._fmt.headers),
                deadline=deadline,
                authenticated=single.authenticated,
                gated=True,
            )
        fmt = self._fmt
        body = fmt.body(batch.parts[lo:hi])
        self._ledger.batch_ops.observe(hi - lo)
        self._ledger.batch_bytes.observe(len(body))  # the plain body: what the limits count
        headers = dict(fmt.headers)
        if fmt.encode is not None:
            body, encoding = fmt.encode(body)
            headers.update(encoding)
        return HTTPRequest(
            "POST",
            fmt.path,
            body,
            fmt.path,
            api=fmt.api,
            region=self._region,
            headers=headers,
            deadline=deadline,
            ops=hi - lo,
            gated=lo == batch.evicted and hi == batch.count,  # the first: already through
        )

    async def _send(self, batch: Batch) -> None:
        # Late binding: wait for the gate (a pause, a rate-limit token) BEFORE sealing, so an
        # open batch keeps taking operations until the request can really leave — under a
        # rate limit, waiting callers share requests instead of queueing behind tokens.
        try:
            await self._gate.acquire(self._probe(batch))
        except GiveUp as exc:
            self._finish(batch, Outcome("dropped", exc.reason, f"last error: {exc.cause}"), None)
            return
        if batch.state != OPEN and batch.state != READY:
            return  # decided while it waited (dropped at close)
        self._seal(batch)  # no more operations: it leaves now
        if self._loop.time() >= batch.first_at + self._timeout:
            # It waited out its whole delivery_timeout (behind a predecessor that kept
            # failing, or for the gate): give up instead of sending it late.
            self._finish(batch, Outcome("dropped", "delivery_timeout", "never sent in time"), None)
            return
        batch.state = SENDING
        self.sent += 1
        exceptions: dict[int, Outcome] = {}
        # Operations evicted by drop_oldest (a prefix) are not sent.
        outcome = await self._range(batch, batch.evicted, batch.count, exceptions)
        self._finish(batch, outcome, exceptions or None)

    async def _range(
        self, batch: Batch, lo: int, hi: int, exceptions: dict[int, Outcome]
    ) -> Outcome:
        """Send operations ``lo:hi``; return the outcome of the range's operations (those
        that differ are added to ``exceptions`` by absolute index)."""
        request = self._request(batch, lo, hi)
        try:
            response = await self._http(request)
        except GiveUp as exc:
            return Outcome("dropped", exc.reason, f"last error: {exc.cause}", exc.status)
        status = response.status
        if 200 <= status < 300:
            if batch.single is not None:
                return DELIVERED
            outcome, found = self._fmt.settle(response, hi - lo)
            for index, exception in (found or {}).items():
                exceptions[lo + index] = exception
            return outcome
        if status in self._fmt.split_statuses and hi - lo > 1 and batch.single is None:
            return await self._split(batch, lo, hi, exceptions)
        return rejection(response)

    async def _split(
        self, batch: Batch, lo: int, hi: int, exceptions: dict[int, Outcome]
    ) -> Outcome:
        # One bad operation (400) or an oversized body (413) must not take the rest down:
        # halve until the culprit stands alone.
        mid = (lo + hi) // 2
        for a, b in ((lo, mid), (mid, hi)):
            outcome = await self._range(batch, a, b, exceptions)
            if not outcome.delivered:
                for index in range(a, b):
                    exceptions.setdefault(index, outcome)
        return DELIVERED


def rejection(response: HTTPResponse) -> Outcome:
    """The outcome of operations the API refused as a whole (never retried)."""
    errors = parse_error_body(response.body)
    message = "; ".join(e.message for e in errors[:3]) or f"HTTP {response.status}"
    field = next((e.field for e in errors if e.field), None)
    status = response.status
    return Outcome("rejected", f"http_{status}", message, status, field)
