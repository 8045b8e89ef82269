"""The import checkpoint: which lines a run settled, so the next run skips exactly those.

``FILE.checkpoint`` (JSON, written atomically) holds the highest line ``N`` such that every
line ``<= N`` reached a terminal outcome (outcomes arrive in order per person, not globally,
so this is the lowest unsettled line minus one), the settled lines above ``N`` as ranges, and
the lines that were *dropped* (the SDK gave up) and must be sent again. A line is settled only
when Customer.io accepted or refused it, or it could never be sent (blank, invalid): a line
still in flight when a run stops is not, so the next run sends it again.
"""

from __future__ import annotations

import bisect
import collections
import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .readers import Format

__all__ = ["CHECKPOINT_VERSION", "Checkpoint", "LineTracker", "write_atomically"]

CHECKPOINT_VERSION = 1


def _ranges(lines: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for n in lines:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


@dataclass
class Checkpoint:
    """What a previous run settled: skip those lines, resend the dropped ones.

    Attributes:
        line: Every line ``<= line`` reached a terminal outcome.
        retry: Lines that were dropped (never confirmed); a re-run sends them again.
        done_above: Lines ``> line`` that are settled, as inclusive ``[first, last]`` ranges.
        complete: The previous run read the whole file and settled every line.
    """

    identity: str
    format: Format
    line: int = 0
    retry: frozenset[int] = frozenset()
    done_above: list[list[int]] = field(default_factory=list)
    complete: bool = False

    def __post_init__(self) -> None:
        self.done_above.sort()
        self._firsts = [first for first, _ in self.done_above]

    def settled(self, line: int) -> bool:
        """Whether a re-run skips ``line``."""
        if line in self.retry:
            return False
        if line <= self.line:
            return True
        i = bisect.bisect_right(self._firsts, line) - 1
        return i >= 0 and line <= self.done_above[i][1]

    def settled_lines(self, total: int) -> int:
        """How many of lines ``1..total`` a re-run skips (the progress bar's head start)."""
        below = min(self.line, total) - sum(1 for n in self.retry if n <= min(self.line, total))
        above = sum(max(0, min(last, total) - first + 1) for first, last in self.done_above)
        return max(below, 0) + above

    @property
    def nothing_left(self) -> bool:
        """The previous run finished the file and nothing waits to be re-sent."""
        return self.complete and not self.retry

    @classmethod
    def load(cls, path: Path, identity: str, fmt: Format) -> Checkpoint | None:
        """Read ``path``; ``None`` when it does not exist.

        Raises:
            UsageError: Unreadable, or written for a different file.
        """
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the checkpoint {path}: {exc}") from None
        try:
            return cls._from_doc(doc, path, identity, fmt)
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"the checkpoint {path} is malformed") from None

    @classmethod
    def _from_doc(cls, doc: Any, path: Path, identity: str, fmt: Format) -> Checkpoint:
        if doc["version"] != CHECKPOINT_VERSION:
            raise UsageError(f"the checkpoint {path} has an unknown version")
        if doc["identity"] != identity:
            raise UsageError(
                f"the checkpoint {path} was written for a different file; "
                "delete it to start over, or pass --checkpoint"
            )
        return cls(
            identity=identity,
            format=fmt,
            line=int(doc["line"]),
            retry=frozenset(int(n) for n in doc["retry"]),
            done_above=[[int(a), int(b)] for a, b in doc["done_above"]],
            complete=bool(doc["complete"]),
        )


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and ``os.replace``.

    Blocking (fsync can take a while on a busy disk): the import calls it in a worker thread.
    """
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class LineTracker:
    """Which lines have settled, and the watermark below which all have.

    Lines are begun in increasing order and settle in any order; the watermark is the
    highest line with every line up to it settled (the lowest unsettled line minus one).
    """

    def __init__(self) -> None:
        self.watermark = 0
        self._open: collections.deque[int] = collections.deque()
        self._settled: set[int] = set()
        self.retry: set[int] = set()

    def begin(self, line: int) -> None:
        """Line ``line`` has been read (lines are begun in increasing order)."""
        self._open.append(line)

    def settle(self, line: int, *, retry: bool = False) -> None:
        """Line ``line`` reached a terminal outcome (``retry``: dropped, send it again)."""
        if retry:
            self.retry.add(line)
        open_ = self._open
        if open_ and open_[0] == line:  # the common case: in order
            open_.popleft()
            self.watermark = line
            settled = self._settled
            while open_ and open_[0] in settled:
                self.watermark = open_.popleft()
                settled.discard(self.watermark)
        else:
            self._settled.add(line)

    @property
    def unsettled(self) -> int:
        """Lines begun and not settled."""
        return len(self._open) - len(self._settled)

    def snapshot(self, ckpt: Checkpoint, *, complete: bool) -> bytes:
        """The checkpoint document for the current state."""
        done = sorted(n for n in self._settled if n not in self.retry)
        doc = {
            "version": CHECKPOINT_VERSION,
            "identity": ckpt.identity,
            "format": ckpt.format,
            "line": self.watermark,
            "retry": sorted(self.retry),
            "done_above": _ranges(done),
            "complete": complete,
            "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"
