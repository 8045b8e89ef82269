"""Stopping an import: the first Ctrl-C/SIGTERM stops gracefully, a second one at once.

A graceful stop must be *bounded*: the client may hold thousands of buffered operations
(admitted, not yet sent), and draining them would send much of the file after the user asked
to stop. So the stop closes a :class:`SendGate`, an HTTP middleware around every request:
requests already on the wire finish (their outcomes are recorded), requests not yet on the
wire are held back. Once nothing is on the wire, or after ``--stop-timeout`` seconds, or at a
second interrupt, the client is closed without a drain: what was held back ends as
"dropped", which the import counts as *not sent* (never as settled), so the checkpoint stays
below those lines and the next run sends them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from customerio_async import HTTPRequest, HTTPResponse

__all__ = ["SendGate", "Stopper", "first_of", "handle_signals"]

T = TypeVar("T")
Handler = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


class SendGate:
    """HTTP middleware: counts the requests on the wire; once closed, holds new ones back."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._never = asyncio.Event()  # held-back requests wait here until cancelled

    async def __call__(self, request: HTTPRequest, call_next: Handler) -> HTTPResponse:
        """Send ``request`` unless the gate is closed (then wait until cancelled)."""
        if self.closed:
            await self._never.wait()
        self.in_flight += 1
        self._idle.clear()
        try:
            return await call_next(request)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    def close(self) -> None:
        """Hold back every request that is not on the wire yet."""
        self.closed = True

    async def idle(self) -> None:
        """Wait until no request is on the wire."""
        await self._idle.wait()


async def first_of(work: Awaitable[T], event: asyncio.Event) -> T | None:
    """``await work``, unless ``event`` is set first (then ``work`` is cancelled): ``None``.

    Both sides are always awaited to the end, so nothing is left pending or unretrieved.
    """
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, waiter, return_exceptions=True)
    if task.cancelled():
        return None
    return task.result()


class Stopper:
    """The stop requests of one import: graceful first, immediate second."""

    def __init__(self, stop_timeout: float, note: Callable[[str], None]) -> None:
        self.stop_timeout = stop_timeout
        self.reason: str | None = None
        self.gate = SendGate()
        self.stopped = asyncio.Event()
        self.aborted = asyncio.Event()
        self._note = note

    def request(self, why: str = "interrupted") -> None:
        """Stop reading now and let what is on the wire finish; a second request aborts."""
        if self.reason is None:
            self.reason = why
            self.gate.close()
            self.stopped.set()
            self._note(
                f"{why}: stopped reading; finishing requests in flight (up to "
                f"{self.stop_timeout:g} s) and writing the checkpoint; "
                "interrupt again to stop now"
            )
        elif not self.aborted.is_set():
            self.aborted.set()
            self._note(f"{why}: stopping now; lines in flight will be sent again on resume")

    async def settle_in_flight(self) -> None:
        """Wait until nothing is on the wire, ``stop_timeout`` passes, or a second stop."""
        with contextlib.suppress(asyncio.TimeoutError):  # the builtin only from 3.11
            await asyncio.wait_for(first_of(self.gate.idle(), self.aborted), self.stop_timeout)


@contextlib.contextmanager
def handle_signals(on_signal: Callable[[str], None]) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``on_signal(name)`` while the block runs (main thread only)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal, signum.name)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            continue  # not the main thread, or Windows: Ctrl-C still works, just harder
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
