"""Rate limiting: a client-side token bucket for requests, and rate-limited logging."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from ._config import RateLimit

__all__ = ["RateLimitedLog", "TokenBucket"]

logger = logging.getLogger("customerio_async")


class RateLimitedLog:
    """One log line per key per interval, with a count of what was suppressed."""

    def __init__(self, interval: float = 30.0) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: collections.Counter[str] = collections.Counter()

    def log(self, level: int, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] += 1
            return
        self._last[key] = now
        extra = self._suppressed.pop(key, 0)
        if extra:
            logger.log(level, "%s (%d similar suppressed)", msg % args, extra)
        else:
            logger.log(level, msg, *args)


class TokenBucket:
    """Client-side rate limiter; waiters reserve tokens, so they are served in order."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = limit.requests_per_second
        self._burst = float(limit.burst)
        self._tokens = self._burst
        self._clock = clock
        self._last = clock()

    def reserve(self) -> float:
        """Take a token; return how long the caller must wait before using it."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
