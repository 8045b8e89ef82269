"""The de-duplicator: a bounded LRU of event ids with a time-to-live."""

from __future__ import annotations

import pytest

from customerio_async.webhooks import WebhookDeduplicator


def test_deduplicator_lru_and_ttl() -> None:
    now = [0.0]
    dedup = WebhookDeduplicator(max_size=3, ttl=10.0, clock=lambda: now[0])
    assert [dedup.add(x) for x in ("a", "b", "a", "c")] == [True, True, False, True]
    assert "a" in dedup
    assert 1 not in dedup
    assert dedup.add("d")  # evicts the least recently seen: "b" ("a" was just seen again)
    assert "b" not in dedup
    assert len(dedup) == 3
    assert "size=3/3" in repr(dedup)
    now[0] = 10.0  # everything first seen at 0 expires at 10
    assert "a" not in dedup
    assert dedup.add("a")
    assert len(dedup) == 1
    dedup.discard("a")
    dedup.discard("never-seen")
    assert dedup.add("a")
    dedup.clear()
    assert len(dedup) == 0
    with pytest.raises(ValueError, match="max_size"):
        WebhookDeduplicator(max_size=0)
    with pytest.raises(ValueError, match="ttl"):
        WebhookDeduplicator(ttl=0)


def test_deduplicator_expired_entry_behind_a_live_one_is_renewed() -> None:
    now = [0.0]
    dedup = WebhookDeduplicator(max_size=10, ttl=10.0, clock=lambda: now[0])
    dedup.add("old")
    now[0] = 5.0
    dedup.add("young")
    dedup.add("old")  # duplicate: moves behind "young", keeps its expiry (10)
    now[0] = 12.0  # "young" (expires 15) now sits in front of the expired "old"
    assert dedup.add("old")  # expired: accepted again
    assert not dedup.add("young")
