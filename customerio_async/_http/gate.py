"""The gate: when may the next request go? A shared pause, then a rate-limit token.

A :class:`Gate` guards one workspace's use of one API. Before every attempt the retry
layer's inner neighbour, :class:`GateLayer`, asks it to :meth:`~Gate.acquire`: wait out a
pause (set after a 429 or an auth failure) and take a token of the request's rate-limit
class. A pause that outlasts the request's deadline ends the wait at once with
:class:`~customerio_async._exceptions.GiveUp`, so a batched operation whose deadline falls in
an auth pause is dropped as ``auth_failed`` on time instead of waiting the pause out.

A :class:`Limiter` hands out gates: :class:`LocalLimiter` (the default) keeps them in this
process; the Redis extra provides one whose budget and pauses every process shares.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from .._config import RateLimit
from .._exceptions import GiveUp
from .messages import HTTPHandler, HTTPRequest, HTTPResponse

__all__ = ["Gate", "GateLayer", "Limiter", "LocalGate", "LocalLimiter", "TokenBucket"]


class Gate(Protocol):
    """Paces one workspace's requests to one API.

    Implementations: :class:`LocalGate` (this process) and the Redis extra's shared gate.
    """

    async def acquire(self, request: HTTPRequest) -> None:
        """Wait until ``request`` may be sent: past any pause, then one token of its
        ``request.bucket``.

        Raises:
            GiveUp: The pause outlasts ``request.deadline`` (reason: the pause's reason).
        """
        ...

    async def pause(self, seconds: float, reason: str) -> None:
        """Hold every sender for ``seconds`` (never shortens a longer pause).

        Args:
            seconds: How long.
            reason: ``"rate_limited"`` (a 429) or ``"auth_failed"`` (401/403).
        """
        ...

    def paused_reason(self) -> str | None:
        """The reason of the pause in force now, or ``None``."""
        ...


class Limiter(Protocol):
    """Hands out one :class:`Gate` per workspace and API."""

    def gate(self, *, api: str, workspace: str, buckets: Mapping[str, RateLimit | None]) -> Gate:
        """The gate for ``workspace`` (an opaque, non-secret id) on ``api``, with the rate
        limit of each bucket (``None``: unlimited)."""
        ...


class TokenBucket:
    """Client-side rate limiter; callers reserve tokens, so they are served in order.

    Example::

        bucket = TokenBucket(RateLimit(requests_per_second=10, burst=2))
        await asyncio.sleep(bucket.reserve())   # 0.0 while the burst lasts
    """

    __slots__ = ("_burst", "_clock", "_last", "_rate", "_tokens")

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


class LocalGate:
    """A :class:`Gate` inside this process: one pause, one token bucket per class.

    Args:
        buckets: Rate limit per bucket name (``None``: unlimited). A request whose bucket is
            not listed is not rate-limited.
        clock: Monotonic clock (the event loop's, in clients), for tests.
    """

    __slots__ = ("_buckets", "_clock", "_reason", "_until")

    def __init__(
        self,
        buckets: Mapping[str, RateLimit | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._buckets = {
            name: TokenBucket(limit, clock) for name, limit in buckets.items() if limit is not None
        }
        self._until = 0.0
        self._reason: str | None = None

    def __repr__(self) -> str:
        return f"<LocalGate buckets={sorted(self._buckets)} paused={self.paused_reason()}>"

    async def acquire(self, request: HTTPRequest) -> None:
        """See :meth:`Gate.acquire`."""
        bucket = self._buckets.get(request.bucket)
        while True:
            # Re-check after every sleep: a 429 seen by another sender may have started or
            # extended a pause while we waited (for the pause, or for our token).
            while (wait := self._until - self._clock()) > 0:
                if request.deadline is not None and self._until >= request.deadline:
                    raise GiveUp(self._reason or "delivery_timeout", f"paused ({self._reason})")
                await asyncio.sleep(wait)
            if bucket is None:
                return
            wait = bucket.reserve()
            bucket = None  # one token per attempt, even if a pause sends us round again
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def pause(self, seconds: float, reason: str) -> None:
        """See :meth:`Gate.pause`."""
        self.pause_now(seconds, reason)

    def pause_now(self, seconds: float, reason: str) -> None:
        """:meth:`pause` without awaiting (the local gate needs no I/O)."""
        until = self._clock() + seconds
        if until > self._until:
            self._until = until
            self._reason = reason

    def paused_reason(self) -> str | None:
        """See :meth:`Gate.paused_reason`."""
        return self._reason if self._until > self._clock() else None


class LocalLimiter:
    """The default :class:`Limiter`: gates that live in this process only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def gate(self, *, api: str, workspace: str, buckets: Mapping[str, RateLimit | None]) -> Gate:
        """A fresh :class:`LocalGate` (each client paces itself)."""
        return LocalGate(buckets, self._clock)


class GateLayer:
    """The HTTP middleware that passes every attempt through a :class:`Gate`."""

    __slots__ = ("gate",)

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def __call__(self, request: HTTPRequest, handler: HTTPHandler) -> HTTPResponse:
        if request.gated:
            request.gated = False  # passed once by the pipeline; a retry waits again
        else:
            await self.gate.acquire(request)
        return await handler(request)
