"""Local pacing of the shared gate (``redis_gate``): no Redis here, only clocks.

* :class:`Share`: this process's part of a shared budget, for when Redis cannot be asked.
* :class:`ServerClock`: the Redis server's clock mapped onto the local one, so a turn the
  server gives is taken at the right local time.
"""

from __future__ import annotations

from collections.abc import Callable

from .._config import RateLimit

__all__ = ["ServerClock", "Share"]


class Share:
    """This process's share of one bucket (``budget ÷ processes``), paced like the script.

    It paces the process while Redis is unavailable and for a while after it comes back.
    The turns Redis hands out count against it (:meth:`hold`), so when Redis fails the share
    starts after them instead of on top of them; and the turns it hands out itself hold
    back the next shared ones (:meth:`pending`).
    """

    __slots__ = ("_clock", "_interval", "_local_until", "_tat", "_tolerance")

    def __init__(self, limit: RateLimit, processes: int, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._interval = processes / limit.requests_per_second
        self._tolerance = (max(1, limit.burst // processes) - 1) * self._interval
        self._tat = 0.0
        self._local_until = 0.0

    def reserve(self) -> float:
        """Take a turn of the share; return how long to wait for it."""
        now = self._clock()
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        wait = max(0.0, tat - self._tolerance - now)
        self._local_until = max(self._local_until, now + wait)
        return wait

    def hold(self, until: float) -> None:
        """Redis gave this process a turn at ``until`` (local clock): it is one of the
        share's turns, so the share's next is one interval later."""
        self._tat = max(self._tat, until + self._interval)

    def pending(self) -> float:
        """Seconds until the last turn :meth:`reserve` handed out (0 if past)."""
        return max(0.0, self._local_until - self._clock())


class ServerClock:
    """Maps the Redis server's clock onto the local one, to act on a turn at the right time.

    Each answer says when the server ran the script; it ran between the call's send and its
    answer, so the midpoint is off by at most half the round trip. The answer with the
    shortest round trip in the last second or so is the best estimate (a slow call, a busy
    event loop or a new connection does not move it); samples age out so that the two
    clocks' drift, or a failover to another server, is followed.
    """

    __slots__ = ("_best", "_epoch_end", "_previous")

    EPOCH = 0.5

    def __init__(self) -> None:
        self._best: tuple[float, float] | None = None  # (round trip, offset)
        self._previous: tuple[float, float] | None = None
        self._epoch_end = 0.0

    def observe(self, asked_at: float, answered_at: float, server_now: float) -> None:
        """Learn from one answer: sent at ``asked_at``, read at ``answered_at`` (local
        clock), run at ``server_now`` (the server's)."""
        sample = (answered_at - asked_at, server_now - (asked_at + answered_at) / 2)
        if answered_at > self._epoch_end:
            self._previous, self._best = self._best, None
            self._epoch_end = answered_at + self.EPOCH
        if self._best is None or sample < self._best:
            self._best = sample

    def local(self, server_time: float) -> float:
        """``server_time`` on the local clock (call :meth:`observe` first)."""
        assert self._best is not None
        best = self._best if self._previous is None else min(self._best, self._previous)
        return server_time - best[1]
