"""The client's life: wrong event loops, user callbacks at close, buffer accounting under
cancellation, clients never closed (issue "Correctness at the edges", items 14, 15, 16).

Each test states how the code before the pipeline rebuild (commit 46e3948) failed it.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from customerio_async import (
    BatchConfig,
    ClientStateError,
    CustomerIO,
    Receipt,
)
from customerio_async._pipeline.buffer import Buffer
from customerio_async.testing import FakeCustomerIO, Fault

from ._edges import batched, direct

LOGGER = "customerio_async"

# ---------------------------------------------------------------- 14. another event loop


def in_another_loop(make: Callable[[], Awaitable[Any]]) -> BaseException | None:
    """Run ``make()`` in a fresh event loop on this thread's side; return what it raised."""

    async def run() -> None:
        await asyncio.wait_for(make(), 5)  # a hang fails the test instead of blocking it

    try:
        asyncio.run(run())
    except BaseException as exc:  # returned for the assertion
        return exc
    return None


@pytest.mark.parametrize("mode", [batched, direct])
async def test_a_call_from_another_event_loop_raises_at_once(
    fake: FakeCustomerIO, mode: Any
) -> None:
    """Before: a batched client used from another loop than the one that opened it raised
    nothing (the operation joined a pipeline run by the other loop, from another thread);
    a direct one failed inside aiohttp with a bare ``RuntimeError``."""
    async with mode(fake) as cio:
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: cio.track("42", "e"),
            lambda: cio.identify("42", plan="pro"),
            lambda: cio.track("42", "e", wait=True),
        ]
        for call in calls:
            error = await asyncio.to_thread(in_another_loop, call)
            assert isinstance(error, ClientStateError), error
            assert "another event loop" in str(error)
        await cio.track("42", "still works", wait=True)
    assert [op.body["name"] for op in fake.operations] == ["still works"]


async def test_waiting_on_a_receipt_from_another_loop_raises(fake: FakeCustomerIO) -> None:
    """Before: ``receipt.wait()`` from another loop raised nothing."""
    async with batched(fake, batch=BatchConfig(linger=60.0)) as cio:
        receipt = await cio.track("42", "e")
        error = await asyncio.to_thread(in_another_loop, receipt.wait)
        assert isinstance(error, ClientStateError), error
        assert (await receipt.wait(timeout=5)).delivered


async def test_flush_and_close_from_another_loop_raise(fake: FakeCustomerIO) -> None:
    """Before (and at the start of this work): ``flush()`` from another loop hung, after
    touching the pipeline from another thread."""
    async with batched(fake, batch=BatchConfig(linger=60.0)) as cio:
        await cio.track("42", "e")
        for call in (cio.flush, cio.aclose, cio.check_credentials):
            error = await asyncio.to_thread(in_another_loop, call)
            assert isinstance(error, ClientStateError), error
        assert (await cio.flush()).delivered == 1


# ---------------------------------------------------------------- 15. callbacks and deadlines


async def test_slow_async_callbacks_cannot_extend_the_close_deadline(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: a slow async ``on_drop``/``on_outcome`` delayed ``aclose`` past its deadline
    (here: 0.3 s) and was left running after it."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    started: list[str] = []
    ended: list[str] = []

    async def slow(receipt: Receipt) -> None:
        started.append(receipt.action)
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append(receipt.action)

    fake.add_fault(Fault(delay=30, match="/api/v2/batch"))  # answered far too late
    cio = CustomerIO(
        "fake-site",
        "fake-key",
        track_url=fake.url,
        batch=BatchConfig(linger=0.005),
        on_drop=slow,
        on_outcome=slow,
    )
    await cio.open()
    await cio.track("42", "e")
    await fake.wait_for_arrivals(1)
    began = time.monotonic()
    await cio.aclose(timeout=0.3)  # drops the event (shutdown_timeout): both callbacks run
    assert time.monotonic() - began < 0.3 + 0.5
    assert started == ended == ["event", "event"]  # cancelled, and none left running
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("cancelled 2 outcome callback(s)" in line for line in lines) == 1, lines


# ---------------------------------------------------------------- 16. gauges never go negative


async def queue_for_space(buffer: Buffer, size: int) -> asyncio.Future[bool]:
    """Start a ``block`` admission of ``size`` bytes; return once it waits in line."""
    queued = asyncio.Event()
    loop = asyncio.get_running_loop()
    waiter = asyncio.ensure_future(buffer.wait_for_space(size, loop, queued.set))
    await queued.wait()
    return waiter


async def test_a_refused_admission_cancelled_before_it_resumes_releases_nothing() -> None:
    """Before: a blocked admission refused by ``close()`` and cancelled before it resumed
    gave back space it never had (``_abandon_wait`` took any finished future, a refused
    one too, for a grant): the buffered ops and bytes gauges went negative. (Read in the
    code; on Python 3.10/3.11 ``wait_for`` raised ClientStateError first and hid it.)"""
    buffer = Buffer(BatchConfig(max_buffer_ops=1, enqueue_timeout=30))
    buffer.take(10)
    waiter = await queue_for_space(buffer, 5)
    buffer.close()  # the client closes: the waiter is refused...
    waiter.cancel()  # ...and its caller is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    buffer.release(1, 10)
    assert (buffer.ops, buffer.bytes) == (0, 0)


async def test_a_granted_admission_cancelled_before_it_resumes_gives_the_space_back() -> None:
    """Cancellation wins over a grant on every Python version (``wait_for`` before 3.12
    swallowed it: the cancelled caller was admitted anyway)."""
    buffer = Buffer(BatchConfig(max_buffer_ops=1, enqueue_timeout=30))
    buffer.take(10)
    waiter = await queue_for_space(buffer, 5)
    buffer.release(1, 10)  # space is granted to the waiter...
    assert (buffer.ops, buffer.bytes) == (1, 5)
    waiter.cancel()  # ...which is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (buffer.ops, buffer.bytes) == (0, 0)


async def test_a_waiter_leaving_the_head_of_the_queue_lets_the_next_one_in() -> None:
    """A large admission at the head of the queue times out: the small one behind it fits
    and is let in at once, not at the next release."""
    config = BatchConfig(max_buffer_ops=10, max_buffer_bytes=100_000, enqueue_timeout=0.05)
    buffer = Buffer(config)
    buffer.take(60_000)
    large = await queue_for_space(buffer, 50_000)
    small = await queue_for_space(buffer, 10_000)
    assert await large is False  # enqueue_timeout
    assert await asyncio.wait_for(small, 0.04) is True
    assert (buffer.ops, buffer.bytes) == (2, 70_000)


# ---------------------------------------------------------------- 16. a client never closed

NEVER_CLOSED = """
import asyncio, logging, sys, threading
from customerio_async import BatchConfig, CustomerIO
from customerio_async.testing import FakeCustomerIO, Fault

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
served: "list[FakeCustomerIO]" = []
ready = threading.Event()


def serve() -> None:  # the fake lives in its own thread and loop: only the client ends here
    async def run() -> None:
        async with FakeCustomerIO(site_id="s", api_key="k") as fake:
            served.append(fake)
            ready.set()
            await asyncio.Event().wait()

    asyncio.run(run())


async def main() -> None:
    threading.Thread(target=serve, daemon=True).start()
    ready.wait(10)
    fake = served[0]
    batching = sys.argv[1] != "direct"
    cio = CustomerIO("s", "k", track_url=fake.url, batching=batching,
                     batch=BatchConfig(linger=60))
    await cio.open()
    await cio.identify("secret-person", plan="pro")
    if sys.argv[1] == "in-flight":
        fake.add_fault(Fault(delay=30))
        await cio.track("secret-person", "e")
        await cio.flush(timeout=0.2)  # one batch on the wire, none answered
    for _ in range(2):
        await cio.track("secret-person", "e")
    print("leaving without closing", flush=True)


asyncio.run(main())
print("exited", flush=True)
"""


@pytest.mark.parametrize(("scenario", "lost"), [("buffered", 3), ("in-flight", 4), ("direct", 0)])
def test_a_client_never_closed_says_so_at_exit(scenario: str, lost: int) -> None:
    """Before: a client never closed logged "pipeline failed: CancelledError" (or, for
    requests on the wire, "dropped: internal_error") and aiohttp's "Unclosed client
    session" when its loop ended, and buffered operations vanished without a word."""
    script = textwrap.dedent(NEVER_CLOSED)
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-X", "dev", "-c", script, scenario],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "exited" in done.stdout
    assert (
        f"CustomerIO was never closed: {lost} operation(s) were not delivered; "
        "use `async with CustomerIO(...)` or `await cio.aclose()`" in out
    ), out
    for noise in ("internal_error", "cancellederror", "unclosed", "traceback", "destroyed"):
        assert noise not in out.lower(), out
    assert "secret-person" not in out
