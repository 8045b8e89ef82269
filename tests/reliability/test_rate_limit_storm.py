"""Scenario 2: 429 storms, with and without ``Retry-After`` (seconds, HTTP-date, garbage).

Claims proven: after a 429 that names a pause, no request starts before the
pause ends; clients told the same pause do not come back in lock-step; an endless 429
storm is held to a request count the client-side rate limiter and the retry budget
dictate; and nothing is lost once the storm ends.

Request start times are observed client-side by an HTTP middleware (the public extension
point, which runs after the pause gate), so "no request before the pause ends" is measured
exactly where the SDK decides it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from customerio_async import (
    BatchConfig,
    HTTPRequest,
    HTTPResponse,
    RateLimit,
    RetryPolicy,
)
from customerio_async._http.retry import parse_retry_after
from customerio_async.testing import FakeCustomerIO, Fault

from ._harness import check_invariant, make_client, record_figures, spread


@dataclass(frozen=True)
class Attempt:
    start: float  # loop time the attempt left the gate
    end: float  # loop time its response came back
    wall_end: float  # time.time() at the same moment (to read HTTP-dates)
    status: int | None
    retry_after: str | None


class Timeline:
    """HTTP middleware recording every attempt, client-side."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    async def __call__(
        self, request: HTTPRequest, call_next: Callable[[HTTPRequest], Awaitable[HTTPResponse]]
    ) -> HTTPResponse:
        loop = asyncio.get_running_loop()
        start = loop.time()
        response = await call_next(request)
        self.attempts.append(
            Attempt(
                start,
                loop.time(),
                time.time(),
                response.status,
                response.headers.get("retry-after"),
            )
        )
        return response


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    "retry_after",
    ["1", "date+2", "date-past", "garbage", None],
    ids=["seconds", "http-date", "http-date-in-the-past", "garbage", "absent"],
)
async def test_no_request_starts_before_the_pause_ends(
    fake: FakeCustomerIO, retry_after: str | None
) -> None:
    headers: dict[str, str] = {}
    if retry_after == "date+2":
        headers["Retry-After"] = http_date(2)
    elif retry_after == "date-past":
        headers["Retry-After"] = http_date(-3600)
    elif retry_after is not None:
        headers["Retry-After"] = retry_after
    slots = 4
    # The first wave (one request per slot) is answered 429.
    fake.add_fault(Fault(status=429, headers=headers, times=slots, match="/api/v2/batch"))
    timeline = Timeline()
    cfg = BatchConfig(linger=0, max_batch_ops=1, max_concurrent_requests=slots)
    async with make_client(fake.url, batch=cfg, http_middleware=[timeline]) as cio:
        receipts = [await cio.identify(f"person-{i}", v=i) for i in range(12)]
        result = await cio.flush(timeout=10)
        stats = cio.statistics()
    assert result.pending == 0
    assert all(r.outcome is not None and r.outcome.delivered for r in receipts)
    assert stats.retries_by_cause["http_429"] == slots
    assert len(fake.operations) == 12
    paused_until = 0.0
    for a in timeline.attempts:
        if a.status != 429:
            continue
        seconds = parse_retry_after(a.retry_after, now=a.wall_end)
        if seconds is not None:
            paused_until = max(paused_until, a.end + seconds)
    for a in timeline.attempts:
        # Every attempt that started after some 429 came back respects that 429's pause.
        for b in timeline.attempts:
            if b.status == 429 and a.start > b.end:
                seconds = parse_retry_after(b.retry_after, now=b.wall_end) or 0.0
                assert a.start >= b.end + seconds - 0.002, (a, b)
    if retry_after in ("1", "date+2"):
        assert paused_until > 0
        late = [a for a in timeline.attempts if a.status != 429]
        assert min(a.start for a in late) >= paused_until - 0.002
        first_429 = min(a.end for a in timeline.attempts if a.status == 429)
        record_figures(
            f"429[{retry_after}]",
            paused_for_s=round(paused_until - first_429, 3),
            first_request_after_pause_s=round(min(a.start for a in late) - first_429, 3),
            requests=len(timeline.attempts),
        )


async def test_clients_told_the_same_pause_do_not_return_in_lock_step(
    fake: FakeCustomerIO,
) -> None:
    n = 10
    fake.add_fault(Fault(status=429, headers={"Retry-After": "1"}, times=n))
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                make_client(fake.url, batch=BatchConfig(linger=0), user_agent=f"client-{i}")
            )
            for i in range(n)
        ]
        receipts = await asyncio.gather(*(c.track("p", "e") for c in clients))
        outcomes = await asyncio.gather(*(r.wait(10) for r in receipts))
    assert all(o.delivered for o in outcomes)
    first = fake.requests[:n]
    retries = fake.requests[n:]
    assert all(r.status == 429 for r in first)
    assert len(retries) == n
    told_at = max(r.received_at for r in first)
    gaps = {
        r.headers["user-agent"]: r.received_at
        - next(f.received_at for f in first if f.headers["user-agent"] == r.headers["user-agent"])
        for r in retries
    }
    # The pause is a floor: nobody comes back before 1 s; up to 10 % jitter on top spreads
    # the fleet instead of returning it together.
    assert min(gaps.values()) >= 1.0
    assert max(gaps.values()) <= 1.1 + 0.1
    returns = [r.received_at - told_at for r in retries]
    assert spread(returns) > 0.008, returns
    assert max(returns) - min(returns) > 0.02, returns
    record_figures(
        "429[10 clients, Retry-After 1]",
        earliest_return_s=round(min(gaps.values()), 3),
        latest_return_s=round(max(gaps.values()), 3),
        return_spread_ms=round(1000 * spread(returns), 1),
    )


STORM = 1.0  # seconds of endless 429s


async def _storm(fake: FakeCustomerIO, **kwargs: object) -> tuple[int, float]:
    """Endless 429s (no Retry-After) for STORM seconds with 4 requests in flight; then the storm
    ends and everything must still be delivered. Returns the requests the storm cost and
    the window they were counted in (seconds)."""
    fake.add_fault(Fault(status=429, times=1_000_000, match="/api/v2/batch"))
    cfg = BatchConfig(linger=0, max_batch_ops=1, max_concurrent_requests=4)
    loop = asyncio.get_running_loop()
    async with make_client(fake.url, batch=cfg, **kwargs) as cio:
        receipts = [await cio.identify(f"person-{i}", v=i) for i in range(40)]
        started = loop.time()
        await asyncio.sleep(STORM)  # bounded observation window: count what the storm costs
        during = len(fake.requests)
        window = loop.time() - started
        check_invariant(cio)
        fake.clear()  # the storm ends (scripted faults are forgotten)
        result = await cio.flush(timeout=20)
    assert result.pending == 0
    assert all(r.outcome is not None and r.outcome.delivered for r in receipts)
    return during, window


async def test_the_rate_limiter_holds_a_storm_to_its_rate(fake: FakeCustomerIO) -> None:
    rps, burst = 20.0, 5
    retry = RetryPolicy(
        backoff_base=0.001, backoff_cap=0.005, budget=1e9, delivery_timeout=30, max_attempts=10**5
    )
    during, window = await _storm(
        fake, retry=retry, rate_limit=RateLimit(requests_per_second=rps, burst=burst)
    )
    bound = burst + rps * window + 1
    assert during <= bound
    record_figures("429 storm[rate limit 20/s]", requests=during, window_s=window, bound=bound)


async def test_the_retry_budget_slows_a_storm_to_probes(fake: FakeCustomerIO) -> None:
    budget, cap, slots = 10.0, 0.4, 4
    retry = RetryPolicy(
        backoff_base=0.001, backoff_cap=cap, budget=budget, delivery_timeout=30, max_attempts=10**5
    )
    during, window = await _storm(fake, retry=retry, rate_limit=None)
    # Once half the budget is spent, each request slot probes at most every cap/2 seconds.
    bound = budget / 2 + 1 + slots * (window / (cap / 2) + 1)
    assert during <= bound
    record_figures("429 storm[retry budget 10]", requests=during, window_s=window, bound=bound)


async def test_an_unprotected_client_would_storm(fake: FakeCustomerIO) -> None:
    """The contrast: with the budget and the rate limiter off and millisecond backoffs the
    same storm costs far more requests (what the two protections above prevent)."""
    retry = RetryPolicy(
        backoff_base=0.001, backoff_cap=0.005, budget=1e9, delivery_timeout=30, max_attempts=10**5
    )
    during, window = await _storm(fake, retry=retry, rate_limit=None)
    assert during > 2 * (5 + 20 * window)
    record_figures("429 storm[unprotected]", requests=during, window_s=window)
