"""Redis Cluster: a real one-node cluster (all 16,384 slots on one server) behind redis-py's
``RedisCluster``. Cluster mode refuses a script whose keys lie in different slots (CROSSSLOT)
even with one node, so this proves the keys' hash tags; a restarted node shows the cluster
client's fault path (it has no single connection pool to reset)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis
from redis.asyncio import Redis, RedisCluster

from customerio_async import RateLimit
from customerio_async.fleet import RedisLimiter, RedisLimiterConfig

from ._redis_server import RedisServer, free_port
from ._support import PATIENT, gate_of, request


@pytest.fixture
def cluster_node() -> Iterator[RedisServer]:
    """A redis-server in cluster mode (its slots are assigned by ``cluster``)."""
    args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    # The cluster bus listens 10,000 ports higher, so the port must leave room for it.
    with RedisServer(port=free_port(highest=55535), extra_args=args) as server:
        yield server


async def _own_every_slot(url: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.execute_command("CLUSTER", "ADDSLOTS", *range(16384))  # type: ignore[no-untyped-call]
        # The node takes a moment to call its state ok; nothing to await but asking again.
        while b"cluster_state:ok" not in await client.execute_command("CLUSTER", "INFO"):  # type: ignore[no-untyped-call]  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def cluster(cluster_node: RedisServer) -> AsyncIterator[RedisCluster]:
    """A ``RedisCluster`` client of the one-node cluster."""
    await _own_every_slot(cluster_node.url)
    client = RedisCluster(host="127.0.0.1", port=cluster_node.port)
    yield await client.initialize()
    await client.aclose()


async def test_the_shared_gate_works_on_a_cluster(cluster: RedisCluster) -> None:
    limiter = RedisLimiter(client=cluster, config=PATIENT)
    gate = gate_of(limiter, RateLimit(requests_per_second=10, burst=1))
    await gate.acquire(request())
    await gate.acquire(request())  # a turn 0.1 s on: the bucket lives in the cluster
    await gate.pause(5, "auth_failed")
    await gate.pause(0.1, "rate_limited")  # shorter: changes nothing, here or there
    assert gate.paused_reason() == "auth_failed"
    stats = limiter.statistics()
    assert (stats.redis_errors, stats.rate_waits, stats.script_loads) == (0, 1, 1)
    assert await limiter.ping()


@pytest.mark.skipif(
    int(redis.__version__.split(".")[0]) < 8,
    reason="redis-py < 8: a RedisCluster client that lost every node never reconnects",
)
async def test_a_lost_cluster_node_is_a_fault_then_used_again(
    cluster_node: RedisServer, cluster: RedisCluster
) -> None:
    config = RedisLimiterConfig(timeout=0.5, retry_interval=0.05)
    limiter = RedisLimiter(client=cluster, config=config)
    gate = gate_of(limiter, None)
    await gate.acquire(request())
    await asyncio.to_thread(cluster_node.kill)
    await gate.acquire(request())
    assert limiter.statistics().degraded
    await asyncio.to_thread(cluster_node.start)  # keeps its slots (nodes.conf)

    async def until_recovered() -> None:
        while limiter.statistics().degraded:
            await gate.acquire(request())

    await asyncio.wait_for(until_recovered(), 20)
    stats = limiter.statistics()
    assert stats.fallbacks >= 1
    assert stats.script_loads == 2
