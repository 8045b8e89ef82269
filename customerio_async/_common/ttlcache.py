"""One bounded LRU cache whose entries expire: de-duplication and webhook ids use it."""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """An LRU bounded in entries whose values expire after ``ttl`` seconds; O(1) per call.

    The caller passes the current time (a monotonic clock reading) to every call, so one
    clock read can serve several lookups and tests can drive time by hand.

    Args:
        size: Entries kept at most; the least recently stored is evicted first.
        ttl: Seconds an entry stays valid after it was stored.
    """

    __slots__ = ("_data", "_size", "_ttl")

    def __init__(self, size: int, ttl: float) -> None:
        if size < 1 or not ttl > 0:
            raise ValueError("TTLCache needs size >= 1 and ttl > 0")
        self._data: collections.OrderedDict[K, tuple[float, V]] = collections.OrderedDict()
        self._size = size
        self._ttl = ttl

    def __repr__(self) -> str:
        return f"<TTLCache {len(self._data)}/{self._size} ttl={self._ttl:g}>"

    def __len__(self) -> int:
        return len(self._data)

    @property
    def ttl(self) -> float:
        """Seconds an entry stays valid."""
        return self._ttl

    @property
    def size(self) -> int:
        """Entries kept at most."""
        return self._size

    def get(self, key: K, now: float) -> V | None:
        """The live value for ``key``, or ``None`` (an expired entry is removed)."""
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._data[key]
            return None
        return item[1]

    def put(self, key: K, value: V, now: float) -> None:
        """Store ``value`` (replacing any entry for ``key``) until ``now + ttl``."""
        data = self._data
        data[key] = (now + self._ttl, value)
        data.move_to_end(key)
        if len(data) > self._size:
            data.popitem(last=False)

    def touch(self, key: K) -> None:
        """Make ``key`` the most recently stored entry, keeping its expiry (no-op if absent)."""
        if key in self._data:
            self._data.move_to_end(key)

    def expire(self, now: float) -> None:
        """Drop the expired entries at the least recently stored end.

        Entries are in expiry order unless :meth:`touch` moved one, so this frees every
        expired entry up to the first live one: O(1) amortised, never a full scan. An
        expired entry behind a live one stays until it is looked up or evicted (it already
        reads as absent).
        """
        data = self._data
        while data:
            expires, _ = next(iter(data.values()))
            if expires > now:
                return
            data.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Forget ``key``; return its value if it had one (expired or not)."""
        item = self._data.pop(key, None)
        return None if item is None else item[1]

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()
