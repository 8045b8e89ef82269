"""A batch: the unit of sending, ordering and accounting.

Operations are appended as bytes; the outcome is recorded once for the whole batch (plus the
exceptions a 207 or a split reported, by index), so per-operation work ends at admission.

A batch moves through these states::

    OPEN ──seal──▶ READY ──slot──▶ SENDING ──answer / give-up──▶ DONE
    HELD (waits for earlier batches) ──released──▶ merged into the open batch, or READY

``OPEN`` batches take new operations until they are sealed (full, linger over, a waiter, a
flush). A ``HELD`` batch collects operations that must wait for an unresolved earlier batch
(same person or object); it takes further operations of those keys, and is released when its
predecessors are done.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .receipt import Outcome

if TYPE_CHECKING:
    from .protocol import SingleRequest

__all__ = ["DONE", "HELD", "MERGED", "OPEN", "READY", "SENDING", "Batch"]

OPEN, HELD, READY, SENDING, DONE, MERGED = "open", "held", "ready", "sending", "done", "merged"


class Batch:
    """Operations travelling together (or one single request).

    Attributes:
        pipeline: The pipeline it belongs to (for waiters).
        parts: The operations' bytes, in admission order.
        keys: The ordering keys that point at this batch (forgotten when it is decided).
        size: The request body size if sent now (envelope and commas included).
        count: Operations in it.
        accepting: Whether new operations may be appended.
        deps: Unresolved batches it waits for.
        dependents: Batches waiting for it.
        next: The held batches that wait for this one alone, one per key group (reused for
            more operations): operations queued behind a batch are split by key, so when it
            is decided they can leave as several requests in parallel.
        forward, offset: Set when merged into another batch: receipts index ``offset`` on.
        outcome, exceptions: The outcome of every operation, and per-index exceptions.
        future: Resolved when the batch is done (created only when someone waits).
        urgent: Send without lingering (a waiter, a flush, a close).
        first_at: Loop time of the oldest operation (its deadline counts from here).
        epoch: The flush window its operations belong to.
        receipts: The receipts, kept only when outcome callbacks need them.
        single: For an operation sent on its own: its request.
        timer: The linger timer of an open batch.
        queued: In the dispatcher's queue.
        waits_for: The batches it depends on (to hurry them when someone waits).
        merged: Held batches merged into this one (their waiters resolve with it).
        mirrors: Receipts of skipped duplicates of its operations (for callbacks).
        evicted: Leading operations dropped by ``drop_oldest`` before sending.
    """

    __slots__ = (
        "accepting",
        "count",
        "dependents",
        "deps",
        "epoch",
        "evicted",
        "exceptions",
        "first_at",
        "forward",
        "future",
        "keys",
        "merged",
        "mirrors",
        "next",
        "offset",
        "outcome",
        "parts",
        "pipeline",
        "queued",
        "receipts",
        "single",
        "size",
        "state",
        "timer",
        "urgent",
        "waits_for",
    )

    def __init__(self, pipeline: Any, state: str, size: int, first_at: float, epoch: Any) -> None:
        self.pipeline = pipeline
        self.state = state
        self.accepting = state in (OPEN, HELD)
        self.parts: list[bytes] = []
        self.keys: list[Any] = []
        self.size = size
        self.count = 0
        self.deps = 0
        self.dependents: list[Batch] | None = None
        self.next: dict[int, Batch] | None = None
        self.forward: Batch | None = None
        self.offset = 0
        self.outcome: Outcome | None = None
        self.exceptions: dict[int, Outcome] | None = None
        self.future: asyncio.Future[None] | None = None
        self.urgent = False
        self.first_at = first_at
        self.epoch = epoch
        self.receipts: list[Any] | None = None
        self.single: SingleRequest | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.queued = False
        self.waits_for: list[Batch] | None = None
        self.merged: list[Batch] | None = None
        self.mirrors: list[Any] | None = None
        self.evicted = 0

    def __repr__(self) -> str:
        return f"<Batch {self.state} ops={self.count} bytes={self.size} deps={self.deps}>"

    def root(self) -> Batch:
        """The batch this one was merged into (itself when it was not)."""
        batch = self
        while batch.forward is not None:
            batch = batch.forward
        return batch

    def depends_on(self, other: Batch) -> None:
        """Wait for ``other`` before sending."""
        self.deps += 1
        if self.waits_for is None:
            self.waits_for = [other]
        else:
            self.waits_for.append(other)
        if other.dependents is None:
            other.dependents = [self]
        else:
            other.dependents.append(self)

    def tally(self) -> list[tuple[Outcome, int]]:
        """``(outcome, operations)`` pairs covering every operation but the evicted ones
        (those were counted when they were evicted)."""
        assert self.outcome is not None
        exceptions = [o for i, o in (self.exceptions or {}).items() if i >= self.evicted]
        main = self.count - self.evicted - len(exceptions)
        pairs = [(self.outcome, main)] if main else []
        pairs.extend((outcome, 1) for outcome in exceptions)
        return pairs
