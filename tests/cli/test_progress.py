"""The import's progress: a correct ETA, a bar that fits the terminal, plain lines in logs."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import termios
from pathlib import Path

import pytest
import tqdm.std

from customerio_async import _cli
from customerio_async._cli import job as job_module
from customerio_async._cli.progress import Console, Progress
from customerio_async.testing import FakeCustomerIO, Fault

from ._helpers import args, mixed, write_jsonl


class Clock:
    """A hand-driven clock for tqdm (which reads ``time()`` from its own module)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def eta_seconds(text: str) -> int:
    match = re.search(r"ETA (\d+):(\d+)", text)
    assert match, text
    return int(match[1]) * 60 + int(match[2])


def test_eta_is_remaining_lines_over_the_current_rate_of_this_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resume of a 20,000-line file, 10,000 lines settled by the earlier run; start-up
    (counting lines, the credentials check, skipping the settled half) takes 10 s, then
    lines settle at 1,000/s for 5 s. 5,000 lines remain: the ETA is 5 s.

    The old progress line divided the remaining lines by this run's outcomes over the time
    since the job was created (5,000 / 15 s = 333/s): an ETA of 15 s, three times too long,
    and it only crept towards the truth as the average diluted the start-up. It was also a
    lifetime average, so a slowdown barely moved it; tqdm's smoothed rate follows it.
    """
    clock = Clock()
    monkeypatch.setattr(tqdm.std, "time", clock)
    progress = Progress(io.StringIO(), "plain")
    progress.start(total=20_000, initial=10_000)
    clock.now += 10.0  # start-up and skipping: not throughput
    progress.working()
    for _ in range(50):  # 1,000 lines/s for 5 s
        clock.now += 0.1
        progress.advance(100)
    text = progress.text()
    assert "15,000/20,000 lines" in text
    assert "1.00k ops/s" in text
    assert eta_seconds(text) == 5
    for _ in range(30):  # a slowdown to 250 lines/s for 3 s
        clock.now += 0.1
        progress.advance(25)
    # 4,250 lines left at 250/s: 17 s (the smoothed rate has caught up within 3 s).
    assert 16 <= eta_seconds(progress.text()) <= 18


@pytest.mark.parametrize("columns", [60, 140])
def test_the_bar_fits_the_terminal(columns: int) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    with os.fdopen(slave, "w", encoding="utf-8") as tty:
        console = Console(io.StringIO(), tty)
        console.use_progress(None)  # a terminal: the bar
        progress = console.progress
        assert progress.mode == "bar"
        progress.start(total=1_000_000, initial=0)
        progress.working()
        progress.show_counts(123_456, 7, 0)
        progress.advance(500_000)
        progress.tick(plain_every=10)
        console.note("a note goes above the bar")
        progress.close(finished=True)
    output = b""
    while chunk := _read_available(master):
        output += chunk
    os.close(master)
    text = output.decode()
    assert "a note goes above the bar" in text
    drawn = [part.rstrip() for part in re.split(r"[\r\n]", text) if "ETA" in part]
    assert drawn
    assert all(len(part) <= columns for part in drawn), drawn
    # Fields are dropped whole when the line is too narrow, never cut in the middle.
    assert all(
        re.search(r"ETA (\?|\d\d:\d\d)(, delivered [\d,]+.*dropped \d+)?$", p) for p in drawn
    )
    assert drawn[-1].startswith("[" + "█" * 10)
    assert ("delivered 123,456, rejected 7, dropped 0" in drawn[-1]) == (columns > 100)


def _read_available(fd: int) -> bytes:
    ready, _, _ = select.select([fd], [], [], 0)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # the other side is closed
        return b""


async def test_plain_progress_lines_when_stderr_is_not_a_terminal(
    fake: FakeCustomerIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(job_module, "PROGRESS_EVERY", 0.01)
    monkeypatch.setattr(job_module, "PLAIN_EVERY", 0.0)
    path = write_jsonl(tmp_path / "p.jsonl", mixed(200))
    fake.add_fault(Fault(delay=0.3, match="/api/v2/batch"))  # long enough for a few ticks
    assert await _cli.run(args(fake, path, "--batch-size", "20")) == 0
    err = capsys.readouterr().err
    assert "\r" not in err  # no redraws in a log
    plain = [line for line in err.splitlines() if line.startswith("progress: ")]
    assert len(plain) >= 2  # periodic, and a final one
    assert plain[-1].startswith("progress: 100.0% 200/200 lines")
    assert "delivered 200, rejected 0, dropped 0" in plain[-1]


async def test_rate_0_means_no_limit(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", mixed(30))
    assert await _cli.run(args(fake, path, "--rate", "0", "--no-progress")) == 0
    captured = capsys.readouterr()
    assert "no rate limit" in captured.err
    assert "delivered   30" in captured.out
    assert len(fake.operations) == 30


def test_a_terminal_too_narrow_for_any_format_gets_the_narrowest() -> None:
    from customerio_async._cli.progress import BAR_FORMATS, _fitting

    figures = {"n": 5, "total": 10, "elapsed": 1.0, "unit": " ops", "rate": None, "postfix": ""}
    assert _fitting(figures, 12) == BAR_FORMATS[-1]
    assert _fitting(figures, 200) == BAR_FORMATS[0]
