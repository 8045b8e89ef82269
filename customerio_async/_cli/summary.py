"""The end of an import: a summary on stdout and the exit status.

Exit status: 0 every line delivered (or nothing left to do), 1 some lines rejected, invalid,
dropped or unconfirmed, 130/143 stopped by SIGINT/SIGTERM (checkpoint written). A stopped
run prints one line; a finished run prints a short table. Only counts, paths and line
numbers: never payload values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .progress import Console
from .settle import Counts

__all__ = ["RunResult", "report"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one import run ended."""

    path: Path
    checkpoint: Path
    rejects: Path
    counts: Counts
    elapsed: float
    watermark: int
    earlier_rejects: int
    complete: bool
    stopped_by: str | None
    nothing_left_before: bool  # the checkpoint said the file was already done


def _stopped_line(r: RunResult) -> str:
    c = r.counts
    return (
        f"{r.stopped_by}: re-run the same command to resume; stopped after {r.elapsed:.1f} s "
        f"with {c.delivered + c.duplicates:,} delivered, {c.failed:,} rejected, "
        f"{c.dropped:,} dropped and {c.unsent:,} not confirmed (sent on resume); "
        f"checkpoint at line {r.watermark:,} in {r.checkpoint}"
    )


def _headline(r: RunResult) -> str:
    c = r.counts
    settled = c.delivered + c.duplicates + c.rejected + c.dropped
    rate = settled / r.elapsed if r.elapsed > 0 else 0.0
    if _nothing_to_do(r):
        return f"nothing to do: every line of {r.path} was settled by an earlier run"
    status = "imported" if r.complete else "stopped"
    return f"{status} {r.path}: {c.read:,} lines read in {r.elapsed:.2f} s ({rate:,.0f} ops/s)"


def _table(r: RunResult) -> list[str]:
    c = r.counts
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(c.by_type.items()))
    rows = [f"  sent        {c.sent:,}" + (f" ({kinds})" if kinds else "")]
    rows.append(
        f"  delivered   {c.delivered:,}"
        + (f" (+{c.duplicates:,} duplicates skipped)" if c.duplicates else "")
    )
    rejected = f"  rejected    {c.failed:,}"
    if r.earlier_rejects:
        rejected += f" (+{r.earlier_rejects:,} from earlier runs)"
    if c.failed or r.earlier_rejects:
        rejected += f" -> {r.rejects}"
    rows.append(rejected)
    if c.dropped:
        why = ", ".join(f"{k} {n:,}" for k, n in sorted(c.dropped_by.items()))
        rows.append(
            f"  dropped     {c.dropped:,} ({why}): re-run the same command to send them again"
        )
    if c.unsent:
        rows.append(f"  unconfirmed {c.unsent:,} (in flight at the end: the next run resends them)")
    if c.skipped:
        rows.append(f"  skipped     {c.skipped:,} (settled in an earlier run)")
    rows.append(f"  checkpoint  line {r.watermark:,} -> {r.checkpoint}")
    return rows


def _nothing_to_do(r: RunResult) -> bool:
    c = r.counts
    return (
        r.nothing_left_before
        and r.complete
        and r.stopped_by is None
        and c.sent == 0
        and c.failed == 0
        and c.dropped == 0
    )


def report(console: Console, r: RunResult) -> int:
    """Print the summary of ``r``; returns the exit status."""
    if r.stopped_by is not None:
        console.print(_stopped_line(r))
        return 143 if r.stopped_by == "SIGTERM" else 130
    console.print(_headline(r))
    for row in _table(r):
        console.print(row)
    if _nothing_to_do(r):
        return 0  # earlier rejects stay in the rejects file (and are named above)
    c = r.counts
    return 1 if c.failed or c.dropped or c.unsent or r.earlier_rejects else 0
