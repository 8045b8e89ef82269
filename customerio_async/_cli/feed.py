"""Feeding: read the file (in a worker thread), build each line's operation, admit it.

Admission is bounded by a window of undecided lines (count and bytes), so the client's
buffer never has to block and a stop leaves little behind. Reading stops as soon as a stop is
requested: the line in hand stays unsettled and the next run reads it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from customerio_async import CustomerIO, Operation, PipelinesCall, PipelinesClient, ValidationError

from .checkpoint import Checkpoint
from .operations import LINE_APIS, LineError, build_operation
from .readers import ChunkReader, Format, Line, open_lines
from .settle import Settler
from .stopping import Stopper, first_of

__all__ = ["PENDING_BYTES", "FeedOptions", "Feeder", "Prepared", "prepare_line"]

PENDING_BYTES = 32 * 1024 * 1024  # undecided line bytes before reading pauses

Kind = Literal["skip", "blank", "parse", "validation", "op"]
Client = CustomerIO | PipelinesClient
Built = Operation | PipelinesCall


@dataclass(slots=True)
class Prepared:
    """A line and what to do with it (decided in the reading thread)."""

    line: Line
    kind: Kind
    op: Built | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """What the feeder needs to know about the file."""

    path: Path
    format: Format
    identity: str
    window: int
    api: str = "track"


def prepare_line(
    line: Line,
    identity: str,
    ckpt: Checkpoint | None,
    build: Callable[[Line, str], Built] = build_operation,
) -> Prepared:
    """Classify ``line`` and build its operation (pure: runs in the reading thread)."""
    if ckpt is not None and ckpt.settled(line.number):
        return Prepared(line, "skip")
    if line.blank:
        return Prepared(line, "blank")
    if line.error is not None:
        return Prepared(line, "parse", message=line.error)
    try:
        return Prepared(line, "op", build(line, identity))
    except (LineError, ValidationError) as exc:
        return Prepared(line, "validation", message=str(exc))


class Feeder:
    """Reads every line once and hands it to the client or to the settler."""

    def __init__(
        self,
        *,
        reader: ChunkReader[Prepared],
        settler: Settler,
        stopper: Stopper,
        window: int,
    ) -> None:
        self.reader = reader
        self.settler = settler
        self.stopper = stopper
        self.window = window
        self.started = False  # the first operation was admitted

    @classmethod
    def for_file(
        cls, options: FeedOptions, settler: Settler, stopper: Stopper, ckpt: Checkpoint | None
    ) -> Feeder:
        """A feeder over ``options.path``."""
        identity = options.identity
        api = LINE_APIS[options.api]

        def prepare(line: Line) -> Prepared:
            return prepare_line(line, identity, ckpt, api.build)

        reader = ChunkReader(open_lines(options.path, options.format, api.columns), prepare)
        return cls(reader=reader, settler=settler, stopper=stopper, window=options.window)

    async def run(self, cio: Client) -> bool:
        """Feed the whole file; returns whether it was read to the end (not stopped)."""
        stopped = self.stopper.stopped
        try:
            # Checked before every chunk and every line: a stop ends reading at once.
            while not stopped.is_set() and (chunk := await self.reader.next_chunk()):
                for item in chunk:
                    if stopped.is_set() or not await self._feed(cio, item):
                        return False
            return not stopped.is_set()
        finally:
            self.reader.close()

    async def _feed(self, cio: Client, item: Prepared) -> bool:
        """Hand one line over; ``False`` when a stop came while waiting for room."""
        line = item.line
        settler = self.settler
        settler.counts.read += 1
        settler.tracker.begin(line.number)
        if item.kind == "skip":
            settler.counts.skipped += 1
            settler.tracker.settle(line.number)  # already counted in the bar's head start
            return True
        if item.kind != "op":
            settler.settle_local(line, None if item.kind == "blank" else item.kind, item.message)
            return True
        if not await self._room():
            return False  # this line stays unsettled: the next run reads it again
        assert item.op is not None
        await self._admit(cio, item.op, line)
        return True

    async def _room(self) -> bool:
        """Wait until the window has room; ``False`` when a stop came first."""
        settler = self.settler
        stopped = self.stopper.stopped
        while settler.pending >= self.window or settler.pending_bytes >= PENDING_BYTES:
            if stopped.is_set():
                return False
            await first_of(settler.changed(), stopped)
        return not stopped.is_set()

    async def _admit(self, cio: Client, op: Built, line: Line) -> None:
        counts = self.settler.counts
        if not self.started:
            self.started = True
            self.settler.console.progress.working()
        receipt = await cio.send(op)  # type: ignore[arg-type]  # each client its own kind
        counts.sent += 1
        counts.by_type[op.action] += 1
        self.settler.track(receipt, line)
        if counts.sent % 256 == 0:
            await asyncio.sleep(0)  # let the lanes send while a fast reader admits

    async def wait_settled(self) -> None:
        """After the last line: wait for every outcome, or a stop."""
        settler = self.settler
        stopped = self.stopper.stopped
        while settler.pending and not stopped.is_set():
            await first_of(settler.changed(), stopped)
