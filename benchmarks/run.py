"""Run the benchmarks: ``python benchmarks/run.py [--bench NAME …] [benchmark options]``.

``nox -s bench -- [args]`` calls this. Without ``--bench`` every registered benchmark runs;
the remaining arguments go to each of them (see ``python benchmarks/run.py --help-bench
NAME``). Registered:

* ``pipeline``: ``bench_pipeline.py``, customerio-async against the minimal limit client in
  separate processes (``--quick``, ``--ops N``, ``--reps N``, ``--profile`` …).
* ``peers``: ``bench_peers.py``, customerio-async side by side with the official
  ``customerio``, ``async-customerio``, a plain aiohttp loop, the seed recipe and the limit
  client (throughput, CPU/op, RSS, latency at 50 ms RTT vs the seed targets, scaling to 1M
  operations); writes ``results/peers.md`` and ``results/chart.png`` (``--quick``,
  ``--reps N``, ``--sections headline,latency,scaling``). Needs ``pip install -e '.[bench]'``.
* ``cdp``: ``bench_cdp.py``, ``PipelinesClient`` against ``customerio-cdp-analytics`` (test
  extra): msgs/s, CPU/msg, wire bytes, messages lost at exit, gzip levels; ``results/cdp.md``.
* ``sync``: ``bench_sync.py``, the sync facade from 8 threads: caller-side CPU and wall time
  per call, CPU per operation and operations lost at exit, against the official SDK and an
  analytics-python-style thread+queue consumer; writes ``results/sync.md``.
* ``fleet``: ``bench_fleet.py``, the Redis limiter (``redis`` extra, a real ``redis-server``):
  client CPU and latency per gate turn, and the four-process budget, 429-pause and
  Redis-restart proof; writes ``results/fleet.md``.

Examples::

    python benchmarks/run.py                       # everything (~10 min on 2 cores; peers ~6)
    python benchmarks/run.py --bench peers         # the peer comparison only
    python benchmarks/run.py --quick --reps 1      # smoke run
    python benchmarks/run.py --profile-only        # cProfile the default-config client
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_peers  # found through the path set just above
import bench_pipeline

__all__ = ["BENCHMARKS", "main"]

HERE = Path(__file__).resolve().parent


def _standalone(script: str) -> Callable[[Sequence[str]], int]:
    """A benchmark with its own options, run as a script (shared options are not passed)."""

    def run(_argv: Sequence[str]) -> int:
        return subprocess.run([sys.executable, str(HERE / script)], check=False).returncode

    return run


BENCHMARKS: dict[str, Callable[[Sequence[str]], int]] = {
    "pipeline": bench_pipeline.main,
    "peers": bench_peers.main,
    "middleware": _standalone("bench_middleware.py"),
    "webhooks": _standalone("bench_webhooks.py"),
    "sync": _standalone("bench_sync.py"),
    "cdp": _standalone("bench_cdp.py"),
    "fleet": _standalone("bench_fleet.py"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; return the worst exit status."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Run customerio-async benchmarks; unknown options go to each benchmark.",
    )
    parser.add_argument(
        "--bench",
        action="append",
        choices=sorted(BENCHMARKS),
        help="benchmark to run (repeatable; default: all)",
    )
    parser.add_argument(
        "--help-bench", choices=sorted(BENCHMARKS), help="show a benchmark's own options"
    )
    args, rest = parser.parse_known_args(argv)
    if args.help_bench:
        return BENCHMARKS[args.help_bench](["--help"])
    status = 0
    for name in args.bench or list(BENCHMARKS):
        print(f"== {name} ==", flush=True)
        started = time.monotonic()
        status = max(status, BENCHMARKS[name](rest))
        print(f"== {name}: {time.monotonic() - started:.0f} s ==", flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
