"""The SDK's logger and rate-limited logging.

Everything logs to the ``customerio_async`` logger (documented in the README). Messages
never carry credentials, identifiers or payload values: they name endpoints (templates),
fields, reasons and counts.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

__all__ = ["LOGGER_NAME", "RateLimitedLog", "logger"]

LOGGER_NAME = "customerio_async"
logger = logging.getLogger(LOGGER_NAME)


class RateLimitedLog:
    """At most one line per key per ``interval`` seconds, with the count suppressed since.

    Args:
        interval: Seconds between two lines of one key.
        clock: Monotonic clock, for tests.
    """

    __slots__ = ("_clock", "_interval", "_last", "_suppressed")

    def __init__(self, interval: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: collections.Counter[str] = collections.Counter()

    def log(self, level: int, key: str, msg: str, *args: object) -> None:
        """Log ``msg % args`` unless ``key`` logged within the interval (then count it)."""
        now = self._clock()
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
