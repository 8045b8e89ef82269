"""Outcome accounting: counters, flush windows, user callbacks and the outcome log.

Everything here is per batch: a batch of 2,000 delivered operations is one update of the
counters, one histogram observation and one flush-window update. Only outcome callbacks
(opt-in) cost a call per operation.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._common.histogram import Histogram
from .._common.logs import logger
from .receipt import Outcome, OutcomeCallback, Receipt

if TYPE_CHECKING:
    from .batch import Batch

__all__ = ["BATCH_BYTES_BUCKETS", "BATCH_OPS_BUCKETS", "Epoch", "Ledger", "OutcomeLog"]

_UNWIND = 0.1  # seconds a cancelled outcome callback gets to unwind at close
BATCH_OPS_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
BATCH_BYTES_BUCKETS = (1e3, 5e3, 1e4, 5e4, 1e5, 2e5, 3e5, 4e5, 4.5e5, 5e5)


class Epoch:
    """The operations admitted between two ``flush()`` calls."""

    __slots__ = ("batches", "delivered", "done", "dropped", "ops", "rejected")

    def __init__(self) -> None:
        self.batches = 0  # undecided batches holding this window's operations
        self.ops = 0  # undecided operations (known when its batches are decided)
        self.delivered = 0
        self.rejected = 0
        self.dropped = 0
        self.done: asyncio.Event | None = None

    def add(self, status: str, count: int) -> None:
        """``count`` of its operations ended with ``status``."""
        if status == "delivered":
            self.delivered += count
        elif status == "rejected":
            self.rejected += count
        else:
            self.dropped += count

    def settled(self) -> None:
        """One of its batches was decided."""
        self.batches -= 1
        if self.batches == 0 and self.done is not None:
            self.done.set()


class OutcomeLog:
    """Rejects and drops, logged at WARNING on the ``customerio_async`` logger.

    The first ``first`` non-delivered outcomes of each kind (status + reason) are logged one
    by one, naming the reason, the field the API named and the HTTP status; after that they
    are counted and summarised at most once per ``interval`` seconds (and at close), with
    counts per reason. Never a value or an identifier.
    """

    __slots__ = ("_clock", "_counts", "_first", "_interval", "_last", "_seen")

    def __init__(
        self, first: int = 5, interval: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._first = first
        self._interval = interval
        self._clock = clock
        self._seen: collections.Counter[tuple[str, str]] = collections.Counter()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._last = clock()

    def record(self, outcome: Outcome, count: int, api: str) -> None:
        """``count`` operations ended with ``outcome`` (not delivered)."""
        kind = (outcome.status, outcome.reason or "unknown")
        seen = self._seen[kind]
        self._seen[kind] = seen + count
        if seen < self._first:
            where = f" (field {outcome.field})" if outcome.field else ""
            status = f", HTTP {outcome.http_status}" if outcome.http_status else ""
            logger.warning(
                "customerio-async: %d %s operation(s) %s: %s%s%s",
                count,
                api,
                outcome.status,
                kind[1],
                where,
                status,
            )
        else:
            self._counts[kind] += count
        if self._counts and self._clock() - self._last >= self._interval:
            self.summarise()

    def summarise(self) -> None:
        """Log the counts suppressed since the last summary, per status and reason."""
        self._last = self._clock()
        if not self._counts:
            return
        parts = ", ".join(
            f"{n} {status} ({reason})" for (status, reason), n in sorted(self._counts.items())
        )
        self._counts.clear()
        logger.warning("customerio-async: since the last summary: %s", parts)


class Ledger:
    """Every counter of the pipeline, settled once per batch.

    Args:
        api: Label for log lines.
        on_outcome: Called with each receipt when it is decided.
        on_drop: Called with each dropped receipt.
        clock: The loop's clock.
    """

    def __init__(
        self,
        api: str,
        on_outcome: OutcomeCallback | None,
        on_drop: OutcomeCallback | None,
        clock: Callable[[], float],
    ) -> None:
        self.api = api
        self.on_outcome = on_outcome
        self.on_drop = on_drop
        self.clock = clock
        self.delivered = 0
        self.rejected = 0
        self.dropped = 0
        self.batches = 0
        self.rejected_by: collections.Counter[str] = collections.Counter()
        self.dropped_by: collections.Counter[str] = collections.Counter()
        self.batch_ops = Histogram(BATCH_OPS_BUCKETS)
        self.batch_bytes = Histogram(BATCH_BYTES_BUCKETS)
        self.end_to_end = Histogram()
        self.admission_wait = Histogram()
        self.log = OutcomeLog()
        self.epoch = Epoch()
        self.epochs: collections.deque[Epoch] = collections.deque([self.epoch])
        self.callback_tasks: set[asyncio.Task[None]] = set()

    @property
    def wants_receipts(self) -> bool:
        """Whether batches must keep their receipts (for the callbacks)."""
        return self.on_outcome is not None or self.on_drop is not None

    def settle(self, batch: Batch) -> None:
        """Count a decided batch: totals, reasons, its flush window, latency, the log."""
        epoch = batch.epoch
        for outcome, count in batch.tally():
            self.count(outcome, count)
            epoch.add(outcome.status, count)
        epoch.settled()
        self.end_to_end.observe(self.clock() - batch.first_at, batch.count - batch.evicted)
        if batch.receipts is not None:
            self._callbacks([*batch.receipts[batch.evicted :], *(batch.mirrors or ())])

    def count(self, outcome: Outcome, count: int) -> None:
        """``count`` operations ended with ``outcome``."""
        if outcome.status == "delivered":
            self.delivered += count
            return
        reason = outcome.reason or "unknown"
        if outcome.status == "rejected":
            self.rejected += count
            self.rejected_by[reason] += count
        else:
            self.dropped += count
            self.dropped_by[reason] += count
        self.log.record(outcome, count, self.api)

    def drop_early(
        self, count: int, outcome: Outcome, epoch: Epoch, receipts: list[Receipt] | None
    ) -> None:
        """``count`` operations dropped before any request (``buffer_full``: refused space,
        or evicted by ``drop_oldest``), counted now in their flush window."""
        self.count(outcome, count)
        epoch.add("dropped", count)
        if receipts:
            self._callbacks(receipts)

    def admission_waits(self, admitted: int) -> Histogram:
        """Admission waits of all ``admitted`` operations: only the waits are recorded on
        the hot path; the admissions that did not wait fill the first bucket here."""
        view = Histogram(self.admission_wait.buckets)
        view.counts = list(self.admission_wait.counts)
        view.counts[0] += max(0, admitted - self.admission_wait.count)
        view.sum = self.admission_wait.sum
        return view

    def new_epoch(self) -> Epoch:
        """Close the current flush window; return it."""
        closed = self.epoch
        self.epoch = Epoch()
        self.epochs.append(self.epoch)
        return closed

    def open_windows(self) -> list[Epoch]:
        """Flush windows (this one excluded) with undecided batches; forget finished ones."""
        self.epochs = collections.deque(e for e in self.epochs if e.batches > 0 or e is self.epoch)
        return [e for e in self.epochs if e is not self.epoch]

    # ------------------------------------------------------------------ callbacks

    def _callbacks(self, receipts: list[Receipt]) -> None:
        on_outcome, on_drop = self.on_outcome, self.on_drop
        for receipt in receipts:
            if on_outcome is not None:
                self._call(on_outcome, receipt)
            if on_drop is not None:
                outcome = receipt.outcome
                if outcome is not None and outcome.status == "dropped":
                    self._call(on_drop, receipt)

    def _call(self, fn: OutcomeCallback, receipt: Receipt) -> None:
        try:
            result = fn(receipt)
        except Exception:  # callbacks are the user's; they must never break delivery
            logger.exception("customerio-async outcome callback raised")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(_await_callback(result))
            self.callback_tasks.add(task)
            task.add_done_callback(self.callback_tasks.discard)

    async def finish_callbacks(self, timeout: float) -> None:
        """Give running async callbacks ``timeout`` seconds, then cancel the rest (one log
        line): user callbacks never extend a deadline."""
        tasks = list(self.callback_tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, timeout))
        if pending:
            for task in pending:
                task.cancel()
            logger.warning(
                "customerio-async: cancelled %d outcome callback(s) still running at close",
                len(pending),
            )
            # Let them unwind (one loop turn, normally), so none is left pending behind the
            # close; a callback that ignores its cancellation gets a short grace, no more.
            await asyncio.wait(pending, timeout=_UNWIND)


async def _await_callback(result: Any) -> None:
    try:
        await result
    except Exception:
        logger.exception("customerio-async outcome callback raised")
