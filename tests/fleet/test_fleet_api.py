"""The public surface of ``customerio_async.fleet``: construction, config, statistics,
Prometheus families, the clients wired to it, and life without the extra installed."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import subprocess
import sys
import time

import pytest
from prometheus_client import generate_latest
from redis.asyncio import Redis

from customerio_async import (
    APIClient,
    AppRateLimits,
    BatchConfig,
    ConfigurationError,
    CustomerIO,
    Metrics,
    RateLimit,
    SendEmailRequest,
    fleet,
)
from customerio_async.fleet import LimiterStatistics, RedisLimiter, RedisLimiterConfig
from customerio_async.testing import FakeCustomerIO, Fault

from ._redis_server import RedisServer, free_port
from ._support import PATIENT, gate_of, request, wait_until


@pytest.mark.parametrize(
    "bad",
    [
        {"processes": 0},
        {"timeout": 0},
        {"retry_interval": -1},
        {"warn_interval": -1},
        {"key_prefix": ""},
        {"key_prefix": "a{b}"},
        {"key_prefix": "a b"},
    ],
)
def test_config_refuses_values_that_cannot_work(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RedisLimiterConfig(**bad)  # type: ignore[arg-type]


def test_every_public_name_is_documented_with_an_example() -> None:
    for name in fleet.__all__:
        obj = getattr(fleet, name)
        assert obj.__module__ == "customerio_async.fleet", name
        assert "Example::" in (obj.__doc__ or ""), name
    assert "Example::" in (fleet.__doc__ or "")
    for name, member in vars(RedisLimiter).items():
        if not name.startswith("_"):
            doc = (member.fget if isinstance(member, property) else member).__doc__
            assert "Example::" in (doc or ""), name


def test_config_defaults() -> None:
    config = RedisLimiterConfig()
    assert (config.processes, config.timeout, config.retry_interval) == (1, 0.05, 1.0)
    assert (config.warn_interval, config.key_prefix) == (60.0, "cio")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.processes = 2  # type: ignore[misc]


async def test_exactly_one_of_url_and_client() -> None:
    with pytest.raises(ConfigurationError):
        RedisLimiter()
    client = Redis()
    with pytest.raises(ConfigurationError):
        RedisLimiter("redis://127.0.0.1:1/0", client=client)
    await client.aclose()


def test_a_bad_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisLimiter("http://user:pw-secret@example.invalid/0")
    assert "pw-secret" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_repr_shows_no_url() -> None:
    limiter = RedisLimiter("redis://:pw-secret@127.0.0.1:1/0", name="workers")
    assert repr(limiter) == "<RedisLimiter name='workers' ok>"
    gate = gate_of(limiter, RateLimit())
    assert repr(gate) == "<RedisGate buckets=['default'] paused=None>"
    assert limiter.config == RedisLimiterConfig()
    await limiter.aclose()


async def test_your_own_client_is_used_and_left_open(redis_server: RedisServer) -> None:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    config = dataclasses.replace(PATIENT, key_prefix="shop")
    limiter = RedisLimiter(client=client, config=config)
    gate = gate_of(limiter, RateLimit(requests_per_second=100, burst=1))
    await gate.pause(0.05, "rate_limited")
    await gate.acquire(request())
    assert await limiter.ping()
    await limiter.aclose()
    assert await client.exists("{shop:track:3f2a9c0d11e4b5a6}:rate:default") == 1
    await client.aclose()


async def test_statistics_are_a_frozen_snapshot(limiter: RedisLimiter) -> None:
    before = limiter.statistics()
    assert before == LimiterStatistics()
    await gate_of(limiter, None).acquire(request())
    assert limiter.statistics().acquires == 1
    assert before.acquires == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.acquires = 5  # type: ignore[misc]


async def test_prometheus_families_next_to_a_clients(limiter: RedisLimiter) -> None:
    gate = gate_of(limiter, RateLimit(requests_per_second=50, burst=1))
    for _ in range(2):
        await gate.acquire(request())
    await gate.pause(0.01, "rate_limited")
    metrics = Metrics()
    async with CustomerIO("site", "key", track_url="http://127.0.0.1:1", metrics=metrics):
        metrics.attach(limiter)  # label "redis": no clash with the client's "us"
        text = generate_latest(metrics.registry).decode()
    for line in [
        'customerio_limiter_wait_seconds_count{cause="rate",limiter="redis"} 1.0',
        'customerio_limiter_wait_seconds_count{cause="pause",limiter="redis"} 0.0',
        'customerio_limiter_acquires_total{limiter="redis"} 2.0',
        'customerio_limiter_fallbacks_total{limiter="redis"} 0.0',
        'customerio_limiter_redis_calls_total{limiter="redis"} 3.0',
        'customerio_limiter_script_loads_total{limiter="redis"} 1.0',
        'customerio_limiter_pauses_total{limiter="redis",reason="rate_limited"} 1.0',
        'customerio_limiter_degraded{limiter="redis"} 0.0',
        'customerio_limiter_redis_latency_seconds_count{limiter="redis"} 3.0',
        'customerio_operations_accepted_total{region="us"} 0.0',
    ]:
        assert line in text


async def test_redis_errors_are_exported_by_kind() -> None:
    config = RedisLimiterConfig(retry_interval=60)
    async with RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", config=config) as limiter:
        await gate_of(limiter, None).acquire(request())
        metrics = Metrics(prefix="app_")
        metrics.attach(limiter)
        text = generate_latest(metrics.registry).decode()
    assert 'app_limiter_redis_errors_total{kind="connection",limiter="redis"} 1.0' in text
    assert 'app_limiter_degraded{limiter="redis"} 1.0' in text


async def test_a_pause_this_process_sets_during_a_short_wait_voids_the_turn(
    limiter: RedisLimiter,
) -> None:
    gate = gate_of(limiter, RateLimit(requests_per_second=40, burst=1))
    await gate.acquire(request())
    started = time.monotonic()
    waiting = asyncio.create_task(gate.acquire(request()))  # a 25 ms turn: no re-read
    await wait_until(lambda: limiter.statistics().rate_waits == 1)
    await gate.pause(0.2, "rate_limited")
    await waiting
    assert time.monotonic() - started >= 0.2 - 0.05
    assert limiter.statistics().pause_waits == 1


async def test_redis_lost_during_a_long_wait_lets_the_turn_go(
    redis_server: RedisServer,
) -> None:
    async with RedisLimiter(redis_server.url, config=PATIENT) as limiter:
        gate = gate_of(limiter, RateLimit(requests_per_second=5, burst=1))
        await gate.acquire(request())
        waiting = asyncio.create_task(gate.acquire(request()))  # 0.2 s: re-reads the pause
        await wait_until(lambda: limiter.statistics().rate_waits == 1)
        await asyncio.to_thread(redis_server.kill)
        await waiting  # the re-read failed: the turn Redis gave still stands
        assert limiter.statistics().redis_errors == 1


async def test_clients_share_a_429_pause_through_redis(redis_server: RedisServer) -> None:
    # Two clients of one workspace, each with its own limiter: as in two processes.
    batch = BatchConfig(max_batch_ops=1, linger=0)
    async with (
        FakeCustomerIO() as fake,
        RedisLimiter(redis_server.url, config=PATIENT) as first,
        RedisLimiter(redis_server.url, config=PATIENT) as second,
        CustomerIO(
            fake.site_id, fake.api_key, track_url=fake.url, batch=batch, limiter=first
        ) as one,
        CustomerIO(
            fake.site_id, fake.api_key, track_url=fake.url, batch=batch, limiter=second
        ) as two,
    ):
        fake.add_fault(Fault(status=429, headers={"Retry-After": "1"}))
        await one.identify("a", plan="pro")
        await wait_until(lambda: any(r.status == 429 for r in fake.requests))
        await wait_until(lambda: first.statistics().pauses_set == 1)
        throttled_at = fake.requests[0].received_at
        await two.identify("b", plan="pro")  # the other client waits the pause out
        await two.flush(timeout=10)
        await one.flush(timeout=10)
        assert second.statistics().pause_waits == 1
        later = [r.received_at for r in fake.requests[1:]]
        assert len(later) == 2
        assert min(later) >= throttled_at + 1.0
        assert {op.identifiers["id"] for op in fake.operations} == {"a", "b"}


async def test_the_app_client_books_each_bucket_in_redis(redis_server: RedisServer) -> None:
    inspect = Redis.from_url(redis_server.url)
    # One turn a second: the bucket's key lives (until the bucket is full again) long enough
    # to be seen.
    limits = AppRateLimits(transactional=RateLimit(requests_per_second=1, burst=1))
    async with (
        FakeCustomerIO() as fake,
        RedisLimiter(redis_server.url, config=PATIENT) as limiter,
        APIClient(fake.app_api_key, api_url=fake.url, rate_limits=limits, limiter=limiter) as api,
    ):
        email = SendEmailRequest(
            transactional_message_id=1, to="a@example.com", identifiers={"id": 1}
        )
        await api.send_email(email)
    workspace = hashlib.sha256(fake.app_api_key.encode()).hexdigest()[:16]
    keys = await inspect.keys("*")
    await inspect.aclose()
    assert keys == [f"{{cio:app:{workspace}}}:rate:transactional".encode()]


def test_the_package_imports_without_the_extra() -> None:
    # A subprocess, so that hiding redis does not disturb this interpreter's modules.
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "import customerio_async\n"
        "assert 'customerio_async.fleet' not in sys.modules\n"
        "try:\n"
        "    import customerio_async.fleet\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert "pip install 'customerio-async[redis]'" in result.stdout
