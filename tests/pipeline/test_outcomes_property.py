"""Property test of the send pipeline's central promise: exactly one outcome, always.

Hypothesis drives random operation mixes (identifies, events, merges touching two people,
anonymous events and segment membership that travel as v1 requests, events too large for v2),
random faults played by the fake server (unusual 5xx, 207 partial errors, resets before and
after the body, slow answers, malformed redirects) and exceptions raised inside the HTTP
chain (a middleware that fails: an internal error), then closes the client with a random
deadline. When ``aclose`` returns:

* every receipt has its outcome, and the outcome callback ran exactly once per receipt;
* ``accepted == delivered + rejected + dropped`` and nothing is pending;
* per person, operations were applied in admission order (a re-send after an unknown
  outcome may repeat, never reorder);
* ``aclose`` returned within its deadline plus 100 ms (plus slack for a loaded machine,
  documented below).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customerio_async import (
    BatchConfig,
    CustomerIO,
    HTTPRequest,
    HTTPResponse,
    Receipt,
    RetryPolicy,
)
from customerio_async._http.messages import HTTPHandler
from customerio_async.testing import FakeCustomerIO, Fault

PEOPLE = ["ann", "bob", "cid", "dee"]
FAULTS: dict[str, Fault] = {
    "207": Fault(action="reject_indexes", indexes=(0, 2), match="/api/v2/batch"),
    "408": Fault(status=408),
    "429": Fault(status=429, headers={"Retry-After": "0"}),
    "500": Fault(status=500),
    "501": Fault(status=501),  # final: rejected, never retried
    "507": Fault(status=507),
    "520": Fault(status=520),
    "599": Fault(status=599),
    "400-batch": Fault(status=400, match="/api/v2/batch"),  # split to isolate the culprit
    "413": Fault(status=413, match="/api/v2/batch"),
    "reset": Fault(action="reset_before_body"),
    "applied-then-reset": Fault(action="reset_after_body"),
    "slow": Fault(delay=0.2),
    "bad-redirect": Fault(status=302, headers={"Location": "http://[::1"}),
}
# Slack on the close deadline for a loaded 2-core machine (scheduling, the fake server and
# the client share it); the bound is deadline + 100 ms on a quiet one.
CLOSE_SLACK = 0.25

operation = st.tuples(
    st.sampled_from(["identify", "event", "big-event", "merge", "anonymous", "segment"]),
    st.sampled_from(PEOPLE),
    st.sampled_from(PEOPLE),
)


class Boom:
    """HTTP middleware raising an unexpected exception on scripted attempts."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.seen = 0

    async def __call__(self, request: HTTPRequest, handler: HTTPHandler) -> HTTPResponse:
        self.seen += 1
        if self.every and self.seen % self.every == 0:
            raise RuntimeError("an internal failure inside the HTTP chain")
        return await handler(request)


async def admit(cio: CustomerIO, kind: str, who: str, other: str, version: int) -> Receipt:
    if kind == "identify":
        return await cio.identify(who, version=version)
    if kind == "event":
        return await cio.track(who, "e", {"version": version})
    if kind == "big-event":  # over v2's 32,000 bytes: a v1 request, in order
        return await cio.track(who, "big", {"version": version, "pad": "x" * 40_000})
    if kind == "merge":
        return await cio.merge_customers("id", who, "id", other)
    if kind == "anonymous":
        return await cio.track_anonymous(f"anon-{who}", "visit", {"version": version})
    return await cio.add_to_segment(7, [who, other])


async def scenario(
    ops: list[tuple[str, str, str]], script: list[str], boom: int, deadline: float
) -> None:
    calls: collections.Counter[int] = collections.Counter()
    retry = RetryPolicy(backoff_base=0.001, backoff_cap=0.02, delivery_timeout=5.0, max_attempts=20)
    async with FakeCustomerIO() as fake:
        for name in script:
            fake.add_fault(FAULTS[name])
        cio = CustomerIO(
            "fake-site",
            "fake-key",
            track_url=fake.url,
            batch=BatchConfig(linger=0.005, max_batch_ops=5, max_concurrent_requests=3),
            retry=retry,
            rate_limit=None,
            dedup=None,
            http_middleware=[Boom(boom)],
            on_outcome=lambda r: calls.update([id(r)]),
        )
        await cio.open()
        receipts = [await admit(cio, *op, version) for version, op in enumerate(ops)]
        started = time.monotonic()
        await cio.aclose(timeout=deadline)
        took = time.monotonic() - started
        stats = cio.statistics()
        applied = list(fake.operations)

    assert took <= deadline + 0.1 + CLOSE_SLACK, (took, deadline)
    # Exactly one outcome per operation, and one callback per receipt.
    assert all(r.outcome is not None for r in receipts)
    assert sorted(calls.values()) == [1] * len(receipts)
    assert set(calls) == {id(r) for r in receipts}
    assert stats.pending == 0
    assert stats.accepted == len(ops) == stats.delivered + stats.rejected + stats.dropped
    # Per-person order of what the server applied (identifies and events carry a version).
    for person in PEOPLE:
        versions = [
            v for op in applied if op.identifiers == {"id": person} and (v := _version(op.body))
        ]
        firsts: list[int] = []
        for v in versions:
            if v not in firsts:
                firsts.append(v)
        assert firsts == sorted(firsts), (person, versions)


def _version(body: dict[str, Any]) -> int | None:
    for key in ("attributes", "data"):
        value = (body.get(key) or {}).get("version")
        if isinstance(value, int):
            return value + 1  # never 0, so the walrus filter above keeps it
    return None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(operation, min_size=1, max_size=30),
    script=st.lists(st.sampled_from(sorted(FAULTS)), max_size=8),
    boom=st.sampled_from([0, 0, 3, 7]),
    deadline=st.sampled_from([0.0, 0.05, 0.3, 3.0]),
)
def test_every_operation_gets_exactly_one_outcome(
    ops: list[tuple[str, str, str]], script: list[str], boom: int, deadline: float
) -> None:
    asyncio.run(scenario(ops, script, boom, deadline))
