"""The rejects file (``FILE.rejects.jsonl``): every line that failed, with why, to fix and redo.

One JSON object per failed line: ``line``, ``stage`` (``parse``, ``validation``, ``api`` when
Customer.io refused it, ``dropped`` when the SDK gave up), ``reason``, ``message`` and the
``record`` (or the ``raw`` text when it did not parse). This file is where payload values
go; the console never shows them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import anyio.to_thread

from .checkpoint import Checkpoint, write_atomically
from .readers import Line

__all__ = ["RejectsFile"]


class RejectsFile:
    """Appends failed lines; keeps the entries of lines an earlier run settled."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.earlier = 0  # entries kept from earlier runs
        self._fh: IO[bytes] | None = None

    async def open(self, ckpt: Checkpoint | None) -> None:
        """Start the file: keep the entries of lines this run skips (the others are redone,
        and re-added if they fail again), drop the rest. Reads and fsyncs in a thread."""
        await anyio.to_thread.run_sync(self._start, ckpt)

    def _start(self, ckpt: Checkpoint | None) -> None:
        kept: list[bytes] = []
        if ckpt is not None and self.path.exists():
            for data in self.path.read_bytes().splitlines():
                try:
                    number = int(json.loads(data)["line"])
                except (ValueError, KeyError, TypeError):
                    continue
                if ckpt.settled(number):
                    kept.append(data + b"\n")
        self.earlier = len(kept)
        write_atomically(self.path, b"".join(kept))
        self._fh = self.path.open("ab")

    def add(self, line: Line, stage: str, reason: str, message: str | None) -> None:
        """Record ``line`` as failed at ``stage``."""
        entry: dict[str, Any] = {"line": line.number, "stage": stage, "reason": reason}
        if message:
            entry["message"] = message
        if line.record is not None:
            entry["record"] = line.record
        else:
            entry["raw"] = line.raw.decode("utf-8", "replace")
        assert self._fh is not None, "open() first"
        self._fh.write(json.dumps(entry, ensure_ascii=False, default=str).encode() + b"\n")

    async def sync(self) -> None:
        """Make what was written durable (before a checkpoint that relies on it)."""
        if self._fh is None:  # closed, and synced when it was
            return
        self._fh.flush()
        await anyio.to_thread.run_sync(os.fsync, self._fh.fileno())

    async def close(self) -> None:
        """Sync and close."""
        await self.sync()
        if self._fh is not None:
            self._fh.close()
            self._fh = None
