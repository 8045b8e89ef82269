"""Operation-level de-duplication middleware, done right.

* **Identify**: per person we keep a fingerprint of the *last* identify sent. An identify
  identical to the last one for that person, within the TTL, is skipped. (Recipes that key
  on ``person + attributes`` are wrong: identify(pro), identify(free), identify(pro) would
  drop the third and leave the person on ``free``.) ``delete``, ``merge`` and ``suppress``
  forget the person, and an identify whose delivery failed is never used to skip the next.
  A form submission changes its respondent's attributes, so it forgets them too; a custom
  unsubscribe changes a person the SDK cannot name (only the delivery is known), so it
  forgets everyone.
* **Events**: an event whose caller-supplied ``id`` was seen within the TTL is skipped before
  it costs a request (generated ULIDs are unique, so they are not cached).

Both caches are bounded LRU + TTL. A skipped operation gets a receipt whose outcome is
``deduplicated``; it is counted, never admitted, and never an error.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable, Hashable

from .._common.ttlcache import TTLCache
from .._config import DedupConfig
from .._pipeline.receipt import DEDUPLICATED, Receipt
from .operations import Operation

__all__ = ["Deduplicator"]

_EVENTS = frozenset({"event", "page", "screen", "anonymous_event"})
_FORGET = frozenset({"delete", "merge", "suppress", "submit_form"})
_FORGET_ALL = "unsubscribe"
Handler = Callable[[Operation], Awaitable[Receipt]]


class Deduplicator:
    """The de-duplication middleware: ``async def __call__(op, handler) -> Receipt``.

    Example::

        cio = CustomerIO(site, key, dedup=DedupConfig(identify_ttl=30))

    Its promise: an operation is skipped only when an identical one is known to be applied
    (delivered) or is still on its way — and then the skipped call's receipt resolves with
    that twin's outcome, so ``wait=True`` never reports success for a twin that failed.
    """

    generated_events = False  # a generated ULID can never repeat: nothing to skip

    def __init__(self, config: DedupConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._people: TTLCache[Hashable, tuple[int, Receipt]] = TTLCache(
            config.identify_size, config.identify_ttl
        )
        self._events: TTLCache[str, Receipt] = TTLCache(config.event_size, config.event_ttl)
        self._clock = clock
        self.hits: collections.Counter[str] = collections.Counter()

    def wants(self, op: Operation) -> bool:
        """Whether this layer can act on ``op``; the admission chain skips it for the rest
        (events with generated ids are most traffic and can never be duplicates)."""
        action = op.action
        return action == "identify" or op.explicit_id or action in _FORGET or action == _FORGET_ALL

    def forget(self, op: Operation) -> None:
        """Forget everything remembered about the people ``op`` touches (it changes them
        outside this layer: an explicit ``batch()``)."""
        for key in (op.key, *op.more_keys):
            if key is not None:
                self._people.pop(key)

    async def __call__(self, op: Operation, handler: Handler) -> Receipt:
        action = op.action
        if action == "identify":
            return await self._identify(op, handler)
        if action in _EVENTS and op.explicit_id:
            return await self._event(op, handler)
        if action in _FORGET:
            self.forget(op)
        elif action == _FORGET_ALL:
            self._people.clear()
        return await handler(op)

    async def _identify(self, op: Operation, handler: Handler) -> Receipt:
        # The bytes are what the batcher sends; identify carries no generated id, so equal
        # attributes give equal bytes.
        fingerprint = hash(op.data)
        now = self._clock()
        key = op.key
        last = self._people.get(key, now)
        if last is not None:
            last_fp, twin = last
            outcome = twin.outcome
            if last_fp == fingerprint and (outcome is None or outcome.delivered):
                self.hits["identify"] += 1
                return twin.mirror(op) if outcome is None else Receipt(op, outcome=DEDUPLICATED)
        try:
            receipt = await handler(op)
        except BaseException:
            # Refused, or (direct mode) an unknown outcome: the server may hold this value
            # now, so the remembered one can no longer justify skipping anything.
            self._people.pop(key)
            raise
        self._people.put(key, (fingerprint, receipt), now)
        return receipt

    async def _event(self, op: Operation, handler: Handler) -> Receipt:
        event_id = str(op.event_id)
        now = self._clock()
        twin = self._events.get(event_id, now)
        if twin is not None:
            outcome = twin.outcome
            if outcome is None or outcome.delivered:
                self.hits["event"] += 1
                return twin.mirror(op) if outcome is None else Receipt(op, outcome=DEDUPLICATED)
        receipt = await handler(op)  # raises before admission: nothing remembered
        self._events.put(event_id, receipt, now)
        return receipt
