"""The single-use lifecycle both clients share: ``NEW → OPEN → CLOSED``, once each.

A client owns a connection pool (and, for Track, a send pipeline) that must be created inside
the running event loop and closed before it ends, so clients are async context managers and
cannot be reopened: create a new one instead.
"""

from __future__ import annotations

import asyncio
import enum
import os
from types import TracebackType
from typing import NoReturn, TypeVar

from .._exceptions import ClientStateError

__all__ = ["SingleUseClient", "State", "fork_count"]

_forks = [0]
# Strong references to the open clients' loop guards: asyncio keeps only weak ones, and a
# guard collected with its client would end as "Task was destroyed but it is pending".
_GUARDS: set[asyncio.Task[None]] = set()


def _count_fork() -> None:
    _forks[0] += 1


# A forked child inherits open clients (sockets, buffered operations); a counter bumped in
# the child lets every call notice that without a system call per operation.
os.register_at_fork(after_in_child=_count_fork)


def fork_count() -> int:
    """How many times this process has been forked into (0 in the original process)."""
    return _forks[0]


class State(enum.Enum):
    """Where a client is in its life."""

    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


_C = TypeVar("_C", bound="SingleUseClient")


class SingleUseClient:
    """``async with`` support and state checks; subclasses implement ``open``/``aclose``."""

    _state: State = State.NEW
    _usage = "async with Client(...) as client:"  # how to open it, for error messages

    def __enter__(self) -> NoReturn:
        # A plain `with` would otherwise fail with a bare "object does not support the
        # context manager protocol" TypeError that does not say what to do.
        raise TypeError(f"{type(self).__name__} is an async context manager: use `{self._usage}`")

    def __exit__(self, *exc_info: object) -> None:  # pragma: no cover - __enter__ raised
        """Never reached: :meth:`__enter__` refuses a plain ``with``."""

    async def __aenter__(self: _C) -> _C:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Create the resources; ``async with`` calls this."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release the resources; ``async with`` calls this."""
        raise NotImplementedError

    def _begin_open(self) -> None:
        """Refuse a second open: a client is single-use."""
        if self._state is not State.NEW:
            raise ClientStateError(
                f"this {type(self).__name__} is {self._state.value}; a client can be opened once"
            )

    # ------------------------------------------------------------------ the loop guard
    #
    # A client left open when its event loop ends (asyncio.run returns, a test's loop is torn
    # down) would lose what it buffered without a word, and its cancelled requests would
    # read as internal errors. One task per open client waits for aclose(); the loop's
    # shutdown cancels every task at once, and this one runs before any callback of the
    # others (theirs are scheduled only when they finish), so it settles the client first:
    # one clear warning, everything undecided dropped as ``not_closed``, the pool closed.

    _guard: tuple[asyncio.Task[None], asyncio.Future[None]] | None = None

    def _start_guard(self) -> None:
        """Watch for the running loop ending while this client is open."""
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(self._guard_until(closed), name="customerio-async guard")
        _GUARDS.add(task)
        task.add_done_callback(_GUARDS.discard)
        self._guard = (task, closed)

    async def _guard_until(self, closed: asyncio.Future[None]) -> None:
        try:
            await closed
        except asyncio.CancelledError:
            if self._state is State.OPEN:  # cancelled by the loop's end, not by aclose()
                self._state = State.CLOSED
                await self._loop_ended()
            raise

    def _stop_guard(self) -> asyncio.Task[None] | None:
        """``aclose()`` is running: the guard ends quietly, in the next loop turn. Returns its
        task, for ``aclose()`` to await last (a cancellation there then costs nothing)."""
        guard, self._guard = self._guard, None
        if guard is None:
            return None
        task, closed = guard
        if not closed.done():
            closed.set_result(None)
        return task

    async def _loop_ended(self) -> None:
        """The loop is ending and the client was never closed: settle and release now."""

    def _check_state(self) -> None:
        """Refuse calls before ``open`` and after ``aclose``."""
        if self._state is not State.OPEN:
            if self._state is State.NEW:
                raise ClientStateError(f"the client is not open: use `{self._usage}`")
            raise ClientStateError("the client is closed")
