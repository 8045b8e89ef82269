"""Fixtures of the reliability scenarios (the fault proxy) and the figures report.

Figures (counts, memory, loop lag) are printed in a "reliability figures" section at the end
of the run, and written as JSON to ``$CIO_RELIABILITY_REPORT`` when that is set;
``docs/reliability.md`` quotes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from customerio_async.testing import FakeCustomerIO

from ._harness import FIGURES
from ._proxy import FaultProxy


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures of the scenarios that ran; write them to the JSON report."""
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name in sorted(FIGURES):
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in FIGURES[name].items())
        terminalreporter.write_line(f"{name}: {values}")
    target = os.environ.get("CIO_RELIABILITY_REPORT")
    if target:
        Path(target).write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@pytest_asyncio.fixture
async def proxy(fake: FakeCustomerIO) -> AsyncIterator[FaultProxy]:
    """A fault proxy on 127.0.0.1 in front of ``fake``."""
    async with FaultProxy(fake.port) as p:
        yield p


@pytest.fixture
def needs_proc() -> None:
    """Skip where ``/proc`` (file descriptors, RSS) is not available."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc")
