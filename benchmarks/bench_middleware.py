"""Per-operation CPU cost of each default middleware layer.

Each layer is timed in isolation, the way the client runs it per operation, with the
operation already built (validation and serialisation are not middleware):

* **dedup**, for what it acts on (identify: fingerprint + LRU/TTL lookup and insert) and for
  what it skips (events with generated ids: only the ``wants()`` check, since the client
  bypasses the layer for them);
* **one user operation layer** (a no-op ``async def mw(op, call_next)``): the cost of one more
  coroutine hop in the chain;
* **metrics**: one fixed-bucket histogram observation per outcome plus one counter increment
  at admission (Prometheus families are only built at scrape time);
* **HTTP layers** run once per *request* (a batch of up to 2,000 operations), so their
  per-operation share is reported divided by the batch size.

Run: ``python benchmarks/bench_middleware.py [--n N] [--reps R]``; results go to
``benchmarks/results/middleware.md``. Target: the whole default chain adds ≤ 1.5 µs per op.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from customerio_async import DedupConfig, Operation, Outcome, Receipt
from customerio_async._common.histogram import Histogram
from customerio_async._config import RetryPolicy
from customerio_async._http.accounting import AccountingLayer
from customerio_async._http.chain import build_chain
from customerio_async._http.gate import GateLayer, LocalGate
from customerio_async._http.messages import HTTPRequest, HTTPResponse
from customerio_async._http.retry import RetryCounters, RetryLayer
from customerio_async._http.rules import APIRules
from customerio_async._track import calls as ops
from customerio_async._track.admission import AdmissionChain
from customerio_async._track.dedup import Deduplicator

RESULTS = Path(__file__).parent / "results"
RECEIPT: Receipt | None = None


async def terminal(op: Operation) -> Receipt:
    assert RECEIPT is not None
    return RECEIPT


async def noop(op: Operation, call_next: Callable[[Operation], Awaitable[Receipt]]) -> Receipt:
    return await call_next(op)


async def per_call(
    handler: Callable[[Operation], Awaitable[Receipt]], items: list[Operation]
) -> float:
    """CPU µs per awaited handler call over ``items``."""
    start = time.process_time()
    for op in items:
        await handler(op)
    return (time.process_time() - start) / len(items) * 1e6


async def measure(n: int, reps: int) -> dict[str, list[float]]:
    global RECEIPT
    people = [f"user-{i % 5000}" for i in range(n)]
    identifies = [ops.identify(p, {"plan": "pro", "seats": i}) for i, p in enumerate(people)]
    events = [ops.event(p, "purchased", {"amount": i}) for i, p in enumerate(people)]
    RECEIPT = Receipt(events[0], outcome=Outcome("delivered"))
    samples: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    for _ in range(reps):
        dedup = Deduplicator(DedupConfig())
        bare = terminal
        with_dedup = build_chain(terminal, [dedup])
        one_user = build_chain(terminal, [noop])

        skip_check = AdmissionChain(terminal, [dedup]).call  # asks wants(), skips dedup

        base_i = await per_call(bare, identifies)
        base_e = await per_call(bare, events)
        add("dedup: identify (acts)", await per_call(with_dedup, identifies) - base_i)
        add("dedup: event, generated id (skipped)", await per_call(skip_check, events) - base_e)
        add("one no-op user layer", await per_call(one_user, events) - base_e)
    hist = Histogram()
    m = 100_000
    start = time.process_time()
    for _ in range(m):  # outcomes are recorded once per batch (here 2,000 operations)
        hist.observe(0.0123, 2000)
    add(
        "metrics: outcome histogram, per op (per batch ÷ 2,000 ops)",
        (time.process_time() - start) / m * 1e6 / 2000,
    )
    add("HTTP layers per op (per request ÷ 2,000 ops)", await http_layers_cost() / 2000)
    return samples


async def http_layers_cost() -> float:
    """µs per request through retry → gate → accounting around a no-op transport."""
    policy = RetryPolicy()
    gate = LocalGate({"default": None})
    response = HTTPResponse(200, {}, b"{}")

    async def transport(request: HTTPRequest) -> HTTPResponse:
        return response

    retry = RetryLayer(APIRules(api="track"), policy, gate, RetryCounters(policy), mode="deliver")
    chain = build_chain(transport, [retry, GateLayer(gate), AccountingLayer()])
    n = 100_000
    start = time.process_time()
    for _ in range(n):
        await chain(HTTPRequest("POST", "/api/v2/batch", b"{}", "/api/v2/batch"))
    with_layers = (time.process_time() - start) / n * 1e6
    start = time.process_time()
    for _ in range(n):
        await transport(HTTPRequest("POST", "/api/v2/batch", b"{}", "/api/v2/batch"))
    return with_layers - (time.process_time() - start) / n * 1e6


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    samples = await measure(args.n, args.reps)
    default_chain = [
        "metrics: outcome histogram, per op (per batch ÷ 2,000 ops)",
        "HTTP layers per op (per request ÷ 2,000 ops)",
    ]
    lines = [
        "# Middleware cost per operation",
        "",
        f"{dt.date.today()} · Python {platform.python_version()} · {_cpu()} · "
        f"{args.n:,} operations × {args.reps} reps, pinned to one core",
        f"Command: `python benchmarks/bench_middleware.py --n {args.n} --reps {args.reps}`",
        "",
        "| layer | µs/op median | min–max |",
        "|---|---:|---:|",
    ]
    medians = {}
    for name, values in samples.items():
        medians[name] = statistics.median(values)
        lines.append(f"| {name} | {medians[name]:.3f} | {min(values):.3f}–{max(values):.3f} |")
    worst_dedup = max(
        medians["dedup: identify (acts)"], medians["dedup: event, generated id (skipped)"]
    )
    total = worst_dedup + sum(medians[k] for k in default_chain)
    lines += [
        "",
        f"Whole default chain, worst case (an identify: dedup acts, metrics, HTTP share): "
        f"**{total:.2f} µs per operation** (target ≤ 1.5 µs). A disabled layer is not in the "
        "chain and costs nothing; each user layer adds one coroutine hop.",
    ]
    report = "\n".join(lines)
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "middleware.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
