"""The end of an import: the summary and the exit status."""

from __future__ import annotations

import io
from pathlib import Path

from customerio_async._cli.progress import Console
from customerio_async._cli.settle import Counts
from customerio_async._cli.summary import RunResult, report


def test_an_unconfirmed_line_in_a_finished_run_is_named_and_fails() -> None:
    out = io.StringIO()
    counts = Counts(read=3, sent=3, delivered=2, unsent=1)
    result = RunResult(
        path=Path("f.jsonl"),
        checkpoint=Path("f.jsonl.checkpoint"),
        rejects=Path("f.jsonl.rejects.jsonl"),
        counts=counts,
        elapsed=0.0,
        watermark=2,
        earlier_rejects=0,
        complete=True,
        stopped_by=None,
        nothing_left_before=False,
    )
    assert report(Console(out, io.StringIO()), result) == 1
    assert "unconfirmed 1 (in flight at the end: the next run resends them)" in out.getvalue()
    assert "(0 ops/s)" in out.getvalue()
