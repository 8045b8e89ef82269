"""Settling: each line's outcome goes to the counts, the checkpoint tracker, the rejects file
and the progress bar, exactly once.

The :class:`Settler` is the client's ``on_outcome`` callback. It only relies on
``receipt.outcome``; which line a receipt belongs to, and how many bytes are still
undecided, it keeps itself.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from customerio_async import Outcome, Receipt

from .checkpoint import LineTracker
from .progress import Console
from .readers import Line
from .rejects import RejectsFile

__all__ = ["Counts", "Settler"]

SHOWN_ERRORS = 10  # invalid lines named on the console (all of them go to the rejects file)


@dataclass
class Counts:
    """What happened to the lines of one run."""

    read: int = 0
    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    rejected: int = 0
    invalid: int = 0
    dropped: int = 0
    unsent: int = 0
    skipped: int = 0
    blank: int = 0
    by_type: collections.Counter[str] = field(default_factory=collections.Counter)
    dropped_by: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def failed(self) -> int:
        """Lines of this run that went to the rejects file as refused or invalid."""
        return self.rejected + self.invalid


class Settler:
    """Turns outcomes into settled lines; tracks what is still undecided."""

    def __init__(self, tracker: LineTracker, rejects: RejectsFile, console: Console) -> None:
        self.counts = Counts()
        self.tracker = tracker
        self.rejects = rejects
        self.console = console
        self.pending_bytes = 0
        self.stopping = False  # from now on a drop means "not sent yet", not "given up"
        # id(receipt) -> (receipt, line): receipts are kept alive here, so ids stay unique.
        self._pending: dict[int, tuple[Receipt, Line]] = {}
        self._shown = 0
        self._changed = asyncio.Event()

    @property
    def pending(self) -> int:
        """Lines admitted to the client and not decided yet."""
        return len(self._pending)

    # ------------------------------------------------------------------ admission side

    def track(self, receipt: Receipt, line: Line) -> None:
        """``line`` was admitted as ``receipt``."""
        outcome = receipt.outcome
        if outcome is not None:  # decided at admission (de-duplicated)
            self._settle_outcome(line, outcome)
            return
        self._pending[id(receipt)] = (receipt, line)
        self.pending_bytes += len(line.raw)

    def settle_local(self, line: Line, stage: str | None = None, message: str = "") -> None:
        """A line decided without Customer.io: blank (no ``stage``), unparsable or invalid."""
        c = self.counts
        if stage is None:
            c.blank += 1
        else:
            c.invalid += 1
            self.rejects.add(line, stage, "invalid", message)
            if self._shown < SHOWN_ERRORS:
                self._shown += 1
                self.console.note(f"line {line.number}: {message}")
        self._done(line)

    # ------------------------------------------------------------------ outcome side

    def on_outcome(self, receipt: Receipt) -> None:
        """The client's ``on_outcome`` callback."""
        entry = self._pending.pop(id(receipt), None)
        if entry is None or receipt.outcome is None:
            return
        line = entry[1]
        self.pending_bytes -= len(line.raw)
        self._settle_outcome(line, receipt.outcome)
        self._changed.set()

    def _settle_outcome(self, line: Line, outcome: Outcome) -> None:
        c = self.counts
        status = outcome.status
        if status == "delivered":
            c.delivered += 1
        elif status == "deduplicated":
            c.duplicates += 1
        elif status == "rejected":
            c.rejected += 1
            self.rejects.add(line, "api", outcome.reason or "invalid", outcome.message)
        elif self.stopping:
            # Still in flight when the run stopped: not settled, so the checkpoint stays
            # below it and the next run sends it again (with the same event id).
            c.unsent += 1
            return
        else:
            c.dropped += 1
            c.dropped_by[outcome.reason or "dropped"] += 1
            self.rejects.add(line, "dropped", outcome.reason or "dropped", outcome.message)
            self._done(line, retry=True)
            return
        self._done(line)

    def _done(self, line: Line, *, retry: bool = False) -> None:
        self.tracker.settle(line.number, retry=retry)
        self.console.progress.advance(line.span)

    def show_counts(self) -> None:
        """Refresh the counts on the progress bar."""
        c = self.counts
        self.console.progress.show_counts(c.delivered + c.duplicates, c.failed, c.dropped)

    # ------------------------------------------------------------------ waiting

    def changed(self) -> Coroutine[Any, Any, bool]:
        """An awaitable for the next outcome.

        The event is cleared *now*, not when the awaitable first runs: an outcome that
        arrives in between (a task starts a loop iteration later) must not be missed.
        """
        self._changed.clear()
        return self._changed.wait()

    def abandon_pending(self) -> None:
        """The run is over: what never got an outcome counts as not sent."""
        self.counts.unsent += len(self._pending)
        self._pending.clear()
        self.pending_bytes = 0
