"""The send pipeline: admission, key-ordered byte-exact batches, dispatch, outcomes.

Shape of the machine::

    caller task ── admit() ──▶ open batch (bytes)  ──▶ dispatcher ──▶ HTTP chain (deliver)
      validate + serialise      or a held batch        ≤ max_concurrent     retry ▸ gate ▸ …
      (at the call site)        (its key is busy)      requests, a task each

* **Admission** happens in the caller's task and is synchronous unless the buffer is full:
  the operation's bytes are appended to a batch and a light :class:`Receipt` (batch + index)
  is returned. No future, task or queue item per operation.
* **Ordering** is by key (:mod:`.ordering`): an operation waits only for earlier undecided
  operations on the same person or object.
* **Dispatch** (:mod:`.dispatch`): a batch goes when it is full, its linger is over, someone
  waits for one of its operations, a flush asks, or its predecessors are decided; sealing
  happens when a request slot is free, so a batch keeps filling while it waits for one.
* **Outcomes** (:mod:`.ledger`): one outcome per batch plus per-index exceptions; every
  admitted operation ends exactly once as delivered, rejected or dropped, and
  ``accepted == delivered + rejected + dropped + pending`` holds at every instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import MappingProxyType

from .._common.logs import logger
from .._config import BatchConfig, RetryPolicy
from .._exceptions import BufferFullError, ClientStateError
from .._http.accounting import AccountingLayer
from .._http.gate import Gate
from .._http.messages import HTTPHandler
from .._http.retry import RetryCounters
from .batch import DONE, HELD, OPEN, READY, Batch
from .batches import BatchKeeper
from .buffer import Buffer
from .dispatch import Dispatcher, bulk_share
from .ledger import Ledger
from .ordering import Ordering
from .protocol import Admissible, BatchFormat
from .receipt import EVICTED, FlushResult, Outcome, OutcomeCallback, Receipt, Statistics

__all__ = ["Pipeline"]

_NEW, _OPEN, _CLOSING, _CLOSED = "new", "open", "closing", "closed"
_new_receipt = object.__new__
_running_loop = asyncio.get_running_loop
_BUFFER_FULL = Outcome("dropped", "buffer_full", "send buffer full")


class Pipeline(BatchKeeper):
    """The batching send pipeline behind a batched client (see the module docstring).

    Args:
        http: The HTTP chain in ``deliver`` mode.
        fmt: The API's batch request.
        batch: Sizes, linger, concurrency, buffer and overflow policy.
        retry: For ``delivery_timeout``.
        gate: The workspace's gate (its pause reason names drops at close).
        counters: Retry counters (statistics).
        accounting: Request counters (statistics).
        region: Request label.
        on_outcome, on_drop: User callbacks.
    """

    def __init__(
        self,
        http: HTTPHandler,
        fmt: BatchFormat,
        *,
        batch: BatchConfig,
        retry: RetryPolicy,
        gate: Gate,
        counters: RetryCounters,
        accounting: AccountingLayer,
        region: str = "us",
        on_outcome: OutcomeCallback | None = None,
        on_drop: OutcomeCallback | None = None,
    ) -> None:
        self._http = http
        self._fmt = fmt
        self._cfg = batch
        self._retry = retry
        self._gate = gate
        self._counters = counters
        self._accounting = accounting
        self.region = region
        self._max_ops = min(batch.max_batch_ops, fmt.max_batch_ops)
        self._max_bytes = min(batch.max_batch_bytes, fmt.max_batch_bytes)
        self._empty = fmt.envelope - 1  # a batch's size before its first operation
        self._buffer = Buffer(batch)
        self._ledger = Ledger(fmt.api, on_outcome, on_drop, _clock)
        self._keep = self._ledger.wants_receipts
        self._ordering = Ordering(
            new_held=self._new_held,
            open_batch=self._open_with_room,
            max_ops=self._max_ops,
            max_bytes=self._max_bytes,
            ordered=batch.ordering != "none",
            groups=bulk_share(batch.max_concurrent_requests),
        )
        # Held successors are grouped by key hash into as many batches as bulk traffic has
        # request slots: more groups would only make more, emptier batches at once.
        self._groups = bulk_share(batch.max_concurrent_requests)
        self._ordered = self._ordering.ordered
        self._owner = self._ordering.owner
        self._open: Batch | None = None
        self._live: dict[Batch, None] = {}
        self._state = _NEW
        self.loop: asyncio.AbstractEventLoop | None = None
        self._dispatch: Dispatcher | None = None
        self._clock = _clock
        self._drained: asyncio.Event | None = None
        self._close_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"<Pipeline {self._state} buffered={self._buffer.ops} live_batches={len(self._live)}"
            f" in_flight={self._dispatch.in_flight if self._dispatch else 0}>"
        )

    @property
    def state(self) -> str:
        """``new``, ``open``, ``closing`` or ``closed``."""
        return self._state

    @property
    def ledger(self) -> Ledger:
        """Outcome counters and histograms (metrics read them)."""
        return self._ledger

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Bind to the running loop and accept operations."""
        if self._state != _NEW:
            return
        loop = self.loop = asyncio.get_running_loop()
        self._clock = self._ledger.clock = loop.time
        self._dispatch = Dispatcher(
            self._http,
            self._fmt,
            finish=self._finish,
            seal=self._seal,
            loop=loop,
            max_in_flight=self._cfg.max_concurrent_requests,
            region=self.region,
            delivery_timeout=self._retry.delivery_timeout,
            ledger=self._ledger,
            gate=self._gate,
        )
        self._dispatch.on_idle = self._nudge
        self._state = _OPEN

    def _refuse(self) -> None:
        if self._state != _OPEN:
            raise ClientStateError(f"the client is {self._state}; no new operations accepted")
        raise ClientStateError(
            "this client was opened in another event loop; use it (and create it) in the "
            "loop that runs your code"
        )

    # ------------------------------------------------------------------ admission

    async def admit(self, op: Admissible) -> Receipt:
        """Admit a validated, serialised operation per the overflow policy.

        Raises:
            BufferFullError: The buffer is full and the policy is ``"raise"``.
            ClientStateError: The client is not open, or this is another event loop.
        """
        receipt = self.try_admit(op)
        if receipt is None:
            receipt = await self._admit_full(op, len(op.data))
        return receipt

    def try_admit(self, op: Admissible, reserved: bool = False) -> Receipt | None:
        """:meth:`admit` without waiting: ``None`` when the buffer is full (then call
        :meth:`admit`, which applies the overflow policy). The hot path of every call, so
        it is one function.

        Args:
            op: The operation.
            reserved: Its buffer space is already taken (it waited for it).

        Raises:
            ClientStateError: The client is not open, or this is another event loop.
        """
        if self._state is not _OPEN or _running_loop() is not self.loop:
            self._refuse()
        size = len(data := op.data)
        if not reserved:
            buf = self._buffer
            if buf.blocked or buf.ops >= buf.max_ops or buf.bytes + size > buf.max_bytes:
                return None
            buf.ops += 1
            buf.bytes += size
        key = op.key if self._ordered else None
        max_ops, max_bytes = self._max_ops, self._max_bytes
        if key is not None and op.single is None and not op.more_keys:
            owner = self._owner
            batch = owner.get(key)
            if batch is None or batch.state is DONE:
                batch = owner[key] = self._open_with_room(size)
                batch.keys.append(key)
            elif not (batch.accepting and batch.count < max_ops and batch.size + size < max_bytes):
                # Its batch is sealed or full: the one that waits for it, if that has room
                # (the usual case under load), else the general rules.
                nexts = batch.next
                nxt = nexts.get(hash(key) % self._groups) if nexts else None
                if nxt and nxt.accepting and nxt.count < max_ops and nxt.size + size < max_bytes:
                    batch = owner[key] = nxt
                    nxt.keys.append(key)
                else:
                    batch = self._ordering.place(op, size)
        elif key is None and op.single is None and not (op.more_keys and self._ordered):
            batch = self._open_with_room(size)
        else:
            batch = self._ordering.place(op, size)
        index = batch.count
        batch.parts.append(data)
        batch.size += size + 1
        batch.count = index + 1
        # A receipt without an __init__ frame: this runs once per operation.
        receipt = _new_receipt(Receipt)
        receipt.operation = op
        receipt._batch = batch
        receipt._index = index
        receipt._outcome = receipt.response = None
        if self._keep:
            assert batch.receipts is not None
            batch.receipts.append(receipt)
        if batch.state is HELD and batch.deps == 0:
            self._release(batch)  # a single request with nothing before it
        elif index + 1 >= max_ops and batch.state is OPEN:
            self._seal_and_queue(batch)
        return receipt

    async def _admit_full(self, op: Admissible, size: int) -> Receipt:
        policy = self._cfg.overflow
        buffer = self._buffer
        if policy == "block":
            assert self.loop is not None
            started = self._clock()
            granted = await buffer.wait_for_space(size, self.loop, self._nudge)
            self._ledger.admission_wait.observe(self._clock() - started)
            if granted:
                if self._state is not _OPEN:  # closed while we waited: give the space back
                    buffer.release(1, size)
                    self._refuse()
                return self._admitted(op)
            policy = self._cfg.overflow_fallback
        if policy == "drop_oldest" and self._evict_for(size):
            buffer.take(size)
            return self._admitted(op)
        if policy == "raise":
            raise BufferFullError(
                f"send buffer full ({buffer.ops} operations, {buffer.bytes} bytes)"
            )
        return self.drop_newest(op)

    def drop_newest(self, op: Admissible) -> Receipt:
        """Accept ``op`` and drop it at once as ``dropped(buffer_full)``, counted, logged and
        passed to the callbacks like every drop (it never holds buffer space). The
        ``drop_newest`` policy, and the sync facade's fallback for an operation whose caller
        already waited ``enqueue_timeout`` for room."""
        receipt = Receipt(op, outcome=_BUFFER_FULL)
        self._ledger.drop_early(1, _BUFFER_FULL, self._ledger.epoch, [receipt])
        return receipt

    def _admitted(self, op: Admissible) -> Receipt:
        receipt = self.try_admit(op, reserved=True)
        assert receipt is not None  # reserved space: never refused
        return receipt

    def _nudge(self) -> None:
        """Admission is blocked on a full buffer and nothing is on the wire: send the open
        batch now, since only delivery frees space (a buffer smaller than a batch would
        otherwise stall on linger). While requests are on the wire their answers free space
        and batches keep filling: closing them then would spend the request budget on
        small batches under a rate limit."""
        dispatch = self._dispatch
        if (
            self._buffer.blocked
            and self._open is not None
            and dispatch is not None
            and not dispatch.tasks
            and not dispatch.queue
        ):
            dispatch.want(self._open)

    def _evict_for(self, size: int) -> bool:
        """``drop_oldest``: drop the oldest operations that are not on the wire until
        ``size`` fits; ``False`` when even that is not enough."""
        buffer = self._buffer
        for batch in list(self._live):
            if buffer.fits(size):
                break
            if batch.state in (OPEN, HELD, READY) and batch.single is None:
                self._evict(batch, size)
        # The evicted operations are reported by the outcome log (rate-limited), like
        # every drop: one line per eviction would flood the log under overload.
        return buffer.fits(size)

    def _evict(self, batch: Batch, size: int) -> None:
        buffer = self._buffer
        start = end = batch.evicted
        while end < batch.count and not buffer.has_room(size):
            buffer.ops -= 1
            buffer.bytes -= len(batch.parts[end])
            batch.parts[end] = b""
            end += 1
        if end == start:
            return
        batch.evicted = end  # Receipt.outcome: EVICTED below this index
        receipts = batch.receipts[start:end] if batch.receipts is not None else None
        self._ledger.drop_early(end - start, EVICTED, batch.epoch, receipts)
        if end == batch.count:
            self._finish(batch, EVICTED, None)

    # ------------------------------------------------------------------ flush / close

    async def flush(self, timeout: float | None) -> FlushResult:
        """Send everything now and wait for every operation admitted so far.

        Returns:
            Outcome counts for the operations admitted since the previous flush, and how
            many were still pending at the deadline.
        """
        if self._state not in (_OPEN, _CLOSING):
            return FlushResult()
        ledger = self._ledger
        epoch = ledger.new_epoch()
        self._hurry_all()
        windows = ledger.open_windows()
        waits = []
        for window in windows:
            if window.done is None:
                window.done = asyncio.Event()
            waits.append(asyncio.ensure_future(window.done.wait()))
        if waits:
            # Tasks, not gather(): cancelling a flush then leaves nothing unretrieved.
            try:
                await asyncio.wait(waits, timeout=timeout)
            finally:
                for wait in waits:
                    wait.cancel()
        pending = sum(b.count - b.evicted for b in self._live if b.epoch is epoch)
        return FlushResult(epoch.delivered, epoch.rejected, epoch.dropped, pending)

    async def aclose(self, timeout: float | None) -> None:
        """Stop admission, drain within ``timeout``, drop the rest.

        Survives one cancellation of the caller (the drain goes on); a second one aborts
        it, and whatever is undecided is then dropped at once.
        """
        if self._close_task is None:
            if self.loop is None:
                self._state = _CLOSED
                return
            self._close_task = self.loop.create_task(self._close(timeout))
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
        started = self._clock()
        deadline = started + (timeout if timeout is not None else 1e9)
        self._state = _CLOSING
        self._buffer.close()
        before = self._ledger.dropped
        if self._live:
            self._hurry_all()
            self._drained = asyncio.Event()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), max(0.0, deadline - self._clock()))
        self._abort()
        await self._ledger.finish_callbacks(deadline - self._clock())
        self._ledger.log.summarise()
        dropped = self._ledger.dropped - before
        logger.log(
            30 if dropped else 20,
            "customerio-async closed in %.2f s: %d delivered, %d rejected, %d dropped "
            "(%d at shutdown)",
            self._clock() - started,
            self._ledger.delivered,
            self._ledger.rejected,
            self._ledger.dropped,
            dropped,
        )

    def abandon(self, reason: str) -> int:
        """The event loop is ending with the client open: drop everything undecided as
        ``reason`` now, without a drain (there is no time left). Returns how many."""
        undecided = self._buffer.ops
        self._abort(reason)
        self._ledger.log.summarise()
        return undecided

    def _abort(self, reason: str | None = None) -> None:
        """Drop everything undecided and stop sending (synchronous, idempotent)."""
        if reason is None:
            paused = self._gate.paused_reason() == "auth_failed"
            reason = "auth_failed" if paused else "shutdown_timeout"
        self._state = _CLOSED
        dispatch = self._dispatch
        if dispatch is not None:
            dispatch.reason_on_cancel = reason
            dispatch.stopped = True
            dispatch.queue.clear()
        self._buffer.close()
        outcome = Outcome("dropped", reason, "not delivered before the client closed")
        for batch in list(self._live):
            self._finish(batch, outcome, None)
        if dispatch is not None:
            for task in list(dispatch.tasks):
                task.cancel()

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> Statistics:
        """A consistent snapshot of every counter (cheap: no locks, no I/O)."""
        ledger = self._ledger
        buffer = self._buffer
        terminal = ledger.delivered + ledger.rejected + ledger.dropped
        return Statistics(
            accepted=terminal + buffer.ops,
            delivered=ledger.delivered,
            rejected=ledger.rejected,
            dropped=ledger.dropped,
            pending=buffer.ops,
            buffered_ops=buffer.ops,
            buffered_bytes=buffer.bytes,
            in_flight_requests=self._accounting.in_flight,
            requests=self._accounting.requests,
            batches=self._dispatch.sent if self._dispatch else 0,
            bytes_sent=self._accounting.bytes_sent,
            retries=self._counters.retries,
            rejected_by_reason=MappingProxyType(dict(ledger.rejected_by)),
            dropped_by_reason=MappingProxyType(dict(ledger.dropped_by)),
            retries_by_cause=MappingProxyType(dict(self._counters.by_cause)),
            state=self._state,
        )


def _clock() -> float:
    # Before start() binds the loop's clock: the same monotonic source asyncio uses.
    return time.monotonic()
