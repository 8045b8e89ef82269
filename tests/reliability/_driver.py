"""Load driver for the backpressure and soak scenarios, run in a child process.

The fake server records every request it receives, so a process hosting it grows with the
traffic; memory, RSS, file-descriptor and task figures are therefore measured here, in a
process that holds nothing but the SDK client and its producer. The parent test runs the
fake (and the fault proxy), starts ``python _driver.py '<json config>'``, and reads JSON
lines from stdout: ``{"sample": {...}}`` while running, then one ``{"result": {...}}``.

Run by hand: ``python tests/reliability/_driver.py '{"mode": "soak", "url": "http://…"}'``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import os
import sys
import tracemalloc
from typing import Any

from customerio_async import (
    BatchConfig,
    BufferFullError,
    CustomerIO,
    Receipt,
    RetryPolicy,
    Timeouts,
)


def rss_bytes() -> int:
    """Resident set size now (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """Peak resident set size of this process image (``VmHWM``; unlike ``ru_maxrss`` it does
    not carry over the forking parent's peak across ``exec``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def emit(kind: str, payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({kind: payload}) + "\n")
    sys.stdout.flush()


class Lag:
    """Event-loop heartbeat: wakes every ``interval`` s and records how late it was, in a
    histogram of 0.1 ms buckets (bounded, so a long soak does not grow because of it)."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.buckets: collections.Counter[int] = collections.Counter()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.buckets[round(max(0.0, loop.time() - due) * 10_000)] += 1

    def summary(self) -> dict[str, float]:
        total = sum(self.buckets.values())
        ordered = sorted(self.buckets.items())

        def q(p: float) -> float:
            rank, seen = min(total - 1, int(p * total)), 0
            for bucket, count in ordered:
                seen += count
                if seen > rank:
                    return bucket / 10_000
            return 0.0

        top = ordered[-1][0] / 10_000 if ordered else 0.0
        return {"lag_p50": q(0.5), "lag_p99": q(0.99), "lag_max": top, "lag_samples": total}


class Outcomes:
    """Counts terminal outcomes (from ``on_outcome``) and keeps delivered event ids."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.delivered_ids: list[str] = []

    def take_ids(self) -> list[str]:
        """The delivered ids collected since the last call (the soak streams them to the
        parent, so this process does not grow with the run)."""
        ids, self.delivered_ids = self.delivered_ids, []
        return ids

    def __call__(self, receipt: Receipt) -> None:
        outcome = receipt.outcome
        assert outcome is not None
        self.counts[f"{outcome.status}:{outcome.reason or ''}"] += 1
        if outcome.status == "delivered":
            event_id = (receipt.operation.v2 or {}).get("id")
            if event_id is None and receipt.operation.v1 is not None:
                event_id = (receipt.operation.v1.body or {}).get("id")
            if event_id is not None:
                self.delivered_ids.append(str(event_id))


def check_books(cio: CustomerIO) -> dict[str, int]:
    s = cio.statistics()
    assert s.accepted == s.delivered + s.rejected + s.dropped + s.pending, s
    assert sum(s.dropped_by_reason.values()) == s.dropped, s
    return {
        "accepted": s.accepted,
        "delivered": s.delivered,
        "rejected": s.rejected,
        "dropped": s.dropped,
        "pending": s.pending,
        "buffered_ops": s.buffered_ops,
        "buffered_bytes": s.buffered_bytes,
        "requests": s.requests,
        "retries": s.retries,
    }


# ----------------------------------------------------------------------------- backpressure


async def backpressure(cfg: dict[str, Any]) -> dict[str, Any]:
    """A producer ``rate`` ops/s for ``duration`` s against a slower server, one policy."""
    outcomes = Outcomes()
    batch = BatchConfig(
        linger=cfg["linger"],
        max_batch_ops=cfg["max_batch_ops"],
        max_concurrent_requests=cfg["lanes"],
        max_buffer_bytes=cfg["max_buffer_bytes"],
        max_buffer_ops=cfg["max_buffer_ops"],
        overflow=cfg["policy"],
        enqueue_timeout=cfg["enqueue_timeout"],
        overflow_fallback="drop_newest",
    )
    retry = RetryPolicy(backoff_base=0.01, backoff_cap=0.1, delivery_timeout=120.0)
    loop = asyncio.get_running_loop()
    lag = Lag()
    async with CustomerIO(
        cfg["site_id"],
        cfg["api_key"],
        track_url=cfg["url"],
        batch=batch,
        retry=retry,
        rate_limit=None,
        dedup=None,
        on_outcome=outcomes,
    ) as cio:
        await (await cio.track("warm-up", "warm_up")).wait(30)  # pool and code paths warm
        outcomes.counts.clear()
        outcomes.delivered_ids.clear()
        base = cio.statistics()
        tracemalloc.start()
        tracemalloc.reset_peak()
        mem_start = tracemalloc.get_traced_memory()[0]
        heartbeat = loop.create_task(lag.run())
        attempted = raised = dropped_at_call = 0
        max_buffered_bytes = max_buffered_ops = 0
        tick = 0.01
        per_tick = max(1, round(cfg["rate"] * tick))
        started = loop.time()
        while loop.time() - started < cfg["duration"]:
            tick_started = loop.time()
            for _ in range(per_tick):
                attempted += 1
                # A fresh payload string per call, as a real application makes.
                data = {"n": attempted, "pad": os.urandom(cfg["pad_bytes"] // 2).hex()}
                try:
                    receipt = await cio.track(f"person-{attempted % 101}", "bp", data)
                except BufferFullError:
                    raised += 1
                    continue
                if receipt.outcome is not None and receipt.outcome.status == "dropped":
                    dropped_at_call += 1
            s = cio.statistics()
            assert s.buffered_bytes <= cfg["max_buffer_bytes"], s
            assert s.buffered_ops <= cfg["max_buffer_ops"], s
            assert s.accepted == s.delivered + s.rejected + s.dropped + s.pending, s
            max_buffered_bytes = max(max_buffered_bytes, s.buffered_bytes)
            max_buffered_ops = max(max_buffered_ops, s.buffered_ops)
            await asyncio.sleep(max(0.0, tick_started + tick - loop.time()))
        produced_for = loop.time() - started
        mem_now, mem_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        heartbeat.cancel()
        flushed = await cio.flush(timeout=120)
        books = check_books(cio)
        stats = cio.statistics()
    return {
        "policy": cfg["policy"],
        "attempted": attempted,
        "raised": raised,
        "dropped_at_call": dropped_at_call,
        "accepted": stats.accepted - base.accepted,
        "delivered": stats.delivered - base.delivered,
        "dropped": stats.dropped - base.dropped,
        "dropped_by_reason": dict(stats.dropped_by_reason),
        "outcomes": dict(outcomes.counts),
        "delivered_ids": outcomes.delivered_ids,
        "flush_pending": flushed.pending,
        "produced_for": produced_for,
        "mem_growth_peak": mem_peak - mem_start,
        "mem_growth_end": mem_now - mem_start,
        "max_buffered_bytes": max_buffered_bytes,
        "max_buffered_ops": max_buffered_ops,
        "books": books,
        "max_rss": peak_rss(),
        **lag.summary(),
    }


# ----------------------------------------------------------------------------- retention


async def retention(cfg: dict[str, Any]) -> dict[str, Any]:
    """Per overflow policy: rounds of operations, each flushed; the memory the process
    still holds after each round (nothing should grow with the rounds)."""
    held: dict[str, list[int]] = {}
    for policy in cfg["policies"]:
        batch = BatchConfig(linger=0.005, overflow=policy)
        async with CustomerIO(
            cfg["site_id"], cfg["api_key"], track_url=cfg["url"], batch=batch, rate_limit=None
        ) as cio:
            await (await cio.track("warm-up", "warm_up")).wait(30)
            gc.collect()
            tracemalloc.start()
            start = tracemalloc.get_traced_memory()[0]
            held[policy] = []
            for _ in range(cfg["rounds"]):
                for i in range(cfg["ops"]):
                    await cio.track(f"person-{i % 50}", "round", {"i": i, "pad": "r" * 500})
                flushed = await cio.flush(timeout=60)
                assert flushed.pending == 0, flushed
                gc.collect()
                held[policy].append(tracemalloc.get_traced_memory()[0] - start)
            tracemalloc.stop()
            check_books(cio)
    return {"held": held}


# ----------------------------------------------------------------------------- soak


async def soak(cfg: dict[str, Any]) -> dict[str, Any]:
    """Steady load for ``duration`` s; a sample line every ``sample_every`` s."""
    outcomes = Outcomes()
    batch = BatchConfig(linger=cfg["linger"], max_concurrent_requests=cfg["lanes"])
    retry = RetryPolicy(backoff_base=0.05, backoff_cap=1.0, delivery_timeout=120.0)
    timeouts = Timeouts(total=10.0, connect=2.0, sock_read=cfg["sock_read"])
    loop = asyncio.get_running_loop()
    lag = Lag()
    samples = 0
    async with CustomerIO(
        cfg["site_id"],
        cfg["api_key"],
        track_url=cfg["url"],
        batch=batch,
        retry=retry,
        timeouts=timeouts,
        rate_limit=None,
        on_outcome=outcomes,
    ) as cio:
        heartbeat = loop.create_task(lag.run())
        stop = asyncio.Event()

        async def sampler() -> None:
            nonlocal samples
            while not stop.is_set():
                books = check_books(cio)  # the invariant, at every sample
                emit(
                    "sample",
                    {
                        "t": loop.time() - started,
                        "rss": rss_bytes(),
                        "fds": open_fds(),
                        "tasks": len(asyncio.all_tasks()),
                        "delivered_ids": outcomes.take_ids(),
                        **books,
                    },
                )
                samples += 1
                with contextlib.suppress(asyncio.TimeoutError):  # 3.10: not the builtin
                    await asyncio.wait_for(stop.wait(), cfg["sample_every"])

        started = loop.time()
        sampling = loop.create_task(sampler())
        tick = 0.01
        per_tick = max(1, round(cfg["rate"] * tick))
        n = 0
        while loop.time() - started < cfg["duration"]:
            tick_started = loop.time()
            for _ in range(per_tick):
                n += 1
                person = f"person-{n % 997}"
                kind = n % 20
                if kind < 14:
                    await cio.track(person, "soak", {"n": n, "pad": "s" * 200})
                elif kind < 19:
                    await cio.identify(person, n=n, plan="pro" if n % 2 else "free")
                else:
                    await cio.track_anonymous(f"anon-{n % 31}", "soak_anonymous", {"n": n})
            await asyncio.sleep(max(0.0, tick_started + tick - loop.time()))
        flushed = await cio.flush(timeout=120)
        stop.set()
        await sampling
        heartbeat.cancel()
        books = check_books(cio)
        stats = cio.statistics()
    return {
        "operations": n,
        "books": books,
        "flush_pending": flushed.pending,
        "dropped_by_reason": dict(stats.dropped_by_reason),
        "rejected_by_reason": dict(stats.rejected_by_reason),
        "retries_by_cause": dict(stats.retries_by_cause),
        "deduplicated": stats.deduplicated,
        "delivered_ids": outcomes.take_ids(),
        "samples": samples,
        "fds_after_close": open_fds(),
        "tasks_after_close": len(asyncio.all_tasks()),
        "max_rss": peak_rss(),
        **lag.summary(),
    }


def main() -> int:
    cfg = json.loads(sys.argv[1])
    mode = {"backpressure": backpressure, "retention": retention, "soak": soak}[cfg["mode"]]
    emit("result", asyncio.run(mode(cfg)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
