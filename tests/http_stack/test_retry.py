"""The retry layer on its own: which failures earn another attempt, how long it waits, when
it gives up, per mode and per API rules. The next layer is a scripted handler (this is a
unit test of one layer; the end-to-end behaviour is tested against the fake server)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from types import MappingProxyType

import pytest

from customerio_async import (
    ConnectError,
    ConnectionLostError,
    OutcomeUnknownError,
    RateLimit,
    RequestTimeoutError,
    RetryPolicy,
    UnsafeRedirectError,
)
from customerio_async._exceptions import GiveUp, TransportError
from customerio_async._http.chain import build_chain
from customerio_async._http.gate import GateLayer, LocalGate
from customerio_async._http.messages import HTTPRequest, HTTPResponse
from customerio_async._http.retry import RetryCounters, RetryLayer, backoff, parse_retry_after
from customerio_async._http.rules import APIRules

FAST = RetryPolicy(backoff_base=0.001, backoff_cap=0.002, max_attempts=5, direct_attempts=3)
TRACK = APIRules(api="track")
APP = APIRules(api="app", repeatable_methods=frozenset({"GET"}))

Step = HTTPResponse | TransportError


class Script:
    """A handler answering each attempt with the next scripted response or error."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        self.requests: list[tuple[int, dict[str, str]]] = []

    async def __call__(self, request: HTTPRequest) -> HTTPResponse:
        self.requests.append((request.attempt, dict(request.headers)))
        step = self.steps.pop(0)
        if isinstance(step, TransportError):
            raise step
        return step


def answer(status: int, body: bytes = b"{}", **headers: str) -> HTTPResponse:
    return HTTPResponse(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def layer(
    mode: str, rules: APIRules = TRACK, policy: RetryPolicy = FAST, gate: LocalGate | None = None
) -> tuple[RetryLayer, RetryCounters, LocalGate]:
    gate = gate or LocalGate({"default": None})
    counters = RetryCounters(policy)
    retry = RetryLayer(
        rules, policy, gate, counters, mode="deliver" if mode == "deliver" else "call"
    )
    return retry, counters, gate


def request(method: str = "POST", deadline: float | None = None) -> HTTPRequest:
    return HTTPRequest(method, "/x", b"{}", "/x", deadline=deadline)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 507, 520, 529, 599])
async def test_retryable_statuses_are_retried(status: int) -> None:
    retry, counters, _ = layer("call")
    script = Script([answer(status), answer(200)])
    assert (await retry(request(), script)).status == 200
    assert [attempt for attempt, _ in script.requests] == [1, 2]
    assert script.requests[1][1]["X-Retry-Count"] == "1"
    assert counters.by_cause == {f"http_{status}": 1}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 501, 505])
async def test_final_statuses_are_returned_at_once(status: int) -> None:
    retry, counters, _ = layer("call")
    script = Script([answer(status)])
    assert (await retry(request(), script)).status == status
    assert len(script.requests) == 1
    assert counters.retries == 0


def test_rules_are_data() -> None:
    assert TRACK.retryable(507)
    assert not TRACK.retryable(501)
    assert not TRACK.retryable(505)
    assert not TRACK.retryable(404)
    # App POSTs: only statuses that prove the server did not act.
    assert APP.may_retry("POST", 503)
    assert APP.may_retry("POST", 429)
    assert not APP.may_retry("POST", 500)
    assert not APP.may_retry("POST", 502)
    assert APP.may_retry("GET", 500)
    assert TRACK.repeatable("POST")
    assert not APP.repeatable("POST")
    assert APP.repeatable("GET")


async def test_call_mode_returns_the_last_response_after_its_attempts() -> None:
    retry, _, _ = layer("call")
    script = Script([answer(503), answer(503), answer(503)])
    assert (await retry(request(), script)).status == 503
    assert len(script.requests) == FAST.direct_attempts


async def test_call_mode_reraises_the_last_transport_error() -> None:
    retry, counters, _ = layer("call")
    script = Script([ConnectError("a"), ConnectError("b"), ConnectError("c")])
    with pytest.raises(ConnectError, match="c"):
        await retry(request(), script)
    assert counters.by_cause == {"ConnectError": 2}


async def test_a_long_retry_after_is_not_slept_through_in_call_mode() -> None:
    retry, _, gate = layer("call")
    script = Script([answer(429, retry_after="3600")])
    assert (await retry(request(), script)).status == 429
    assert len(script.requests) == 1
    assert gate.paused_reason() == "rate_limited"  # every sender of the workspace waits


async def test_app_sends_are_never_repeated_once_their_outcome_is_unknown() -> None:
    retry, counters, _ = layer("call", rules=APP)
    for error in (RequestTimeoutError("t"), ConnectionLostError("reset")):
        script = Script([error])
        with pytest.raises(OutcomeUnknownError) as info:
            await retry(request("POST"), script)
        assert info.value.__cause__ is error
        assert len(script.requests) == 1
    assert counters.outcome_unknown == 2
    # Nothing was sent: retrying cannot apply it twice.
    script = Script([ConnectError("refused"), answer(200)])
    assert (await retry(request("POST"), script)).status == 200
    # A read is idempotent: retried after an unknown outcome.
    script = Script([RequestTimeoutError("t"), answer(200)])
    assert (await retry(request("GET"), script)).status == 200


async def test_deliver_mode_retries_until_the_deadline() -> None:
    policy = RetryPolicy(backoff_base=0.001, backoff_cap=0.002, max_attempts=10_000)
    retry, counters, gate = layer("deliver", policy=policy)
    clock = gate._clock
    script = Script([answer(503)] * 10_000)
    with pytest.raises(GiveUp) as info:
        await retry(request(deadline=clock() + 0.02), script)
    assert info.value.reason == "delivery_timeout"
    assert info.value.cause == "http_503"
    assert info.value.status == 503
    assert counters.retries == len(script.requests) - 1


async def test_deliver_mode_stops_at_max_attempts() -> None:
    retry, _, _ = layer("deliver")
    script = Script([answer(500)] * FAST.max_attempts)
    with pytest.raises(GiveUp) as info:
        await retry(request(deadline=None), script)
    assert info.value.reason == "retries_exhausted"
    assert len(script.requests) == FAST.max_attempts


async def test_deliver_mode_pauses_the_workspace_after_an_auth_failure() -> None:
    # Retry over the gate, as in the stack: the retry layer pauses the gate, the gate gives
    # up at once when the pause outlasts the request's deadline.
    policy = RetryPolicy(backoff_base=0.001, backoff_cap=0.002, auth_pause=30.0)
    retry, _, gate = layer("deliver", policy=policy)
    script = Script([answer(401), answer(200)])
    chain = build_chain(script, [retry, GateLayer(gate)])
    with pytest.raises(GiveUp) as info:  # the 30 s pause outlasts the 0.5 s deadline
        await chain(request(deadline=gate._clock() + 0.5))
    assert info.value.reason == "auth_failed"
    assert gate.paused_reason() == "auth_failed"
    assert len(script.requests) == 1


async def test_a_stale_keep_alive_reset_is_retried_once_at_once() -> None:
    retry, counters, _ = layer("deliver", policy=RetryPolicy(backoff_base=60, backoff_cap=60))
    script = Script([ConnectionLostError("reset"), answer(200)])
    assert (await retry(request(deadline=None), script)).status == 200
    assert counters.by_cause == {"connection_lost": 1}


async def test_an_unsafe_redirect_is_not_retried() -> None:
    retry, _, _ = layer("deliver")
    with pytest.raises(GiveUp) as info:
        await retry(request(deadline=None), Script([UnsafeRedirectError("no")]))
    assert info.value.reason == "unsafe_redirect"
    retry, _, _ = layer("call")
    with pytest.raises(UnsafeRedirectError):
        await retry(request(), Script([UnsafeRedirectError("no")]))


async def test_an_unmappable_2xx_is_retried_in_deliver_mode() -> None:
    gate = LocalGate({"default": None})
    counters = RetryCounters(FAST)
    retry = RetryLayer(
        TRACK, FAST, gate, counters, mode="deliver", accept=lambda _req, r: r.body == b"{}"
    )
    script = Script([answer(207, b'{"errors":[]}'), answer(200)])
    assert (await retry(request(deadline=None), script)).status == 200
    assert counters.by_cause == {"invalid_response": 1}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("2", 2.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("nan", None),
        ("soon", None),
        ("Thu, 01 Jan 2026 00:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 00:01:00 -0000", 60.0),  # naive: read as UTC
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),  # in the past
    ],
)
def test_every_retry_after_form(header: str | None, seconds: float | None) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    assert parse_retry_after(header, now=now) == seconds


def test_backoff_is_full_jitter_with_retry_after_as_a_capped_floor() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=30.0, max_retry_after=120.0)
    for attempt in range(1, 10):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert 0 <= backoff(policy, attempt, None, probe=False) <= ceiling
    assert 2.0 <= backoff(policy, 1, 2.0, probe=False) <= 2.0 * 1.1 + 0.5
    assert 120.0 <= backoff(policy, 1, 10_000.0, probe=False) <= 132.0  # capped
    assert 15.0 <= backoff(policy, 1, None, probe=True) <= 30.0  # budget spent: slow probes


async def test_a_bare_429_pauses_for_at_least_one_slot_of_its_bucket() -> None:
    slow = RateLimit(requests_per_second=0.1, burst=1)
    rules = APIRules(api="app", buckets=MappingProxyType({"broadcast": slow}))
    now = [100.0]
    gate = LocalGate(rules.buckets, lambda: now[0])
    retry = RetryLayer(rules, FAST, gate, RetryCounters(FAST), mode="call")
    req = request()
    req.bucket = "broadcast"
    # The gate's clock is frozen: the pause each 429 sets is read exactly.
    await retry._pause_for_429(None, req)
    assert gate._until == pytest.approx(110.0)  # one slot of 0.1/s, more than the jitter
    await retry._pause_for_429(500.0, req)
    assert gate._until == pytest.approx(100.0 + FAST.max_retry_after)


def _depleted(counters: RetryCounters) -> bool:
    return counters.depleted  # a call: mypy would narrow the property between asserts


def test_the_retry_budget_turns_retries_into_probes() -> None:
    counters = RetryCounters(RetryPolicy(budget=4.0, budget_refill=1.0))
    assert not _depleted(counters)
    for _ in range(3):
        counters.failed()
    assert _depleted(counters)
    counters.succeeded()
    counters.succeeded()
    assert not _depleted(counters)
    for _ in range(10):
        counters.succeeded()
    assert counters.budget == 4.0
