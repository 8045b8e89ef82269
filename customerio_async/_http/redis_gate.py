"""A :class:`~.gate.Gate` whose rate budget and pause live in Redis, shared by every process.

One Lua script (``redis_gate.lua``, :data:`SCRIPT`) does the shared work atomically, on the
Redis server's clock (``TIME``), so the hosts' clocks never matter. Per HTTP attempt the
gate makes **one** call: it reads the workspace's pause and, unless a pause is in force,
books the request's turn in its bucket (GCRA: each turn moves the bucket's "theoretical
arrival time" one emission interval on; a turn in the future comes back as a wait). Only a
turn booked more than :data:`RECHECK_AFTER` ahead reads the pause once more before it goes,
so a pause set by any process during a long wait holds it too.

Keys share a hash tag per API and workspace, ``{<prefix>:<api>:<workspace>}``, so one
script call touches one Redis Cluster slot::

    {cio:track:3f2a…}:pause           "<until µs> <reason>", expires with the pause
    {cio:track:3f2a…}:rate:default    the bucket's theoretical arrival time (µs)

When Redis fails (unreachable, slower than ``timeout``, a script error) the gate falls open
to this process's share of the budget (``budget ÷ processes``) and to the pauses it knows
of; it never raises anything but :class:`~customerio_async._exceptions.GiveUp` (a pause
that outlasts the request's deadline). Redis is tried again every ``retry_interval`` by one
request at a time, so a dead Redis costs the others nothing; once it answers, the process
keeps to its share as well for one more ``retry_interval`` (the others may not know yet).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import importlib.resources
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._common.histogram import Histogram
from .._common.logs import RateLimitedLog
from .._config import RateLimit
from .._exceptions import GiveUp
from .messages import HTTPRequest
from .turns import ServerClock, Share

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

    from ..fleet import RedisLimiterConfig

__all__ = ["SCRIPT", "SCRIPT_SHA", "RedisGate", "RedisStore"]

RedisClient: TypeAlias = "Redis | RedisCluster"

# The script lives beside this module (redis_gate.lua): keys, arguments and replies are
# documented at its top.
SCRIPT = importlib.resources.files(__package__).joinpath("redis_gate.lua").read_text("utf-8")
# Not a security use: the SHA1 is Redis's name for the cached script (EVALSHA).
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()

_US = 1_000_000.0
# A turn booked further ahead than this re-reads the pause before it goes (a second call);
# a nearer one goes like a request already on the wire, so a fleet at its budget makes one
# call per request (its queue of booked turns is shorter than this).
RECHECK_AFTER = 0.05


class _Counters:
    """What the limiter counts, bumped in place on the hot path (one event loop)."""

    __slots__ = (
        "acquires",
        "errors",
        "fallbacks",
        "latency",
        "pauses_set",
        "redis_calls",
        "script_loads",
        "waits",
    )

    def __init__(self) -> None:
        self.acquires = 0
        self.fallbacks = 0
        self.pauses_set: collections.Counter[str] = collections.Counter()
        self.redis_calls = 0
        self.script_loads = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.waits = {"rate": Histogram(), "pause": Histogram()}
        self.latency = Histogram()


@dataclass(frozen=True, slots=True)
class _Reply:
    """One script answer: the pause left and the turn's wait (seconds), the server's time
    (seconds), and when (local clock) the call was sent and its answer read."""

    pause: float
    reason: str
    wait: float
    server_now: float
    asked_at: float
    answered_at: float


@dataclass(frozen=True, slots=True)
class _Bucket:
    """One shared bucket: its key and the script arguments that describe its rate."""

    key: str
    interval_us: str
    burst: str


if sys.version_info >= (3, 11):

    async def _within(call: Awaitable[Any], seconds: float) -> Any:
        """``await call``, given up (TimeoutError) one event-loop turn after ``seconds``."""
        # asyncio.timeout cancels this task in place (wait_for would wrap every call in a
        # task of its own, paid on every HTTP request). The extra turn: after a stall of
        # the whole process (a long GC pause, a blocking call) the answer and the deadline
        # are due together, and an answer that came in time must win.
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(None) as budget:
            expire = loop.call_at(loop.time() + seconds, budget.reschedule, -1.0)
            try:
                return await call
            finally:
                expire.cancel()

else:  # pragma: no cover - Python 3.10, whose wait_for checks for the answer first
    _within = asyncio.wait_for


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, RedisTimeoutError)):
        return "timeout"
    if isinstance(exc, (RedisConnectionError, OSError, RedisClusterException)):
        return "connection"  # RedisCluster's "no node answers" is one too
    if isinstance(exc, ResponseError):
        return "response"
    return "other"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse(raw: Any, asked_at: float, answered_at: float) -> _Reply:
    pause_us, reason, wait_us, now_us = raw
    return _Reply(
        int(pause_us) / _US,
        _text(reason),
        int(wait_us) / _US,
        int(now_us) / _US,
        asked_at,
        answered_at,
    )


class RedisStore:
    """The Redis side: runs :data:`SCRIPT`, times it out, and fails open.

    Every call returns the script's answer, or ``None`` when Redis could not answer within
    ``timeout`` (the caller then paces locally). After a failure only one call every
    ``retry_interval`` tries Redis again; the others get ``None`` at once.

    Args:
        client: A ``redis.asyncio.Redis`` or ``RedisCluster`` (any ``decode_responses``).
        config: Timeouts, intervals and the key prefix.
        clock: Monotonic clock, for tests.
    """

    def __init__(
        self,
        client: RedisClient,
        config: RedisLimiterConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.config = config
        self.counters = _Counters()
        self._clock = clock
        self._healthy = True
        self._probing = False
        self._retry_at = 0.0
        self._settle_until = 0.0
        self.round_trip = 0.0
        """Recent script round trips (seconds, moving average)."""
        self._log = RateLimitedLog(config.warn_interval, clock)

    @property
    def degraded(self) -> bool:
        """Redis failed last time it was tried."""
        return not self._healthy

    @property
    def settling(self) -> bool:
        """Redis came back less than ``retry_interval + timeout`` ago: other processes may
        not have noticed yet (each tries Redis once per ``retry_interval``)."""
        return self._clock() < self._settle_until

    async def acquire(
        self, pause_key: str, bucket: _Bucket | None, not_before: float = 0.0
    ) -> _Reply | None:
        """Read the pause; unless paused, reserve a turn of ``bucket`` (if limited), no
        sooner than ``not_before`` seconds from now."""
        if bucket is None:
            return await self.check(pause_key)
        args = ("acquire", bucket.interval_us, bucket.burst, str(math.ceil(not_before * _US)))
        return await self._run((pause_key, bucket.key), args)

    async def check(self, pause_key: str) -> _Reply | None:
        """Read the pause only."""
        return await self._run((pause_key,), ("check",))

    async def pause(self, pause_key: str, seconds: float, reason: str) -> _Reply | None:
        """Extend the pause to ``seconds`` from now (never shortens it)."""
        return await self._run((pause_key,), ("pause", str(math.ceil(seconds * _US)), reason))

    async def _run(self, keys: tuple[str, ...], args: tuple[str, ...]) -> _Reply | None:
        probe = False
        if not self._healthy:
            if self._probing or self._clock() < self._retry_at:
                return None
            self._probing = probe = True  # one request at a time finds out whether it is back
        counters = self.counters
        counters.redis_calls += 1
        asked_at = self._clock()
        started = time.perf_counter()
        try:
            raw = await _within(self._eval(keys, args), self.config.timeout)
            reply = _parse(raw, asked_at, self._clock())
        except Exception as exc:  # any failure, by contract: a Redis problem never fails a send
            self._failed(exc)
            return None
        finally:
            if probe:
                self._probing = False
        took = time.perf_counter() - started
        counters.latency.observe(took)
        self.round_trip += (took - self.round_trip) / 8  # a moving average of recent calls
        if not self._healthy:
            self._healthy = True
            self._settle_until = self._clock() + self.config.retry_interval + self.config.timeout
            self._log.log(logging.INFO, "redis_back", "shared rate limiter: Redis is back")
        return reply

    async def _eval(self, keys: tuple[str, ...], args: tuple[str, ...]) -> Any:
        try:
            return await self._evalsha(keys, args)
        except RedisConnectionError:
            # The server restarted (or something between dropped us): the idle pooled
            # connections are dead too and would each fail once more. Drop them and try
            # again on a fresh one, within the same timeout.
            pool = getattr(self.client, "connection_pool", None)  # RedisCluster has none
            if pool is not None:
                await pool.disconnect(inuse_connections=False)
            return await self._evalsha(keys, args)

    async def _evalsha(self, keys: tuple[str, ...], args: tuple[str, ...]) -> Any:
        try:
            return await self.client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
        except NoScriptError:
            # First use on this server, or it restarted (or flushed its scripts): EVAL runs
            # the script and caches it, so the next call's EVALSHA finds it.
            self.counters.script_loads += 1
            return await self.client.eval(SCRIPT, len(keys), *keys, *args)

    def _failed(self, exc: Exception) -> None:
        kind = _error_kind(exc)
        self.counters.errors[kind] += 1
        self._healthy = False
        self._retry_at = self._clock() + self.config.retry_interval
        # The exception's text may name the server (or worse, a URL); its type is enough.
        self._log.log(
            logging.WARNING,
            "redis_down",
            "shared rate limiter: Redis call failed (%s, %s); each process paces itself at "
            "1/%d of the budget until Redis answers (retried every %.3g s)",
            kind,
            type(exc).__name__,
            self.config.processes,
            self.config.retry_interval,
        )


class RedisGate:
    """A :class:`~.gate.Gate` shared through Redis (see the module docstring).

    Args:
        store: The Redis side (shared by every gate of one limiter).
        api: ``"track"``, ``"app"`` …; part of the keys.
        workspace: Opaque, non-secret workspace id; part of the keys.
        buckets: Rate limit per bucket (``None``: unlimited, only the pause applies).
        clock: Monotonic clock matching the requests' deadlines.
    """

    __slots__ = (
        "_buckets",
        "_clock",
        "_counters",
        "_pause_key",
        "_reason",
        "_server_clock",
        "_shares",
        "_store",
        "_until",
    )

    def __init__(
        self,
        store: RedisStore,
        *,
        api: str,
        workspace: str,
        buckets: Mapping[str, RateLimit | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        tag = f"{{{store.config.key_prefix}:{api}:{workspace}}}"
        limits = {name: limit for name, limit in buckets.items() if limit is not None}
        self._store = store
        self._counters = store.counters
        self._clock = clock
        self._pause_key = f"{tag}:pause"
        self._buckets = {
            name: _Bucket(
                f"{tag}:rate:{name}", repr(_US / limit.requests_per_second), str(limit.burst)
            )
            for name, limit in limits.items()
        }
        processes = store.config.processes
        self._shares = {name: Share(limit, processes, clock) for name, limit in limits.items()}
        # What this process knows of the pause: learnt from every answer, and what it holds
        # to while Redis is unavailable.
        self._until = 0.0
        self._reason: str | None = None
        # Per gate: in a Redis Cluster each workspace's keys live on a node of their own.
        self._server_clock = ServerClock()

    def __repr__(self) -> str:
        return f"<RedisGate buckets={sorted(self._buckets)} paused={self.paused_reason()}>"

    async def acquire(self, request: HTTPRequest) -> None:
        """See :meth:`.gate.Gate.acquire`; at most one Redis call unless it had to wait."""
        self._counters.acquires += 1
        bucket = self._buckets.get(request.bucket)
        share = self._shares.get(request.bucket)
        while True:
            await self._wait_for_pause(request)
            settling = share is not None and self._store.settling
            # After pacing locally, this process's last local turns hold back its first
            # shared ones, or the two would go out on top of each other.
            not_before = share.pending() if share is not None and not settling else 0.0
            reply = await self._store.acquire(self._pause_key, bucket, not_before)
            if reply is None:
                self._counters.fallbacks += 1
                await self._take_share(request, share)
                return
            if self._learn(reply):
                continue  # paused: wait it out, then take a fresh turn
            # Our turn, on the local clock: neither early (a call that waited for a new
            # connection) nor late (an answer that waited for a busy event loop).
            self._server_clock.observe(reply.asked_at, reply.answered_at, reply.server_now)
            slot = self._server_clock.local(reply.server_now + reply.wait)
            if share is not None and settling:
                # Redis is just back: processes that have not noticed yet pace themselves
                # at their share, out of Redis's sight, so this one keeps to its share too.
                slot = max(slot, self._clock() + share.reserve())
            elif share is not None:
                share.hold(slot)
            if not await self._wait_for_turn(slot):
                return

    async def _wait_for_turn(self, slot: float) -> bool:
        """Wait until ``slot``; whether a pause began meanwhile (the turn is then void)."""
        now = self._clock()
        if slot <= now:
            return False
        self._counters.waits["rate"].observe(slot - now)
        if slot - now > RECHECK_AFTER:
            # A pause may begin during a long wait: read it once more, one round trip
            # before our turn so that the answer does not delay it.
            await asyncio.sleep(slot - now - self._store.round_trip)
            check = await self._store.check(self._pause_key)
            if check is not None:
                self._learn(check)
            now = self._clock()
        if slot > now:
            await asyncio.sleep(slot - now)
        # A pause this process set or heard of meanwhile voids the turn (for free).
        return self._until > self._clock()

    async def pause(self, seconds: float, reason: str) -> None:
        """See :meth:`.gate.Gate.pause`: here at once, then for every process."""
        self._note_pause(seconds, reason)
        self._counters.pauses_set[reason] += 1
        reply = await self._store.pause(self._pause_key, seconds, reason)
        if reply is not None:
            self._learn(reply)  # a longer pause someone else set, and its reason

    def paused_reason(self) -> str | None:
        """See :meth:`.gate.Gate.paused_reason` (the last pause this process heard of)."""
        return self._reason if self._until > self._clock() else None

    def _learn(self, reply: _Reply) -> bool:
        """Take note of the pause in ``reply``; whether there is one."""
        if reply.pause <= 0:
            return False
        self._note_pause(reply.pause, reply.reason)
        return True

    def _note_pause(self, seconds: float, reason: str) -> None:
        until = self._clock() + seconds
        if until > self._until:
            self._until = until
            self._reason = reason

    async def _wait_for_pause(self, request: HTTPRequest) -> None:
        while (wait := self._until - self._clock()) > 0:
            if request.deadline is not None and self._until >= request.deadline:
                raise GiveUp(self._reason or "delivery_timeout", f"paused ({self._reason})")
            self._counters.waits["pause"].observe(wait)
            await asyncio.sleep(wait)

    async def _take_share(self, request: HTTPRequest, share: Share | None) -> None:
        """A turn of this process's share of the budget; then the pauses it knows of."""
        if share is None:
            return
        wait = share.reserve()
        if wait > 0:
            self._counters.waits["rate"].observe(wait)
            await asyncio.sleep(wait)
            await self._wait_for_pause(request)
