"""Fleet scale: one rate budget and one backoff shared by every process, on Redis.

Customer.io's limits are per workspace, but each process paces itself: N gunicorn workers,
Celery workers or pods send N times the budget, and a 429 seen by one slows none of the
others. Give every client a :class:`RedisLimiter` and they share, through Redis (>= 6.2, or
Valkey; Redis Cluster works, the keys carry hash tags):

* **one rate budget** per workspace, API and bucket: the ``rate_limit`` (or
  ``AppRateLimits``) you configure becomes the fleet's total, not each process's;
* **one pause**: a 429 with ``Retry-After`` or an auth failure seen by any process holds
  every process's sends to that workspace until it expires.

Each HTTP request costs one Redis round trip (an atomic Lua script, timed with the Redis
server's clock). If Redis fails, every process falls back to ``budget ÷ processes`` after
at most ``timeout`` (50 ms) and reconnects on its own; no operation is lost to a Redis fault.

Install the extra: ``pip install 'customerio-async[redis]'``. Example::

    from customerio_async import CustomerIO, RateLimit
    from customerio_async.fleet import RedisLimiter, RedisLimiterConfig

    limiter = RedisLimiter("redis://redis:6379/0", config=RedisLimiterConfig(processes=8))
    async with limiter, CustomerIO(
        site_id, api_key, rate_limit=RateLimit(requests_per_second=1000, burst=50),
        limiter=limiter,
    ) as cio:
        await cio.track("42", "signed_up")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from ._http.redis_gate import RedisGate, RedisStore
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without redis
    raise ImportError(
        "customerio_async.fleet needs the redis extra: pip install 'customerio-async[redis]'"
    ) from exc

from ._config import RateLimit
from ._exceptions import ConfigurationError
from ._metrics import counter, gauge, histogram_family

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from redis.asyncio import RedisCluster

    from ._http.gate import Gate

__all__ = ["LimiterStatistics", "RedisLimiter", "RedisLimiterConfig"]


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


class RedisLimiter:
    """A limiter whose rate budgets and pauses every process shares through Redis.

    Pass it as ``limiter=`` to :class:`~customerio_async.CustomerIO` and
    :class:`~customerio_async.APIClient`; each client's rate limits then become the
    fleet's. Create it in each process (after any fork), in the event loop that uses it.

    Example::

        limiter = RedisLimiter("redis://:secret@redis:6379/0",
                               config=RedisLimiterConfig(processes=4))
        async with limiter, APIClient(app_key, limiter=limiter) as api:
            await api.send_email(request)   # 100/s transactional for all 4 processes
        print(limiter.statistics().fallbacks)

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL. The limiter creates (and
            :meth:`aclose` closes) a client whose socket timeouts are ``config.timeout``
            and which does not retry on its own.
        client: Or your own ``redis.asyncio.Redis`` / ``RedisCluster`` (you close it).
        config: Fallback share, timeout, intervals, key prefix.
        name: The ``limiter`` label of its metrics, and its key for
            :meth:`Metrics.attach <customerio_async.Metrics.attach>`.
        clock: Monotonic clock matching the clients' deadlines (the event loop's).

    Raises:
        ConfigurationError: Neither or both of ``url`` and ``client``, or a bad URL.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | RedisCluster | None = None,
        config: RedisLimiterConfig = DEFAULT_REDIS_LIMITER,
        name: str = "redis",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError("RedisLimiter needs exactly one of url and client")
        self._owns_client = client is None
        if client is None:
            assert url is not None
            try:
                client = Redis.from_url(
                    url,
                    socket_timeout=config.timeout,
                    socket_connect_timeout=config.timeout,
                    retry=Retry(NoBackoff(), 0),  # we time out and fall back ourselves
                )
            except ValueError:
                # Not the URL itself in the message: it may carry a password.
                raise ConfigurationError("RedisLimiter: not a valid Redis URL") from None
        self._store = RedisStore(client, config, clock)
        self._clock = clock
        self._name = name

    def __repr__(self) -> str:
        # No URL or client repr: either may carry a password.
        state = "degraded" if self._store.degraded else "ok"
        return f"<RedisLimiter name={self._name!r} {state}>"

    @property
    def config(self) -> RedisLimiterConfig:
        """The settings in force.

        Example::

            assert limiter.config.processes == 8
        """
        return self._store.config

    def gate(self, *, api: str, workspace: str, buckets: Mapping[str, RateLimit | None]) -> Gate:
        """The shared gate for ``workspace`` on ``api`` (the clients call this).

        Example::

            gate = limiter.gate(api="track", workspace="3f2a9c…",
                                buckets={"default": RateLimit(requests_per_second=200)})
        """
        return RedisGate(
            self._store, api=api, workspace=workspace, buckets=buckets, clock=self._clock
        )

    async def ping(self) -> bool:
        """Whether Redis answers the limiter's script within ``timeout`` now; loads the
        script, so a worker can warm up (or check readiness) before it sends.

        Example::

            if not await limiter.ping():
                log.warning("Redis unavailable: pacing locally")
        """
        return await self._store.check(f"{{{self.config.key_prefix}:ping}}:pause") is not None

    def statistics(self) -> LimiterStatistics:
        """A snapshot of the counters (cheap: no I/O).

        Example::

            stats = limiter.statistics()
            print(stats.redis_errors, stats.fallbacks, stats.rate_wait_seconds)
        """
        counters = self._store.counters
        rate, pause = counters.waits["rate"], counters.waits["pause"]
        return LimiterStatistics(
            acquires=counters.acquires,
            fallbacks=counters.fallbacks,
            rate_waits=rate.count,
            rate_wait_seconds=rate.sum,
            pause_waits=pause.count,
            pause_wait_seconds=pause.sum,
            pauses_set=sum(counters.pauses_set.values()),
            redis_calls=counters.redis_calls,
            redis_errors=sum(counters.errors.values()),
            redis_errors_by_kind=dict(counters.errors),
            script_loads=counters.script_loads,
            degraded=self._store.degraded,
        )

    @property
    def metrics_label(self) -> str:
        """The ``limiter`` label (the ``name`` argument).

        Example::

            metrics = Metrics(registry=REGISTRY)
            metrics.attach(limiter)   # customerio_limiter_* families, next to the clients'
        """
        return self._name

    def metric_families(self, prefix: str) -> Iterable[Metric]:
        """Prometheus families of this limiter (see the README's metric table).

        Example::

            names = [family.name for family in limiter.metric_families("customerio_")]
        """
        counters = self._store.counters
        label, p = self._name, f"{prefix}limiter_"
        plain = [
            ("acquires", "Requests paced.", counters.acquires),
            ("fallbacks", "Requests paced locally: Redis unavailable.", counters.fallbacks),
            ("redis_calls", "Script calls sent.", counters.redis_calls),
            ("script_loads", "Script (re)loads after NOSCRIPT.", counters.script_loads),
        ]
        by = [
            ("redis_errors", "Failed script calls by kind.", "kind", counters.errors),
            ("pauses", "Pauses this process set, by reason.", "reason", counters.pauses_set),
        ]
        return [
            histogram_family(
                f"{p}wait_seconds",
                "Waits for a turn (cause=rate) or a shared pause (cause=pause).",
                ["limiter", "cause"],
                [([label, cause], hist) for cause, hist in counters.waits.items()],
            ),
            histogram_family(
                f"{p}redis_latency_seconds",
                "Round trips of the limiter's Redis script (successful calls).",
                ["limiter"],
                [([label], counters.latency)],
            ),
            *(counter(p + name, doc, ["limiter"], [([label], n)]) for name, doc, n in plain),
            *(
                counter(p + name, doc, ["limiter", key], [([label, k], n) for k, n in c.items()])
                for name, doc, key, c in by
            ),
            gauge(
                f"{p}degraded",
                "1 while Redis is failing and requests are paced locally.",
                ["limiter"],
                [([label], float(self._store.degraded))],
            ),
        ]

    async def aclose(self) -> None:
        """Close the Redis client if the limiter created it (from ``url``).

        Example::

            limiter = RedisLimiter("redis://redis:6379/0")
            try:
                ...
            finally:
                await limiter.aclose()
        """
        if self._owns_client:
            client = self._store.client
            # redis 5.0.0 has only close(); later versions deprecate it for aclose().
            close = getattr(client, "aclose", None) or client.close
            await close()

    async def __aenter__(self) -> RedisLimiter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
