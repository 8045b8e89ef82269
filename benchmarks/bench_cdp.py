"""Data Pipelines: ``PipelinesClient`` vs the official ``customerio-cdp-analytics``.

``python benchmarks/bench_cdp.py`` (or ``python benchmarks/run.py --bench cdp``). One run, one
machine, one server:

* The server is a lean ``/v1/batch`` + ``/v1/alias`` server (below, ``--serve``) in its own
  process pinned to CPU 1. It applies the fake's Pipelines rules
  (``customerio_async.testing._rules_pipelines``: Basic auth with the write key and an empty
  password, gzip bodies, the 32 KB / 500 KB sizes, every message checked against the vendor
  document's shapes) and counts what arrived, what the rules accept, duplicates by
  ``messageId``, bytes on the wire and bytes of JSON.
* Throughput: every client row runs in a fresh subprocess pinned to CPU 0 and sends N
  ``track(f"user-{i % 5000}", "purchased", {"amount": i, "currency": "EUR", "sku":
  "sku-123"})``, then waits until everything is delivered (ours: the ``async with`` block's
  drain; analytics-python: ``flush()``). Per row: messages/s over that wall time, client CPU
  µs per message (``getrusage`` user+sys of the client process, all threads), wire bytes per
  message, and what the server received. 3 interleaved repetitions, median (min–max); the
  server only counts here. Then one conformance run per row (2,000 messages) against the same
  server checking every message with the fake's Pipelines rules ("valid").
* Exit: a process sends 500 messages and exits at once (no flush, no wait): ours at the end
  of ``asyncio.run(main())``, whose ``async with`` drains within ``drain_timeout``;
  analytics-python at the end of the script (its ``atexit`` handler stops the consumer
  thread). Lost = 500 − what the server received.
* gzip: compression cost and ratio of real ``/v1/batch`` bodies at levels 1, 6 and 9.

Writes ``benchmarks/results/cdp.md`` and ``cdp.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import gzip
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from aiohttp import web
from server import cpu_seconds, pin_to_cpu  # found through the path set just above

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WRITE_KEY = "bench-write-key"
USERS = 5000
CLIENT_CPU, SERVER_CPU = 0, 1
EXIT_N = 500
CONFORMANCE_N = 2000
ROWS = {
    "ours": ("customerio-async PipelinesClient", "defaults (gzip on, level 1)"),
    "ours-plain": ("customerio-async PipelinesClient", "gzip=False"),
    "cdp": (
        "customerio-cdp-analytics Client",
        "defaults (1 thread, upload_size 100, queue 10,000)",
    ),
    "cdp-queue": ("customerio-cdp-analytics Client", "max_queue_size=N"),
    "cdp-gzip": ("customerio-cdp-analytics Client", "max_queue_size=N, gzip=True"),
}
EXIT_ROWS = {
    "ours": "customerio-async: `async with PipelinesClient(...)`, exit after the last call",
    "cdp": "customerio-cdp-analytics: `Client(...)`, exit after the last call",
    "cdp-flush": "customerio-cdp-analytics: `Client(...)`, `flush()` before exit",
}


def _data(i: int) -> dict[str, Any]:
    return {"amount": i, "currency": "EUR", "sku": "sku-123"}


# ============================================================================ server


class CdpServer:
    """Counts what arrives at ``/v1/batch`` and ``/v1/alias`` (see the module docstring)."""

    def __init__(self, write_key: str) -> None:
        from customerio_async.testing import _rules_pipelines as cdp

        self._cdp = cdp
        token = base64.b64encode(f"{write_key}:".encode()).decode()
        self._auth = f"Basic {token}"
        self.reset()

    def reset(self, validate: bool = False) -> None:
        self.validate = validate
        self.stats: Counter[str] = Counter()
        self.libraries: Counter[str] = Counter()
        self.seen: set[str] = set()
        self.cpu0 = cpu_seconds()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/batch", self._batch)
        app.router.add_post("/v1/alias", self._alias)
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        return app

    async def _read(self, request: web.Request) -> bytes | None:
        self.stats["requests"] += 1
        if request.headers.get("Authorization") != self._auth:
            self.stats["unauthorized"] += 1
            return None
        body = await request.read()
        self.stats["wire_bytes"] += len(body)
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        self.stats["json_bytes"] += len(body)
        return body

    def _count(self, item: Any, check: Any) -> None:
        stats = self.stats
        stats["received"] += 1
        library = (item.get("context") or {}).get("library") or {}
        self.libraries[str(library.get("name"))] += 1
        if self.validate:
            try:
                check(item)
            except self._cdp.RuleViolation:
                stats["invalid"] += 1
                return
        mid = item.get("messageId")
        if mid in self.seen:
            stats["duplicates"] += 1
            return
        self.seen.add(mid)
        stats["accepted"] += 1

    async def _batch(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        if body is None:
            return web.Response(status=401)
        for item in orjson.loads(body).get("batch", []):
            self._count(item, self._cdp.check_batch_item)
        return web.Response(body=b"{}", content_type="application/json")

    async def _alias(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        if body is None:
            return web.Response(status=401)
        self._count(orjson.loads(body), lambda m: self._cdp.check_message("alias", m))
        return web.Response(body=b"{}", content_type="application/json")

    async def _stats(self, _request: web.Request) -> web.Response:
        out = {**self.stats, "libraries": dict(self.libraries), "cpu_s": cpu_seconds() - self.cpu0}
        return web.json_response(out)

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset(validate=request.query.get("validate") == "1")
        return web.json_response({})


async def _serve() -> None:
    pin_to_cpu(SERVER_CPU)
    server = CdpServer(WRITE_KEY)
    # auto_decompress=False: count the bytes as they came over the wire, then gunzip.
    runner = web.AppRunner(server.app(), access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}"}), flush=True)
    # Until the parent closes our stdin (or goes away).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


# ============================================================================ clients


def _usage() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _ours(n: int, url: str, gzip_on: bool) -> None:
    from customerio_async import PipelinesClient

    async with PipelinesClient(WRITE_KEY, url, gzip=gzip_on) as client:
        for i in range(n):
            await client.track(f"user-{i % USERS}", "purchased", _data(i))


def _cdp(n: int, url: str, row: str) -> int:
    from customerio.analytics.client import Client

    options: dict[str, Any] = {}
    if row in ("cdp-queue", "cdp-gzip"):
        options["max_queue_size"] = n
    if row == "cdp-gzip":
        options["gzip"] = True
    client = Client(WRITE_KEY, host=url, **options)
    queued = sum(1 for i in range(n) if client.track(f"user-{i % USERS}", "purchased", _data(i))[0])
    client.flush()
    return queued


def client_main(row: str, n: int, url: str) -> None:
    """One throughput row in this process; prints one JSON line."""
    pin_to_cpu(CLIENT_CPU)
    # Imports before the clock starts: only the sending is measured.
    import customerio.analytics.client  # noqa: F401

    import customerio_async  # noqa: F401

    cpu0, t0 = _usage(), time.perf_counter()
    queued = n
    if row.startswith("ours"):
        asyncio.run(_ours(n, url, gzip_on=row == "ours"))
    else:
        queued = _cdp(n, url, row)
    wall, cpu = time.perf_counter() - t0, _usage() - cpu0
    print(json.dumps({"row": row, "n": n, "queued": queued, "wall_s": wall, "cpu_s": cpu}))


def exit_main(row: str, n: int, url: str) -> None:
    """Send ``n`` messages and let the process end (the exit scenario)."""
    pin_to_cpu(CLIENT_CPU)
    if row == "ours":
        asyncio.run(_ours(n, url, gzip_on=True))
        return
    from customerio.analytics.client import Client

    client = Client(WRITE_KEY, host=url)
    for i in range(n):
        client.track(f"user-{i % USERS}", "purchased", _data(i))
    if row == "cdp-flush":
        client.flush()
    # The script ends here: analytics-python's atexit handler stops its consumer thread.


# ============================================================================ parent side


class Server:
    """The ``--serve`` subprocess and its control endpoints."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = json.loads(self.proc.stdout.readline())["url"]

    def _call(self, method: str, path: str) -> dict[str, Any]:
        import urllib.request

        request = urllib.request.Request(self.url + path, method=method)  # noqa: S310 - http
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            result: dict[str, Any] = json.loads(response.read())
        return result

    def reset(self, validate: bool = False) -> None:
        self._call("POST", "/_reset?validate=1" if validate else "/_reset")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_stats")

    def settled(self) -> dict[str, Any]:
        """Stats once nothing more arrives (two equal reads 0.2 s apart)."""
        last = self.stats()
        while True:
            time.sleep(0.2)
            now = self.stats()
            if now.get("received") == last.get("received"):
                return now
            last = now

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return {"error": tail[0][:200]}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def run_rows(server: Server, n: int, reps: int) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {row: [] for row in ROWS}
    for _ in range(reps):
        for row in ROWS:  # interleaved: A B C … A B C …
            server.reset()
            out = _child(["--client", row, "--n", str(n), "--url", server.url], 300)
            out["server"] = server.settled()
            results[row].append(out)
    for row in ROWS:  # conformance: the server checks every message against the rules
        server.reset(validate=True)
        out = _child(["--client", row, "--n", str(CONFORMANCE_N), "--url", server.url], 300)
        out["server"] = server.settled()
        out["conformance"] = True
        results[row].append(out)
    return results


def run_exits(server: Server, reps: int) -> dict[str, list[int]]:
    lost: dict[str, list[int]] = {row: [] for row in EXIT_ROWS}
    for _ in range(reps):
        for row in EXIT_ROWS:
            server.reset()
            _child(["--exit", row, "--n", str(EXIT_N), "--url", server.url], 120)
            lost[row].append(EXIT_N - int(server.settled().get("received", 0)))
    return lost


def gzip_levels(n: int = 20_000) -> list[dict[str, float]]:
    """CPU per message and ratio of gzip on ~450 KB ``/v1/batch`` bodies of our messages."""
    from customerio_async._cdp import messages

    parts = [messages.track(f"user-{i % USERS}", "purchased", _data(i)).data for i in range(n)]
    per_batch = 450_000 // (len(parts[0]) + 1)
    bodies = [
        b'{"batch":[' + b",".join(parts[i : i + per_batch]) + b"]}" for i in range(0, n, per_batch)
    ]
    out = []
    for level in (1, 6, 9):
        started = time.process_time()
        packed = 0
        for body in bodies:
            packer = zlib.compressobj(level, zlib.DEFLATED, 31)
            packed += len(packer.compress(body) + packer.flush())
        cpu = time.process_time() - started
        plain = sum(map(len, bodies))
        out.append({"level": level, "us_per_msg": cpu / n * 1e6, "ratio": plain / packed})
    return out


# ============================================================================ report


def _med(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    low, mid, high = (format(f(values), fmt) for f in (min, statistics.median, max))
    return f"{mid} ({low}–{high})"


def _row_line(row: str, runs: list[dict[str, Any]], n: int) -> str:
    name, config = ROWS[row]
    ok = [r for r in runs if "error" not in r and not r.get("conformance")]
    checked = [r for r in runs if r.get("conformance") and "error" not in r]
    if not ok:
        return f"| {name} | {config} | {n:,} | FAILED: {runs[0].get('error')} | | | | |"
    rate = [r["server"].get("received", 0) / r["wall_s"] for r in ok]
    cpu = [r["cpu_s"] / r["n"] * 1e6 for r in ok]
    wire = [r["server"].get("wire_bytes", 0) / max(1, r["server"].get("received", 1)) for r in ok]
    received = min(r["server"].get("received", 0) for r in ok)
    valid = (
        f"{checked[0]['server'].get('accepted', 0):,} / {checked[0]['n']:,}" if checked else "n/a"
    )
    return (
        f"| {name} | {config} | {n:,} | {_med(rate, ',.0f')} | {_med(cpu, '.1f')} | "
        f"{_med(wire, '.0f')} | {received:,} / {n:,} | {valid} |"
    )


def report(results: dict[str, Any], command: str, elapsed: float) -> str:
    """The markdown of ``results/cdp.md``."""
    import customerio_async

    n = results["n"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    from importlib.metadata import version

    lines = [
        "# Data Pipelines: customerio-async vs customerio-cdp-analytics",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; CPython "
        f"{platform.python_version()}; {os.cpu_count()} CPUs; client pinned to cpu{CLIENT_CPU}, "
        f"server to cpu{SERVER_CPU}; load average {load[0]:.2f} at the end (other processes "
        "share these CPUs)",
        f"- Packages: customerio-async {customerio_async.__version__}; customerio-cdp-analytics "
        f"{version('customerio-cdp-analytics')} (requests {version('requests')}); aiohttp "
        f"{version('aiohttp')}; orjson {version('orjson')}",
        "- Server: the lean `/v1/batch` server of `benchmarks/bench_cdp.py` (Basic auth with "
        "the write key, gzip, messageId de-duplication; the fake's Pipelines rules in the "
        "conformance runs) on its own pinned CPU",
        f"- Command: `{command}` ({elapsed:.0f} s)",
        "",
        "## Throughput and cost per message",
        "",
        f'Every client sends `track(f"user-{{i % 5000}}", "purchased", {{"amount": i, '
        f'"currency": "EUR", "sku": "sku-123"}})` N times from its own process on one core, '
        f"then waits until all is delivered; {results['reps']} interleaved repetitions, median "
        "(min–max); the server only counts (and de-duplicates) here. *Valid*: a separate run "
        f"of {CONFORMANCE_N:,} messages per row against the same server checking every message "
        "with the fake's Pipelines rules (the vendor document's shapes); analytics-python "
        'sends `"anonymousId": null` for an omitted anonymous id, which the document types as '
        "a string (strict mode refuses it, permissive mode drops it).",
        "",
        "| Client | Config | N | msgs/s delivered | client CPU µs/msg | wire bytes/msg | "
        "received / sent | valid |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
        *(_row_line(row, runs, n) for row, runs in results["rows"].items()),
        "",
        f"## Messages lost when the process exits right after sending ({EXIT_N} sent)",
        "",
        "| Client | lost (each repetition) |",
        "|---|---|",
        *(
            f"| {EXIT_ROWS[row]} | {', '.join(map(str, lost))} |"
            for row, lost in results["exit"].items()
        ),
        "",
        "## gzip of ~450 KB `/v1/batch` bodies (our messages)",
        "",
        "| level | CPU µs/msg | ratio |",
        "|--:|--:|--:|",
        *(f"| {g['level']} | {g['us_per_msg']:.2f} | {g['ratio']:.1f}× |" for g in results["gzip"]),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or one of its subprocess roles)."""
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_cdp.py")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=sorted(ROWS), help=argparse.SUPPRESS)
    parser.add_argument("--exit", choices=sorted(EXIT_ROWS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=50_000, help="messages per row (default 50,000)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--exit-reps", type=int, default=5, help="exit repetitions (default 5)")
    parser.add_argument("--quick", action="store_true", help="N=5,000, 1 repetition")
    args, _unknown = parser.parse_known_args(argv)
    if args.serve:
        asyncio.run(_serve())
        return 0
    if args.client:
        client_main(args.client, args.n, args.url)
        return 0
    if args.exit:
        exit_main(args.exit, args.n, args.url)
        return 0
    n, reps, exit_reps = (5_000, 1, 2) if args.quick else (args.n, args.reps, args.exit_reps)
    started = time.monotonic()
    server = Server()
    try:
        rows = run_rows(server, n, reps)
        exits = run_exits(server, exit_reps)
    finally:
        server.close()
    results = {"n": n, "reps": reps, "rows": rows, "exit": exits, "gzip": gzip_levels()}
    command = "python benchmarks/bench_cdp.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    text = report(results, command.strip(), time.monotonic() - started)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cdp.md").write_text(text)
    (RESULTS / "cdp.json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
