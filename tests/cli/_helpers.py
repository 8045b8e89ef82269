"""Shared helpers of the command-line tests: input files, the fake's view of them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from customerio_async._cli.checkpoint import Checkpoint
from customerio_async._cli.job import ImportOptions
from customerio_async.testing import AppliedOperation, FakeCustomerIO, Fault

CREDS = ["--site-id", "fake-site", "--api-key", "fake-key"]
SECRET = "s3cr3t-payload-value"  # must never reach the console


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


def import_options(fake: FakeCustomerIO, path: Path, name: str, **overrides: Any) -> ImportOptions:
    """Options for an in-process ``ImportJob`` on ``path`` against ``fake``, no progress;
    the checkpoint and rejects files are ``name.ckpt`` and ``name.rejects`` beside it."""
    options = ImportOptions(
        path=path,
        format="jsonl",
        checkpoint=path.with_name(name + ".ckpt"),
        rejects=path.with_name(name + ".rejects"),
        site_id="fake-site",
        api_key="fake-key",
        track_url=fake.url,
        progress=False,
    )
    for key, value in overrides.items():
        setattr(options, key, value)
    return options
