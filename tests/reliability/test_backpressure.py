"""Scenario 7: backpressure — a producer 10× faster than the server, under each overflow
policy.

The client runs in a child process (``_driver.py``) so that tracemalloc and RSS measure the
SDK alone: the fake server, which records every request, lives in this process. Claims
proven, per policy:

* memory stays bounded: the buffer never holds more than ``max_buffer_bytes`` (checked
  every 10 ms), and the traced-memory peak of the whole client process while producing
  stays within ``MEMORY_FACTOR × max_buffer_bytes + MEMORY_FIXED``;
* the drop counters are exact: every call is accounted as admitted, refused
  (``BufferFullError``) or dropped (``buffer_full``), the SDK's counters match what the
  producer saw, and the server received exactly the operations reported delivered;
* the event loop stays responsive: heartbeat lag p99 below ``LAG_P99``.
"""

from __future__ import annotations

import pytest

from customerio_async.testing import FakeCustomerIO

from ._harness import API_KEY, SITE_ID, record_figures, run_driver

SERVER_LATENCY = 0.05  # seconds per request
BATCH_OPS = 10
LANES = 2
SERVER_RATE = LANES * BATCH_OPS / SERVER_LATENCY  # 400 operations/s at most
PRODUCER_RATE = 10 * SERVER_RATE
DURATION = 1.0
MAX_BUFFER_BYTES = 256 * 1024
PAD_BYTES = 1000  # each operation serialises to ~1.1 KB
# What the process may hold beyond the budget: per buffered operation its Receipt and
# Operation (measured ~1.4× the serialised bytes in all), plus a fixed part for in-flight
# request bodies, aiohttp's buffers and the producer's own garbage. (Before orjson's
# output buffers were right-sized, the same run peaked at ~16× the budget.)
MEMORY_FACTOR = 3.0
MEMORY_FIXED = 768 * 1024
LAG_P99 = 0.05  # seconds; measured: a few ms (see the figures at the end of a run)


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("needs_proc")
@pytest.mark.parametrize("policy", ["block", "drop_newest", "drop_oldest", "raise"])
async def test_a_fast_producer_against_a_slow_server(policy: str) -> None:
    async with FakeCustomerIO(latency=SERVER_LATENCY) as fake:
        result = await run_driver(
            {
                "mode": "backpressure",
                "url": fake.url,
                "site_id": SITE_ID,
                "api_key": API_KEY,
                "policy": policy,
                "rate": PRODUCER_RATE,
                "duration": DURATION,
                "linger": 0.01,
                "max_batch_ops": BATCH_OPS,
                "lanes": LANES,
                "max_buffer_bytes": MAX_BUFFER_BYTES,
                "max_buffer_ops": 100_000,
                "enqueue_timeout": 0.05,
                "pad_bytes": PAD_BYTES,
            },
            timeout=90,
        )
        applied = fake.event_ids()
    attempted = result["attempted"]
    accepted = result["accepted"]
    delivered = result["delivered"]
    dropped = result["dropped"]
    raised = result["raised"]
    outcomes = result["outcomes"]

    # The books: every call is admitted or refused; every admitted op ends exactly once.
    assert result["flush_pending"] == 0
    assert result["books"]["pending"] == 0
    assert attempted == accepted + raised
    assert accepted == delivered + dropped
    assert outcomes.get("delivered:", 0) == delivered
    assert outcomes.get("dropped:buffer_full", 0) == dropped
    assert sum(outcomes.values()) == accepted
    assert set(result["dropped_by_reason"]) <= {"buffer_full"}
    # The server holds exactly the operations reported delivered, each once.
    assert len(applied) == len(set(applied))
    assert set(applied) - set(result["delivered_ids"]) == {applied[0]}  # the warm-up event
    assert len(result["delivered_ids"]) == len(set(result["delivered_ids"])) == delivered

    if policy == "raise":
        assert raised > 0
        assert dropped == 0
    elif policy == "drop_newest":
        assert raised == 0
        assert dropped == result["dropped_at_call"] > 0  # refused at the call, not later
    elif policy == "drop_oldest":
        assert raised == 0
        assert result["dropped_at_call"] == 0  # the newest always gets in...
        assert dropped > 0  # ...by evicting queued operations
    else:  # block: the producer is slowed to the server's pace; the fallback drops the rest
        assert raised == 0
        assert dropped == result["dropped_at_call"]
    if policy != "block":
        # The scenario's premise: the producer out-ran the server several times over (10×
        # by configuration; the check leaves room for a busy CI machine).
        assert attempted >= 4 * delivered
        assert delivered <= 1.2 * SERVER_RATE * (DURATION + 1)

    # Memory: the budget is a hard bound on buffered bytes, and the process follows it.
    assert result["max_buffered_bytes"] <= MAX_BUFFER_BYTES
    assert result["mem_growth_peak"] <= MEMORY_FACTOR * MAX_BUFFER_BYTES + MEMORY_FIXED
    assert result["lag_p99"] < LAG_P99
    record_figures(
        f"backpressure[{policy}]",
        attempted=attempted,
        accepted=accepted,
        delivered=delivered,
        dropped=dropped,
        refused_by_raise=raised,
        producer_over_server=round(attempted / max(1, delivered), 1),
        max_buffered_kib=round(result["max_buffered_bytes"] / 1024, 1),
        traced_peak_kib=round(result["mem_growth_peak"] / 1024, 1),
        peak_over_budget=round(result["mem_growth_peak"] / MAX_BUFFER_BYTES, 2),
        max_rss_mib=round(result["max_rss"] / 2**20, 1),
        lag_p99_ms=round(1000 * result["lag_p99"], 2),
        lag_max_ms=round(1000 * result["lag_max"], 2),
    )


@pytest.mark.usefixtures("needs_proc")
async def test_delivered_operations_leave_nothing_behind() -> None:
    """Rounds of 3,000 operations, each flushed, under every policy: the memory the client
    process holds afterwards must not grow with the rounds (a receipt, bytes or operation
    kept after its outcome would show up as ~1 MB per round)."""
    policies = ["block", "drop_newest", "drop_oldest", "raise"]
    async with FakeCustomerIO() as fake:
        result = await run_driver(
            {
                "mode": "retention",
                "url": fake.url,
                "site_id": SITE_ID,
                "api_key": API_KEY,
                "policies": policies,
                "rounds": 3,
                "ops": 3000,
            },
            timeout=90,
        )
    for policy in policies:
        held = result["held"][policy]
        growth = held[-1] - held[0]
        assert growth < 100_000, (policy, held)
        record_figures(
            f"retention[{policy}]", held_after_rounds_kib=[round(h / 1024) for h in held]
        )
