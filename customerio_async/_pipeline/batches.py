"""The batches of a pipeline: opening, lingering, sealing, releasing, merging, deciding.

:class:`BatchKeeper` is the part of :class:`~.pipeline.Pipeline` that owns batch state
transitions (see :mod:`.batch` for the states); the pipeline adds admission, flush and close
on top. Kept apart so each module has one job and stays readable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._config import BatchConfig
from .batch import DONE, HELD, MERGED, OPEN, READY, Batch
from .buffer import Buffer
from .dispatch import Dispatcher
from .ledger import Ledger
from .ordering import Ordering
from .receipt import Outcome

__all__ = ["BatchKeeper"]

_CLOSED = "closed"


class BatchKeeper:
    """Batch state transitions, shared by everything the pipeline does.

    Attributes are set by :class:`~.pipeline.Pipeline`'s constructor and ``start()``.
    """

    _cfg: BatchConfig
    _state: str
    _buffer: Buffer
    _ledger: Ledger
    _ordering: Ordering
    _dispatch: Dispatcher | None
    _open: Batch | None
    _live: dict[Batch, None]
    _owner: dict[object, Batch]
    _max_ops: int
    _max_bytes: int
    _empty: int
    _keep: bool
    _drained: asyncio.Event | None
    _clock: Callable[[], float]
    loop: asyncio.AbstractEventLoop | None

    def _new_batch(self, state: str) -> Batch:
        batch = Batch(self, state, self._empty, self._clock(), self._ledger.epoch)
        if self._keep:
            batch.receipts = []
        self._live[batch] = None
        self._ledger.epoch.batches += 1
        return batch

    def _new_held(self) -> Batch:
        return self._new_batch(HELD)

    def _open_with_room(self, size: int) -> Batch:
        """The open batch, if it takes ``size`` more bytes; else a new one (the full one is
        sealed and queued)."""
        batch = self._open
        if batch is not None:
            if batch.count < self._max_ops and batch.size + size < self._max_bytes:
                return batch
            self._seal_and_queue(batch)
        batch = self._open = self._new_batch(OPEN)
        self._linger(batch)
        return batch

    def _linger(self, batch: Batch) -> None:
        assert self.loop is not None
        assert self._dispatch is not None
        due = batch.first_at + self._cfg.linger
        if batch.urgent or due <= self._clock():
            self._dispatch.want(batch)
        else:
            batch.timer = self.loop.call_at(due, self._linger_over, batch)

    def _linger_over(self, batch: Batch) -> None:
        batch.timer = None
        if batch.state is OPEN:
            assert self._dispatch is not None
            self._dispatch.want(batch)

    def _seal(self, batch: Batch) -> None:
        """An open batch takes no more operations (it is about to be sent)."""
        if batch is self._open:
            self._open = None
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        batch.state = READY
        batch.accepting = False

    def _seal_and_queue(self, batch: Batch) -> None:
        assert self._dispatch is not None
        self._seal(batch)
        self._dispatch.want(batch)

    def _release(self, batch: Batch) -> None:
        """A held batch's predecessors are all decided: merge it into the open batch, make
        it the open batch, or send it as it is."""
        assert self._dispatch is not None
        if self._state == _CLOSED:
            return
        current = self._ledger.epoch
        if batch.single is None and batch.evicted == 0 and batch.epoch is current:
            into = self._open
            if into is None:
                batch.state = OPEN
                batch.accepting = True
                self._open = batch
                self._linger(batch)
                return
            grown = into.size + batch.size - self._empty
            if into.count + batch.count <= self._max_ops and grown <= self._max_bytes:
                self._merge(batch, into)
                return
        # Ready, but still taking its own keys' operations until a request slot and a token
        # let it leave (late binding, as for the open batch); a single never grows.
        batch.state = READY
        batch.accepting = batch.single is None and batch.epoch is current
        self._dispatch.want(batch)

    def _merge(self, batch: Batch, into: Batch) -> None:
        assert self._dispatch is not None
        batch.state = MERGED
        batch.accepting = False
        batch.forward = into
        batch.offset = into.count
        into.parts.extend(batch.parts)
        into.size += batch.size - self._empty
        into.count += batch.count
        into.first_at = min(into.first_at, batch.first_at)
        if batch.receipts is not None and into.receipts is not None:
            into.receipts.extend(batch.receipts)
            into.mirrors = [*(into.mirrors or ()), *(batch.mirrors or ())]
        into.merged = [*(into.merged or ()), batch]
        into.keys.extend(batch.keys)
        batch.keys = []
        if batch.dependents:
            for dependent in batch.dependents:
                dependent.waits_for = [into if b is batch else b for b in dependent.waits_for or ()]
            into.dependents = [*(into.dependents or ()), *batch.dependents]
        batch.parts = []
        del self._live[batch]
        batch.epoch.batches -= 1  # its operations settle with `into`
        if batch.urgent:
            into.urgent = True
        if into.urgent or into.count >= self._max_ops:
            self._dispatch.want(into)

    # ------------------------------------------------------------------ outcomes

    def _finish(
        self, batch: Batch, outcome: Outcome, exceptions: dict[int, Outcome] | None
    ) -> None:
        """Decide every operation of ``batch`` (exactly once)."""
        if batch.state is DONE or batch.state is MERGED:
            return
        if batch is self._open:
            self._open = None
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        if exceptions:
            batch.exceptions = {**exceptions, **(batch.exceptions or {})}
        batch.outcome = outcome
        batch.state = DONE
        batch.accepting = False
        del self._live[batch]
        self._ledger.settle(batch)
        kept = batch.parts[batch.evicted :]
        self._buffer.release(batch.count - batch.evicted, sum(len(p) for p in kept))
        batch.parts = []
        batch.receipts = None
        for resolved in (batch, *(batch.merged or ())):
            if resolved.future is not None and not resolved.future.done():
                resolved.future.set_result(None)
        for dependent in batch.dependents or ():
            dependent.deps -= 1
            if dependent.deps == 0 and dependent.state is HELD:
                self._release(dependent)
        batch.dependents = None
        self._ordering.forget(batch)
        if self._drained is not None and not self._live:
            self._drained.set()

    # ------------------------------------------------------------------ waiting

    def waiter(self, batch: Batch) -> asyncio.Future[None]:
        """A future resolved when ``batch`` is decided; someone waits, so it goes now."""
        assert self.loop is not None
        if batch.future is None:
            batch.future = self.loop.create_future()
            if batch.state is DONE:
                batch.future.set_result(None)
        self._hurry(batch)
        return batch.future

    def _hurry(self, batch: Batch) -> None:
        """No linger for ``batch`` or anything it waits for."""
        if batch.urgent or batch.state is DONE:
            return
        batch.urgent = True
        assert self._dispatch is not None
        if batch.state is OPEN or batch.state is READY:
            # READY: queued already, maybe behind the bulk share, which no longer holds it.
            self._dispatch.want(batch)
        for before in batch.waits_for or ():
            self._hurry(before.root())

    def _hurry_all(self) -> None:
        """Flush and close: every undecided batch goes without lingering and takes no new
        operations (so each flush window's operations stay in batches of their own)."""
        assert self._dispatch is not None
        self._open = None
        for batch in self._live:
            batch.urgent = True
            batch.accepting = False
            if batch.state is OPEN or batch.state is READY:
                self._dispatch.want(batch)
