"""The ``customerio-async`` command line, end to end against the fake server.

Most tests run the CLI in-process (``_cli.run`` in the test's event loop, next to the
``fake`` fixture); the resume scenario also runs for real as ``python -m customerio_async``
in a subprocess that is sent SIGTERM mid-import.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from customerio_async import _cli, _cli_import
from customerio_async._cli_import import (
    Checkpoint,
    ImportJob,
    ImportOptions,
    LineTracker,
    derive_event_id,
    file_identity,
)
from customerio_async.testing import AppliedOperation, FakeCustomerIO, Fault

ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
CREDS = ["--site-id", "fake-site", "--api-key", "fake-key"]
SECRET = "s3cr3t-payload-value"  # must never reach the console
KEY = "whsec-test-key"


def write_jsonl(path: Path, records: Iterable[dict[str, Any] | str]) -> Path:
    with path.open("w") as fh:
        for record in records:
            fh.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    return path


def mixed(n: int) -> list[dict[str, Any]]:
    """Line ``i`` (1-based) names itself, so every applied operation maps back to its line."""
    out: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        person = str(i % 40)
        if i % 3 == 1:
            out.append({"type": "identify", "id": person, "attributes": {"line": i}})
        elif i % 3 == 2:
            out.append(
                {
                    "type": "event",
                    "id": person,
                    "name": "purchased",
                    "data": {"line": i},
                    "timestamp": 1_690_000_000 + i,
                }
            )
        else:
            out.append({"type": "device", "id": person, "device_id": f"tok-{i}", "platform": "ios"})
    return out


def line_of(op: AppliedOperation) -> int:
    body = op.body
    if op.action == "add_device":
        return int(body["device"]["token"].split("-")[1])
    return int(body["attributes"]["line"])


def args(fake: FakeCustomerIO, path: Path, *extra: str) -> list[str]:
    return ["import", str(path), *CREDS, "--track-url", fake.url, *extra]


def checkpoint_of(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.with_name(path.name + ".checkpoint").read_text())
    return doc


def rejects_of(path: Path) -> list[dict[str, Any]]:
    rejects = path.with_name(path.name + ".rejects.jsonl")
    return [json.loads(line) for line in rejects.read_text().splitlines()]


# ----------------------------------------------------------------------------- pure parts


def test_derived_event_ids_are_valid_deterministic_ulids() -> None:
    a = derive_event_id("f" * 64, 7, b'{"x":1}', 1_690_000_000)
    assert ULID_RE.fullmatch(a)
    assert a == derive_event_id("f" * 64, 7, b'{"x":1}', 1_690_000_000)
    assert a != derive_event_id("f" * 64, 8, b'{"x":1}', 1_690_000_000)
    assert a != derive_event_id("e" * 64, 7, b'{"x":1}', 1_690_000_000)
    # The time part is the event timestamp in milliseconds: ULIDs sort like the events.
    later = derive_event_id("f" * 64, 7, b'{"x":1}', 1_690_000_001)
    assert a[:10] < later[:10]
    no_time = derive_event_id("f" * 64, 7, b"", None)
    assert no_time.startswith("0000000000")
    assert ULID_RE.fullmatch(no_time)
    assert ULID_RE.fullmatch(derive_event_id("0", 1, b"", 99_999_999_999))


def test_line_tracker_watermark_is_the_lowest_unsettled_line_minus_one() -> None:
    tracker = LineTracker()
    for n in range(1, 8):
        tracker.begin(n)
    tracker.settle(3)
    tracker.settle(2)
    assert tracker.watermark == 0
    assert tracker.unsettled == 5
    tracker.settle(1)
    assert tracker.watermark == 3
    tracker.settle(5, retry=True)
    tracker.settle(6)
    tracker.settle(7)
    assert tracker.watermark == 3
    ckpt = Checkpoint(identity="x", format="jsonl")
    doc = json.loads(tracker.snapshot(ckpt, complete=False))
    assert doc["line"] == 3
    assert doc["retry"] == [5]
    assert doc["done_above"] == [[6, 7]]
    tracker.settle(4)
    assert tracker.watermark == 7
    assert tracker.unsettled == 0
    resumed = Checkpoint(
        identity="x", format="jsonl", line=3, retry=frozenset({2}), done_above=[[5, 6]]
    )
    assert [n for n in range(1, 9) if resumed.settled(n)] == [1, 3, 5, 6]


# ----------------------------------------------------------------------------- import


async def test_import_sends_every_line_once_with_historical_timestamps(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = mixed(60)
    records.append(
        {
            "type": "event",
            "id": {"email": "ada@example.com"},
            "name": "signed_up",
            "timestamp": "2023-07-22T04:26:40Z",
            "event_id": "01h5zgk5b8cq2hm0c5tqhvwvzr",
        }
    )
    records.append(
        {
            "type": "device",
            "id": "7",
            "device_id": "tok-62",
            "platform": "android",
            "last_used": 1_690_000_000,
            "attributes": {"app_version": "1.2"},
        }
    )
    path = write_jsonl(tmp_path / "backfill.jsonl", records)
    assert await _cli.run(args(fake, path, "--batch-size", "25", "--no-progress")) == 0
    out = capsys.readouterr().out
    assert "imported" in out
    assert "delivered   62" in out
    assert sorted(
        line_of(op)
        for op in fake.operations
        if op.action != "event" or "line" in op.body["attributes"]
    ) == [n for n in range(1, 63) if n != 61]
    events = {op.body["name"]: op.body for op in fake.operations if op.action == "event"}
    assert events["signed_up"]["timestamp"] == 1_690_000_000
    assert events["signed_up"]["id"] == "01H5ZGK5B8CQ2HM0C5TQHVWVZR"
    assert "+0 duplicates" not in out
    identity = file_identity(path)
    raw = path.read_bytes().splitlines()
    purchased = [op.body for op in fake.operations if op.body.get("name") == "purchased"]
    for body in purchased:
        n = body["attributes"]["line"]
        assert body["timestamp"] == 1_690_000_000 + n
        assert body["id"] == derive_event_id(identity, n, raw[n - 1], body["timestamp"])
    device = next(
        op.body["device"]
        for op in fake.operations
        if op.action == "add_device" and op.body["device"]["token"] == "tok-62"
    )
    assert device["last_used"] == 1_690_000_000
    assert device["attributes"] == {"app_version": "1.2"}
    assert all(r.path == "/api/v2/batch" for r in fake.requests[1:])
    assert max(len(r.json()["batch"]) for r in fake.requests[1:]) <= 25
    ckpt = checkpoint_of(path)
    assert ckpt["line"] == 62
    assert ckpt["complete"]
    assert ckpt["retry"] == []
    assert rejects_of(path) == []
    # A second run skips everything the first one confirmed.
    sent = len(fake.requests)
    assert await _cli.run(args(fake, path)) == 0
    assert "skipped     62" in capsys.readouterr().out
    assert len(fake.requests) == sent + 1  # only the credentials check


async def test_bad_lines_go_to_the_rejects_file_never_to_the_console(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines: list[dict[str, Any] | str] = [
        {"type": "identify", "id": "1", "attributes": {"plan": "pro"}},  # 1 ok
        "this is not json " + SECRET,  # 2 parse
        '["an", "array"]',  # 3 parse
        {"type": "upsert", "id": "1"},  # 4 unknown type
        {"type": "identify", "id": "1", "email": SECRET},  # 5 unknown field
        {"type": "event", "id": "1", "data": {"a": SECRET}},  # 6 no name
        {"type": "identify", "id": "1", "attributes": {"bio": SECRET * 100}},  # 7 too long
        {"type": "event", "id": "2", "name": "x", "timestamp": "yesterday " + SECRET},  # 8
        {"type": "event", "id": "2", "name": "x", "timestamp": 1_690_000_000_000},  # 9 ms
        {"type": "device", "id": "2", "device_id": "tok"},  # 10 no platform
        {"type": "identify", "attributes": {}},  # 11 no id
        {"type": "identify", "id": ["x"]},  # 12 bad id
        {"type": "event", "id": "3", "name": "ok", "data": SECRET},  # 13 data not an object
        "",  # 14 blank
        {"type": "event", "id": "1", "name": "bought", "data": {"secret": SECRET}},  # 15 api
        {"type": "identify", "id": "1", "attributes": {"plan": "free"}},  # 16 ok
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    # One person, so one batch of the three valid lines; the API rejects the second (line 15).
    fake.add_fault(Fault(action="reject_indexes", indexes=(1,), match="/api/v2/batch"))
    status = await _cli.run(args(fake, path, "--progress"))
    captured = capsys.readouterr()
    assert status == 1, captured.err
    assert SECRET not in captured.out
    assert SECRET not in captured.err
    assert "line 6: name is required for events" in captured.err
    assert "\r[" in captured.err
    assert "ops/s" in captured.err
    assert "ETA" in captured.err
    assert "rejected    13 ->" in captured.out
    rejects = {r["line"]: r for r in rejects_of(path)}
    assert sorted(rejects) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]
    assert rejects[2]["stage"] == "parse"
    assert rejects[2]["raw"].endswith(SECRET)
    assert rejects[7]["stage"] == "validation"
    assert "limit is 1000" in rejects[7]["message"]
    assert "milliseconds" in rejects[9]["message"]
    assert rejects[15]["stage"] == "api"
    assert rejects[15]["reason"] == "invalid"
    assert rejects[15]["record"]["data"] == {"secret": SECRET}
    assert [op.action for op in fake.operations] == ["identify", "identify"]
    assert fake.people()["id:1"] == {"plan": "free"}
    assert checkpoint_of(path)["line"] == 16
    # Re-running keeps the earlier rejects, sends nothing again, and still reports failure.
    assert await _cli.run(args(fake, path)) == 1
    assert "+13 from earlier runs" in capsys.readouterr().out
    assert len(rejects_of(path)) == 13


async def test_csv_import(fake: FakeCustomerIO, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "type",
                "id",
                "attributes.plan",
                "name",
                "data.amount",
                "timestamp",
                "device_id",
                "platform",
            ]
        )
        writer.writerow(["identify", "1", "pro", "", "", "", "", ""])
        writer.writerow(["event", "1", "", "purchased", "42", "1690000000", "", ""])
        writer.writerow(["device", "1", "", "", "", "", "tok-1", "ios"])
        writer.writerow(["", "", "", "", "", "", "", ""])
        writer.writerow(["event", "1", "", "", "", "", "", "", "extra"])
        writer.writerow(["identify", "2", "x" * (csv.field_size_limit() + 1), "", "", "", "", ""])
    assert await _cli.run(args(fake, path)) == 1
    assert [op.action for op in fake.operations] == ["identify", "event", "add_device"]
    assert fake.people()["id:1"]["plan"] == "pro"
    event = fake.operations[1].body
    assert event["attributes"] == {"amount": "42"}
    assert event["timestamp"] == 1_690_000_000
    assert [(r["line"], r["stage"]) for r in rejects_of(path)] == [(6, "parse"), (7, "parse")]
    assert "malformed CSV" in rejects_of(path)[1]["message"]
    # An unknown column is a usage error for the whole file.
    bad = tmp_path / "bad.csv"
    bad.write_text("type,id,colour\nidentify,1,red\n")
    (tmp_path / "twice.csv").write_text("type,id,id\nidentify,1,1\n")
    assert await _cli.run(args(fake, tmp_path / "twice.csv")) == 2
    assert await _cli.run(args(fake, bad)) == 2
    (tmp_path / "noid.csv").write_text("type,name\nevent,x\n")
    assert await _cli.run(args(fake, tmp_path / "noid.csv")) == 2
    (tmp_path / "empty.csv").write_text("")
    assert await _cli.run(args(fake, tmp_path / "empty.csv", "--format", "csv")) == 0


async def test_dry_run_validates_offline(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", mixed(9))
    assert await _cli.run(["import", str(good), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "9 valid (add_device 3, event 3, identify 3), 0 invalid" in out
    bad = write_jsonl(tmp_path / "bad.jsonl", [*mixed(2), "{", "", '{"type": "x"}', *["[1]"] * 25])
    assert await _cli.run(["import", str(bad), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "27 invalid, 1 blank" in captured.out
    assert "line 5: type must be" in captured.err
    assert "line 3: not valid JSON" in captured.err
    assert "and 7 more invalid lines" in captured.err
    assert fake.requests == []
    assert not (tmp_path / "good.jsonl.checkpoint").exists()
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b'\xef\xbb\xbf{"type": "identify", "id": "1"}\r\n')
    assert await _cli.run(["import", str(bom), "--dry-run"]) == 0


async def test_usage_errors_are_one_line_with_status_2(
    fake: FakeCustomerIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUSTOMERIO_SITE_ID", raising=False)
    monkeypatch.delenv("CUSTOMERIO_API_KEY", raising=False)
    path = write_jsonl(tmp_path / "a.jsonl", mixed(3))
    cases = [
        (["import", str(path)], "missing credentials"),
        (["import", str(tmp_path / "missing.jsonl"), *CREDS], "cannot read"),
        (["import", str(path), *CREDS, "--rate", "fast"], "argument --rate"),
        (["import", str(path), *CREDS, "--batch-size", "0"], "must be at least 1"),
        (["import", str(path), *CREDS, "--track-url", "ftp://x"], "track_url"),
        (
            ["import", str(path), "--site-id", "x", "--api-key", "y", "--track-url", fake.url],
            "refused these credentials (HTTP 401)",
        ),
        (["import", str(path), *CREDS, "--track-url", "http://127.0.0.1:9"], "cannot reach"),
        (["frobnicate"], "invalid choice"),
    ]
    for argv, message in cases:
        assert await _cli.run(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err
    # The environment works as well as flags.
    monkeypatch.setenv("CUSTOMERIO_SITE_ID", "fake-site")
    monkeypatch.setenv("CUSTOMERIO_API_KEY", "fake-key")
    assert await _cli.run(["import", str(path), "--track-url", fake.url, "--no-progress"]) == 0
    # A checkpoint written for another file is refused instead of skipping the wrong lines.
    other = write_jsonl(tmp_path / "b.jsonl", mixed(4))
    ckpt = ["--checkpoint", str(tmp_path / "a.jsonl.checkpoint")]
    assert await _cli.run(args(fake, other, *ckpt)) == 2
    assert "different file" in capsys.readouterr().err
    (tmp_path / "broken.checkpoint").write_text("{")
    ckpt = ["--checkpoint", str(tmp_path / "broken.checkpoint")]
    assert await _cli.run(args(fake, other, *ckpt)) == 2
    (tmp_path / "odd.checkpoint").write_text('{"version": 1}')
    ckpt = ["--checkpoint", str(tmp_path / "odd.checkpoint")]
    assert await _cli.run(args(fake, other, *ckpt)) == 2
    (tmp_path / "future.checkpoint").write_text('{"version": 99}')
    ckpt = ["--checkpoint", str(tmp_path / "future.checkpoint")]
    assert await _cli.run(args(fake, other, *ckpt)) == 2
    assert "unknown version" in capsys.readouterr().err
    assert await _cli.run(["--version"]) == 0
    assert await _cli.run(["import", "--help"]) == 0
    assert "attributes.<name>" in capsys.readouterr().out


async def test_not_utf8_is_a_usage_error(fake: FakeCustomerIO, tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"type": "identify", "id": "1"}\n')
    csv_path = tmp_path / "latin1.csv"
    csv_path.write_bytes(b"type,id,attributes.name\nidentify,1,Jos\xe9\n")
    assert await _cli.run(["import", str(csv_path), "--dry-run"]) == 2
    assert await _cli.run(args(fake, csv_path)) == 2


# ----------------------------------------------------------------------------- resume


def blackhole_after(fake: FakeCustomerIO, good_batches: int) -> None:
    """Batches 1..good_batches pass; the next is applied but its answer is lost (the
    client never learns it arrived); every later batch request hangs briefly and is cut
    before the fake reads it, so nothing else is applied."""
    if good_batches:
        fake.add_fault(Fault(times=good_batches, match="/api/v2/batch"))
    fake.add_fault(Fault(action="reset_after_body", match="/api/v2/batch"))
    fake.add_fault(
        Fault(action="reset_before_body", delay=0.05, times=1_000_000, match="/api/v2/batch")
    )


def check_exactly_once(
    first: list[AppliedOperation],
    second: list[AppliedOperation],
    ckpt: Checkpoint,
    cut_batch: list[dict[str, Any]],
    total: int,
) -> None:
    lines1 = [line_of(op) for op in first]
    lines2 = [line_of(op) for op in second]
    assert len(set(lines1)) == len(lines1)
    assert len(set(lines2)) == len(lines2)
    cut_lines = {
        line_of(AppliedOperation("v2", "person", op["action"], {}, op, 0)) for op in cut_batch
    }
    # The checkpoint holds every confirmed line and only those; the re-run skipped them all.
    confirmed = set(lines1) - cut_lines
    assert confirmed
    assert all(ckpt.settled(n) for n in confirmed)
    assert not any(ckpt.settled(n) for n in cut_lines)
    assert ckpt.line < total
    assert not confirmed & set(lines2)
    # Every line arrived; the only lines applied twice are the batch whose answer was lost,
    # and its events carry the same ids both times, so Customer.io applies them once.
    assert set(lines1) | set(lines2) == set(range(1, total + 1))
    twice = set(lines1) & set(lines2)
    assert twice == cut_lines
    ids1 = {line_of(op): op.body["id"] for op in first if op.action == "event"}
    ids2 = {line_of(op): op.body["id"] for op in second if op.action == "event"}
    assert all(ids1[n] == ids2[n] for n in twice if n in ids1)
    assert len(set(ids1.values()) | set(ids2.values())) == len(set(ids1) | set(ids2))


async def test_interrupted_import_resumes_and_sends_each_line_once(
    fake: FakeCustomerIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    total = 300
    path = write_jsonl(tmp_path / "big.jsonl", mixed(total))
    blackhole_after(fake, good_batches=5)
    monkeypatch.setattr(_cli_import, "CHECKPOINT_EVERY", 0.05)
    monkeypatch.setattr(_cli_import, "PROGRESS_EVERY", 0.02)
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
    assert len(first) == 60  # five good batches of ten, plus the lost one
    fake.clear()  # forget the faults (and the history: we keep our own copy)

    assert await _cli.run(args(fake, path, "--batch-size", "10")) == 0
    assert "resuming from" in capsys.readouterr().err
    check_exactly_once(first, list(fake.operations), ckpt, cut_batch, total)
    assert checkpoint_of(path)["complete"]


async def test_a_second_interrupt_abandons_the_drain(fake: FakeCustomerIO, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "stuck.jsonl", mixed(30))
    blackhole_after(fake, good_batches=0)
    options = ImportOptions(
        path=path,
        format="jsonl",
        checkpoint=tmp_path / "stuck.ckpt",
        rejects=tmp_path / "stuck.rejects",
        site_id="fake-site",
        api_key="fake-key",
        track_url=fake.url,
        drain_timeout=30.0,
        progress=False,
        window=5,  # reading pauses once 5 operations are undecided
    )
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
    options = ImportOptions(
        path=path,
        format="jsonl",
        checkpoint=tmp_path / "drops.ckpt",
        rejects=tmp_path / "drops.rejects",
        site_id="fake-site",
        api_key="fake-key",
        track_url=fake.url,
        progress=False,
    )
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
    fake: FakeCustomerIO, tmp_path: Path
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
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        await fake.wait_for_arrivals(8, timeout=15)
    finally:
        proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 143, err.decode()
    assert b"SIGTERM: re-run the same command to resume" in out
    ckpt = Checkpoint.load(path.with_name(path.name + ".checkpoint"), file_identity(path), "jsonl")
    assert ckpt is not None
    batches = [r for r in fake.requests if r.path == "/api/v2/batch"]
    cut_batch = batches[3].json()["batch"]
    first = list(fake.operations)
    fake.clear()

    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err.decode()
    assert b"resuming from" in err
    assert b"skipped" in out
    check_exactly_once(first, list(fake.operations), ckpt, cut_batch, total)


# ----------------------------------------------------------------------------- verify-webhook


def signed(body: bytes, ts: int, key: str = KEY) -> str:
    return hmac.new(key.encode(), b"v0:%d:" % ts + body, hashlib.sha256).hexdigest()


def test_verify_webhook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    event = {
        "event_id": "01HXYZ",
        "object_type": "email",
        "metric": "delivered",
        "timestamp": 1_760_000_000,
        "data": {
            "identifiers": {"id": "42", "email": "ada@example.com"},
            "delivery_id": "dlv1",
            "campaign_id": 7,
        },
    }
    body = json.dumps(event).encode()
    body_file = tmp_path / "body.json"
    body_file.write_bytes(body)
    ts = 1_760_000_000
    base = ["verify-webhook", "--body", str(body_file), "--key", KEY, "--now", str(ts + 5)]
    assert _cli.main([*base, "--timestamp", str(ts), "--signature", signed(body, ts)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("valid\n")
    assert "email delivered" in out
    assert "dlv1" in out
    assert "2025-10-09T08:53:20Z" in out
    assert "identifiers              id, email" in out
    assert "ada@example.com" not in out

    headers = tmp_path / "headers.txt"
    headers.write_text(
        f"POST /webhooks HTTP/1.1\nX-CIO-Timestamp: {ts}\nx-cio-signature: {signed(body, ts)}\n"
    )
    assert _cli.main([*base, "--headers", str(headers)]) == 0
    capsys.readouterr()

    assert _cli.main([*base, "--timestamp", str(ts), "--signature", "00" * 32]) == 1
    assert capsys.readouterr().out.startswith("invalid: bad_signature: ")
    late = ["--now", str(ts + 301), "--timestamp", str(ts), "--signature", signed(body, ts)]
    assert _cli.main([*base, *late]) == 1
    assert capsys.readouterr().out.startswith("invalid: too_old: ")
    assert _cli.main([*base, "--signature", signed(body, ts)]) == 1
    assert "invalid: missing_header" in capsys.readouterr().out

    not_event = tmp_path / "not-event.json"
    not_event.write_bytes(b"[]")
    argv = ["verify-webhook", "--body", str(not_event), "--key", KEY, "--now", str(ts)]
    assert _cli.main([*argv, "--timestamp", str(ts), "--signature", signed(b"[]", ts)]) == 1
    assert "invalid: invalid_payload" in capsys.readouterr().out

    monkeypatch.delenv("CUSTOMERIO_WEBHOOK_SIGNING_KEY", raising=False)
    assert _cli.main(["verify-webhook", "--body", str(body_file)]) == 2
    assert "missing signing key" in capsys.readouterr().err
    monkeypatch.setenv("CUSTOMERIO_WEBHOOK_SIGNING_KEY", KEY)
    assert _cli.main(["verify-webhook", "--body", str(tmp_path / "nope")]) == 2
    assert "cannot read" in capsys.readouterr().err

    class Stdin:
        buffer = __import__("io").BytesIO(body)

    monkeypatch.setattr(sys, "stdin", Stdin)
    sig = ["--timestamp", str(ts), "--signature", signed(body, ts), "--now", str(ts)]
    assert _cli.main(["verify-webhook", "--body", "-", *sig]) == 0


# ----------------------------------------------------------------------------- region, demo


async def test_region(
    fake: FakeCustomerIO, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await _cli.run(["region", *CREDS, "--track-url", fake.url]) == 0
    assert capsys.readouterr().out == "us (environment 1, https://track.customer.io)\n"
    assert await _cli.run(["region", *CREDS, "--track-url", fake.url, "--region", "auto"]) == 0
    monkeypatch.delenv("CUSTOMERIO_SITE_ID", raising=False)
    monkeypatch.delenv("CUSTOMERIO_API_KEY", raising=False)
    assert await _cli.run(["region", "--track-url", fake.url]) == 2
    fake.add_fault(Fault(status=404, body=b"{}"))
    assert await _cli.run(["region", *CREDS, "--track-url", fake.url]) == 1
    assert "NotFoundError" in capsys.readouterr().err


async def test_demo_through_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert await _cli.run(["demo", "--people", "5"]) == 0
    assert "operations applied by the fake server" in capsys.readouterr().out


async def test_a_repeated_event_id_is_sent_once(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {"type": "event", "id": "1", "name": "paid", "event_id": "01H5ZGK5B8CQ2HM0C5TQHVWVZR"}
    path = write_jsonl(tmp_path / "dups.jsonl", [event, event])
    assert await _cli.run(args(fake, path)) == 0
    assert "delivered   1 (+1 duplicates skipped)" in capsys.readouterr().out
    assert len(fake.operations) == 1
