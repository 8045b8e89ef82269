"""``customerio-async import --api pipelines``: Segment-spec lines to the Data Pipelines API,
in-process against the fake, with the Track import's checkpoint and resume semantics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from customerio_async import RetryPolicy, _cli
from customerio_async._cli.job import ImportJob
from customerio_async._cli.operations import derive_event_id
from customerio_async._cli.readers import file_identity
from customerio_async.testing import FakeCustomerIO, Fault

from ._helpers import SECRET, checkpoint_of, import_options, write_jsonl


def messages(n: int) -> list[dict[str, Any]]:
    """Line ``i`` (1-based) carries ``line: i`` in its traits or properties."""
    out: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        user = f"u{i % 7}"
        if i % 4 == 1:
            out.append({"type": "identify", "userId": user, "traits": {"line": i}})
        elif i % 4 == 2:
            out.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Order Completed",
                    "properties": {"line": i},
                    "timestamp": "2023-07-22T04:26:40Z",
                }
            )
        elif i % 4 == 3:
            out.append(
                {"type": "page", "anonymousId": f"a{i}", "name": "Home", "properties": {"line": i}}
            )
        else:
            out.append({"type": "group", "userId": user, "groupId": "acme", "traits": {"line": i}})
    return out


def line_of(message: Any) -> int:
    return int((message.traits or message.properties)["line"])


def pipelines_args(fake: FakeCustomerIO, path: Path, *extra: str) -> list[str]:
    return [
        "import",
        str(path),
        "--api",
        "pipelines",
        "--write-key",
        fake.pipelines_write_key,
        "--pipelines-url",
        fake.url,
        *extra,
    ]


async def test_every_line_is_sent_once_with_derived_message_ids(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        *messages(40),
        {"type": "alias", "previousId": "a3", "userId": "u3", "messageId": "m-41"},
    ]
    path = write_jsonl(tmp_path / "cdp.jsonl", records)
    argv = pipelines_args(fake, path, "--batch-size", "8", "--no-progress")
    assert await _cli.run(argv) == 0
    captured = capsys.readouterr()
    assert "imported" in captured.out
    assert "delivered   41" in captured.out
    assert "the Data Pipelines source (us)" in captured.err
    accepted = fake.pipelines_messages
    assert sorted(line_of(m) for m in accepted if m.type != "alias") == list(range(1, 41))
    assert fake.pipelines_drops == []
    identity = file_identity(path)
    raw = path.read_bytes().splitlines()
    ids = {line_of(m): m.message_id for m in accepted if m.type != "alias"}
    assert ids[2] == derive_event_id(identity, 2, raw[1], None)
    assert [m.message_id for m in accepted if m.type == "alias"] == ["m-41"]
    tracks = [m for m in accepted if m.type == "track"]
    assert {m.timestamp for m in tracks} == {"2023-07-22T04:26:40Z"}  # historical: as given
    assert checkpoint_of(path)["complete"]
    requests = [r.path for r in fake.requests]
    assert requests[0] == "/v1/batch"  # the credentials check: an empty batch
    assert fake.requests[0].json() == {"batch": []}


async def test_bad_lines_go_to_the_rejects_file(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records: list[Any] = [
        {"type": "track", "userId": "1", "event": "ok"},
        {"type": "track", "event": "no person", "properties": {"secret": SECRET}},
        {"type": "delete", "userId": "1"},
        {"type": "track", "userId": "1", "event": "e", "sentAt": SECRET},
        "not json",
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    assert await _cli.run(pipelines_args(fake, path, "--no-progress")) == 1
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    rejects = [
        json.loads(x) for x in path.with_name(path.name + ".rejects.jsonl").read_text().splitlines()
    ]
    assert [r["line"] for r in rejects] == [2, 3, 4, 5]
    assert "user_id or anonymous_id" in rejects[0]["message"]
    assert "type must be one of" in rejects[1]["message"]
    assert "unknown field 'sentAt'" in rejects[2]["message"]
    assert len(fake.pipelines_messages) == 1


async def test_csv_lines(fake: FakeCustomerIO, tmp_path: Path) -> None:
    path = tmp_path / "cdp.csv"
    path.write_text(
        "type,userId,anonymousId,event,traits.plan,properties.total,context.ip\n"
        "identify,42,,,pro,,\n"
        "track,42,,Order Completed,,42.5,8.8.8.8\n"
        "track,,anon-1,Viewed,,,\n"
    )
    assert await _cli.run(pipelines_args(fake, path, "--no-progress")) == 0
    identify, track, anonymous = fake.pipelines_messages
    assert identify.traits == {"plan": "pro"}
    assert (track.properties, track.context["ip"]) == ({"total": "42.5"}, "8.8.8.8")
    assert anonymous.anonymous_id == "anon-1"
    bad = tmp_path / "bad.csv"
    bad.write_text("type,id\ntrack,1\n")
    assert await _cli.run(pipelines_args(fake, bad)) == 2


async def test_dry_run_and_usage_errors(
    fake: FakeCustomerIO,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_jsonl(tmp_path / "dry.jsonl", [*messages(3), {"type": "track"}])
    assert await _cli.run(["import", str(path), "--api", "pipelines", "--dry-run"]) == 1
    out = capsys.readouterr()
    assert "3 valid (identify 1, page 1, track 1), 1 invalid" in out.out
    assert fake.requests == []
    monkeypatch.delenv("CUSTOMERIO_PIPELINES_WRITE_KEY", raising=False)
    assert await _cli.run(["import", str(path), "--api", "pipelines"]) == 2
    assert "--write-key" in capsys.readouterr().err
    argv = pipelines_args(fake, path, "--region", "auto")
    assert await _cli.run(argv) == 2
    assert "--region auto" in capsys.readouterr().err
    wrong = ["import", str(path), "--api", "pipelines", "--write-key", "wrong"]
    assert await _cli.run([*wrong, "--pipelines-url", fake.url]) == 2
    assert "refused these credentials (HTTP 401)" in capsys.readouterr().err


async def test_dropped_lines_are_retried_by_the_next_run_with_the_same_ids(
    fake: FakeCustomerIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "drops.jsonl", messages(6))
    fake.add_fault(Fault(match="/v1/batch"))  # the credentials check goes through, then
    # each batch is applied, but its answer is lost: the client cannot know it arrived.
    fake.add_fault(Fault(action="reset_after_body", times=1_000_000, match="/v1/batch"))
    options = import_options(
        fake,
        path,
        "drops",
        api="pipelines",
        write_key=fake.pipelines_write_key,
        pipelines_url=fake.url,
        retry=RetryPolicy(delivery_timeout=0.3, backoff_base=0.05, backoff_cap=0.1),
    )
    assert await ImportJob(options).run() == 1
    assert "dropped     6" in capsys.readouterr().out
    first = {line_of(m): m.message_id for m in fake.pipelines_messages}
    assert sorted(first) == [1, 2, 3, 4, 5, 6]
    fake.clear()
    assert await ImportJob(options).run() == 0
    second = {line_of(m): m.message_id for m in fake.pipelines_messages}
    assert second == first  # the same ids: Customer.io keeps one of each
