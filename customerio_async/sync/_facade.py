"""The life of a sync client, for any async client: lazy start, close, ``atexit``, fork.

:class:`SyncClient` wraps one async client (built by a factory, so that a forked child can
build its own) and owns its loop thread and hand-off queue. A per-API facade (Track's
:class:`~customerio_async.sync.CustomerIO`) only adds the calls: each builds its operation in
the caller's thread and hands it to :meth:`SyncClient._put`.

* **Start** on first use (or ``open()`` / ``with``): the loop thread starts and the async
  client opens in it; an error there (``verify_credentials``) raises in the caller, and the
  next call tries again with a fresh async client.
* **Close** (``close(timeout)``, ``with``, or the ``atexit`` hook with ``drain_timeout``):
  admit what is queued, drain the pipeline, stop and join the thread, all within the deadline.
* **Fork** (``os.register_at_fork``): the child forgets the parent's loop, thread, queue and
  async client without touching them (they hold the parent's sockets and buffered
  operations), and builds its own on first use.
"""

from __future__ import annotations

import atexit
import enum
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from .._common.logs import logger
from .._config import BatchConfig, RetryPolicy
from .._exceptions import ClientStateError
from .._pipeline.receipt import FlushResult, Statistics
from ._handoff import AsyncAdmission, HandOff
from ._receipt import SyncReceipt
from ._runner import LoopThread

__all__ = ["AsyncClient", "SyncClient"]

_START_TIMEOUT = 10.0  # the loop thread coming up (not the client's open: see _open_timeout)
_GRACE = 2.0  # beyond a drain deadline: the loop answering, the thread ending


class AsyncClient(AsyncAdmission, Protocol):
    """What :class:`SyncClient` needs of the async client it wraps."""

    @property
    def batching(self) -> bool: ...

    async def open(self) -> None: ...

    async def aclose(self, timeout: float | None = None) -> None: ...

    async def flush(self, timeout: float | None = None) -> FlushResult: ...

    def statistics(self) -> Statistics: ...


C = TypeVar("C", bound=AsyncClient)
T = TypeVar("T")
S = TypeVar("S", bound="SyncClient[Any]")


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class SyncClient(Generic[C]):
    """A sync facade's lifecycle around one async client ``C`` (see the module docstring).

    Example::

        class SyncPipelines(SyncClient[Pipelines]):
            def track(self, user_id: str, event: str) -> SyncReceipt:
                return self._put(build_track(user_id, event), False)

    The async client supplies what :class:`AsyncClient` lists: its own admission path
    (``_admit_now``, ``_admit_late``, ``_call``), ``open``/``aclose``, ``flush``,
    ``statistics`` and ``batching``; everything else here is API-neutral.

    Args:
        build: Makes a new, unopened async client (called now, and again in a forked child).
        batch: The async client's batch configuration.
        retry: Its retry policy (bounds the default wait).
        name: The loop thread's name.
    """

    def __init__(
        self,
        build: Callable[[], C],
        *,
        batch: BatchConfig,
        retry: RetryPolicy,
        name: str,
    ) -> None:
        self._build = build
        self._client: C = build()  # configuration errors raise here, in the caller
        self._batch = batch
        self._wait_timeout = batch.enqueue_timeout + retry.delivery_timeout + batch.drain_timeout
        self._name = name
        self._state = _State.NEW
        self._lock = threading.Lock()
        self._runner: LoopThread | None = None
        self._handoff: HandOff | None = None
        self._stale = False  # the async client is the parent process's
        _LIVE.add(self)

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Start the loop thread and open the client now (else the first call does it).

        Example::

            cio = CustomerIO(site_id, api_key, verify_credentials=True)
            cio.open()   # a wrong key raises AuthenticationError here, not on a later call

        Raises:
            ClientStateError: The client is closed.
            AuthenticationError: ``verify_credentials=True`` and the credentials are wrong.
        """
        self._start()

    def __enter__(self: S) -> S:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> HandOff:
        with self._lock:
            if self._state is _State.CLOSED:
                raise ClientStateError("the client is closed")
            if self._handoff is not None:
                return self._handoff
            if self._stale:
                self._retire(self._client)
                self._client, self._stale = self._build(), False
            runner = LoopThread(self._name)
            runner.start(_START_TIMEOUT)
            try:
                runner.call(self._client.open, timeout=self._wait_timeout)
            except BaseException:
                runner.stop(_GRACE)
                self._stale = True  # single-use: the next attempt builds a fresh one
                raise
            handoff = HandOff(self._client, runner, self._batch, self._wait_timeout)
            handoff.direct = not self._client.batching
            handoff.consumer = runner.submit(handoff.consume)
            handoff.consumer.add_done_callback(handoff.consumer_ended)
            self._runner, self._handoff = runner, handoff
            self._state = _State.OPEN
            _OPEN.add(self)  # a running client is never collected unclosed: atexit drains it
            return handoff

    def close(self, timeout: float | None = None) -> None:
        """Admit what is queued, deliver what is buffered, stop the loop thread.

        Everything happens within ``timeout`` (default ``batch.drain_timeout``) plus a
        short grace for the thread to end; operations still undelivered then end as
        ``dropped(shutdown_timeout)`` (counted and logged). Idempotent; later calls raise
        :class:`ClientStateError`.

        Example::

            cio.close(timeout=5)
        """
        with self._lock:
            if self._state is _State.CLOSED:
                return
            self._state = _State.CLOSED
            handoff, runner, self._handoff = self._handoff, self._runner, None
        _LIVE.discard(self)
        _OPEN.discard(self)
        if handoff is None or runner is None:
            return
        if runner.in_loop_thread():
            raise ClientStateError("close() from the client's own event loop would deadlock")
        deadline = time.monotonic() + (self._batch.drain_timeout if timeout is None else timeout)
        handoff.release_waiters()
        handoff.barrier(max(0.0, deadline - time.monotonic()))
        remaining = max(0.0, deadline - time.monotonic())
        try:
            runner.call(self._client.aclose, remaining, timeout=remaining + _GRACE)
        except Exception as exc:  # the loop is gone or stuck: nothing more to drain
            logger.warning("customerio-async: closing the sync client: %r", exc)
        refused = handoff.sweep()
        if refused:
            logger.warning(
                "customerio-async: %d operations handed over by sync calls were not admitted "
                "before the client closed",
                refused,
            )
        if not runner.stop(_GRACE):
            logger.warning("customerio-async: the background event loop did not stop in time")

    def _retire(self, client: C) -> None:
        """A replaced async client (the parent's, or one that failed to open): let go of
        what refers to it. Nothing by default."""

    def _after_fork_in_child(self) -> None:
        # Only this thread exists in the child. Forget, never close: the loop's selector,
        # the pool's sockets and the buffered operations are the parent's.
        _ORPHANS.append((self._runner, self._handoff, self._client))
        self._lock = threading.Lock()  # it may have been held by a parent thread
        self._runner = self._handoff = None
        self._stale = True
        _OPEN.discard(self)  # started again on first use in this process

    # ------------------------------------------------------------------ calls

    def _put(self, op: Any, wait: bool) -> SyncReceipt:
        """Hand ``op`` over (the hot path); with ``wait``, block until its outcome."""
        handoff = self._handoff
        if handoff is None:
            handoff = self._start()
        if handoff.direct:
            return self._direct(handoff, op, wait)
        receipt = handoff.put(op)
        if wait:
            receipt._confirm(None)
        return receipt

    def _direct(self, handoff: HandOff, op: Any, wait: bool) -> SyncReceipt:
        # Direct mode is one request per call, as in the official SDK: block for it.
        receipt = SyncReceipt(op, handoff)
        call = self._client._call
        receipt._bind(handoff.runner.call(call, op, wait, timeout=self._wait_timeout))
        return receipt

    def _run(self, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None) -> T:
        """Run an async method of the client in the loop thread and wait for it."""
        handoff = self._handoff or self._start()
        return handoff.runner.call(fn, *args, timeout=timeout)

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Send everything handed over so far now and wait for its outcomes.

        Example::

            result = cio.flush(timeout=5)
            assert result.pending == 0

        Args:
            timeout: Seconds (default ``batch.flush_timeout``); on expiry the result
                reports what is still ``pending``.
        """
        limit = self._batch.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        handoff = self._handoff or self._start()
        handoff.barrier(limit)
        remaining = max(0.0, deadline - time.monotonic())
        return self._run(self._client.flush, remaining, timeout=remaining + _GRACE)

    def statistics(self) -> Statistics:
        """A snapshot of the pipeline's counters, taken in the loop thread (after
        ``close()``: the final counters).

        Example::

            print(cio.statistics().delivered)
        """
        if self._state is _State.CLOSED:
            return self._client.statistics()  # the loop thread has stopped: nothing races
        return self._run(_snapshot, self._client, timeout=_START_TIMEOUT)


async def _snapshot(client: AsyncClient) -> Statistics:
    return client.statistics()


# -------------------------------------------------------------------- process hooks

_LIVE: weakref.WeakSet[SyncClient[Any]] = weakref.WeakSet()  # every client not closed
_OPEN: set[SyncClient[Any]] = set()  # started and not closed: held until closed
_ORPHANS: list[object] = []  # a child's inherited loops and clients: kept, never collected


def _close_all_at_exit() -> None:
    """``atexit``: drain every client still open, each within its ``drain_timeout``."""
    for client in list(_OPEN):
        try:
            client.close()
        except Exception as exc:  # one client's failure must not stop the others
            logger.warning("customerio-async: closing a sync client at exit: %r", exc)


def _after_fork_in_child() -> None:
    for client in list(_LIVE):
        client._after_fork_in_child()


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
