"""Side by side with every peer: throughput, CPU/op, latency vs the seed targets, scaling.

``python benchmarks/bench_peers.py`` (or ``python benchmarks/run.py --bench peers``; ``nox -s
bench`` runs it with the peers installed from the ``bench`` extra). One run, one machine, one
fake server:

* The server is ``benchmarks/server.py`` (lean, FakeCustomerIO's rules) in its own process
  pinned to CPU 1, listening on plain http and, with a throwaway CA and certificate made at
  run time (``trustme``), on https. TLS verification stays on everywhere: each client
  process gets ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE`` pointing at that CA.
* Every client row runs in a fresh subprocess pinned to CPU 0 and sends N operations of the
  pipeline benchmark's event (``track(f"user-{i % 5000}", "purchased", {"amount": i, …})``);
  repetitions are interleaved (A B C … A B C …) and reported as median (min–max). Per row:
  operations/s the server applied over the client's send-phase wall time, client CPU µs per
  operation (``getrusage`` user+sys of the client process, all threads), peak RSS
  (``ru_maxrss``, interpreter and imports included), delivered/sent (server count and client
  count must both equal N, else the row is FAILING) and the ratio to the limit client.
* Latency: a second server sleeps 50 ms in every API request (a simulated round trip);
  p50/p95/p99 per call against the seed recipe's targets (identify < 100 ms, track < 100 ms,
  batch of 100 < 500 ms, webhook < 50 ms), plus our admission latency and end-to-end
  delivery latency.
* Scaling: client CPU/op and peak RSS of customerio-async (default) and the limit client at
  10k, 100k and 1M operations (``bench_pipeline`` clients), and customerio-async throughput
  against ``BatchConfig.max_concurrent_requests`` 1–8, on loopback and at 50 ms RTT.

Writes ``benchmarks/results/peers.md``, ``peers.json`` and ``chart.png`` (matplotlib, log
scale) and prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import gc
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pipeline as bp  # found through the path set just above

__all__ = ["ROWS", "main"]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SITE_ID = bp.SITE_ID
API_KEY = bp.API_KEY
EVENT = "purchased"
TASKS = 16  # concurrency of the per-request async rows and threads of the official row
BATCH_OPS = 1000  # operations per explicit batch() call
BATCH_IN_FLIGHT = 4
RTT = 0.05
SCALING_TIMEOUT = 150.0
FAST_LINGER = 0.02
SCALING_ROWS = {
    "default": "customerio-async batched (default)",
    "tuned": "customerio-async batched (rate_limit=None, max_batch_ops=5000)",
    "limit": "limit client",
}
TARGETS_MS = {"identify": 100.0, "track": 100.0, "batch100": 500.0, "webhook": 50.0}
THINK = 0.02  # mean pause between two calls of one latency caller (seconds, exponential)


@dataclass(frozen=True)
class Row:
    """One client of the headline table."""

    key: str
    label: str
    config: str
    transport: str  # "http" or "https"
    ops: int  # N of a full run (quick runs use a tenth)


ROWS: dict[str, Row] = {
    row.key: row
    for row in (
        Row(
            "official-seq",
            "customerio (official) sequential",
            "requests, one call at a time",
            "https",
            2_000,
        ),
        Row(
            "official-16t",
            "customerio (official) 16 threads",
            f"{TASKS} threads, one client (requests Session) per thread",
            "https",
            5_000,
        ),
        Row(
            "official-batch",
            "customerio (official) batch()",
            f"batch() of {BATCH_OPS:,} v2 ops, sequential",
            "https",
            200_000,
        ),
        Row(
            "acio-gather",
            "async-customerio gather",
            f"gather over all ops, Semaphore({TASKS})",
            "https",
            5_000,
        ),
        Row(
            "acio-batch",
            "async-customerio send_batch()",
            f"TrackAPIV2.send_batch() of {BATCH_OPS:,} ops, {BATCH_IN_FLIGHT} in flight",
            "https",
            200_000,
        ),
        Row(
            "recipe",
            "seed recipe (async-customerio)",
            "chunks of 100, each op its own request, concurrency 10",
            "https",
            5_000,
        ),
        Row(
            "aiohttp-loop",
            "plain aiohttp loop",
            f"one v1 POST per op, {TASKS} tasks, one session",
            "http",
            5_000,
        ),
        Row(
            "ours-direct",
            "customerio-async direct",
            f"batching=False, rate_limit=None, {TASKS} tasks",
            "http",
            5_000,
        ),
        Row(
            "ours-direct-tls",
            "customerio-async direct (TLS)",
            f"batching=False, rate_limit=None, {TASKS} tasks",
            "https",
            5_000,
        ),
        Row(
            "ours-batch",
            "customerio-async batch()",
            f"batch() of {BATCH_OPS:,} ops, {BATCH_IN_FLIGHT} in flight, rate_limit=None",
            "http",
            200_000,
        ),
        Row(
            "ours-default",
            "customerio-async batched (default)",
            "CustomerIO(site, key, track_url=url), await track() per op, flush()",
            "http",
            200_000,
        ),
        Row(
            "ours-default-tls",
            "customerio-async batched (default, TLS)",
            "CustomerIO(site, key, track_url=url), await track() per op, flush()",
            "https",
            200_000,
        ),
        Row(
            "limit",
            "limit client",
            "per-op dict → orjson, ~450 KB /api/v2/batch bodies, 4 in flight",
            "http",
            200_000,
        ),
    )
}


def _person(i: int) -> str:
    return f"user-{i % bp.USERS}"


def _data(i: int) -> dict[str, Any]:
    return {"amount": i, "currency": "EUR", "sku": "sku-123"}


def _v2_op(i: int) -> dict[str, Any]:
    return {
        "type": "person",
        "action": "event",
        "identifiers": {"id": _person(i)},
        "name": EVENT,
        "attributes": _data(i),
    }


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[1]
    host, port = rest.rsplit(":", 1)
    return host, int(port)


def _auth() -> str:
    return "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode("ascii")


# ============================================================================ client side


class Meter:
    """Wall time, CPU and peak RSS around the send phase of one client process."""

    def __init__(self) -> None:
        self.wall_s = self.cpu_s = 0.0
        self.rss_kb = 0
        self._t0 = self._cpu0 = 0.0

    def start(self) -> None:
        gc.collect()
        self._cpu0, _ = bp._usage()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        self.wall_s = time.perf_counter() - self._t0
        cpu1, self.rss_kb = bp._usage()
        self.cpu_s = cpu1 - self._cpu0


def _official(url: str) -> Any:
    # By full path: customerio-cdp-analytics (test extra) installs into the same package
    # and may own customerio/__init__.py.
    from customerio.track import CustomerIO

    host, port = _host_port(url)
    return CustomerIO(SITE_ID, API_KEY, host=host, port=port)


def _acio(url: str) -> Any:
    from async_customerio import AsyncCustomerIO

    host, port = _host_port(url)
    return AsyncCustomerIO(SITE_ID, API_KEY, host=host, port=port)


def run_official_seq(n: int, url: str, meter: Meter) -> int:
    cio = _official(url)
    ok = 0
    meter.start()
    for i in range(n):
        cio.track(_person(i), EVENT, _data(i))
        ok += 1
    meter.stop()
    cio.close()
    return ok


def run_official_threads(n: int, url: str, meter: Meter) -> int:
    from concurrent.futures import ThreadPoolExecutor

    def worker(part: int) -> int:
        cio = _official(url)
        done = 0
        try:
            for i in range(part, n, TASKS):
                cio.track(_person(i), EVENT, _data(i))
                done += 1
        finally:
            cio.close()
        return done

    with ThreadPoolExecutor(TASKS) as pool:
        meter.start()
        ok = sum(pool.map(worker, range(TASKS)))
        meter.stop()
    return ok


def run_official_batch(n: int, url: str, meter: Meter) -> int:
    cio = _official(url)
    ok = 0
    meter.start()
    for start in range(0, n, BATCH_OPS):
        ops = [_v2_op(i) for i in range(start, min(n, start + BATCH_OPS))]
        response = cio.batch(ops)
        if response.status_code == 200:
            ok += len(ops)
    meter.stop()
    cio.close()
    return ok


async def run_acio_gather(n: int, url: str, meter: Meter) -> int:
    cio = _acio(url)
    sem = asyncio.Semaphore(TASKS)
    ok = 0

    async def one(i: int) -> None:
        nonlocal ok
        async with sem:
            await cio.track(_person(i), EVENT, **_data(i))
            ok += 1

    meter.start()
    await asyncio.gather(*(one(i) for i in range(n)))
    meter.stop()
    await cio.close()
    return ok


async def run_acio_batch(n: int, url: str, meter: Meter) -> int:
    from async_customerio.track import TrackAPIV2

    cio = _acio(url)
    v2 = TrackAPIV2(cio)
    sem = asyncio.Semaphore(BATCH_IN_FLIGHT)
    ok = 0

    async def one(start: int) -> None:
        nonlocal ok
        async with sem:
            ops = [_v2_op(i) for i in range(start, min(n, start + BATCH_OPS))]
            result = await v2.send_batch(ops)  # type: ignore[arg-type]
            if not (isinstance(result, dict) and result.get("errors")):
                ok += len(ops)

    meter.start()
    await asyncio.gather(*(one(s) for s in range(0, n, BATCH_OPS)))
    meter.stop()
    await cio.close()
    return ok


async def run_recipe(n: int, url: str, meter: Meter) -> int:
    """The popular recipe: take 100 items, send each with concurrency 10, repeat."""
    cio = _acio(url)
    ok = 0

    async def one(sem: asyncio.Semaphore, i: int) -> None:
        nonlocal ok
        async with sem:
            await cio.track(_person(i), EVENT, **_data(i))
            ok += 1

    meter.start()
    for start in range(0, n, 100):
        sem = asyncio.Semaphore(10)
        await asyncio.gather(*(one(sem, i) for i in range(start, min(n, start + 100))))
    meter.stop()
    await cio.close()
    return ok


async def run_aiohttp_loop(n: int, url: str, meter: Meter) -> int:
    import aiohttp
    import orjson

    headers = {"Authorization": _auth(), "Content-Type": "application/json"}
    ok = 0
    state = {"next": 0}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=TASKS)) as session:

        async def worker() -> None:
            nonlocal ok
            while state["next"] < n:
                i = state["next"]
                state["next"] = i + 1
                body = orjson.dumps({"name": EVENT, "data": _data(i)})
                target = f"{url}/api/v1/customers/{_person(i)}/events"
                async with session.post(target, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1

        meter.start()
        await asyncio.gather(*(worker() for _ in range(TASKS)))
        meter.stop()
    return ok


async def run_ours_direct(n: int, url: str, meter: Meter) -> int:
    from customerio_async import CustomerIO

    ok = 0
    state = {"next": 0}
    async with CustomerIO(SITE_ID, API_KEY, track_url=url, batching=False, rate_limit=None) as cio:

        async def worker() -> None:
            nonlocal ok
            while state["next"] < n:
                i = state["next"]
                state["next"] = i + 1
                await cio.track(_person(i), EVENT, _data(i))
                ok += 1

        meter.start()
        await asyncio.gather(*(worker() for _ in range(TASKS)))
        meter.stop()
    return ok


async def run_ours_batch(n: int, url: str, meter: Meter) -> int:
    from customerio_async import CustomerIO

    ok = 0
    async with CustomerIO(SITE_ID, API_KEY, track_url=url, rate_limit=None) as cio:
        sem = asyncio.Semaphore(BATCH_IN_FLIGHT)

        async def one(start: int) -> None:
            nonlocal ok
            async with sem:
                ops = [_v2_op(i) for i in range(start, min(n, start + BATCH_OPS))]
                result = await cio.batch(ops)
                if result.status == 200 and not result.errors:
                    ok += len(ops)

        meter.start()
        await asyncio.gather(*(one(s) for s in range(0, n, BATCH_OPS)))
        meter.stop()
    return ok


async def run_ours_default(n: int, url: str, meter: Meter, lanes: int = 0) -> int:
    from customerio_async import BatchConfig, CustomerIO

    kwargs: dict[str, Any] = {"track_url": url}
    if lanes:
        kwargs["batch"] = BatchConfig(max_concurrent_requests=lanes)
    async with CustomerIO(SITE_ID, API_KEY, **kwargs) as cio:
        track = cio.track
        meter.start()
        for i in range(n):
            await track(_person(i), EVENT, _data(i))
        await cio.flush(timeout=120)
        meter.stop()
        st = cio.statistics()
    return int(st.delivered)


async def run_limit(n: int, url: str, meter: Meter) -> int:
    limit = bp.LimitClient(url, _auth())
    await limit.open()
    try:
        meter.start()
        for i in range(n):
            await limit.track(_person(i), EVENT, _data(i))
        await limit.flush()
        meter.stop()
    finally:
        await limit.aclose()
    return limit.delivered


RUNNERS: dict[str, Callable[..., Any]] = {
    "official-seq": run_official_seq,
    "official-16t": run_official_threads,
    "official-batch": run_official_batch,
    "acio-gather": run_acio_gather,
    "acio-batch": run_acio_batch,
    "recipe": run_recipe,
    "aiohttp-loop": run_aiohttp_loop,
    "ours-direct": run_ours_direct,
    "ours-direct-tls": run_ours_direct,
    "ours-batch": run_ours_batch,
    "ours-default": run_ours_default,
    "ours-default-tls": run_ours_default,
    "limit": run_limit,
}


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _timed(samples: list[float], call: Callable[[], Any]) -> None:
    t = time.perf_counter()
    await call()
    samples.append((time.perf_counter() - t) * 1000)


def latency_official(url: str, n: int, nb: int) -> dict[str, list[float]]:
    cio = _official(url)
    out: dict[str, list[float]] = {"identify": [], "track": [], "batch100": []}
    perf = time.perf_counter
    cio.identify("warm-up", plan="pro")
    for i in range(n):
        t = perf()
        cio.identify(_person(i), email=f"u{i}@example.com", plan="pro")
        out["identify"].append((perf() - t) * 1000)
    for i in range(n):
        t = perf()
        cio.track(_person(i), EVENT, _data(i))
        out["track"].append((perf() - t) * 1000)
    for b in range(nb):
        ops = [_v2_op(b * 100 + i) for i in range(100)]
        t = perf()
        cio.batch(ops)
        out["batch100"].append((perf() - t) * 1000)
    cio.close()
    return out


async def latency_acio(url: str, n: int, nb: int) -> dict[str, list[float]]:
    from async_customerio.track import TrackAPIV2

    cio = _acio(url)
    v2 = TrackAPIV2(cio)
    out: dict[str, list[float]] = {"identify": [], "track": [], "batch100": []}
    await cio.identify("warm-up", plan="pro")
    for i in range(n):
        await _timed(
            out["identify"],
            lambda i=i: cio.identify(_person(i), email=f"u{i}@example.com", plan="pro"),
        )
    for i in range(n):
        await _timed(out["track"], lambda i=i: cio.track(_person(i), EVENT, **_data(i)))
    for b in range(nb):
        ops = [_v2_op(b * 100 + i) for i in range(100)]
        await _timed(out["batch100"], lambda ops=ops: v2.send_batch(ops))
    await cio.close()
    return out


async def latency_ours_direct(url: str, n: int, nb: int) -> dict[str, list[float]]:
    from customerio_async import CustomerIO

    out: dict[str, list[float]] = {"identify": [], "track": [], "batch100": []}
    async with CustomerIO(SITE_ID, API_KEY, track_url=url, batching=False) as cio:
        await cio.identify("warm-up", plan="pro")
        for i in range(n):
            await _timed(
                out["identify"],
                lambda i=i: cio.identify(_person(i), email=f"u{i}@example.com", plan="pro"),
            )
        for i in range(n):
            await _timed(out["track"], lambda i=i: cio.track(_person(i), EVENT, _data(i)))
        for b in range(nb):
            ops = [_v2_op(b * 100 + i) for i in range(100)]
            await _timed(out["batch100"], lambda ops=ops: cio.batch(ops))
    return out


async def latency_ours_pipeline(
    url: str, n: int, nb: int, linger: float | None = None, unlimited: bool = False
) -> dict[str, list[float]]:
    """Batched: end-to-end (wait=True), then (default linger only) 100 admissions + flush
    and the admission latency of a 20,000-op stream. ``unlimited``: no client-side rate
    limit (what the default 100 requests/s costs the waiting callers)."""
    from customerio_async import BatchConfig, CustomerIO

    out: dict[str, list[float]] = {
        "admission": [],
        "identify": [],
        "track": [],
        "batch100": [],
    }
    perf = time.perf_counter
    kwargs: dict[str, Any] = {"track_url": url}
    if linger is not None:
        kwargs["batch"] = BatchConfig(linger=linger)
    if unlimited:
        kwargs["rate_limit"] = None
    async with CustomerIO(SITE_ID, API_KEY, **kwargs) as cio:
        await cio.track("warm-up", EVENT, {}, wait=True)
        # End to end: 20 concurrent callers, each awaiting its own delivery (wait=True),
        # arriving independently (a random start and a random pause between calls, seeded
        # per caller), not in lock-step.
        workers = 20

        async def e2e(w: int) -> None:
            rng = random.Random(w)
            await asyncio.sleep(rng.uniform(0, RTT))
            for k in range(max(1, n // workers)):
                await asyncio.sleep(rng.expovariate(1 / THINK))
                i = w * 1000 + k
                t = perf()
                # Each caller tracks its own people: two callers' events for one person
                # would rightly wait for each other (per-person order), which is not what
                # this row measures.
                await cio.track(f"lat-{w}-{k}", EVENT, _data(i), wait=True)
                out["track"].append((perf() - t) * 1000)
                t = perf()
                # Distinct people and attributes: identical identifies would be coalesced
                # by the default de-duplication and never wait for the network.
                receipt = await cio.identify(f"lat-{w}-{k}", plan="pro", seq=i)
                await receipt.wait()
                out["identify"].append((perf() - t) * 1000)

        await asyncio.gather(*(e2e(w) for w in range(workers)))
        if linger is not None or unlimited:
            return out
        for b in range(nb):
            t = perf()
            for i in range(100):
                await cio.track(_person(b * 100 + i), EVENT, _data(i))
            await cio.flush(timeout=30)
            out["batch100"].append((perf() - t) * 1000)
        # Admission: every await cio.track() of a 20,000-op stream (no waiting).
        for i in range(20_000):
            t = perf()
            await cio.track(_person(i), EVENT, _data(i))
            out["admission"].append((perf() - t) * 1000)
        await cio.flush(timeout=60)
    return out


async def latency_limit_admission(url: str) -> dict[str, list[float]]:
    """The floor for the admission row: the limit client's ``await track()`` over the same
    20,000-op stream (it serialises and appends bytes, nothing else)."""
    client = bp.LimitClient(url, _auth())
    await client.open()
    out: list[float] = []
    perf = time.perf_counter
    try:
        for i in range(20_000):
            t = perf()
            await client.track(_person(i), EVENT, _data(i))
            out.append((perf() - t) * 1000)
        await client.flush()
    finally:
        await client.aclose()
    return {"admission": out}


async def latency_webhook(n: int) -> dict[str, list[float]]:
    """Loopback round trip of one signed 2 KB event through aiohttp_handler (verify, parse,
    de-duplicate, dispatch to a no-op callback), sequential requests."""
    import aiohttp
    import bench_webhooks as bw
    from aiohttp import web

    from customerio_async.webhooks import WebhookReceiver, aiohttp_handler

    receiver = WebhookReceiver(bw._noop, signing_key=bw.KEY)
    app = web.Application()
    app.router.add_post("/cio", aiohttp_handler(receiver))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/cio"
    samples: list[float] = []
    statuses = []
    try:
        async with aiohttp.ClientSession() as session:
            for k, (body, headers) in enumerate(bw._bodies(n + 20, "01HZL")):
                t = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                if k >= 20:  # the first 20 warm the connection and the receiver
                    samples.append((time.perf_counter() - t) * 1000)
                    statuses.append(resp.status)
        await receiver.aclose()
    finally:
        await runner.cleanup()
    assert statuses.count(200) == n, {s: statuses.count(s) for s in set(statuses)}
    return {"webhook": samples}


def client_main(args: argparse.Namespace) -> int:
    """A client subprocess: pin, run one row (or latency client), print one JSON line."""
    affinity = bp._pin(bp.CLIENT_CPU)
    out: dict[str, Any] = {"affinity": affinity}
    if args.latency_client:
        kind = args.latency_client
        if kind == "official":
            out["samples"] = latency_official(args.url, args.ops, args.batches)
        elif kind == "acio":
            out["samples"] = asyncio.run(latency_acio(args.url, args.ops, args.batches))
        elif kind == "ours-direct":
            out["samples"] = asyncio.run(latency_ours_direct(args.url, args.ops, args.batches))
        elif kind == "ours-pipeline":
            out["samples"] = asyncio.run(latency_ours_pipeline(args.url, args.ops, args.batches))
        elif kind == "ours-linger":
            out["samples"] = asyncio.run(
                latency_ours_pipeline(args.url, args.ops, args.batches, linger=FAST_LINGER)
            )
        elif kind == "ours-unlimited":
            out["samples"] = asyncio.run(
                latency_ours_pipeline(args.url, args.ops, args.batches, unlimited=True)
            )
        elif kind == "limit":
            out["samples"] = asyncio.run(latency_limit_admission(args.url))
        elif kind == "webhook":
            out["samples"] = asyncio.run(latency_webhook(args.ops))
        else:
            raise SystemExit(f"unknown latency client {kind!r}")
    else:
        runner = RUNNERS[args.client]
        meter = Meter()
        extra = {"lanes": args.lanes} if args.lanes else {}
        if asyncio.iscoroutinefunction(runner):
            delivered = asyncio.run(
                asyncio.wait_for(runner(args.ops, args.url, meter, **extra), args.timeout)
            )
        else:
            delivered = runner(args.ops, args.url, meter)
        out.update(
            row=args.client,
            ops=args.ops,
            delivered=delivered,
            wall_s=meter.wall_s,
            cpu_s=meter.cpu_s,
            rss_peak_kb=meter.rss_kb,
        )
        if args.client.startswith("ours"):
            import customerio_async

            out["sdk_path"] = str(Path(customerio_async.__file__).parent)
    print(json.dumps(out), flush=True)
    return 0


# ============================================================================ parent side


def _subprocess(cmd: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = [ln.strip() for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"error": (tail[-1] if tail else f"exit {proc.returncode}").replace("|", "/")[:200]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_row(
    key: str,
    n: int,
    server: bp.Server,
    env: dict[str, str],
    timeout: float,
    lanes: int = 0,
    url: str | None = None,
) -> dict[str, Any]:
    """One client subprocess against ``server``; the server's counters checked after."""
    row = ROWS[key]
    if url is None:
        url = server.tls_url if row.transport == "https" else server.url
    if url is None:
        return {"row": key, "ops": n, "error": "no TLS listener (is trustme installed?)"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--client", key, "--url", url]
    cmd += ["--ops", str(n), "--timeout", str(timeout)]
    if lanes:
        cmd += ["--lanes", str(lanes)]
    server.reset()
    result = _subprocess(cmd, env, timeout + 15)
    result.setdefault("row", key)
    result.setdefault("ops", n)
    if "error" in result:
        return result
    time.sleep(0.05)  # let in-flight responses land before reading the counters
    stats = server.stats()
    expected = env.get("CIO_BENCH_SDK")
    if expected and not result.get("sdk_path", expected).startswith(expected):
        return {"row": key, "ops": n, "error": f"measured {result['sdk_path']}, not the snapshot"}
    result["server_ops"] = stats["ops"]
    result["duplicates"] = stats["duplicates"]
    result["requests"] = stats["requests"]
    result["ops_per_s"] = stats["ops"] / result["wall_s"] if result["wall_s"] else 0.0
    result["cpu_us_per_op"] = result["cpu_s"] / n * 1e6
    result["ok"] = stats["ops"] == n and result["delivered"] == n
    return result


def _latency_client(
    kind: str, url: str | None, n: int, nb: int, env: dict[str, str], timeout: float
) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--latency-client", kind]
    cmd += ["--url", url or "", "--ops", str(n), "--batches", str(nb)]
    cmd += ["--timeout", str(timeout)]
    return _subprocess(cmd, env, timeout)


def _fmt(values: list[float], fmt: str) -> str:
    return bp._fmt_range(values, fmt)


def _vals(results: list[dict[str, Any]], key: str, field: str, scale: float = 1.0) -> list[float]:
    return [r[field] * scale for r in results if r["row"] == key and "error" not in r]


def _ratios(results: list[dict[str, Any]], key: str, field: str) -> list[float]:
    """``field`` of ``key`` over the limit client's, paired by repetition."""
    out = []
    for rep in sorted({r.get("rep", 0) for r in results}):
        mine = [r for r in results if r.get("rep") == rep and r["row"] == key and "error" not in r]
        base = [
            r for r in results if r.get("rep") == rep and r["row"] == "limit" and "error" not in r
        ]
        if mine and base and base[0][field] > 0:
            out.append(mine[0][field] / base[0][field])
    return out


def _status(results: list[dict[str, Any]], key: str) -> tuple[str, str]:
    mine = [r for r in results if r["row"] == key]
    ok_runs = [r for r in mine if "error" not in r]
    errors = [r["error"] for r in mine if "error" in r]
    n = mine[0]["ops"] if mine else 0
    counts = sorted({r["server_ops"] for r in ok_runs})
    delivered = ("/".join(f"{c:,}" for c in counts) if counts else "–") + f" / {n:,}"
    failing = not mine or errors or any(not r["ok"] for r in ok_runs)
    status = "FAILING" if failing else "ok"
    if errors:
        status += f": {errors[0][:80]}"
    return delivered, status


def headline_table(results: list[dict[str, Any]], rows: Sequence[str]) -> list[str]:
    lines = [
        "| Client | Transport | Config | N | ops/s delivered | client CPU µs/op "
        "| CPU/op × limit | ops/s ÷ limit | peak RSS MiB | delivered / sent | status |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for key in rows:
        row = ROWS[key]
        delivered, status = _status(results, key)
        n = next((r["ops"] for r in results if r["row"] == key), row.ops)
        cpu_ratio = (
            "1.00" if key == "limit" else _fmt(_ratios(results, key, "cpu_us_per_op"), ".1f")
        )
        rate_ratio = "1.00" if key == "limit" else _fmt(_ratios(results, key, "ops_per_s"), ".3f")
        lines.append(
            f"| {row.label} | {row.transport} | {row.config} | {n:,} "
            f"| {_fmt(_vals(results, key, 'ops_per_s'), ',.0f')} "
            f"| {_fmt(_vals(results, key, 'cpu_us_per_op'), ',.1f')} "
            f"| {cpu_ratio} | {rate_ratio} "
            f"| {_fmt(_vals(results, key, 'rss_peak_kb', 1 / 1024), '.0f')} "
            f"| {delivered} | {status} |"
        )
    return lines


def summary(results: list[dict[str, Any]], rows: Sequence[str]) -> list[str]:
    """customerio-async batched (default) against every other row, from the medians."""
    ours_rate = _vals(results, "ours-default", "ops_per_s")
    ours_cpu = _vals(results, "ours-default", "cpu_us_per_op")
    if not ours_rate or not ours_cpu:
        return []
    rate, cpu = statistics.median(ours_rate), statistics.median(ours_cpu)
    out = ["customerio-async batched (default, http) against each row (medians):", ""]
    for key in rows:
        r, c = _vals(results, key, "ops_per_s"), _vals(results, key, "cpu_us_per_op")
        if key == "ours-default" or not r or not c:
            continue
        their_rate, their_cpu = statistics.median(r), statistics.median(c)
        cost = (
            f"{their_cpu / cpu:,.1f}× less CPU per op"
            if their_cpu >= cpu
            else f"{cpu / their_cpu:,.1f}× MORE CPU per op"
        )
        out.append(
            f"- vs {ROWS[key].label} [{ROWS[key].transport}]: "
            f"{rate / their_rate:,.2f}× the ops/s, {cost}"
        )
    out.append("")
    return out


LATENCY_LAYOUT: list[tuple[str, str, str, str, str]] = [
    # (operation, target key, client label, latency client, sample key)
    ("identify", "identify", "customerio (official), https", "official", "identify"),
    ("identify", "identify", "async-customerio, https", "acio", "identify"),
    ("identify", "identify", "customerio-async direct, http", "ours-direct", "identify"),
    (
        "identify",
        "identify",
        "customerio-async batched, end to end (`await (await identify()).wait()`)",
        "ours-pipeline",
        "identify",
    ),
    (
        "identify",
        "identify",
        f"customerio-async batched, `BatchConfig(linger={FAST_LINGER})`, end to end",
        "ours-linger",
        "identify",
    ),
    (
        "identify",
        "identify",
        "customerio-async batched, `rate_limit=None`, end to end (diagnostic)",
        "ours-unlimited",
        "identify",
    ),
    ("track", "track", "customerio (official), https", "official", "track"),
    ("track", "track", "async-customerio, https", "acio", "track"),
    ("track", "track", "customerio-async direct, http", "ours-direct", "track"),
    (
        "track",
        "track",
        "customerio-async batched, end to end (`track(..., wait=True)`)",
        "ours-pipeline",
        "track",
    ),
    (
        "track",
        "track",
        f"customerio-async batched, `BatchConfig(linger={FAST_LINGER})`, end to end",
        "ours-linger",
        "track",
    ),
    (
        "track",
        "track",
        "customerio-async batched, `rate_limit=None`, end to end (diagnostic)",
        "ours-unlimited",
        "track",
    ),
    ("batch of 100", "batch100", "customerio (official) batch(), https", "official", "batch100"),
    ("batch of 100", "batch100", "async-customerio send_batch(), https", "acio", "batch100"),
    ("batch of 100", "batch100", "customerio-async batch(), http", "ours-direct", "batch100"),
    (
        "batch of 100",
        "batch100",
        "customerio-async pipeline: 100 × `await track()` + flush(), http",
        "ours-pipeline",
        "batch100",
    ),
    (
        "webhook",
        "webhook",
        "customerio_async.webhooks aiohttp receiver (verify+parse+dispatch), loopback",
        "webhook",
        "webhook",
    ),
]


TargetRow = tuple[str, float | None, str, bool | None]


def _samples(lat: dict[str, Any], kind: str, sample: str) -> list[float]:
    got: list[float] = lat.get(kind, {}).get("samples", {}).get(sample, [])
    return got


def pipeline_targets(
    lat: dict[str, Any], scaling: list[dict[str, Any]], results: list[dict[str, Any]]
) -> list[str]:
    """The send pipeline issue's targets, one row each, PASS/FAIL with the figure."""
    rows: list[TargetRow] = _headline_targets(results)

    def add(
        label: str, values: list[float], q: float, limit: float | None, unit: str = "ms"
    ) -> None:
        value = _pct(values, q) if values else None
        ok = None if value is None or limit is None else value <= limit
        rows.append((label, value, unit, ok))

    for op in ("track", "identify"):
        values = _samples(lat, "ours-pipeline", op)
        add(f"batched `{op}` + wait, 20 independent callers: p50 ≤ 55 ms", values, 0.5, 55)
        add(f"batched `{op}` + wait, 20 independent callers: p99 ≤ 65 ms", values, 0.99, 65)
    add(
        "100 × `track()` + `flush()`: p99 ≤ 65 ms",
        _samples(lat, "ours-pipeline", "batch100"),
        0.99,
        65,
    )
    for op in ("identify", "track"):
        add(f"direct `{op}`: p99 ≤ 57 ms", _samples(lat, "ours-direct", op), 0.99, 57)
    adm = [v * 1000 for v in _samples(lat, "ours-pipeline", "admission")]
    add("admission (`await track()`), p99 ≤ 10 µs", adm, 0.99, 10, "µs")
    floor = [v * 1000 for v in _samples(lat, "limit", "admission")]
    add("(reference) limit client's `await track()`, p99", floor, 0.99, None, "µs")
    rows.extend(_scaling_targets(scaling))
    lines = ["| Target | Measured | Status |", "|---|--:|---|"]
    for label, value, unit, ok in rows:
        digits = 2 if unit == "×" else 1  # a ratio next to its 2.0 bound needs both places
        shown = "–" if value is None else f"{value:,.{digits}f} {unit}"
        status = "–" if ok is None else ("PASS" if ok else "FAIL")
        lines.append(f"| {label} | {shown} | {status} |")
    return lines


def _headline_targets(results: list[dict[str, Any]]) -> list[TargetRow]:
    """CPU and throughput targets of the default batched client, from the headline runs."""
    ratios = _ratios(results, "ours-default", "cpu_us_per_op")
    ours = _vals(results, "ours-default", "cpu_us_per_op")
    official = _vals(results, "official-batch", "cpu_us_per_op")
    rates = _vals(results, "ours-default", "ops_per_s")
    limit_rates = _vals(results, "limit", "ops_per_s")
    if not (ratios and ours and rates):
        return []
    ratio, cpu, rate = statistics.median(ratios), statistics.median(ours), statistics.median(rates)
    rows: list[TargetRow] = [
        ("CPU/op ≤ 2.0× the limit client, same run (aim 1.3×)", ratio, "×", ratio <= 2.0),
    ]
    if official:
        batch = statistics.median(official)
        label = f"CPU/op below the official SDK's `batch()` ({batch:,.1f} µs/op)"
        rows.append((label, cpu, "µs/op", cpu < batch))
    rows.append(("≥ 250,000 ops/s delivered on one core, http", rate, "ops/s", rate >= 250_000))
    if limit_rates:
        floor = statistics.median(limit_rates)
        rows.append(("(reference) limit client, same run", floor, "ops/s", None))
    return rows


def _scaling_targets(
    scaling: list[dict[str, Any]],
) -> list[tuple[str, float | None, str, bool | None]]:
    good = [r for r in scaling if r["row"] == "default" and "error" not in r]
    by_n: dict[int, list[float]] = {}
    for r in good:
        by_n.setdefault(r["ops"], []).append(r["cpu_us_per_op"])
    if len(by_n) < 2:
        return []
    small, large = min(by_n), max(by_n)
    growth = statistics.median(by_n[large]) / statistics.median(by_n[small])
    rss = max(r["rss_peak_kb"] / 1024 for r in good if r["ops"] == large)
    # The GC figures of the largest run (gc.callbacks in the client process; the worst run).
    pause = max(r.get("gc_max_ms", 0.0) for r in good if r["ops"] == large)
    share = max(r.get("gc_pct", 0.0) for r in good if r["ops"] == large)
    return [
        (f"µs/op at {large:,} ≤ 1.15× µs/op at {small:,}", growth, "×", growth <= 1.15),
        (f"peak RSS at {large:,} ops ≤ 60 MiB", rss, "MiB", rss <= 60),
        (f"longest GC pause over {large:,} ops ≤ 5 ms", pause, "ms", pause <= 5),
        (f"GC time over {large:,} ops ≤ 3 % of CPU", share, "%", share <= 3),
    ]


def latency_table(lat: dict[str, Any]) -> list[str]:
    lines = [
        "| Operation | Client | n | p50 ms | p95 ms | p99 ms | target |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for op, target_key, label, kind, sample in LATENCY_LAYOUT:
        got = lat.get(kind, {})
        if "error" in got:
            lines.append(f"| {op} | {label} | – | – | – | – | ERROR: {got['error'][:80]} |")
            continue
        samples = got.get("samples", {}).get(sample, [])
        if not samples:
            lines.append(f"| {op} | {label} | 0 | – | – | – | – |")
            continue
        target = TARGETS_MS[target_key]
        cells = []
        for q in (0.50, 0.95, 0.99):
            v = _pct(samples, q)
            cells.append(f"{v:,.1f} {'PASS' if v < target else 'FAIL'}")
        lines.append(
            f"| {op} | {label} | {len(samples):,} | {' | '.join(cells)} | < {target:.0f} ms |"
        )
    for kind, label in (
        ("ours-pipeline", "customerio-async batched: `await cio.track()` returning"),
        ("limit", "limit client: `await track()` returning (the floor)"),
    ):
        adm = lat.get(kind, {}).get("samples", {}).get("admission", [])
        if adm:
            cells = " | ".join(f"{_pct(adm, q) * 1000:,.1f} µs" for q in (0.5, 0.95, 0.99))
            lines.append(f"| admission | {label} | {len(adm):,} | {cells} | (no seed target) |")
    return lines


def _chart(results: list[dict[str, Any]], rows: Sequence[str], meta: dict[str, Any]) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install '.[bench]')"
    labels, rates, cpus, colors = [], [], [], []
    for key in rows:
        r, c = _vals(results, key, "ops_per_s"), _vals(results, key, "cpu_us_per_op")
        if not r or not c:
            continue
        row = ROWS[key]
        labels.append(f"{row.label} [{row.transport}]")
        rates.append(statistics.median(r))
        cpus.append(statistics.median(c))
        colors.append(
            "#1f77b4" if key.startswith("ours") else "#7f7f7f" if key == "limit" else "#ff7f0e"
        )
    if not labels:
        return "chart skipped: no successful rows"
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.45 * len(labels) + 2.2), sharey=True)
    ys = list(range(len(labels)))[::-1]
    for ax, values, title, fmt in (
        (axes[0], rates, "operations/s delivered (higher is better)", "{:,.0f}"),
        (axes[1], cpus, "client CPU µs per operation (lower is better)", "{:,.1f}"),
    ):
        ax.barh(ys, values, color=colors)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", which="both", alpha=0.3)
        for y, v in zip(ys, values, strict=True):
            ax.text(v, y, " " + fmt.format(v), va="center", fontsize=8)
        ax.set_xlim(min(values) / 2, max(values) * 8)
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels(labels, fontsize=8)
    fig.suptitle(
        f"customerio-async vs peers, one client core, lean fake server: {meta['date']}, "
        f"{meta['python']}, {meta['cpu']}",
        fontsize=10,
    )
    fig.tight_layout()
    path = RESULTS / "chart.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"written: {path}"


def _make_tls(tmp: Path) -> tuple[list[str], str | None, str]:
    """Server arguments and the CA file of a throwaway CA (trustme), or none."""
    try:
        import trustme
    except ImportError:
        return [], None, "no TLS (trustme not installed: pip install '.[bench]')"
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, server_file = tmp / "ca.pem", tmp / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_file))
    args = ["--tls-cert", str(server_file), "--tls-key", str(server_file)]
    return args, str(ca_file), "TLS 1.2+/1.3 with a throwaway trustme CA, verification on"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "customerio-async",
        "customerio",
        "async-customerio",
        "requests",
        "httpx",
        "aiohttp",
        "orjson",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def parent_main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    load_start = bp._load()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for key in rows:
        if key not in ROWS:
            raise SystemExit(f"unknown row {key!r}; choose from {', '.join(ROWS)}")
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    scale = 10 if args.quick else 1
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cio-peers-") as tmp_name:
        tmp = Path(tmp_name)
        sdk = bp.snapshot_sdk(None, tmp)
        tls_args, ca_file, tls_desc = _make_tls(tmp)
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [tmp_name, os.environ.get("PYTHONPATH")])),
            CIO_BENCH_SDK=tmp_name,
        )
        if ca_file:
            env.update(SSL_CERT_FILE=ca_file, REQUESTS_CA_BUNDLE=ca_file)
        results: list[dict[str, Any]] = []
        lat: dict[str, Any] = {}
        scaling: list[dict[str, Any]] = []
        sweep: list[dict[str, Any]] = []
        server = bp.Server("lean", False, env, extra=tls_args)
        slow = bp.Server("lean", False, env, extra=[*tls_args, "--latency", str(RTT)])
        try:
            if "headline" in sections:
                print(f"-- headline: {len(rows)} clients × {reps} interleaved reps", flush=True)
                for rep in range(reps):
                    for key in rows:
                        n = max(200, ROWS[key].ops // scale)
                        result = run_row(key, n, server, env, args.timeout)
                        result["rep"] = rep
                        results.append(result)
                        _progress(rep, key, n, result)
            if "latency" in sections:
                print(f"-- latency at {RTT * 1000:.0f} ms simulated RTT", flush=True)
                n_lat, n_batch = (20, 10) if args.quick else (200, 20)
                kinds = (
                    "official",
                    "acio",
                    "ours-direct",
                    "ours-pipeline",
                    "ours-linger",
                    "ours-unlimited",
                    "limit",
                )
                for kind in kinds:
                    url = slow.tls_url if kind in ("official", "acio") else slow.url
                    lat[kind] = _latency_client(kind, url, n_lat, n_batch, env, 180)
                    verdict = lat[kind].get("error", "ok")
                    print(f"  {kind}: {verdict}", flush=True)
                lat["webhook"] = _latency_client(
                    "webhook", None, 500 if args.quick else 2000, 0, env, 120
                )
            if "scaling" in sections:
                print("-- scaling: CPU/op and peak RSS vs N", flush=True)
                ns = [(10_000, 2), (100_000, 2), (1_000_000, 1)]
                if args.quick:
                    ns = [(10_000, 1), (100_000, 1)]
                pargs = argparse.Namespace(
                    sample_every=10, timeout=SCALING_TIMEOUT, flush_timeout=120.0
                )
                for n, n_reps in ns:
                    for rep in range(n_reps):
                        for key in SCALING_ROWS:
                            r = bp._run_client(key, n, server, pargs, env)
                            r["rep"] = rep
                            if "error" in r:  # what the server had applied when it stopped
                                stats = server.stats()
                                r["server_ops"] = stats["ops"]
                                r["server_requests"] = stats["requests"]
                            scaling.append(r)
                            _progress(rep, f"scale-{key}", n, r)
                print("-- throughput vs max_concurrent_requests", flush=True)
                n_sweep = 20_000 if args.quick else 100_000
                for lanes in (1, 2, 4, 8, 16):
                    for label, srv in (("loopback", server), (f"{RTT * 1000:.0f} ms RTT", slow)):
                        r = run_row("ours-default", n_sweep, srv, env, args.timeout, lanes=lanes)
                        r.update(lanes=lanes, network=label)
                        sweep.append(r)
                        _progress(0, f"lanes={lanes} {label}", n_sweep, r)
        finally:
            server.stop()
            slow.stop()

    versions = _versions()
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu": bp._cpu_model(),
        "cpus": os.cpu_count(),
        "versions": versions,
        "revision": sdk,
        "tls": tls_desc,
        "client_affinity": next(
            (r["affinity"] for r in [*results, *lat.values()] if "affinity" in r), "?"
        ),
        "server_affinity": server.affinity,
        "reps": reps,
        "command": shlex.join(["python", *sys.argv]),
        "elapsed_s": time.monotonic() - started,
        "load": f"{load_start} at start, {bp._load()} at end",
    }
    report = render(results, lat, scaling, sweep, meta, rows)
    print()
    print(report)
    if args.write:
        (RESULTS / "peers.md").write_text(report)
        (RESULTS / "peers.json").write_text(
            json.dumps(
                {
                    "meta": meta,
                    "results": results,
                    "latency": lat,
                    "scaling": scaling,
                    "sweep": sweep,
                },
                indent=1,
            )
        )
        print(f"written: {RESULTS / 'peers.md'}")
        if results:
            print(_chart(results, rows, meta))
    print(f"total {time.monotonic() - started:.0f} s")
    failing = any("error" in r or not r.get("ok") for r in [*results, *scaling, *sweep])
    return 1 if failing and args.strict else 0


def _progress(rep: int, key: str, n: int, r: dict[str, Any]) -> None:
    if "error" in r:
        print(f"  rep {rep + 1} {key:18s} ERROR {r['error']}", flush=True)
        return
    print(
        f"  rep {rep + 1} {key:18s} N={n:>9,} {r['wall_s']:6.2f} s {r['ops_per_s']:>10,.0f} ops/s "
        f"{r['cpu_us_per_op']:8.1f} µs/op RSS {r['rss_peak_kb'] / 1024:4.0f} MiB "
        f"server {r['server_ops']:,}/{n:,}{'' if r['ok'] else '  FAILING'}",
        flush=True,
    )


def render(
    results: list[dict[str, Any]],
    lat: dict[str, Any],
    scaling: list[dict[str, Any]],
    sweep: list[dict[str, Any]],
    meta: dict[str, Any],
    rows: Sequence[str],
) -> str:
    v = meta["versions"]
    lines = [
        "# customerio-async vs peers",
        "",
        f"- Date: {meta['date']}; {meta['python']}; CPU: {meta['cpu']} ({meta['cpus']} CPUs); "
        f"client pinned to {meta['client_affinity']}, server to {meta['server_affinity']}; "
        f"load average {meta['load']} (other processes share these CPUs)",
        f"- Packages: customerio-async {v['customerio-async']} ({meta['revision']}); "
        f"customerio {v['customerio']} (requests {v['requests']}); async-customerio "
        f"{v['async-customerio']} (httpx {v['httpx']}); aiohttp {v['aiohttp']}; "
        f"orjson {v['orjson']}",
        "- Server: `benchmarks/server.py` lean aiohttp server (FakeCustomerIO's rules: Basic "
        "auth, sizes, type/action matrix, ULID ids) on its own pinned CPU; http and https "
        f"listeners on the same counters. https: {meta['tls']}",
        f"- Command: `{meta['command']}` ({meta['elapsed_s']:.0f} s)",
        "- A snapshot of this machine, not a promise: reproduce with `nox -s bench` or "
        "`pip install -e '.[bench]' && python benchmarks/run.py`.",
        "",
    ]
    if results:
        lines += [
            "## Throughput and cost per client",
            "",
            f'Every client sends the same event, `track(f"user-{{i % 5000}}", "{EVENT}", '
            '{"amount": i, "currency": "EUR", "sku": "sku-123"})` (or its v2 batch form), '
            f"N times from its own process on one core; {meta['reps']} interleaved repetitions, "
            "median (min–max). Per-request rows use a smaller N (they are 10–100× slower); "
            "all figures are per operation.",
            "",
            *headline_table(results, rows),
            "",
            *summary(results, rows),
            "`ops/s delivered`: operations the server applied over the client's send-phase "
            "wall time (connection set-up included, interpreter start excluded). `CPU/op × "
            "limit`: client CPU per op over the limit client's in the same repetition. "
            "`peak RSS`: the client process's ru_maxrss (interpreter and imports included). "
            "`delivered / sent`: the server's count of applied operations / N; a row also "
            "fails if the client saw an error.",
            "",
        ]
    if lat:
        lines += [
            f"## Latency at a simulated {RTT * 1000:.0f} ms round trip vs the seed targets",
            "",
            f"The server sleeps {RTT * 1000:.0f} ms in every API request. Calls are sequential "
            "(one client process, kept-alive connection) except the batched end-to-end rows "
            "(20 concurrent senders, each awaiting its own delivery). Each cell: the "
            "percentile and PASS/FAIL against the target. The webhook row is the loopback "
            "round trip of a signed 2 KB event through `aiohttp_handler` (no simulated RTT: "
            "the target is processing time).",
            "",
            *latency_table(lat),
            "",
            "Batched end-to-end rows time `wait=True` confirmation (the call returns once the "
            "server has answered the request that carried the operation) with 20 concurrent "
            "callers arriving independently; a waited-for operation leaves in the next "
            "event-loop tick without lingering, in parallel with requests already on the "
            "wire. `await cio.track()` without waiting returns in microseconds (admission "
            "row) and `flush()` sends at once (batch-of-100 row).",
            "",
        ]
    if lat or scaling or results:
        lines += [
            "## Send pipeline targets",
            "",
            f"Latency at a simulated {RTT * 1000:.0f} ms round trip (batched callers arrive "
            f"independently: a random start, then an exponential pause of mean "
            f"{THINK * 1000:.0f} ms between calls); CPU and throughput from the headline "
            "table above; scaling and GC (`gc.callbacks` in the client process, the worst "
            "run) from the section below. The batched rows keep the default client-side "
            "rate limit (`RateLimit()`: 100 requests/s, Customer.io's documented soft "
            "limit): 20 callers that each wait for their own delivery ask for more "
            "requests than that, so a waited-for operation may first wait for a token "
            "(sharing the request with others that arrive meanwhile).",
            "",
            *pipeline_targets(lat, scaling, results),
            "",
        ]
    if scaling:
        lines += [
            "## Scaling with N (cost per op must stay flat, memory bounded)",
            "",
            "`bench_pipeline` clients (`default`: customerio-async default configuration; "
            "`tuned`: no client-side rate limit, 5,000-op batches; `limit`: limit client), "
            "http, same event as above.",
            "",
            "| Client | N | runs | ops/s delivered | client CPU µs/op | peak RSS MiB "
            "| delivered / sent |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        errors = []
        for key, label in SCALING_ROWS.items():
            for n in sorted({r["ops"] for r in scaling}):
                mine = [r for r in scaling if r["row"] == key and r["ops"] == n]
                if not mine:
                    continue
                good = [r for r in mine if "error" not in r]
                counts = sorted({r["server_ops"] for r in mine if "server_ops" in r})
                ok = good and all(r["ok"] for r in good) and len(good) == len(mine)
                lines.append(
                    f"| {label} | {n:,} | {len(mine)} "
                    f"| {_fmt([r['ops_per_s'] for r in good], ',.0f')} "
                    f"| {_fmt([r['cpu_us_per_op'] for r in good], '.2f')} "
                    f"| {_fmt([r['rss_peak_kb'] / 1024 for r in good], '.0f')} "
                    f"| {'/'.join(f'{c:,}' for c in counts) or '–'} / {n:,}"
                    f"{'' if ok else ' FAILING'} |"
                )
                for r in mine:
                    if "error" in r:
                        applied = r.get("server_ops", 0)
                        requests = r.get("server_requests", 0)
                        errors.append(
                            f"- {label}, N={n:,}: {r['error']} (client timeout "
                            f"{SCALING_TIMEOUT:.0f} s); the server had applied {applied:,} "
                            f"operations in {requests:,} requests "
                            f"({applied / max(1, requests):,.0f} ops/request)."
                        )
        lines.append("")
        if errors:
            lines += ["Failed runs:", "", *errors, ""]
    if sweep:
        lines += [
            "## Throughput vs `max_concurrent_requests`",
            "",
            "customerio-async default configuration except "
            "`BatchConfig(max_concurrent_requests=k)`, http, one run each.",
            "",
            "| k | network | N | ops/s delivered | client CPU µs/op | delivered / sent |",
            "|--:|---|--:|--:|--:|--:|",
        ]
        for r in sweep:
            if "error" in r:
                error = r["error"][:60]
                lines.append(f"| {r['lanes']} | {r['network']} | {r['ops']:,} | {error} | – | – |")
                continue
            lines.append(
                f"| {r['lanes']} | {r['network']} | {r['ops']:,} | {r['ops_per_s']:,.0f} "
                f"| {r['cpu_us_per_op']:.2f} | {r['server_ops']:,} / {r['ops']:,}"
                f"{'' if r['ok'] else ' FAILING'} |"
            )
        lines.append("")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_peers", description="customerio-async side by side with its peers."
    )
    parser.add_argument("--quick", action="store_true", help="N/10, 1 rep, fewer samples")
    parser.add_argument("--reps", type=int, default=None, help="interleaved reps (3)")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated client rows")
    parser.add_argument(
        "--sections",
        default="headline,latency,scaling",
        help="comma-separated: headline, latency, scaling",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per client run, seconds")
    parser.add_argument("--no-write", dest="write", action="store_false")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a row is FAILING")
    parser.add_argument(
        "--render",
        action="store_true",
        help="rewrite peers.md and chart.png from peers.json (no new measurement)",
    )
    # client role (internal)
    parser.add_argument("--client", choices=tuple(ROWS), help=argparse.SUPPRESS)
    parser.add_argument("--latency-client", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ops", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--lanes", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python benchmarks/bench_peers.py [--quick] [--sections …]``."""
    args, unknown = build_parser().parse_known_args(argv)
    if args.client or args.latency_client:
        return client_main(args)
    if unknown:
        print(f"bench_peers: ignoring options meant for other benchmarks: {' '.join(unknown)}")
    if args.render:
        return render_saved()
    return parent_main(args)


def render_saved() -> int:
    """Rewrite ``peers.md`` and the chart from ``peers.json`` (after a report change)."""
    saved = json.loads((RESULTS / "peers.json").read_text())
    results = saved["results"]
    rows = list(dict.fromkeys(r["row"] for r in results))
    report = render(
        results, saved["latency"], saved["scaling"], saved["sweep"], saved["meta"], rows
    )
    (RESULTS / "peers.md").write_text(report)
    print(f"written: {RESULTS / 'peers.md'}")
    if results:
        print(_chart(results, rows, saved["meta"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
