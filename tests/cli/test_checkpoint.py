"""The checkpoint's watermark and what a resumed run skips."""

from __future__ import annotations

import json

from customerio_async._cli.checkpoint import Checkpoint, LineTracker


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


def test_settled_lines_is_the_head_start_of_a_resume() -> None:
    ckpt = Checkpoint(
        identity="x", format="jsonl", line=10, retry=frozenset({3, 12}), done_above=[[15, 20]]
    )
    assert ckpt.settled_lines(100) == sum(1 for n in range(1, 101) if ckpt.settled(n)) == 15
    assert ckpt.settled_lines(17) == 9 + 3  # a file shorter than the checkpoint knew
    assert not ckpt.nothing_left
    assert Checkpoint(identity="x", format="jsonl", line=5, complete=True).nothing_left
