"""``customerio-async import --dry-run``: validate every line offline; send nothing."""

from __future__ import annotations

import collections
from pathlib import Path

from .feed import prepare_line
from .operations import LINE_APIS
from .progress import Console
from .readers import Format, inspect, open_lines

__all__ = ["SHOWN", "dry_run"]

SHOWN = 20  # invalid lines named on stderr


def dry_run(path: Path, fmt: Format, console: Console, api: str = "track") -> int:
    """Validate ``path`` (lines for ``api``) and print a summary. Exit status 0 (all valid)
    or 1.

    Raises:
        UsageError: The file cannot be read, is not UTF-8, or has an unusable CSV header.
    """
    identity, _ = inspect(path)
    by_type: collections.Counter[str] = collections.Counter()
    bad: list[tuple[int, str]] = []
    read = blank = 0
    build = LINE_APIS[api]
    for line in open_lines(path, fmt, build.columns):
        read += 1
        item = prepare_line(line, identity, None, build.build)
        if item.kind == "blank":
            blank += 1
        elif item.op is not None:
            by_type[item.op.action] += 1
        else:
            bad.append((line.number, item.message))
    for number, message in bad[:SHOWN]:
        console.note(f"line {number}: {message}")
    if len(bad) > SHOWN:
        console.note(f"... and {len(bad) - SHOWN} more invalid lines")
    valid = sum(by_type.values())
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(by_type.items()))
    console.print(
        f"dry run of {path}: {read:,} lines, {valid:,} valid"
        + (f" ({kinds})" if kinds else "")
        + f", {len(bad):,} invalid, {blank:,} blank; nothing was sent"
    )
    return 1 if bad else 0
