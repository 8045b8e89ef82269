"""De-duplication: remember recently processed ``event_id`` s, so a retried delivery is
passed on once."""

from __future__ import annotations

import time
from collections.abc import Callable

from .._common.ttlcache import TTLCache
from .._config import WEBHOOK_DEDUP_SIZE, WEBHOOK_DEDUP_TTL

__all__ = ["WebhookDeduplicator"]


class WebhookDeduplicator:
    """Remembers recently accepted ``event_id`` s: a bounded LRU with a time-to-live.

    Customer.io retries a delivery whose answer it did not get, with the same ``event_id``;
    the receivers use this to pass each event to your callback once. Memory is bounded by
    ``max_size`` (the least recently seen ids are forgotten first) and entries expire after
    ``ttl`` seconds. A receiver adds an id only once the event's callback has started, so
    a delivery refused as busy, or abandoned by its sender while it waited, is processed
    when Customer.io retries it.

    Example::

        seen = WebhookDeduplicator(max_size=50_000, ttl=3 * 86_400)
        orders = asgi_receiver(on_order_event, signing_key=KEY_A, dedup=seen)
        billing = asgi_receiver(on_billing_event, signing_key=KEY_B, dedup=seen)

    Args:
        max_size: Ids remembered at most.
        ttl: Seconds an id is remembered after it was first accepted.
        clock: Monotonic clock, for tests.
    """

    __slots__ = ("_clock", "_ids")

    def __init__(
        self,
        max_size: int = WEBHOOK_DEDUP_SIZE,
        ttl: float = WEBHOOK_DEDUP_TTL,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1 or ttl <= 0:
            raise ValueError("max_size must be >= 1 and ttl > 0")
        self._ids: TTLCache[str, bool] = TTLCache(max_size, ttl)
        self._clock = clock

    def __repr__(self) -> str:
        ids = self._ids
        return f"<WebhookDeduplicator size={len(ids)}/{ids.size} ttl={ids.ttl:g}>"

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, str) and self._ids.get(event_id, self._clock()) is not None

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; return ``False`` when it was already remembered (a duplicate).

        A duplicate becomes the most recently used entry; its expiry is not extended.

        Example::

            if dedup.add(event.event_id):
                await process(event)        # first time this event is seen
        """
        now = self._clock()
        ids = self._ids
        ids.expire(now)
        if ids.get(event_id, now) is not None:
            ids.touch(event_id)
            return False
        ids.put(event_id, True, now)
        return True

    def discard(self, event_id: str) -> None:
        """Forget ``event_id``, so its next delivery is passed on again.

        Example::

            if dedup.add(event.event_id):
                try:
                    await process(event)
                except TransientError:
                    dedup.discard(event.event_id)   # let the retry through
                    raise
        """
        self._ids.pop(event_id)

    def clear(self) -> None:
        """Forget every id.

        Example::

            dedup.clear()
            assert len(dedup) == 0
        """
        self._ids.clear()
