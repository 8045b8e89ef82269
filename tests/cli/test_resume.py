"""Interrupted imports resume and send each line once.

In-process (``_cli.run`` with signal handling, ``ImportJob.request_stop``) and for real as
``python -m customerio_async`` in a subprocess that is sent SIGTERM mid-import.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from customerio_async import _cli
from customerio_async._cli import job as job_module
from customerio_async._cli.checkpoint import Checkpoint
from customerio_async._cli.job import ImportJob
from customerio_async._cli.readers import file_identity
from customerio_async.testing import FakeCustomerIO, Fault

from ._helpers import (
    args,
    blackhole_after,
    check_exactly_once,
    checkpoint_of,
    import_options,
    line_of,
    mixed,
    write_jsonl,
)
from .conftest import Spawn


async def test_interrupted_import_resumes_and_sends_each_line_once(
    fake: FakeCustomerIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    total = 300
    path = write_jsonl(tmp_path / "big.jsonl", mixed(total))
    blackhole_after(fake, good_batches=5)
    monkeypatch.setattr(job_module, "CHECKPOINT_EVERY", 0.05)
    monkeypatch.setattr(job_module, "PROGRESS_EVERY", 0.02)
    argv = args(fake, path, "--batch-size", "10", "--drain-timeout", "0.3", "--progress")
    run = asyncio.ensure_future(_cli.run(argv, handle_signals=True))
    await fake.wait_for_arrivals(10)  # 1 region check + 5 good + 1 lost + stalled ones
    checkpoint = path.with_name(path.name + ".checkpoint")
    for _ in range(100):  # written periodically while the import runs
        if checkpoint.exists():
            break
        await asyncio.sleep(0.01)
    assert json.loads(checkpoint.read_text())["complete"] is False
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(run, 10) == 143
    out = capsys.readouterr()
    assert "SIGTERM: re-run the same command to resume" in out.out
    assert "interrupt again to stop now" in out.err
    assert "ops/s" in out.err
    ckpt = Checkpoint.load(path.with_name(path.name + ".checkpoint"), file_identity(path), "jsonl")
    assert ckpt is not None
    assert not ckpt.complete
    batches = [r for r in fake.requests if r.path == "/api/v2/batch"]
    cut_batch = batches[5].json()["batch"]
    first = list(fake.operations)
    assert cut_batch  # the lost batch: applied, its answer never came
    # five good batches plus the lost one, nothing else (a batch held behind another for
    # the same people may leave before it has ten)
    assert len(first) == sum(len(b.json()["batch"]) for b in batches[:6])
    fake.clear()  # forget the faults (and the history: we keep our own copy)

    assert await _cli.run(args(fake, path, "--batch-size", "10")) == 0
    assert "resuming from" in capsys.readouterr().err
    check_exactly_once(first, list(fake.operations), ckpt, cut_batch, total)
    assert checkpoint_of(path)["complete"]


async def test_a_second_interrupt_abandons_the_drain(fake: FakeCustomerIO, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "stuck.jsonl", mixed(30))
    blackhole_after(fake, good_batches=0)
    options = import_options(
        fake, path, "stuck", stop_timeout=30.0, window=5
    )  # window: reading pauses once 5 operations are undecided
    job = ImportJob(options)
    run = asyncio.ensure_future(job.run())
    await fake.wait_for_arrivals(4)
    started = time.monotonic()
    job.request_stop("SIGINT")
    await asyncio.sleep(0.1)  # the drain is running now (and would wait 30 s)
    job.request_stop("SIGINT")
    assert await asyncio.wait_for(run, 5) == 130
    assert time.monotonic() - started < 3
    doc = json.loads((tmp_path / "stuck.ckpt").read_text())
    assert doc["line"] == 0
    assert doc["retry"] == []
    assert doc["done_above"] == []
    assert job.counts.sent == 5
    assert job.counts.read == 6  # the sixth line was read, never sent: the next run reads it


async def test_dropped_lines_are_retried_by_the_next_run(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "drops.jsonl", mixed(6))
    # Every batch fails with 503 until the (short) delivery timeout gives up on it.
    fake.add_fault(Fault(status=503, times=1_000_000, match="/api/v2/batch"))
    options = import_options(fake, path, "drops")
    from customerio_async import RetryPolicy

    options.retry = RetryPolicy(delivery_timeout=0.3, backoff_base=0.05, backoff_cap=0.1)
    assert await ImportJob(options).run() == 1
    out = capsys.readouterr().out
    assert "dropped     6" in out
    assert "re-run the same command" in out
    rejects = [json.loads(x) for x in (tmp_path / "drops.rejects").read_text().splitlines()]
    assert {r["stage"] for r in rejects} == {"dropped"}
    assert len(rejects) == 6
    fake.clear()
    assert await ImportJob(options).run() == 0
    assert sorted(line_of(op) for op in fake.operations) == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "drops.rejects").read_text() == ""  # the drops were redone


async def test_subprocess_import_killed_with_sigterm_then_resumed(
    fake: FakeCustomerIO, tmp_path: Path, spawn: Spawn
) -> None:
    """The real entry point: ``python -m customerio_async import``, SIGTERM, re-run."""
    total = 200
    path = write_jsonl(tmp_path / "sub.jsonl", mixed(total))
    blackhole_after(fake, good_batches=3)
    env = {**os.environ, "CUSTOMERIO_SITE_ID": "fake-site", "CUSTOMERIO_API_KEY": "fake-key"}
    argv = [
        sys.executable,
        "-m",
        "customerio_async",
        "import",
        str(path),
        "--track-url",
        fake.url,
        "--batch-size",
        "10",
        "--drain-timeout",
        "0.3",
    ]
    proc = await spawn(*argv, env=env)
    try:
        await fake.wait_for_arrivals(8, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 143, err.decode()
    assert b"SIGTERM: re-run the same command to resume" in out
    ckpt = Checkpoint.load(path.with_name(path.name + ".checkpoint"), file_identity(path), "jsonl")
    assert ckpt is not None
    batches = [r for r in fake.requests if r.path == "/api/v2/batch"]
    cut_batch = batches[3].json()["batch"]
    first = list(fake.operations)
    fake.clear()

    proc = await spawn(*argv, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert b"resuming from" in err
    assert b"skipped" in out
    check_exactly_once(first, list(fake.operations), ckpt, cut_batch, total)
