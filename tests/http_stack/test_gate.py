"""The gate on its own: pauses (never shortened, re-checked after every sleep, given up when
they outlast a deadline), token buckets per class, and the limiter."""

from __future__ import annotations

import asyncio

import pytest

from customerio_async import RateLimit
from customerio_async._exceptions import GiveUp
from customerio_async._http.gate import LocalGate, LocalLimiter, TokenBucket
from customerio_async._http.messages import HTTPRequest


def request(bucket: str = "default", deadline: float | None = None) -> HTTPRequest:
    return HTTPRequest("POST", "/x", None, "/x", bucket=bucket, deadline=deadline)


def test_token_bucket_serves_a_burst_then_spaces_requests() -> None:
    now = [0.0]
    bucket = TokenBucket(RateLimit(requests_per_second=10.0, burst=2), lambda: now[0])
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.1)  # reserved: callers are served in order
    assert bucket.reserve() == pytest.approx(0.2)
    now[0] = 10.0  # refills, but never above the burst
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.1)


def test_a_pause_is_never_shortened_and_keeps_its_reason() -> None:
    now = [100.0]
    gate = LocalGate({}, lambda: now[0])
    assert gate.paused_reason() is None
    gate.pause_now(30.0, "auth_failed")
    gate.pause_now(5.0, "rate_limited")  # shorter: ignored
    assert gate.paused_reason() == "auth_failed"
    gate.pause_now(60.0, "rate_limited")
    assert gate.paused_reason() == "rate_limited"
    now[0] = 161.0
    assert gate.paused_reason() is None
    assert "LocalGate" in repr(gate)


async def test_acquire_gives_up_when_the_pause_outlasts_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    gate = LocalGate({}, loop.time)
    await gate.pause(30.0, "auth_failed")
    with pytest.raises(GiveUp) as info:
        await gate.acquire(request(deadline=loop.time() + 1.0))
    assert info.value.reason == "auth_failed"


async def test_acquire_waits_out_a_pause_that_ends_before_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    gate = LocalGate({}, loop.time)
    await gate.pause(0.05, "rate_limited")
    started = loop.time()
    await gate.acquire(request(deadline=started + 5.0))
    assert loop.time() - started >= 0.045


async def test_a_pause_that_starts_while_waiting_for_a_token_is_respected() -> None:
    loop = asyncio.get_running_loop()
    gate = LocalGate({"default": RateLimit(requests_per_second=20.0, burst=1)}, loop.time)
    await gate.acquire(request())  # the burst
    waiter = asyncio.ensure_future(gate.acquire(request()))  # waits ~50 ms for its token
    await asyncio.sleep(0)
    await gate.pause(0.2, "rate_limited")  # a 429 elsewhere, meanwhile
    started = loop.time()
    await waiter
    assert loop.time() - started >= 0.19


async def test_buckets_are_per_class_and_unlisted_classes_are_free() -> None:
    loop = asyncio.get_running_loop()
    limits = {"slow": RateLimit(requests_per_second=1.0, burst=1), "off": None}
    gate = LocalGate(limits, loop.time)
    await gate.acquire(request("slow"))
    started = loop.time()
    for bucket in ("off", "other", "off"):
        await gate.acquire(request(bucket))
    assert loop.time() - started < 0.5


def test_the_local_limiter_gives_each_client_its_own_gate() -> None:
    limiter = LocalLimiter()
    one = limiter.gate(api="track", workspace="a", buckets={"default": None})
    two = limiter.gate(api="track", workspace="a", buckets={"default": None})
    assert one is not two
