"""The import's console: a tqdm progress bar on a terminal, plain periodic lines elsewhere.

On a terminal (or with ``--progress``) one line on stderr is redrawn in place and fitted to
the terminal's width: percentage, lines, rate, ETA and the outcome counts. When stderr is not
a terminal (CI logs, ``2> file``) the same figures are printed as a plain line every few
seconds instead, so the log stays readable. ``--no-progress`` prints neither.

The ETA is remaining lines / the *current* rate of this run:

* lines an earlier run settled are the bar's ``initial`` count: they are progress, not
  speed (a resume that skips half the file must not look twice as fast);
* the clock starts when the first operation is sent, not at start-up (counting a large file's
  lines, the credentials check and skipping the settled lines take a while and are not
  throughput);
* tqdm smooths the rate exponentially, so a slowdown (a 429 pause, the rate limit) shows in
  the ETA within seconds instead of being averaged over the whole run.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

from tqdm import tqdm

__all__ = ["Console", "Progress", "ProgressMode"]

ProgressMode = Literal["bar", "plain", "off"]
# Widest first: the first one that leaves room for a bar of MIN_BAR columns is drawn, so a
# narrow terminal loses the counts, then the line numbers, instead of a truncated line.
BAR_FORMATS = (
    "[{bar}] {percentage:5.1f}%  {n:,}/{total:,} lines  {rate_fmt}  ETA {remaining}{postfix}",
    "[{bar}] {percentage:5.1f}%  {n:,}/{total:,} lines  {rate_fmt}  ETA {remaining}",
    "[{bar}] {percentage:3.0f}% {rate_fmt} ETA {remaining}",
)
MIN_BAR = 10
PLAIN_FORMAT = (
    "progress: {percentage:5.1f}% {n:,}/{total:,} lines, {rate_fmt}, "
    "elapsed {elapsed}, ETA {remaining}{postfix}"
)


class _Bar(tqdm):  # type: ignore[type-arg]  # tqdm is generic over the items it iterates
    """tqdm without its monitor thread (the import refreshes the bar from its own ticker),
    whose line format follows the terminal's width."""

    monitor_interval = 0

    @property
    def format_dict(self) -> MutableMapping[str, Any]:
        """tqdm's figures, with the widest format that fits the terminal."""
        figures = super().format_dict
        ncols = figures.get("ncols")
        if ncols:
            figures["bar_format"] = _fitting(figures, ncols)
        return figures


def _fitting(figures: MutableMapping[str, Any], ncols: int) -> str:
    for fmt in BAR_FORMATS:
        rest = tqdm.format_meter(
            **{**figures, "bar_format": fmt.replace("{bar}", ""), "ncols": None}
        )
        if len(rest) + MIN_BAR <= ncols:
            return fmt
    return BAR_FORMATS[-1]


class _Discard(io.TextIOBase):
    """Where the bar draws in plain mode: the figures are rendered on demand instead."""

    def write(self, text: str) -> int:
        return len(text)


class Progress:
    """Progress of one import, measured in physical lines of the file."""

    def __init__(self, err: TextIO, mode: ProgressMode) -> None:
        self.mode = mode
        self._err = err
        self._bar: _Bar | None = None
        self._last_plain = 0.0
        self._working = False

    def start(self, total: int, initial: int) -> None:
        """Show the bar: ``total`` lines, ``initial`` of them settled by earlier runs."""
        if self.mode == "off":
            return
        self._bar = _Bar(
            total=max(total, initial, 1),
            initial=initial,
            file=self._err if self.mode == "bar" else _Discard(),
            dynamic_ncols=True,  # fit the terminal, and follow it when resized
            unit=" ops",
            unit_scale=True,
            bar_format=BAR_FORMATS[0],
            ascii=self.mode != "bar" or not _utf8(self._err),
        )
        self._last_plain = time.monotonic()

    def working(self) -> None:
        """The first operation is on its way: from now on elapsed time is throughput."""
        if self._bar is not None and not self._working:
            self._working = True
            self._bar.unpause()  # restarts tqdm's clock: start-up time is not speed

    def advance(self, lines: int) -> None:
        """``lines`` more physical lines reached their outcome in this run."""
        if self._bar is not None:
            self._bar.update(lines)

    def show_counts(self, delivered: int, rejected: int, dropped: int) -> None:
        """The outcome counts shown after the ETA (cheap: drawn at the next refresh)."""
        if self._bar is not None:
            text = f"delivered {delivered:,}, rejected {rejected:,}, dropped {dropped:,}"
            self._bar.set_postfix_str(text, refresh=False)

    def tick(self, *, plain_every: float) -> None:
        """Redraw the bar, or print a plain line when ``plain_every`` seconds have passed."""
        bar = self._bar
        if bar is None:
            return
        if self.mode == "bar":
            bar.refresh()
        elif time.monotonic() - self._last_plain >= plain_every:
            self._print_plain()

    def text(self) -> str:
        """The current figures as one plain line."""
        assert self._bar is not None
        return str(tqdm.format_meter(**{**self._bar.format_dict, "bar_format": PLAIN_FORMAT}))

    def _print_plain(self) -> None:
        self._last_plain = time.monotonic()
        self._err.write(self.text() + "\n")
        self._err.flush()

    def note(self, text: str) -> None:
        """A line of its own on stderr (above the bar, which is redrawn after it)."""
        if self._bar is not None and self.mode == "bar":
            _Bar.write(text, file=self._err)
        else:
            self._err.write(text + "\n")
        self._err.flush()

    def close(self, *, finished: bool) -> None:
        """Draw the final state (100 % when ``finished``) and leave it on screen."""
        bar = self._bar
        if bar is None:
            return
        if finished and bar.total is not None:
            bar.n = bar.total
        if self.mode == "plain":
            self._print_plain()
        bar.close()
        self._bar = None


def _utf8(stream: TextIO) -> bool:
    encoding = getattr(stream, "encoding", None) or ""
    return encoding.lower().replace("-", "") == "utf8"


class Console:
    """The two output streams of a command, and the import's progress on stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.progress = Progress(self.err, "off")

    def use_progress(self, forced: bool | None) -> None:
        """``--progress`` (True), ``--no-progress`` (False), or by what stderr is (None)."""
        if forced is False:
            mode: ProgressMode = "off"
        elif forced or self.err.isatty():
            mode = "bar"
        else:
            mode = "plain"
        self.progress = Progress(self.err, mode)

    def note(self, text: str) -> None:
        """A message on stderr that does not garble the progress bar."""
        self.progress.note(text)

    def print(self, text: str) -> None:
        """A line of the result on stdout."""
        self.out.write(text + "\n")
