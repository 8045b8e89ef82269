"""Small helpers of the fleet tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from customerio_async import RateLimit
from customerio_async._http.gate import Gate
from customerio_async._http.messages import HTTPRequest
from customerio_async.fleet import RedisLimiter, RedisLimiterConfig

__all__ = ["PATIENT", "WORKSPACE", "gate_of", "request", "wait_until"]

WORKSPACE = "3f2a9c0d11e4b5a6"  # what the clients pass: a digest, never the site id
# For tests that are not about a slow Redis: a first call (connect, handshake, load the
# script) or a garbage-collection pause in this big test process can take longer than the
# default 50 ms on a busy machine, and would make the gate fall back where the test
# counts on Redis. The timeout itself is tested with a frozen server.
PATIENT = RedisLimiterConfig(timeout=2.0, retry_interval=0.05)


def request(bucket: str = "default", deadline: float | None = None) -> HTTPRequest:
    """An HTTP request as the gate layer sees it."""
    return HTTPRequest(
        "POST", "/api/v2/batch", b"{}", "/api/v2/batch", bucket=bucket, deadline=deadline
    )


def gate_of(
    limiter: RedisLimiter,
    limit: RateLimit | None,
    *,
    api: str = "track",
    workspace: str = WORKSPACE,
    bucket: str = "default",
) -> Gate:
    """The limiter's gate for one bucket, as a client would ask for it."""
    return limiter.gate(api=api, workspace=workspace, buckets={bucket: limit})


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (polling the event loop) until ``condition()`` holds; fail after ``timeout``."""

    async def poll() -> None:
        # The gate exposes no event to await; polling each loop turn is the condition wait.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), timeout)
