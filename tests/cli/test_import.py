"""``customerio-async import`` end to end, in-process against the fake server.

The CLI runs in the test's event loop (``_cli.run``), next to the ``fake`` fixture.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from customerio_async import _cli
from customerio_async._cli.operations import derive_event_id
from customerio_async._cli.readers import file_identity
from customerio_async.testing import FakeCustomerIO, Fault

from ._helpers import CREDS, SECRET, args, checkpoint_of, line_of, mixed, rejects_of, write_jsonl


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
    # Re-running keeps the earlier rejects and sends nothing again. The file is done, so
    # that is success: "nothing to do", status 0 (it was 1, for the earlier run's rejects),
    # with the earlier rejects still named.
    assert await _cli.run(args(fake, path)) == 0
    out = capsys.readouterr().out
    assert "+13 from earlier runs" in out
    assert out.startswith("nothing to do: ")
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


async def test_a_repeated_event_id_is_sent_once(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {"type": "event", "id": "1", "name": "paid", "event_id": "01H5ZGK5B8CQ2HM0C5TQHVWVZR"}
    path = write_jsonl(tmp_path / "dups.jsonl", [event, event])
    assert await _cli.run(args(fake, path)) == 0
    assert "delivered   1 (+1 duplicates skipped)" in capsys.readouterr().out
    assert len(fake.operations) == 1


async def test_unusable_inputs_are_usage_errors(
    fake: FakeCustomerIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    huge = tmp_path / "huge.csv"
    huge.write_text("type," + "x" * (csv.field_size_limit() + 1) + "\nidentify\n")
    assert await _cli.run(args(fake, huge)) == 2
    assert "cannot read the CSV header" in capsys.readouterr().err

    path = write_jsonl(tmp_path / "a.jsonl", mixed(3))

    def unreadable(_: Path) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("customerio_async._cli.readers.file_identity", unreadable)
    assert await _cli.run(args(fake, path)) == 2
    assert "cannot read " + str(path) + ": Permission denied" in capsys.readouterr().err


async def test_an_unwritable_rejects_file_is_one_line_and_closes_the_client(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", mixed(3))
    rejects = tmp_path / "no-such-dir" / "rejects.jsonl"
    assert await _cli.run(args(fake, path, "--rejects", str(rejects))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("customerio-async: error: cannot write ")
    assert err[-1].endswith(": no such file or directory")


async def test_garbled_earlier_rejects_are_dropped_on_resume(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "g.jsonl", ['{"type": "nope", "id": "1"}', *mixed(2)])
    assert await _cli.run(args(fake, path)) == 1
    rejects = path.with_name(path.name + ".rejects.jsonl")
    rejects.write_text(rejects.read_text() + "not json\n" + '{"no_line": 1}\n')
    assert await _cli.run(args(fake, path)) == 0
    assert "+1 from earlier runs" in capsys.readouterr().out
    assert [r["line"] for r in rejects_of(path)] == [1]
