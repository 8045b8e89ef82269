"""Ctrl-C and SIGTERM on the real command: ``python -m customerio_async import`` in a
subprocess, against a real (slowed-down) fake server in the test's event loop.

What is proved: the first SIGINT stops reading at once and only the requests on the wire
finish (far from the whole file), the exit is 130 with one summary line and nothing on
stderr that looks like a crash, the checkpoint never marks a line done that the fake did not
apply, and a resume completes the file with every line applied exactly once (the fake
de-duplicates events by id, as Customer.io does). A second SIGINT stops at once, even with
requests stalled on the wire.

Every wait is on a condition (the fake's counters, the child's output) with a generous
timeout; nothing asserts on speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from customerio_async import BatchConfig, _cli
from customerio_async._cli.checkpoint import Checkpoint
from customerio_async._cli.job import ImportJob
from customerio_async._cli.readers import file_identity
from customerio_async.testing import FakeCustomerIO, Fault

from ._helpers import import_options, write_jsonl
from .conftest import Spawn

LANES = BatchConfig().max_concurrent_requests  # the import's requests on the wire at most
BATCH = 50
LINES = 8 * LANES * BATCH  # so what is on the wire at a signal is well under half the file
WAIT = 60.0  # generous: a loaded 2-core machine


def events(n: int) -> list[dict[str, Any]]:
    """Event lines without ``event_id``: each gets a deterministic ULID from its line."""
    return [
        {"type": "event", "id": str(i % 50), "name": "x", "data": {"line": i}, "timestamp": i}
        for i in range(1, n + 1)
    ]


def lines_of(fake: FakeCustomerIO) -> list[int]:
    return [int(op.body["attributes"]["line"]) for op in fake.operations]


@pytest_asyncio.fixture
async def slow_fake() -> AsyncIterator[FakeCustomerIO]:
    """A fake whose every answer takes 0.3 s, so an import of 2,000 lines takes seconds."""
    async with FakeCustomerIO(site_id="fake-site", api_key="fake-key", latency=0.3) as fake:
        yield fake


async def start_import(
    spawn: Spawn, fake: FakeCustomerIO, path: Path, *extra: str
) -> asyncio.subprocess.Process:
    env = {**os.environ, "CUSTOMERIO_SITE_ID": "fake-site", "CUSTOMERIO_API_KEY": "fake-key"}
    return await spawn(
        sys.executable,
        "-m",
        "customerio_async",
        "import",
        str(path),
        "--track-url",
        fake.url,
        "--batch-size",
        str(BATCH),
        "--no-progress",
        *extra,
        env=env,
    )


def assert_clean_exit(out: bytes, err: bytes, signame: str) -> None:
    """One summary line on stdout; stderr has our notes and nothing that looks like a crash."""
    lines = out.decode().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(f"{signame}: re-run the same command to resume;"), lines
    text = err.decode()
    for noise in ("Traceback", "never retrieved", "Task was destroyed", "Error", "Exception"):
        assert noise not in text, text


def load_checkpoint(path: Path) -> Checkpoint:
    ckpt = Checkpoint.load(path.with_name(path.name + ".checkpoint"), file_identity(path), "jsonl")
    assert ckpt is not None
    return ckpt


async def resume_and_check_exactly_once(
    fake: FakeCustomerIO, path: Path, ckpt: Checkpoint, first: list[int]
) -> None:
    """Resume in-process on the same fake (which still remembers the event ids it applied):
    every line ends up applied exactly once, and only lines the checkpoint had not marked
    done were sent again."""
    argv = ["import", str(path), "--site-id", "fake-site", "--api-key", "fake-key"]
    argv += ["--track-url", fake.url, "--batch-size", str(BATCH), "--rate", "0"]
    assert await _cli.run([*argv, "--no-progress"]) == 0
    lines = lines_of(fake)
    assert sorted(lines) == list(range(1, LINES + 1))  # each line applied once
    assert lines[: len(first)] == first
    done_lines = [n for n in range(1, LINES + 1) if ckpt.settled(n)]
    ids = {op.body["id"]: int(op.body["attributes"]["line"]) for op in fake.operations}
    assert all(not ckpt.settled(ids[dup]) for dup in fake.duplicate_event_ids)
    assert json.loads(path.with_name(path.name + ".checkpoint").read_text())["complete"]
    assert done_lines  # the interrupted run did record progress


async def test_first_sigint_stops_at_once_and_drains_only_what_is_on_the_wire(
    slow_fake: FakeCustomerIO, tmp_path: Path, spawn: Spawn
) -> None:
    fake = slow_fake
    path = write_jsonl(tmp_path / "events.jsonl", events(LINES))
    proc = await start_import(spawn, fake, path)
    try:
        await fake.wait_for_operations(4 * BATCH, timeout=WAIT)
        at_signal = len(fake.operations)
    finally:
        proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 130, err.decode()
    assert_clean_exit(out, err, "SIGINT")
    assert b"interrupt again to stop now" in err
    after = len(fake.operations)
    # Only requests already on the wire (or started before the child took the signal)
    # finish: two rounds of LANES requests at most, nowhere near the whole file.
    assert after - at_signal <= 2 * LANES * BATCH
    assert after < LINES // 2
    ckpt = load_checkpoint(path)
    applied = set(lines_of(fake))
    assert not ckpt.complete
    # Consistent: every line the checkpoint calls done was applied by the fake.
    assert all(n in applied for n in range(1, LINES + 1) if ckpt.settled(n))
    await resume_and_check_exactly_once(fake, path, ckpt, lines_of(fake))


async def test_second_sigint_stops_immediately_even_with_requests_stalled(
    fake: FakeCustomerIO, tmp_path: Path, spawn: Spawn
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", events(LINES))
    # Three batches pass; every later one stalls for 10 minutes on the wire.
    fake.add_fault(Fault(times=3, match="/api/v2/batch"))
    fake.add_fault(Fault(delay=600, times=1_000_000, match="/api/v2/batch"))
    proc = await start_import(spawn, fake, path, "--stop-timeout", "600", "--rate", "0")
    assert proc.stderr is not None
    try:
        await fake.wait_for_arrivals(1 + 3 + 4, timeout=WAIT)  # region, 3 good, stalled
        await fake.wait_for_requests(1 + 3, timeout=WAIT / 2)  # the region and 3 good: answered
        # A batch may leave before it holds BATCH operations: count what the good ones carried.
        good = [r for r in fake.requests[:4] if r.path == "/api/v2/batch"]
        carried = sum(len(r.json()["batch"]) for r in good)
    finally:
        proc.send_signal(signal.SIGINT)
    notes = b""
    while b"interrupt again" not in notes:  # the child took the first signal
        line = await asyncio.wait_for(proc.stderr.readline(), WAIT)
        assert line, notes
        notes += line
    proc.send_signal(signal.SIGINT)
    # Far below the 600 s the first stop would have waited for the stalled requests.
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 130, (notes + err).decode()
    assert_clean_exit(out, notes + err, "SIGINT")
    assert b"stopping now" in err
    first = lines_of(fake)
    assert len(good) == 3
    assert len(first) == carried
    ckpt = load_checkpoint(path)
    assert all(n in set(first) for n in range(1, LINES + 1) if ckpt.settled(n))
    fake.clear()  # forget the stalls (and the history: the stalled batches are never applied)
    argv = ["import", str(path), "--site-id", "fake-site", "--api-key", "fake-key"]
    argv += ["--track-url", fake.url, "--rate", "0", "--no-progress"]
    assert await _cli.run(argv) == 0
    assert sorted(first + lines_of(fake)) == list(range(1, LINES + 1))


async def test_sigterm_exits_143_with_one_line(
    slow_fake: FakeCustomerIO, tmp_path: Path, spawn: Spawn
) -> None:
    fake = slow_fake
    path = write_jsonl(tmp_path / "events.jsonl", events(LINES))
    proc = await start_import(spawn, fake, path)
    try:
        await fake.wait_for_operations(BATCH, timeout=WAIT)
    finally:
        proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 143, err.decode()
    assert_clean_exit(out, err, "SIGTERM")
    ckpt = load_checkpoint(path)
    applied = set(lines_of(fake))
    assert all(n in applied for n in range(1, LINES + 1) if ckpt.settled(n))


async def test_a_stop_during_the_credentials_check(fake: FakeCustomerIO, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", events(10))
    fake.add_fault(Fault(delay=600, match="/accounts/region"))
    options = import_options(fake, path, "events")
    job = ImportJob(options)
    run = asyncio.ensure_future(job.run())
    await fake.wait_for_arrivals(1, timeout=WAIT)
    job.request_stop("SIGTERM")
    assert await asyncio.wait_for(run, WAIT) == 143
    assert job.stopped_by == "SIGTERM"
    assert fake.operations == []
    assert job.counts.read == 0
    job.request_stop("SIGTERM")  # after the run, and a third time: harmless
    job.request_stop("SIGTERM")


async def test_cancelling_the_job_during_the_credentials_check_closes_the_client(
    fake: FakeCustomerIO, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", events(10))
    fake.add_fault(Fault(delay=600, match="/accounts/region"))
    options = import_options(fake, path, "events")
    run = asyncio.ensure_future(ImportJob(options).run())
    await fake.wait_for_arrivals(1, timeout=WAIT)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    # Nothing left open: warnings are errors in this suite, so an unclosed session would fail.
