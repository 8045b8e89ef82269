"""Pipeline benchmark: customerio-async against a minimal "limit" client, process-isolated.

The server (``benchmarks/server.py``) runs as its own process pinned to CPU 1. Every client
row runs in a fresh subprocess pinned to CPU 0 and sends N operations of one realistic
event::

    track(f"user-{i % 5000}", "purchased", {"amount": i, "currency": "EUR", "sku": "sku-123"})

Rows:

* ``limit``: the floor for a Python client. Per op it builds the v2 dict (with a
  monotonic ULID ``id``), ``orjson.dumps`` it and appends the bytes to the open body; a body
  closes before it would pass ~450 KB and is POSTed as ``{"batch":[...]}`` over one
  keep-alive aiohttp session with at most 4 requests in flight (no validation, no retries).
* ``default``: ``CustomerIO(site, key, track_url=url)``: the default configuration.
* ``tuned``: ``rate_limit=None`` and ``BatchConfig(max_batch_ops=5000)``.
* ``direct``: ``batching=False`` (one request per operation, the official SDK's v1 request),
  16 concurrent tasks, N capped at 5,000, ``rate_limit=None`` (the default 100 req/s would
  make this row measure the limiter's sleep, not CPU).

Measured in the client, around the send phase only (the client is created and its session
opened before, closed after; interpreter start and imports are excluded): wall time, CPU
(``getrusage(RUSAGE_SELF)`` user+sys), peak RSS (``ru_maxrss``), and the admission latency of
``await track(...)`` (``perf_counter_ns`` around the call, every ``--sample-every``-th op,
default every 10th, into a preallocated array). The send phase ends when everything is
delivered (``flush()`` for the pipeline). The server's count of applied operations is
compared with N: a row that loses operations is marked FAILING.

Repetitions are interleaved (limit, default, tuned, direct, limit, …) and each metric is
reported as the median with the min–max range. The markdown table is printed and written to
``benchmarks/results/pipeline.md`` (raw numbers to ``pipeline.json``).

``--profile`` adds cProfile runs of the selected rows (send phase only) and writes
``benchmarks/results/profile-<row>.pstats`` and ``.txt``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import datetime as dt
import gc
import io
import json
import os
import platform
import random
import resource
import select
import shlex
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ROWS", "main"]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SERVER = HERE / "server.py"

SITE_ID = "bench-site"
API_KEY = "bench-key"
USERS = 5000
DIRECT_CAP = 5000
DIRECT_TASKS = 16
LIMIT_BODY_BYTES = 450_000
LIMIT_IN_FLIGHT = 4
CLIENT_CPU = 0
SERVER_CPU = 1

Send = Callable[[str, str, dict[str, Any]], Awaitable[object]]


@dataclass(frozen=True)
class Row:
    """One client configuration of the table."""

    key: str
    label: str
    config: str


ROWS: dict[str, Row] = {
    row.key: row
    for row in (
        Row(
            "limit",
            "limit client",
            "orjson, 1 aiohttp session, 4 in flight, ≤450 KB bodies, no validation/retries",
        ),
        Row("default", "customerio-async default", "CustomerIO(site, key, track_url=url)"),
        Row(
            "tuned",
            "customerio-async tuned",
            "rate_limit=None, BatchConfig(max_batch_ops=5000)",
        ),
        Row(
            "direct",
            "customerio-async direct",
            f"batching=False, rate_limit=None, {DIRECT_TASKS} tasks, N ≤ {DIRECT_CAP:,}",
        ),
    )
}


# ============================================================================ client side


def _pin(cpu: int) -> str:
    setaffinity = getattr(os, "sched_setaffinity", None)
    getaffinity = getattr(os, "sched_getaffinity", None)
    if setaffinity is None or getaffinity is None:
        return "unpinned"
    if cpu not in getaffinity(0):
        return "unpinned"
    setaffinity(0, {cpu})
    return f"cpu{cpu}"


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class MonotonicUlid:
    """ULIDs in the spec's monotonic mode, as cheaply as Python allows.

    The 10-character millisecond prefix is re-encoded only when the millisecond changes;
    the 16-character tail is a random 63-bit start incremented per id, written as 16 hex
    digits (hex digits are a subset of Crockford base32, so the id is a valid ULID).
    """

    def __init__(self) -> None:
        self._ms = -1
        self._prefix = ""
        self._counter = random.getrandbits(63)

    def __call__(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            self._ms = ms
            self._prefix = "".join(_CROCKFORD[(ms >> s) & 31] for s in range(45, -1, -5))
        self._counter += 1
        return f"{self._prefix}{self._counter:016X}"


class LimitClient:
    """The minimal batching client the issue calls the floor (see the module docstring)."""

    def __init__(self, url: str, authorization: str) -> None:
        self._url = url + "/api/v2/batch"
        self._headers = {"Authorization": authorization, "Content-Type": "application/json"}
        self._session: Any = None
        self._parts: list[bytes] = []
        self._size = 11  # len('{"batch":[') + len("]}") - 1: the first part has no comma
        self._sem = asyncio.Semaphore(LIMIT_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = MonotonicUlid()
        self.delivered = 0
        self.failed = 0
        self.requests = 0
        self.batches = 0

    async def open(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=LIMIT_IN_FLIGHT)
        self._session = aiohttp.ClientSession(connector=connector)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def track(self, person_id: str, name: str, data: dict[str, Any]) -> None:
        op = {
            "type": "person",
            "action": "event",
            "identifiers": {"id": person_id},
            "name": name,
            "id": self._ids(),
            "attributes": data,
        }
        part = orjson.dumps(op)
        size = self._size + 1 + len(part)
        if size > LIMIT_BODY_BYTES and self._parts:
            await self._ship()
            size = self._size + 1 + len(part)
        self._parts.append(part)
        self._size = size

    async def _ship(self) -> None:
        parts, self._parts = self._parts, []
        self._size = 11
        body = b'{"batch":[' + b",".join(parts) + b"]}"
        await self._sem.acquire()
        task = asyncio.ensure_future(self._post(body, len(parts)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, body: bytes, count: int) -> None:
        try:
            self.requests += 1
            self.batches += 1
            async with self._session.post(self._url, data=body, headers=self._headers) as resp:
                await resp.read()
                if resp.status == 200:
                    self.delivered += count
                else:
                    self.failed += count
        except Exception:
            self.failed += count
        finally:
            self._sem.release()

    async def flush(self) -> None:
        if self._parts:
            await self._ship()
        while self._tasks:
            await asyncio.gather(*list(self._tasks))


async def _drive(send: Send, n: int, every: int, lat: array.array[int]) -> int:
    """Send ``n`` events; time every ``every``-th admission into ``lat``."""
    perf = time.perf_counter_ns
    samples = 0
    for i in range(n):
        person = f"user-{i % USERS}"
        data = {"amount": i, "currency": "EUR", "sku": "sku-123"}
        if i % every:
            await send(person, "purchased", data)
        else:
            t = perf()
            await send(person, "purchased", data)
            lat[samples] = perf() - t
            samples += 1
    return samples


async def _drive_concurrent(
    send: Send, n: int, every: int, lat: array.array[int], tasks: int
) -> int:
    """Like :func:`_drive` with ``tasks`` concurrent senders sharing one counter."""
    perf = time.perf_counter_ns
    state = {"next": 0, "samples": 0}

    async def worker() -> None:
        while True:
            i = state["next"]
            if i >= n:
                return
            state["next"] = i + 1
            person = f"user-{i % USERS}"
            data = {"amount": i, "currency": "EUR", "sku": "sku-123"}
            if i % every:
                await send(person, "purchased", data)
            else:
                t = perf()
                await send(person, "purchased", data)
                lat[state["samples"]] = perf() - t
                state["samples"] += 1

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return state["samples"]


class GcTimer:
    """Time the cyclic garbage collector through ``gc.callbacks`` (cost: per collection)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.longest = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        took = time.perf_counter() - self._start
        self.total += took
        self.longest = max(self.longest, took)
        self.collections[info["generation"]] += 1


def _usage() -> tuple[float, int]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss


async def _client(args: argparse.Namespace) -> dict[str, Any]:
    """Run one row in this (client) process and return its measurements."""
    import base64

    row = args.client
    n = args.ops
    every = max(1, args.sample_every)
    lat = array.array("q", bytes(8 * (n // every + 1)))
    auth = "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode("ascii")
    out: dict[str, Any] = {"row": row, "ops": n, "sample_every": every}
    profiler: Any = None
    if args.profile_out:
        import cProfile

        profiler = cProfile.Profile()

    async def measured(send: Send, finish: Callable[[], Awaitable[object]]) -> None:
        gc.collect()
        cpu0, rss0 = _usage()
        out["rss_before_kb"] = rss0
        gc_timer = GcTimer()
        gc.callbacks.append(gc_timer)
        if profiler is not None:
            profiler.enable()
        t0 = time.perf_counter()
        if row == "direct":
            samples = await _drive_concurrent(send, n, every, lat, DIRECT_TASKS)
        else:
            samples = await _drive(send, n, every, lat)
        t_admitted = time.perf_counter()
        await finish()
        t1 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        gc.callbacks.remove(gc_timer)
        cpu1, rss1 = _usage()
        out.update(
            gc_s=gc_timer.total,
            gc_max_ms=gc_timer.longest * 1000,
            gc_collections=gc_timer.collections,
            wall_s=t1 - t0,
            admit_s=t_admitted - t0,
            cpu_s=cpu1 - cpu0,
            rss_peak_kb=rss1,
            samples=samples,
        )

    if row == "limit":
        limit = LimitClient(args.url, auth)
        await limit.open()
        try:
            await measured(limit.track, limit.flush)
        finally:
            await limit.aclose()
        out.update(
            delivered=limit.delivered,
            failed=limit.failed,
            requests=limit.requests,
            batches=limit.batches,
        )
    else:
        import customerio_async
        from customerio_async import BatchConfig, CustomerIO

        out["sdk_path"] = str(Path(customerio_async.__file__).parent)
        kwargs: dict[str, Any] = {"track_url": args.url}
        if row == "tuned":
            kwargs.update(rate_limit=None, batch=BatchConfig(max_batch_ops=5000))
        elif row == "direct":
            kwargs.update(batching=False, rate_limit=None)
        elif row != "default":
            raise SystemExit(f"unknown row {row!r}")
        direct_ok = 0

        async with CustomerIO(SITE_ID, API_KEY, **kwargs) as cio:
            track = cio.track

            async def send(person: str, name: str, data: dict[str, Any]) -> object:
                nonlocal direct_ok
                receipt = await track(person, name, data)
                direct_ok += 1
                return receipt

            async def finish() -> None:
                if row != "direct":
                    await cio.flush(timeout=args.flush_timeout)

            # The direct row counts successful calls (a failed one raises); batched rows
            # are counted by the pipeline, and call track directly.
            await measured(send if row == "direct" else track, finish)
            st = cio.statistics()
        out.update(
            delivered=direct_ok if row == "direct" else st.delivered,
            failed=(n - direct_ok) if row == "direct" else st.rejected + st.dropped,
            requests=st.requests,
            batches=st.batches,
            retries=st.retries,
            dropped_by_reason=dict(st.dropped_by_reason),
        )
    got = sorted(lat[: out["samples"]])
    if got:
        out["p50_us"] = got[len(got) // 2] / 1000
        out["p99_us"] = got[min(len(got) - 1, int(len(got) * 0.99))] / 1000
        out["max_us"] = got[-1] / 1000
    out["cpu_us_per_op"] = out["cpu_s"] / n * 1e6
    if profiler is not None:
        profiler.dump_stats(args.profile_out)
    return out


def client_main(args: argparse.Namespace) -> int:
    """Entry point of a client subprocess: pin, run the row, print one JSON line."""
    affinity = _pin(CLIENT_CPU)
    result = asyncio.run(asyncio.wait_for(_client(args), args.timeout))
    result["affinity"] = affinity
    print(json.dumps(result), flush=True)
    return 0


# ============================================================================ parent side


class Server:
    """The benchmark server subprocess (``server.py``)."""

    def __init__(
        self,
        impl: str,
        validate: bool,
        env: dict[str, str],
        startup_timeout: float = 20.0,
        extra: Sequence[str] = (),
    ) -> None:
        cmd = [sys.executable, str(SERVER), "--port", "0", "--site-id", SITE_ID]
        cmd += ["--api-key", API_KEY, "--impl", impl, "--cpu", str(SERVER_CPU), *extra]
        if validate:
            cmd.append("--validate")
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], startup_timeout)
        line = self._proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("the benchmark server did not start")
        banner = json.loads(line)
        self.banner: dict[str, Any] = banner
        self.url: str = banner["url"]
        self.tls_url: str | None = banner.get("tls_url")
        self.control_url: str = banner["control_url"]
        self.impl: str = banner["impl"]
        self.affinity: str = banner["affinity"]

    def _call(self, method: str, path: str) -> dict[str, Any]:
        # The control URL is the http://127.0.0.1 origin the server printed.
        req = urllib.request.Request(self.control_url + path, method=method)  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            result: dict[str, Any] = json.loads(resp.read() or b"{}")
            return result

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_stats")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)


def _run_client(
    row: str,
    ops: int,
    server: Server,
    args: argparse.Namespace,
    env: dict[str, str],
    profile: Path | None = None,
) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--client", row, "--url", server.url]
    cmd += ["--ops", str(ops), "--sample-every", str(args.sample_every)]
    cmd += ["--timeout", str(args.timeout), "--flush-timeout", str(args.flush_timeout)]
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    server.reset()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.timeout + 15, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return {"row": row, "ops": ops, "error": f"timed out after {args.timeout + 15:.0f} s"}
    # Let in-flight responses land before reading the server's counters.
    time.sleep(0.05)
    stats = server.stats()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        # The exception line of the traceback, kept table-safe.
        tail = [ln.strip() for ln in proc.stderr.strip().splitlines() if ln.strip()]
        error = (tail[-1] if tail else f"exit {proc.returncode}").replace("|", "/")
        return {"row": row, "ops": ops, "error": error}
    result: dict[str, Any] = json.loads(lines[-1])
    expected = env.get("CIO_BENCH_SDK")
    if expected and not result.get("sdk_path", expected).startswith(expected):
        return {"row": row, "ops": ops, "error": f"measured {result['sdk_path']}, not the snapshot"}
    result["server"] = stats
    result["server_ops"] = stats["ops"]
    result["duplicates"] = stats["duplicates"]
    result["ops_per_s"] = stats["ops"] / result["wall_s"] if result["wall_s"] else 0.0
    result["server_cpu_us_per_op"] = stats["cpu_s"] / max(1, stats["ops"]) * 1e6
    result["gc_pct"] = 100 * result["gc_s"] / result["cpu_s"] if result["cpu_s"] else 0.0
    result["ok"] = stats["ops"] == ops and result["delivered"] == ops
    return result


def _fmt_range(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def _collect(results: list[dict[str, Any]], row: str, key: str, scale: float = 1.0) -> list[float]:
    return [r[key] * scale for r in results if r["row"] == row and key in r and "error" not in r]


def _paired_ratios(results: list[dict[str, Any]], row: str) -> list[float]:
    """CPU/op of ``row`` over the limit client's, paired by repetition."""
    ratios = []
    for rep in sorted({r["rep"] for r in results}):
        mine = [r for r in results if r["rep"] == rep and r["row"] == row and "error" not in r]
        base = [r for r in results if r["rep"] == rep and r["row"] == "limit" and "error" not in r]
        if mine and base and base[0]["cpu_us_per_op"] > 0:
            ratios.append(mine[0]["cpu_us_per_op"] / base[0]["cpu_us_per_op"])
    return ratios


def render(results: list[dict[str, Any]], meta: dict[str, Any], rows: Sequence[str]) -> str:
    """The markdown report."""
    lines = [
        "# Pipeline benchmark",
        "",
        f"- Date: {meta['date']}",
        f"- Python: {meta['python']}; aiohttp {meta['aiohttp']}; orjson {meta['orjson']}; "
        f"customerio-async {meta['sdk']} at {meta['revision']}",
        f"- CPU: {meta['cpu']} ({meta['cpus']} CPUs online); client pinned to "
        f"{meta['client_affinity']}, server to {meta['server_affinity']}; load average "
        f"{meta['load_start']} at start, {meta['load_end']} at end (other processes share "
        "these CPUs)",
        f"- Server: {meta['server']}",
        f"- Command: `{meta['command']}`",
        f'- Workload: N = {meta["ops"]:,} `track(f"user-{{i % 5000}}", "purchased", '
        f'{{"amount": i, "currency": "EUR", "sku": "sku-123"}})` per batched row; '
        f"direct row N = {meta['direct_ops']:,} with {DIRECT_TASKS} tasks; "
        f"{meta['reps']} interleaved repetitions, median (min–max)",
        f"- Admission latency: `await track()` timed on every {meta['sample_every']}th op "
        "(perf_counter_ns into a preallocated array); CPU = getrusage user+sys around the "
        "send phase (admission + delivery/flush)",
        "",
        "| Row | Config | ops | wall s | ops/s delivered | client CPU µs/op | × limit "
        "| admission p50 µs | p99 µs | max ms | GC % of CPU | GC max pause ms | peak RSS MiB "
        "| delivered/sent | server CPU µs/op | status |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|",
    ]
    for key in rows:
        row = ROWS[key]
        mine = [r for r in results if r["row"] == key]
        ok_runs = [r for r in mine if "error" not in r]
        errors = [r["error"] for r in mine if "error" in r]
        ops = mine[0]["ops"] if mine else 0
        ratio = "1.00" if key == "limit" else _fmt_range(_paired_ratios(results, key), ".2f")
        counts = sorted({r["server_ops"] for r in ok_runs})
        delivered = "/".join(f"{c:,}" for c in counts) if counts else "–"
        failing = errors or any(not r["ok"] for r in ok_runs)
        dups = sum(r["duplicates"] for r in ok_runs)
        status = "FAILING" if failing else "ok"
        if dups:
            status += f" ({dups} duplicates)"
        if errors:
            status += f": {errors[0][:80]}"
        lines.append(
            f"| {row.label} | {row.config} | {ops:,} "
            f"| {_fmt_range(_collect(results, key, 'wall_s'), '.2f')} "
            f"| {_fmt_range(_collect(results, key, 'ops_per_s'), ',.0f')} "
            f"| {_fmt_range(_collect(results, key, 'cpu_us_per_op'), '.2f')} "
            f"| {ratio} "
            f"| {_fmt_range(_collect(results, key, 'p50_us'), '.1f')} "
            f"| {_fmt_range(_collect(results, key, 'p99_us'), '.1f')} "
            f"| {_fmt_range(_collect(results, key, 'max_us', 1e-3), '.1f')} "
            f"| {_fmt_range(_collect(results, key, 'gc_pct'), '.0f')} "
            f"| {_fmt_range(_collect(results, key, 'gc_max_ms'), '.1f')} "
            f"| {_fmt_range(_collect(results, key, 'rss_peak_kb', 1 / 1024), '.0f')} "
            f"| {delivered} / {ops:,} "
            f"| {_fmt_range(_collect(results, key, 'server_cpu_us_per_op'), '.2f')} "
            f"| {status} |"
        )
    lines.append("")
    if "default" in rows and "limit" in rows:
        lines += targets(results)
    lines += [
        "Notes: `× limit` is the median (min–max) of the per-repetition ratio of CPU/op to "
        "the limit client's in the same repetition. `ops/s delivered` is the server's count "
        "of applied operations over the client's send-phase wall time. GC is the time spent in "
        "the cyclic garbage collector (gc.callbacks) during the send phase, as a share of the "
        "client's CPU, and its longest single pause. Peak RSS is the client "
        "process's `ru_maxrss` (interpreter and imports included). The direct row's "
        "admission latency is a whole request round trip.",
        "",
    ]
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def targets(results: list[dict[str, Any]]) -> list[str]:
    """One line per target of the send pipeline issue, with PASS/FAIL and the figure (a
    missed target stays in the table as FAIL)."""
    ratios = _paired_ratios(results, "default")
    rates = _collect(results, "default", "ops_per_s")
    if not ratios or not rates:
        return []
    ratio = statistics.median(ratios)
    rate = statistics.median(rates)
    p99 = statistics.median(_collect(results, "default", "p99_us"))
    gc_pause = max(_collect(results, "default", "gc_max_ms"))
    gc_pct = max(_collect(results, "default", "gc_pct"))
    return [
        "Targets (default configuration, client on one core; the worst repetition for GC):",
        "",
        "| Target | Measured | Status |",
        "|---|--:|---|",
        f"| CPU/op ≤ 2.0× the limit client (aim 1.3×) | {ratio:.2f}× | {_verdict(ratio <= 2.0)} |",
        f"| ≥ 250,000 ops/s delivered | {rate:,.0f} | {_verdict(rate >= 250_000)} |",
        f"| admission (`await track()`) p99 ≤ 10 µs | {p99:.1f} µs | {_verdict(p99 <= 10)} |",
        f"| longest GC pause ≤ 5 ms | {gc_pause:.1f} ms | {_verdict(gc_pause <= 5)} |",
        f"| GC ≤ 3 % of CPU | {gc_pct:.1f} % | {_verdict(gc_pct <= 3)} |",
        "",
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("aiohttp", "orjson", "customerio-async"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "?"
    return out


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=HERE.parent, capture_output=True, timeout=20, check=True
    ).stdout.decode()


def _fingerprint(package: Path) -> str:
    """A short hash of a package's sources."""
    import hashlib

    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def snapshot_sdk(rev: str | None, dest: Path) -> str:
    """Copy ``customerio_async`` into ``dest`` (the work tree, or ``rev`` from git) so every
    process of one run measures the same code while the package is being edited; return a
    description of what was copied."""
    import shutil
    import tarfile

    source = HERE.parent / "customerio_async"
    if rev is not None:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", rev, "customerio_async"],
            cwd=HERE.parent,
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # Python < 3.10.12 / 3.11.4: our own archive from git
                tar.extractall(dest)  # noqa: S202
        described = f"git {_git('rev-parse', '--short', rev).strip()}"
    else:
        shutil.copytree(source, dest / "customerio_async", ignore=shutil.ignore_patterns("*.pyc"))
        try:
            head = _git("rev-parse", "--short", "HEAD").strip()
            dirty = _git("status", "--porcelain", "--", "customerio_async").strip()
            described = f"work tree at {head}" + (" + uncommitted changes" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            described = "work tree"
    return f"{described}, sources sha1 {_fingerprint(dest / 'customerio_async')}"


def _profile_report(path: Path, top: int) -> str:
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(str(path), stream=buf).strip_dirs()
    buf.write(f"## cumulative (top {top})\n")
    stats.sort_stats("cumulative").print_stats(top)
    buf.write(f"## own time (top {top})\n")
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def parent_main(args: argparse.Namespace) -> int:
    """Run the table (and profiles), print it and write the results."""
    import tempfile

    if args.sdk == "live":
        return _parent_run(args, dict(os.environ), "work tree (live, not snapshotted)")
    with tempfile.TemporaryDirectory(prefix="cio-bench-") as tmp:
        sdk = snapshot_sdk(None if args.sdk == "worktree" else args.sdk, Path(tmp))
        path = os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, PYTHONPATH=path, CIO_BENCH_SDK=tmp)
        return _parent_run(args, env, sdk)


def _load() -> str:
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _parent_run(args: argparse.Namespace, env: dict[str, str], sdk: str) -> int:
    started = time.monotonic()
    load_start = _load()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for key in rows:
        if key not in ROWS:
            raise SystemExit(f"unknown row {key!r}; choose from {', '.join(ROWS)}")
    ops = 20_000 if args.quick and args.ops is None else (args.ops or 200_000)
    direct_ops = min(ops, DIRECT_CAP)
    RESULTS.mkdir(parents=True, exist_ok=True)
    server = Server(args.server, args.validate, env)
    results: list[dict[str, Any]] = []
    try:
        if not args.profile_only:
            for rep in range(args.reps):
                for key in rows:
                    if time.monotonic() - started > args.budget:
                        print(f"! budget of {args.budget:.0f} s spent: stopping early")
                        break
                    n = direct_ops if key == "direct" else ops
                    result = _run_client(key, n, server, args, env)
                    result["rep"] = rep
                    results.append(result)
                    if "error" in result:
                        print(f"  rep {rep + 1} {key:8s} ERROR {result['error']}", flush=True)
                    else:
                        print(
                            f"  rep {rep + 1} {key:8s} {result['wall_s']:6.2f} s "
                            f"{result['ops_per_s']:>10,.0f} ops/s "
                            f"{result['cpu_us_per_op']:7.2f} µs/op "
                            f"p50 {result.get('p50_us', 0):6.1f} µs "
                            f"p99 {result.get('p99_us', 0):8.1f} µs "
                            f"GC {result['gc_pct']:3.0f}% "
                            f"server {result['server_ops']:,}/{n:,}"
                            f"{'' if result['ok'] else '  FAILING'}",
                            flush=True,
                        )
        profiles = []
        if args.profile or args.profile_only:
            for key in [r.strip() for r in args.profile_rows.split(",") if r.strip()]:
                path = RESULTS / f"profile-{key}.pstats"
                n = direct_ops if key == "direct" else ops
                result = _run_client(key, n, server, args, env, profile=path)
                if "error" in result:
                    print(f"profile {key}: ERROR {result['error']}")
                    continue
                report = _profile_report(path, args.profile_top)
                header = (
                    f"# cProfile of the {key} row, send phase only: N={n:,}, "
                    f"{result['cpu_us_per_op']:.2f} µs/op under the profiler\n"
                    f"# customerio-async: {sdk}\n# command: {shlex.join(['python', *sys.argv])}\n"
                )
                (RESULTS / f"profile-{key}.txt").write_text(header + report)
                profiles.append(header + report)
    finally:
        server.stop()

    versions = _versions()
    server_desc = {
        "lean": "benchmarks/server.py lean aiohttp.web server (orjson; FakeCustomerIO's "
        "batch-path rules: Basic auth, body limit, type/action matrix, ULID ids, "
        "duplicate-id detection)",
        "lean+rules": "benchmarks/server.py lean server with --validate (FakeCustomerIO's "
        "full per-operation rules)",
        "FakeCustomerIO": "customerio_async.testing.FakeCustomerIO (full fake) in "
        "benchmarks/server.py --impl fake",
    }[server.impl]
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "aiohttp": versions["aiohttp"],
        "orjson": versions["orjson"],
        "sdk": versions["customerio-async"],
        "revision": sdk,
        "load_start": load_start,
        "load_end": _load(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "client_affinity": next((r.get("affinity") for r in results if "affinity" in r), "?"),
        "server_affinity": server.affinity,
        "server": server_desc,
        "command": shlex.join(["python", *sys.argv]),
        "ops": ops,
        "direct_ops": direct_ops,
        "reps": args.reps,
        "sample_every": args.sample_every,
    }
    if results:
        report = render(results, meta, rows)
        print()
        print(report)
        if args.write:
            (RESULTS / "pipeline.md").write_text(report)
            (RESULTS / "pipeline.json").write_text(
                json.dumps({"meta": meta, "results": results}, indent=1)
            )
            print(f"written: {RESULTS / 'pipeline.md'}")
    for text in profiles:
        print(text)
    print(f"total {time.monotonic() - started:.0f} s")
    failing = any("error" in r or not r["ok"] for r in results)
    return 1 if failing and args.strict else 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (parent and client roles)."""
    parser = argparse.ArgumentParser(
        prog="bench_pipeline",
        description="customerio-async pipeline benchmark against a limit client.",
    )
    parser.add_argument("--ops", type=int, default=None, help="operations per row (200,000)")
    parser.add_argument("--quick", action="store_true", help="20,000 operations per row")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (3)")
    parser.add_argument(
        "--rows", default=",".join(ROWS), help=f"comma-separated rows ({','.join(ROWS)})"
    )
    parser.add_argument(
        "--sample-every", type=int, default=10, help="time every Nth admission (10)"
    )
    parser.add_argument("--server", choices=("lean", "fake"), default="lean")
    parser.add_argument(
        "--sdk",
        default="worktree",
        help="customerio_async to measure: 'worktree' (copied at start, so edits during the "
        "run don't mix in; default), 'live', or a git revision such as HEAD",
    )
    parser.add_argument("--validate", action="store_true", help="lean server: full op rules")
    parser.add_argument("--timeout", type=float, default=90.0, help="per client run, seconds")
    parser.add_argument("--flush-timeout", type=float, default=60.0)
    parser.add_argument("--budget", type=float, default=220.0, help="stop new runs after (s)")
    parser.add_argument("--profile", action="store_true", help="also run cProfile rows")
    parser.add_argument("--profile-only", action="store_true", help="only the cProfile rows")
    parser.add_argument("--profile-rows", default="default", help="rows to profile (default)")
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument(
        "--no-write", dest="write", action="store_false", help="don't write results/"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a row is FAILING")
    # client role (internal)
    parser.add_argument("--client", choices=tuple(ROWS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python benchmarks/bench_pipeline.py [--quick] [--ops N] …``."""
    args = build_parser().parse_args(argv)
    if args.client:
        args.ops = args.ops or 200_000
        return client_main(args)
    return parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
