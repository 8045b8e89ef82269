"""Helpers shared by the reliability scenarios: clients with test timings, the accounting
check, an event-loop heartbeat, small statistics, the child-process load driver, and the
figures each scenario reports (printed at the end of the run, see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from customerio_async import BatchConfig, CustomerIO, RetryPolicy
from customerio_async.testing import RecordedRequest

SITE_ID = "fake-site"
API_KEY = "fake-key"
# Millisecond backoffs and a generous deadline: faults are retried quickly and nothing is
# given up unless a test says so.
FAST_RETRY = RetryPolicy(
    backoff_base=0.01, backoff_cap=0.1, delivery_timeout=30.0, max_attempts=1000
)
DRIVER = Path(__file__).with_name("_driver.py")

FIGURES: dict[str, dict[str, Any]] = {}


def record_figures(scenario: str, **values: Any) -> None:
    """Report measured figures for ``scenario`` (shown at the end of the run)."""
    FIGURES.setdefault(scenario, {}).update(values)


def count_figures(scenario: str, **increments: int) -> None:
    """Add to counters reported for ``scenario`` (scenarios spread over many test cases)."""
    values = FIGURES.setdefault(scenario, {})
    for key, n in increments.items():
        values[key] = values.get(key, 0) + n


def make_client(url: str, **kwargs: Any) -> CustomerIO:
    """A batched client pointed at ``url`` with test timings; ``kwargs`` override."""
    kwargs.setdefault("batch", BatchConfig(linger=0.01))
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("rate_limit", None)
    return CustomerIO(SITE_ID, API_KEY, track_url=url, **kwargs)


def check_invariant(cio: CustomerIO) -> None:
    """The books balance: ``accepted == delivered + rejected + dropped + pending``."""
    s = cio.statistics()
    assert s.accepted == s.delivered + s.rejected + s.dropped + s.pending, s
    assert sum(s.dropped_by_reason.values()) == s.dropped, s
    assert sum(s.rejected_by_reason.values()) == s.rejected, s
    assert s.pending >= 0, s


def batch_event_ids(requests: Iterable[RecordedRequest]) -> list[str]:
    """Event ids inside the ``/api/v2/batch`` bodies of ``requests``, in order."""
    ids: list[str] = []
    for r in requests:
        if r.path == "/api/v2/batch" and r.body:
            ids.extend(op["id"] for op in r.json()["batch"] if "id" in op)
    return ids


def by_header(
    requests: Iterable[RecordedRequest], name: str
) -> Mapping[str, list[RecordedRequest]]:
    """Recorded requests grouped by the value of header ``name`` (lower-case)."""
    groups: dict[str, list[RecordedRequest]] = {}
    for r in requests:
        groups.setdefault(r.headers.get(name, ""), []).append(r)
    return groups


def quantile(values: Iterable[float], q: float) -> float:
    """Nearest-rank quantile (0 for no values)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(values: list[float]) -> float:
    """Sample standard deviation (0 for fewer than two values)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


class Heartbeat:
    """Event-loop lag: a task asks to wake every ``interval`` s and records how late each
    wake-up was. ``async with Heartbeat() as hb: ...``, then read ``hb.p99`` / ``hb.max``."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - due))

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat(), name="heartbeat")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def p99(self) -> float:
        return quantile(self.lags, 0.99)

    @property
    def max(self) -> float:
        return max(self.lags, default=0.0)


def sdk_tasks() -> set[asyncio.Task[Any]]:
    """Live tasks running SDK code (the fake's handlers and the proxy's are not ours)."""
    out = set()
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if not task.done() and "customerio_async" in filename and "testing" not in filename:
            out.add(task)
    return out


def open_fds() -> int:
    """File descriptors open in this process (Linux ``/proc``)."""
    return len(os.listdir("/proc/self/fd"))


async def run_driver(
    config: Mapping[str, Any],
    *,
    timeout: float,
    on_sample: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``_driver.py`` in a child process and return its result.

    Samples are passed to ``on_sample`` as they arrive. The child runs with ``-W error``;
    a traceback or warning on its stderr fails the scenario.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(DRIVER),
        json.dumps(dict(config)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=1 << 26,  # the result line carries every delivered event id
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    result: dict[str, Any] | None = None

    async def read_stdout() -> None:
        nonlocal result
        async for line in stdout:
            message = json.loads(line)
            if "sample" in message and on_sample is not None:
                on_sample(message["sample"])
            if "result" in message:
                result = message["result"]

    errors = b""

    async def read_stderr() -> None:
        nonlocal errors
        errors = await stderr.read()

    try:
        await asyncio.wait_for(asyncio.gather(read_stdout(), read_stderr(), proc.wait()), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = errors.decode(errors="replace")
    assert proc.returncode == 0, f"driver exited {proc.returncode}:\n{text}"
    for marker in ("Traceback", "Exception ignored", "Warning:", "unclosed"):
        assert marker not in text, f"driver stderr:\n{text}"
    assert result is not None, f"driver gave no result:\n{text}"
    return result
