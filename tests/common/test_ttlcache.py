"""The shared TTL cache: LRU bound, expiry, and the touch/expire pair the webhook
de-duplicator is built on."""

from __future__ import annotations

import pytest

from customerio_async._common.ttlcache import TTLCache


def test_bound_expiry_and_repr() -> None:
    cache: TTLCache[str, int] = TTLCache(2, 10.0)
    cache.put("a", 1, now=0.0)
    cache.put("b", 2, now=1.0)
    cache.put("c", 3, now=2.0)  # evicts "a", the least recently stored
    assert (cache.get("a", 2.0), cache.get("b", 2.0), cache.get("c", 2.0)) == (None, 2, 3)
    assert cache.get("b", 11.0) is None  # expired at 1 + 10, and removed
    assert len(cache) == 1
    assert (cache.size, cache.ttl) == (2, 10.0)
    assert repr(cache) == "<TTLCache 1/2 ttl=10>"
    with pytest.raises(ValueError, match="size >= 1 and ttl > 0"):
        TTLCache(0, 1.0)


def test_touch_keeps_the_expiry_and_expire_drops_the_front() -> None:
    cache: TTLCache[str, bool] = TTLCache(2, 10.0)
    cache.put("old", True, now=0.0)
    cache.put("young", True, now=5.0)
    cache.touch("old")  # most recently stored now, still expiring at 10
    cache.touch("missing")  # no-op
    cache.put("new", True, now=6.0)  # evicts "young": "old" was touched after it
    assert cache.get("young", 6.0) is None
    cache.expire(12.0)  # "old" (front, expired) goes; "new" (live) stops the sweep
    assert len(cache) == 1
    assert cache.get("new", 12.0) is True
    cache.expire(20.0)
    assert len(cache) == 0
    cache.expire(30.0)  # empty: nothing to do
