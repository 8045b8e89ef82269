"""Admission's memory budget: operations and bytes admitted but not yet decided.

Buffered, lingering, held, in-flight and retrying operations all count, so memory is
bounded whatever the network does. When the budget is spent, the overflow policy decides:
``block`` (wait up to ``enqueue_timeout``, first come first served, then the fallback),
``drop_newest``, ``drop_oldest`` (the pipeline evicts the oldest operations that are not on
the wire) or ``raise``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

from .._config import BatchConfig
from .._exceptions import ClientStateError

__all__ = ["Buffer"]


class Buffer:
    """The budget counters and the queue of admissions waiting for space.

    Attributes:
        blocked: Admissions waiting for space, first come first served.
        ops: Operations admitted and not yet decided.
        bytes: Their serialised bytes.
        max_ops, max_bytes: The budget.
    """

    __slots__ = ("_timeout", "blocked", "bytes", "max_bytes", "max_ops", "ops")

    def __init__(self, config: BatchConfig) -> None:
        self.ops = 0
        self.bytes = 0
        self.max_ops = config.max_buffer_ops
        self.max_bytes = config.max_buffer_bytes
        self._timeout = config.enqueue_timeout
        self.blocked: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def __repr__(self) -> str:
        return f"<Buffer {self.ops}/{self.max_ops} ops {self.bytes}/{self.max_bytes} bytes>"

    def fits(self, size: int) -> bool:
        """Whether one more operation of ``size`` bytes fits now (and nobody queues first)."""
        return not self.blocked and self.ops < self.max_ops and self.bytes + size <= self.max_bytes

    def has_room(self, size: int) -> bool:
        """Whether one more operation of ``size`` bytes fits the budget (ignoring queued
        admissions)."""
        return self.ops < self.max_ops and self.bytes + size <= self.max_bytes

    def take(self, size: int) -> None:
        """Count one admitted operation."""
        self.ops += 1
        self.bytes += size

    def release(self, ops: int, size: int) -> None:
        """Operations were decided: give their space back and wake waiters that now fit."""
        self.ops -= ops
        self.bytes -= size
        if self.blocked:
            self._wake()

    async def wait_for_space(
        self, size: int, loop: asyncio.AbstractEventLoop, queued: Callable[[], None]
    ) -> bool:
        """Queue for space (``block`` policy). ``True``: the space is reserved for us;
        ``False``: ``enqueue_timeout`` passed first. ``queued`` runs once we wait in line.

        Raises:
            ClientStateError: The client closed while we waited.
            asyncio.CancelledError: The caller was cancelled; nothing is reserved.
        """
        future: asyncio.Future[None] = loop.create_future()
        entry = (size, future)
        self.blocked.append(entry)
        self._wake()
        if not future.done():
            queued()
        # asyncio.wait, not wait_for: before Python 3.12 wait_for swallows a cancellation
        # that races with the grant (the caller, cancelled, was admitted anyway) and turns
        # one racing with close() into ClientStateError. Here cancellation always wins.
        try:
            await asyncio.wait((future,), timeout=self._timeout)
        except asyncio.CancelledError:
            if self._abandon(entry):
                self.release(1, size)  # granted meanwhile: give it back
            raise
        if future.done():
            future.result()  # ClientStateError when close() refused us
            return True
        return self._abandon(entry)  # enqueue_timeout (unless granted just now)

    def _abandon(self, entry: tuple[int, asyncio.Future[None]]) -> bool:
        """Leave the queue; ``True`` when the space had been reserved for us meanwhile."""
        try:
            self.blocked.remove(entry)
        except ValueError:
            # Granted, or refused by close(): only a grant reserved space for us.
            return entry[1].done() and entry[1].exception() is None
        # Leaving from the head of the line can let the admissions behind us in now.
        self._wake()
        return False

    def _wake(self) -> None:
        # First come, first served, in proportion to the space freed.
        while self.blocked:
            size, future = self.blocked[0]
            if self.ops >= self.max_ops or self.bytes + size > self.max_bytes:
                return
            self.blocked.popleft()
            if future.done():  # pragma: no cover - cancelled waiters remove themselves
                continue
            self.take(size)
            future.set_result(None)

    def close(self) -> None:
        """Refuse every waiting admission (the client is closing)."""
        while self.blocked:
            _, future = self.blocked.popleft()
            if not future.done():
                future.set_exception(ClientStateError("the client is closing"))
