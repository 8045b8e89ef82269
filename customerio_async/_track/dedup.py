"""Operation-level de-duplication middleware, done right.

* **Identify**: per person we keep a fingerprint of the *last* identify sent. An identify
  identical to the last one for that person, within the TTL, is skipped. (Recipes that key
  on ``person + attributes`` are wrong: identify(pro), identify(free), identify(pro) would
  drop the third and leave the person on ``free``.) ``delete``, ``merge`` and ``suppress``
  forget the person, and an identify whose delivery failed is never used to skip the next.
* **Events**: an event whose caller-supplied ``id`` was seen within the TTL is skipped before
  it costs a request (generated ULIDs are unique, so they are not cached).

Both caches are bounded LRU + TTL. A skipped operation gets a receipt whose outcome is
``deduplicated``; it is counted, never admitted, and never an error.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from .._config import DedupConfig
from .._pipeline.core import DEDUPLICATED, Receipt
from .operations import Operation

__all__ = ["Deduplicator"]

_EVENTS = frozenset({"event", "page", "screen", "anonymous_event"})
_FORGET = frozenset({"delete", "merge", "suppress"})


class _TTLCache:
    """An LRU bounded in entries whose values expire; O(1) per operation."""

    __slots__ = ("_data", "_size", "_ttl")

    def __init__(self, size: int, ttl: float) -> None:
        self._data: collections.OrderedDict[str, tuple[float, object]] = collections.OrderedDict()
        self._size = size
        self._ttl = ttl

    def get(self, key: str, now: float) -> object | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self._data[key]
            return None
        return item[1]

    def put(self, key: str, value: object, now: float) -> None:
        data = self._data
        data[key] = (now + self._ttl, value)
        data.move_to_end(key)
        if len(data) > self._size:
            data.popitem(last=False)

    def pop(self, key: str) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


class Deduplicator:
    """The de-duplication middleware: ``async def __call__(op, call_next) -> Receipt``."""

    def __init__(self, config: DedupConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._people = _TTLCache(config.identify_size, config.identify_ttl)
        self._events = _TTLCache(config.event_size, config.event_ttl)
        self._clock = clock
        self.hits: collections.Counter[str] = collections.Counter()

    def wants(self, op: Operation) -> bool:
        """Whether this layer can act on ``op``; the admission chain skips it for the rest
        (events with generated ids are most traffic and can never be duplicates)."""
        action = op.action
        return action == "identify" or op.explicit_id or action in _FORGET

    async def __call__(
        self, op: Operation, call_next: Callable[[Operation], collections.abc.Awaitable[Receipt]]
    ) -> Receipt:
        action = op.action
        if action == "identify":
            return await self._identify(op, call_next)
        if action in _EVENTS and op.explicit_id:
            return await self._event(op, call_next)
        if action in _FORGET:
            self._people.pop(op.lane)
            secondary = op.v2.get("secondary") if op.v2 is not None else None
            if isinstance(secondary, dict):
                ((key, value),) = secondary.items()
                self._people.pop(f"person:{key}:{value}")
        return await call_next(op)

    async def _identify(
        self, op: Operation, call_next: Callable[[Operation], collections.abc.Awaitable[Receipt]]
    ) -> Receipt:
        # The v2 bytes are what the batcher sends anyway (cached on the operation); identify
        # carries no generated id, so equal attributes give equal bytes.
        fingerprint = hash(op.v2_bytes())
        now = self._clock()
        last = self._people.get(op.lane, now)
        if isinstance(last, tuple):
            last_fp, last_receipt = last
            outcome = last_receipt.outcome
            if last_fp == fingerprint and (outcome is None or outcome.delivered):
                self.hits["identify"] += 1
                return Receipt(op, b"", now, outcome=DEDUPLICATED)
        receipt = await call_next(op)
        self._people.put(op.lane, (fingerprint, receipt), now)
        return receipt

    async def _event(
        self, op: Operation, call_next: Callable[[Operation], collections.abc.Awaitable[Receipt]]
    ) -> Receipt:
        assert op.v2 is not None or op.v1 is not None
        event_id = str((op.v2 or (op.v1.body if op.v1 else None) or {}).get("id"))
        now = self._clock()
        last = self._events.get(event_id, now)
        if isinstance(last, Receipt) and (last.outcome is None or last.outcome.delivered):
            self.hits["event"] += 1
            return Receipt(op, b"", now, outcome=DEDUPLICATED)
        receipt = await call_next(op)  # raises before admission: nothing remembered
        self._events.put(event_id, receipt, now)
        return receipt
