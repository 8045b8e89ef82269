"""The sync facade from threads: caller-side cost per call, CPU per operation, and what is
lost when the process exits, against the official SDK and a thread+queue consumer.

``python benchmarks/bench_sync.py [--ops N] [--threads 8] [--reps R] [--quick]`` (or
``python benchmarks/run.py --bench sync``). One fake server (``benchmarks/server.py``, lean,
pinned to CPU 1, https with a throwaway CA so that every row takes its production path: the
official SDK only speaks https); every row is a fresh client process pinned to CPU 0 where
``--threads`` threads call at once (they share one core and the GIL, like a threaded WSGI
worker).

Rows:

* ``empty``: the harness around a call that does nothing (the timers' own cost).
* ``validate``: only building the operation (``calls.event``: validation + serialisation),
  what every customerio-async call costs before the hand-off.
* ``handoff``: ``CustomerIO.send(op)`` with operations built before the clock starts: the
  hand-off alone (the facade's own per-call cost).
* ``sync``: ``customerio_async.sync.CustomerIO().track(...)``: build + hand-off.
* ``official``: the official ``customerio`` SDK, one client per thread: one blocking HTTPS
  request per call (its per-call path).
* ``queue``: a consumer thread draining a ``queue.Queue`` in batches of 100 over
  ``requests``, in the style of Segment's analytics-python: its ``atexit`` hook pauses and
  joins the consumer, which is not a flush.

Per call, in the calling thread: CPU time (``time.thread_time_ns``, the metric gated at
≤ 10 µs p99: it is what the call costs the thread) and wall-clock time (``perf_counter_ns``;
with 8 threads on one GIL its tail includes waiting for the other threads, so it measures
the interpreter's scheduling rather than the call). Per row: process CPU per operation from
the first call until everything was delivered (loop/consumer threads included), and, in a
second process that sends then simply returns from ``main`` (no close, no flush), how many
operations the server never received.

Writes ``benchmarks/results/sync.md`` and ``sync.json``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import queue
import resource
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_peers as peers  # found through the path set just above
import bench_pipeline as bp

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROWS = ("empty", "validate", "handoff", "sync", "official", "queue")
EXIT_ROWS = ("sync", "queue", "official")
GATE_US = 10.0
LABELS = {
    "empty": "harness only (timers around a no-op)",
    "validate": "customerio-async: build the operation only",
    "handoff": "customerio-async sync facade, hand-off only: send(prebuilt operation)",
    "sync": "customerio-async sync facade: track()",
    "official": "customerio (official) per-call request",
    "queue": "thread + queue consumer (analytics-python style)",
}


# ============================================================================ client side


class QueueClient:
    """A minimal analytics-python-style client: ``put`` on a bounded queue, one daemon
    consumer posting batches of up to 100 every 0.5 s with ``requests``; at exit it pauses
    and joins the consumer (what analytics-python registers with ``atexit``)."""

    def __init__(self, url: str) -> None:
        import requests

        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(10_000)
        self._session = requests.Session()
        self._session.headers["Authorization"] = peers._auth()
        self._url = url + "/api/v2/batch"
        self.sent = self.dropped = 0
        self.running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        atexit.register(self.join)

    def track(self, person: str, name: str, data: dict[str, Any]) -> None:
        """Validate a little, build the message, queue it (dropped when full)."""
        if not person or not name:
            raise ValueError("person and name are required")
        op = {"type": "person", "action": "event", "identifiers": {"id": person}}
        op.update(name=name, attributes=data)
        try:
            self._queue.put_nowait(op)
        except queue.Full:  # analytics-python drops (and logs) too
            self.dropped += 1

    def _run(self) -> None:
        while self.running:
            batch = self._next()
            if batch:
                body = json.dumps({"batch": batch}).encode()
                self._session.post(self._url, data=body, timeout=15).raise_for_status()
                self.sent += len(batch)

    def _next(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start = time.monotonic()
        while len(items) < 100:
            left = 0.5 - (time.monotonic() - start)
            if left <= 0:
                break
            try:
                items.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        return items

    def flush(self) -> None:
        """Wait until the queue is empty and the last batch was posted."""
        while not self._queue.empty():
            time.sleep(0.01)
        self.join()

    def join(self) -> None:
        """Pause the consumer and wait for it (not a flush: queued messages stay queued)."""
        self.running = False
        self._thread.join()


def _sender(row: str, url: str, n: int) -> tuple[Callable[[int], object], Callable[[], int]]:
    """The call to measure for ``row`` and how to finish (deliver everything) after it."""
    if row == "empty":
        return (lambda i: None), (lambda: 0)
    if row == "validate":
        from customerio_async._track import calls

        def build(i: int) -> object:
            return calls.event(peers._person(i), peers.EVENT, peers._data(i), "event")

        return build, (lambda: 0)
    if row in ("sync", "handoff"):
        from customerio_async._track import calls
        from customerio_async.sync import CustomerIO

        cio = CustomerIO(bp.SITE_ID, bp.API_KEY, track_url=url)
        cio.open()

        def finish() -> int:
            cio.flush(120)
            delivered = cio.statistics().delivered
            cio.close(30)
            return delivered

        if row == "handoff":
            built = [calls.event(peers._person(i), peers.EVENT, peers._data(i)) for i in range(n)]
            return (lambda i: cio.send(built[i])), finish
        return (lambda i: cio.track(peers._person(i), peers.EVENT, peers._data(i))), finish
    if row == "official":
        local = threading.local()

        def official(i: int) -> object:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = peers._official(url)
            return client.track(peers._person(i), peers.EVENT, peers._data(i))

        return official, (lambda: -1)
    client = QueueClient(url)
    QUEUES.append(client)

    def drain() -> int:
        client.flush()
        return client.sent

    return (lambda i: client.track(peers._person(i), peers.EVENT, peers._data(i))), drain


QUEUES: list[QueueClient] = []  # to report what the queue row dropped at the call


def _pct(samples: list[int], q: float) -> float:
    if not samples:  # e.g. no call of the official SDK runs without being switched out
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def client_main(args: argparse.Namespace) -> int:
    """Run one row in this process; print one JSON line."""
    pin = bp._pin(0)
    me = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    call, finish = _sender(args.client, args.url, args.ops)
    n, threads = args.ops, args.threads
    cpu: list[list[int]] = [[] for _ in range(threads)]
    wall: list[list[int]] = [[] for _ in range(threads)]
    quiet: list[list[int]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    tt, pc, usage = time.thread_time_ns, time.perf_counter_ns, resource.getrusage

    def work(t: int) -> None:
        my_cpu, my_wall, my_quiet = cpu[t], wall[t], quiet[t]
        start.wait()
        for i in range(t, n, threads):
            r0 = usage(me)
            c0, w0 = tt(), pc()
            call(i)
            w1, c1 = pc(), tt()
            r1 = usage(me)
            my_cpu.append(c1 - c0)
            my_wall.append(w1 - w0)
            # Not switched out during the call (no GIL hand-off, no preemption): the
            # call's own cost, without the scheduler's.
            if r1.ru_nvcsw == r0.ru_nvcsw and r1.ru_nivcsw == r0.ru_nivcsw:
                my_quiet.append(c1 - c0)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    cpu0, _ = bp._usage()
    t0 = time.perf_counter()
    start.wait()
    for w in workers:
        w.join()
    send_s = time.perf_counter() - t0
    out: dict[str, Any] = {"row": args.client, "ops": n, "threads": threads, "pin": pin}
    if args.mode == "send":
        delivered = finish()
        cpu1, rss = bp._usage()
        out.update(delivered=delivered, cpu_s=cpu1 - cpu0, total_s=time.perf_counter() - t0)
        out["rss_kb"] = rss
    out["send_s"] = send_s
    out["dropped_at_call"] = sum(q.dropped for q in QUEUES)
    flat_cpu = [x for s in cpu for x in s]
    flat_wall = [x for s in wall for x in s]
    out["caller_cpu_us"] = {q: _pct(flat_cpu, v) for q, v in (("p50", 0.5), ("p99", 0.99))}
    out["caller_wall_us"] = {q: _pct(flat_wall, v) for q, v in (("p50", 0.5), ("p99", 0.99))}
    flat_quiet = [x for s in quiet for x in s]
    out["caller_cpu_quiet_us"] = {q: _pct(flat_quiet, v) for q, v in (("p50", 0.5), ("p99", 0.99))}
    out["quiet_share"] = len(flat_quiet) / len(flat_cpu)
    out["caller_cpu_mean_us"] = statistics.fmean(flat_cpu) / 1000.0
    print(json.dumps(out), flush=True)
    return 0  # "exit" mode: the interpreter exits now, with whatever is still queued


# ============================================================================ parent side


def _run(row: str, url: str, args: argparse.Namespace, env: dict[str, str], mode: str) -> Any:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--client", row, "--url", url]
    cmd += ["--ops", str(_ops(row, args)), "--threads", str(args.threads), "--mode", mode]
    return peers._subprocess(cmd, env, 600)


def _ops(row: str, args: argparse.Namespace) -> int:
    # The official row is one HTTPS request per call: a tenth of the operations.
    return max(200, args.ops // 10) if row == "official" else int(args.ops)


def _settled(server: bp.Server, timeout: float = 30.0) -> int:
    """The server's operation count once it stopped changing (the client has exited)."""
    deadline, last, stable = time.monotonic() + timeout, -1, 0
    while time.monotonic() < deadline and stable < 5:
        ops = int(server.stats()["ops"])
        stable = stable + 1 if ops == last else 0
        last = ops
        time.sleep(0.1)
    return last


def measure(args: argparse.Namespace, server: bp.Server, env: dict[str, str]) -> dict[str, Any]:
    """Every row, ``args.reps`` times interleaved, then the exit rows."""
    url = server.tls_url or server.url
    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in ROWS}
    for rep in range(args.reps):
        for row in ROWS:
            server.reset()
            result = _run(row, url, args, env, "send")
            if "error" not in result:
                result["server_ops"] = _settled(server)
            runs[row].append(result)
            print(f"  rep {rep + 1} {row}: {_brief(result)}", flush=True)
    exits: dict[str, dict[str, Any]] = {}
    for row in EXIT_ROWS:
        server.reset()
        result = _run(row, url, args, env, "exit")
        if "error" not in result:
            result["server_ops"] = _settled(server)
            result["lost"] = result["ops"] - result["server_ops"] - result["dropped_at_call"]
        exits[row] = result
        print(f"  exit {row}: lost {result.get('lost', result.get('error'))}", flush=True)
    return {"runs": runs, "exits": exits}


def _brief(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"ERROR {result['error']}"
    cpu, wall = result["caller_cpu_us"], result["caller_wall_us"]
    return (
        f"cpu p50/p99 {cpu['p50']:.1f}/{cpu['p99']:.1f} µs, "
        f"wall p50/p99 {wall['p50']:.1f}/{wall['p99']:.1f} µs, server {result['server_ops']}"
    )


def _median(results: list[dict[str, Any]], pick: Callable[[dict[str, Any]], float]) -> float:
    values = [pick(r) for r in results if "error" not in r]
    return statistics.median(values) if values else float("nan")


def render(data: dict[str, Any], meta: dict[str, Any]) -> str:
    """The markdown report."""
    runs, exits = data["runs"], data["exits"]
    lines = [
        "# Sync facade: caller-side cost, CPU per operation, operations lost at exit",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; Python {meta['python']}; {meta['when']}; load average "
        f"at the end {meta['load']} (a shared machine: compare rows, not runs)  ",
        f"{meta['threads']} threads calling at once in one process pinned to CPU 0 (one GIL, "
        "one core); the server is the lean fake on CPU 1, over https. Medians of "
        f"{meta['reps']} interleaved repetitions.",
        "",
        "| row | ops | caller CPU/call p50 | p99 | p99 of calls not switched out (share) "
        "| caller wall/call p50 | p99 | process CPU/op (to delivered) | delivered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ROWS:
        results = runs[row]
        ok = [r for r in results if "error" not in r]
        if not ok:
            lines.append(f"| {LABELS[row]} | – | error: {results[0].get('error')} ||||||")
            continue
        ops = ok[0]["ops"]
        per_op = _median(ok, lambda r: r["cpu_s"] / r["ops"] * 1e6)
        delivered = "–" if row in ("empty", "validate") else f"{ok[0]['server_ops']:,}/{ops:,}"
        lines.append(
            f"| {LABELS[row]} | {ops:,} "
            f"| {_median(ok, lambda r: r['caller_cpu_us']['p50']):.1f} µs "
            f"| {_median(ok, lambda r: r['caller_cpu_us']['p99']):.1f} µs "
            f"| {_median(ok, lambda r: r['caller_cpu_quiet_us']['p99']):.1f} µs "
            f"({_median(ok, lambda r: r['quiet_share']):.0%}) "
            f"| {_median(ok, lambda r: r['caller_wall_us']['p50']):.1f} µs "
            f"| {_median(ok, lambda r: r['caller_wall_us']['p99']):.1f} µs "
            f"| {per_op:.1f} µs | {delivered} |"
        )
    lines += _gate(runs)
    lines += [
        "",
        "| exit right after sending | ops | dropped at the call (queue full) | lost at exit |",
        "|---|---:|---:|---:|",
    ]
    for row in EXIT_ROWS:
        result = exits[row]
        lost = result.get("lost", f"error: {result.get('error')}")
        dropped = result.get("dropped_at_call", "–")
        lines.append(f"| {LABELS[row]} | {result.get('ops', '–')} | {dropped} | {lost} |")
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


def _gate(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [""]
    for row in ("handoff", "sync"):
        quiet = _median(runs[row], lambda r: r["caller_cpu_quiet_us"]["p99"])
        every = _median(runs[row], lambda r: r["caller_cpu_us"]["p99"])
        lines.append(
            f"- **Gate, {LABELS[row]}: caller CPU per call p99 ≤ {GATE_US:.0f} µs with "
            f"{len(runs[row]) and runs[row][0].get('threads', 8)} threads, calls not switched "
            f"out: {'PASS' if quiet <= GATE_US else 'FAIL'}** ({quiet:.1f} µs); over every "
            f"call: {'PASS' if every <= GATE_US else 'FAIL'} ({every:.1f} µs)."
        )
    lines.append("- Timers are included in every figure (see the harness row for their cost).")
    return lines


NOTES = """Notes:

* *Caller CPU/call* is `time.thread_time_ns()` around one call in the calling thread: what
  the call costs the thread that makes it (validation, serialisation, the hand-off; for the
  official SDK, building and doing the HTTPS request). The gate reads its p99 over the
  calls during which the thread was not switched out (`getrusage(RUSAGE_THREAD)` context
  switch counts unchanged): a call that loses the core or hands the GIL over pays the
  kernel's switch and cold caches in its own CPU time, whatever it does — the
  build-only row pays it the same way. Both p99s are shown; the share of calls kept is
  in parentheses.
* *Caller wall/call* adds whatever happened meanwhile on the one core: with 8 threads on
  one GIL a call that is interrupted by the 5 ms switch interval waits for the others, so
  its tail measures the interpreter's scheduling, not the call; it is reported, not gated.
  For the official SDK it is dominated by the HTTPS round trip.
* *Process CPU/op* is the client process's user+system CPU from the first call until the
  last operation was delivered, all threads (the loop thread's batching and HTTP included),
  divided by the operations.
* The queue row's queue is bounded at 10,000 (analytics-python's default `max_queue_size`)
  and drops at the call when full: with 8 threads outrunning one consumer that posts 100
  at a time, most operations never leave the process (its *delivered* column).
* *Lost at exit*: a second process sends the operations and returns from `main` without
  closing or flushing. customerio-async's `atexit` hook drains within `drain_timeout`; the
  queue consumer's hook (like analytics-python's) joins its consumer, which is not a
  flush; the official SDK sends during the call, so it has nothing left to lose.
"""


def parent_main(args: argparse.Namespace) -> int:
    """Start the server, run every row, write the results."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cio-sync-") as tmp_name:
        tls_args, ca_file, _ = peers._make_tls(Path(tmp_name))
        env = dict(os.environ)
        if ca_file:
            env.update(SSL_CERT_FILE=ca_file, REQUESTS_CA_BUNDLE=ca_file)
        server = bp.Server("lean", False, env, extra=tls_args)
        try:
            data = measure(args, server, env)
        finally:
            server.stop()
    meta = {
        "command": "python benchmarks/bench_sync.py " + shlex.join(args.argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {bp._cpu_model()}",
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "threads": args.threads,
        "reps": args.reps,
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    report = render(data, meta)
    (RESULTS / "sync.md").write_text(report)
    (RESULTS / "sync.json").write_text(json.dumps({"meta": meta, **data}, indent=1) + "\n")
    print(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line (shared by the parent and the client processes)."""
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_sync.py")
    parser.add_argument("--ops", type=int, default=40_000, help="operations per row")
    parser.add_argument("--threads", type=int, default=8, help="calling threads")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--quick", action="store_true", help="a smoke run (ops/10, 1 rep)")
    parser.add_argument("--client", choices=ROWS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("send", "exit"), default="send", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: a client row (internal) or the whole benchmark."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, _ = build_parser().parse_known_args(argv)
    if args.client:
        return client_main(args)
    if args.quick:
        args.ops, args.reps = max(1000, args.ops // 10), 1
    args.argv = argv
    return parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
