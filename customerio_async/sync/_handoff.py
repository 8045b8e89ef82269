"""The per-call hand-off from any thread to the loop thread, without a portal call.

Shape::

    caller thread                         loop thread (one consumer coroutine)
    validate + serialise (your thread)    ┌─ popleft ─ admit_now(op) ─ bind the receipt
    deque.append(receipt)  ─────────────▶ │   (or: await the client's admission path)
    wake the loop iff it sleeps ────────▶ └─ sleeps on a future when the deque is empty

* **Cost per call**: a :class:`SyncReceipt`, one ``deque.append`` (atomic, thread-safe) and
  two attribute reads. ``loop.call_soon_threadsafe`` runs only when the consumer sleeps, so
  once per burst, not per call; no future, no lock, no portal round trip per operation.
* **Order**: one FIFO queue, one consumer, and an admission that has to wait (a full buffer,
  admission middleware that awaits) holds everything behind it: what one thread sent
  reaches the pipeline in that thread's order, and the pipeline keeps each person's order.
* **Backpressure**: while an admission waits, or the queue holds ``max_buffer_ops``
  operations, callers wait too (``overflow="block"``: up to ``enqueue_timeout``, then the
  fallback — ``raise`` raises :class:`BufferFullError` in the caller; ``drop_newest``
  marks the operation *late*: admitted if it fits when its turn comes, else dropped and
  counted, without a second wait). Other policies never wait: at the queue bound they
  raise, or the operation goes in late.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from .._common.logs import RateLimitedLog
from .._config import BatchConfig
from .._exceptions import BufferFullError, ClientStateError
from .._pipeline.receipt import Receipt
from ._receipt import BARRIER, SyncReceipt
from ._runner import LoopThread

__all__ = ["AsyncAdmission", "HandOff"]

_CHUNK = 256  # operations admitted before the consumer lets the loop run other tasks
_LOG = RateLimitedLog()


class AsyncAdmission(Protocol):
    """What the hand-off needs of an async client: its own admission path."""

    def _admit_now(self, op: Any) -> Receipt | None: ...

    def _admit_late(self, op: Any) -> Receipt | None: ...

    def _call(self, op: Any, wait: bool) -> Awaitable[Receipt]: ...


class HandOff:
    """The queue between caller threads and the consumer coroutine in the loop thread.

    Example::

        handoff = HandOff(client, runner, batch_config, wait_timeout=320)
        runner.submit(handoff.consume)
        receipt = handoff.put(operation)      # from any thread

    Args:
        client: The open async client (its admission path runs in the loop thread).
        runner: The loop thread.
        batch: The client's batch configuration (overflow policy, bounds).
        wait_timeout: Default bound of :meth:`SyncReceipt.wait`.
    """

    def __init__(
        self, client: AsyncAdmission, runner: LoopThread, batch: BatchConfig, wait_timeout: float
    ) -> None:
        assert runner.loop is not None
        self.runner = runner
        self.wait_timeout = wait_timeout
        self._loop = runner.loop
        self._admit_now = client._admit_now
        self._admit_late = client._admit_late
        self._call = client._call
        self._queue: collections.deque[SyncReceipt] = collections.deque()
        self._cap = batch.max_buffer_ops
        self._policy = batch.overflow
        self._fallback = batch.overflow_fallback if batch.overflow == "block" else batch.overflow
        self._enqueue_timeout = batch.enqueue_timeout
        self._sleeping = False
        self._waiter: asyncio.Future[None] | None = None
        self._stalled = False
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0
        self.closing = False
        self.direct = False  # the client sends each call itself (batching=False)
        self.consumer: concurrent.futures.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<HandOff queued={len(self._queue)} stalled={self._stalled}>"

    # ------------------------------------------------------------------ caller threads

    def put(self, op: Any) -> SyncReceipt:
        """Hand ``op`` to the loop thread; return its receipt at once (the hot path).

        Raises:
            BufferFullError: The pipeline is full and the policy (or its fallback) raises.
            ClientStateError: The client closed meanwhile.
        """
        receipt = SyncReceipt(op, self)
        queue = self._queue
        if self._stalled or len(queue) >= self._cap:
            receipt._late = self._throttle()
        queue.append(receipt)
        if self.closing:
            self._retract(receipt)
        elif self._sleeping:
            self._sleeping = False
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop is gone (closed under us)
                self.closing = True
                self._retract(receipt)
        return receipt

    def _throttle(self) -> bool:
        """Backpressure in the caller's thread; ``True``: the operation goes in late."""
        if self._policy == "block" and self._wait_for_room():
            return False
        if self._policy != "block" and len(self._queue) < self._cap:
            return False  # only an awaiting middleware: those policies never wait
        if self._fallback == "raise":
            raise BufferFullError("send buffer full (the background loop is backed up)")
        return True

    def _wait_for_room(self) -> bool:
        deadline = time.monotonic() + self._enqueue_timeout
        with self._cond:
            self._waiters += 1
            try:
                while self._stalled or len(self._queue) >= self._cap:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self.closing:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._waiters -= 1

    def _retract(self, receipt: SyncReceipt) -> None:
        """The client began closing while we appended: take the operation back if the
        loop has not admitted it, and say so (else it was admitted: keep the receipt)."""
        try:
            self._queue.remove(receipt)
        except ValueError:
            return
        raise ClientStateError("the client is closed")

    def barrier(self, timeout: float) -> bool:
        """Wait until everything queued before this call has been admitted (or refused).

        Returns:
            Whether that happened within ``timeout``.
        """
        marker = SyncReceipt(None, self)
        self._queue.append(marker)
        self._sleeping = False
        try:
            self._loop.call_soon_threadsafe(self._wake)
            marker._wait_admitted(timeout)
        except (TimeoutError, RuntimeError):  # not in time, or the loop is gone
            return False
        return True

    # ------------------------------------------------------------------ loop thread

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def consume(self) -> None:
        """The consumer: admit queued operations in FIFO order, forever (until cancelled)."""
        queue = self._queue
        admit_now, admit_late = self._admit_now, self._admit_late
        while True:
            budget = _CHUNK
            while queue and budget:
                budget -= 1
                item = queue.popleft()
                op = item.operation
                if op is None:
                    item._fail(BARRIER)
                    continue
                try:
                    receipt = admit_late(op) if item._late else admit_now(op)
                    if receipt is None:
                        receipt = await self._admit_waiting(op)
                except asyncio.CancelledError:
                    item._fail(ClientStateError("the client closed before admitting it"))
                    raise
                except Exception as exc:  # it is this operation's outcome, not the loop's
                    _refused(exc)
                    item._fail(exc)
                    continue
                item._bind(receipt)
            if self._waiters:
                self._notify()
            if queue:
                await asyncio.sleep(0)  # let the pipeline's own tasks run between chunks
            else:
                await self._sleep()

    async def _admit_waiting(self, op: Any) -> Receipt:
        """The client's full admission path (middleware, overflow policy). If it has to
        wait, callers wait with it (``_stalled``): set by a callback that only runs when
        this coroutine really yields, so admissions that finish at once cost no signal."""
        mark = self._loop.call_soon(self._stall)
        try:
            return await self._call(op, False)
        finally:
            mark.cancel()
            if self._stalled:
                self._stalled = False
                if self._waiters:
                    self._notify()

    def _stall(self) -> None:
        self._stalled = True

    async def _sleep(self) -> None:
        # The future exists before the flag says "asleep": a caller that sees the flag
        # wakes this future, and one that appended before the flag is seen by the re-check.
        waiter = self._waiter = self._loop.create_future()
        self._sleeping = True
        if self._queue:
            self._sleeping = False
            return
        await waiter

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ shutdown

    def release_waiters(self) -> None:
        """Closing: callers waiting for room stop waiting (they then fail or go late)."""
        self.closing = True
        self._notify()

    def consumer_ended(self, _: object) -> None:
        """The consumer stopped (the client closed, or the loop died): nothing queued
        will be admitted any more, so refuse it now rather than let anybody wait."""
        self.release_waiters()
        self.sweep()

    def sweep(self) -> int:
        """Refuse whatever is still queued (the client closed); returns how many."""
        refused = 0
        error = ClientStateError("the client closed before admitting it")
        while True:
            try:
                item = self._queue.popleft()
            except IndexError:
                return refused
            item._fail(error if item.operation is not None else BARRIER)
            refused += item.operation is not None


def _refused(exc: Exception) -> None:
    """An admission failed in the loop thread: the receipt carries it; say so, rarely."""
    _LOG.log(
        30,
        f"sync-refused-{type(exc).__name__}",
        "customerio-async: an operation handed over by a sync call was not admitted: %s "
        "(its receipt carries the error)",
        type(exc).__name__,
    )
