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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._common.histogram import Histogram
from .._common.logs import RateLimitedLog
from .._config import RateLimit
from .._exceptions import ConfigurationError, GiveUp
from .messages import HTTPRequest

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

__all__ = [
    "SCRIPT",
    "SCRIPT_SHA",
    "LimiterStatistics",
    "RedisGate",
    "RedisLimiterConfig",
    "RedisStore",
]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisLimiterConfig:
    """Settings of :class:`~customerio_async.fleet.RedisLimiter`; every default is here.

    Example::

        config = RedisLimiterConfig(processes=8, timeout=0.05)
        limiter = RedisLimiter("redis://redis:6379/0", config=config)

    Attributes:
        processes: How many processes share the budget. While Redis is unavailable each
            process falls back to ``budget ÷ processes`` (burst likewise, at least 1), so
            the fleet as a whole stays within the budget. Set it to your worker count.
        timeout: The longest a request waits for Redis (one script call, seconds); after
            that it goes through the local fallback instead.
        retry_interval: While Redis is failing, how often one request tries it again.
        warn_interval: At most one WARNING per this many seconds about Redis failures.
        key_prefix: First part of every key's hash tag (``{prefix:api:workspace}``); no
            braces.
    """

    processes: int = 1
    timeout: float = 0.05
    retry_interval: float = 1.0
    warn_interval: float = 60.0
    key_prefix: str = "cio"

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ConfigurationError("RedisLimiterConfig.processes must be >= 1")
        if not self.timeout > 0:
            raise ConfigurationError("RedisLimiterConfig.timeout must be > 0")
        if self.retry_interval < 0 or self.warn_interval < 0:
            raise ConfigurationError("RedisLimiterConfig intervals must be >= 0")
        if not self.key_prefix or any(c in self.key_prefix for c in "{} "):
            # Braces would break the hash tag that keeps a workspace's keys in one slot.
            raise ConfigurationError("RedisLimiterConfig.key_prefix must be non-empty, no {} ")


DEFAULT_REDIS_LIMITER = RedisLimiterConfig()


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """A snapshot of a :class:`~customerio_async.fleet.RedisLimiter`'s counters.

    Example::

        stats = limiter.statistics()
        if stats.degraded:
            print(f"Redis down: {stats.fallbacks} requests paced locally")

    Attributes:
        acquires: Requests that asked the limiter for their turn.
        fallbacks: Of those, requests paced by the local fallback (Redis unavailable).
        rate_waits: Requests that waited for their turn (the rate limit).
        rate_wait_seconds: Total seconds of those waits.
        pause_waits: Waits for a pause (a 429 or an auth failure, seen by any process).
        pause_wait_seconds: Total seconds of those waits.
        pauses_set: Pauses this process asked for.
        redis_calls: Script calls sent to Redis.
        redis_errors: Failed script calls (all kinds).
        redis_errors_by_kind: ``timeout``, ``connection``, ``response`` or ``other``.
        script_loads: Times the script was (re)loaded after NOSCRIPT (first use, a restart).
        degraded: Redis is failing now: requests are paced locally.
    """

    acquires: int = 0
    fallbacks: int = 0
    rate_waits: int = 0
    rate_wait_seconds: float = 0.0
    pause_waits: int = 0
    pause_wait_seconds: float = 0.0
    pauses_set: int = 0
    redis_calls: int = 0
    redis_errors: int = 0
    redis_errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    script_loads: int = 0
    degraded: bool = False


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


class _ServerClock:
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

    def observe(self, reply: _Reply) -> None:
        """Learn from one answer."""
        sample = (
            reply.answered_at - reply.asked_at,
            reply.server_now - (reply.asked_at + reply.answered_at) / 2,
        )
        if reply.answered_at > self._epoch_end:
            self._previous, self._best = self._best, None
            self._epoch_end = reply.answered_at + self.EPOCH
        if self._best is None or sample < self._best:
            self._best = sample

    def local(self, server_time: float) -> float:
        """``server_time`` on the local clock (call :meth:`observe` first)."""
        assert self._best is not None
        best = self._best if self._previous is None else min(self._best, self._previous)
        return server_time - best[1]


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


class _Share:
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
        self._shares = {name: _Share(limit, processes, clock) for name, limit in limits.items()}
        # What this process knows of the pause: learnt from every answer, and what it holds
        # to while Redis is unavailable.
        self._until = 0.0
        self._reason: str | None = None
        # Per gate: in a Redis Cluster each workspace's keys live on a node of their own.
        self._server_clock = _ServerClock()

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
            self._server_clock.observe(reply)
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

    async def _take_share(self, request: HTTPRequest, share: _Share | None) -> None:
        """A turn of this process's share of the budget; then the pauses it knows of."""
        if share is None:
            return
        wait = share.reserve()
        if wait > 0:
            self._counters.waits["rate"].observe(wait)
            await asyncio.sleep(wait)
            await self._wait_for_pause(request)
