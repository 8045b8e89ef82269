"""The background event loop: an asyncio loop in a daemon thread, driven by anyio's
:class:`~anyio.from_thread.BlockingPortal`.

The portal is the way in for everything rare (opening and closing the client, ``flush``,
waiting for an outcome); the per-call hand-off does not use it (see :mod:`._handoff`).

The thread is ours rather than :func:`anyio.from_thread.start_blocking_portal`'s so that it
is a daemon on every anyio 4.x (an older 4.x runs the portal in a ``ThreadPoolExecutor``,
whose non-daemon worker Python joins *before* ``atexit`` hooks run: the exit-time drain
would never start and the interpreter would hang) and so that stopping it is bounded
(``join(timeout)``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from .._common.lifecycle import fork_count
from .._common.logs import logger
from .._exceptions import ClientStateError

__all__ = ["LoopThread"]

T = TypeVar("T")
_Ready = concurrent.futures.Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]]


class _ResolverPool(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor: where aiohttp resolves host names (``getaddrinfo``).

    The stdlib's pools refuse new work once the interpreter begins to exit, before any
    ``atexit`` hook runs, so the exit drain could not open a connection to a named host
    (``track.customer.io``) and would drop everything it holds. These daemon workers start
    with the loop and serve until the loop ends.
    """

    def __init__(self, name: str, workers: int = 2) -> None:
        super().__init__(max_workers=1)  # the base's machinery stays unused: submit is ours
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._work, name=f"{name}-resolver", daemon=True)
            for _ in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # the caller's future carries it
                    future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._workers:
            self._jobs.put(None)


class LoopThread:
    """One event loop in one daemon thread, for the life of one sync client.

    Example::

        runner = LoopThread("customerio-async")
        runner.start(timeout=10)
        region = runner.call(client.get_region, timeout=10)
        runner.stop(timeout=5)

    Attributes:
        loop: The running loop (set by :meth:`start`).
        thread: The daemon thread running it.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._forks = fork_count()
        self._portal: BlockingPortal | None = None
        self._stopping = False
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<LoopThread {self._name!r} alive={self.alive}>"

    @property
    def alive(self) -> bool:
        """Whether the loop thread is running (and belongs to this process)."""
        thread = self.thread
        return thread is not None and thread.is_alive() and self._forks == fork_count()

    def in_loop_thread(self) -> bool:
        """Whether the calling thread is the loop's own (blocking there would deadlock)."""
        thread = self.thread
        return thread is not None and thread.ident == threading.get_ident()

    def start(self, timeout: float) -> None:
        """Start the thread and its loop; return once the portal accepts calls.

        Raises:
            ClientStateError: The loop did not come up within ``timeout``.
        """
        ready: _Ready = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._main, args=(ready,), name=self._name)
        self.thread.daemon = True  # never keeps the process alive; atexit drains instead
        self.thread.start()
        try:
            self._portal, self.loop = ready.result(timeout)
        except concurrent.futures.TimeoutError:
            raise ClientStateError("the background event loop did not start in time") from None

    def _main(self, ready: _Ready) -> None:
        try:
            anyio.run(self._serve, ready, backend="asyncio")
        except BaseException as exc:  # the loop died: nobody may wait on it any longer
            if not ready.done():
                ready.set_exception(exc)
            elif self._stopping:
                # Teardown after a deliberate stop, e.g. asyncio starting a thread to shut
                # the default executor down while the interpreter exits (3.12+ refuses).
                logger.debug("customerio-async: background loop teardown: %r", exc)
            else:
                logger.error("customerio-async: the background event loop failed: %r", exc)
        finally:
            self._fail_pending()

    async def _serve(self, ready: _Ready) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(_ResolverPool(self._name))
        async with BlockingPortal() as portal:
            ready.set_result((portal, loop))
            await portal.sleep_until_stopped()

    def submit(self, fn: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Run ``fn(*args)`` in the loop; the future is failed if the loop stops first.

        Raises:
            ClientStateError: The loop is not running, or belongs to the parent process.
        """
        portal = self._portal
        if portal is None or not self.alive:
            raise ClientStateError("the client's background event loop is not running")
        try:
            future = portal.start_task_soon(fn, *args)
        except RuntimeError as exc:  # the portal stopped meanwhile
            raise ClientStateError("the client's background event loop is not running") from exc
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None) -> T:
        """Run ``fn(*args)`` in the loop and wait for its result (at most ``timeout``).

        Raises:
            TimeoutError: No result in time (the call is cancelled).
            ClientStateError: Called from the loop thread itself, or the loop stopped.
        """
        if self.in_loop_thread():
            raise ClientStateError(
                "a blocking call from the client's own event loop (an outcome callback or a "
                "middleware) would deadlock; use the async client there"
            )
        future = self.submit(fn, *args)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:  # the builtin TimeoutError only from 3.11
            future.cancel()
            raise TimeoutError(f"no answer within {timeout} s") from None
        except concurrent.futures.CancelledError:
            raise ClientStateError("the client's background event loop stopped") from None

    def stop(self, timeout: float) -> bool:
        """Stop the loop (remaining tasks are cancelled) and join the thread, bounded.

        Returns:
            Whether the thread ended within ``timeout``.
        """
        thread, portal = self.thread, self._portal
        if thread is None or portal is None or self._forks != fork_count():
            return True
        self._stopping = True
        if thread.is_alive():
            with contextlib.suppress(RuntimeError):  # already stopping
                portal.start_task_soon(portal.stop, True)
            thread.join(timeout)
        self._fail_pending()
        return not thread.is_alive()

    def _fail_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, set()
        for future in pending:
            if not future.done():
                with contextlib.suppress(concurrent.futures.InvalidStateError):  # raced
                    future.set_exception(
                        ClientStateError("the client's background event loop stopped")
                    )
