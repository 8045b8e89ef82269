"""What a sync call returns at once: a :class:`SyncReceipt`, bound to the pipeline's
:class:`~customerio_async.Receipt` when the loop thread admits the operation.

Binding is two attribute writes in the loop thread (the receipt, then a look at the waiter's
event); nothing is locked and no threading primitive exists unless somebody waits. The
order of those writes against the waiter's (create the event, then look at the receipt) is
what makes the lazy event safe: whichever side comes second sees the other's write.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .._exceptions import BufferFullError, ClientStateError
from .._pipeline.receipt import Outcome, Receipt
from .._track.api import check_outcome

if TYPE_CHECKING:
    from ._handoff import HandOff

__all__ = ["BARRIER", "SyncReceipt"]

_EVENT_LOCK = threading.Lock()  # only two waiters racing to create one receipt's event


class SyncReceipt:
    """Proof that a call was handed to the background loop, and the way to its outcome.

    Returned at once by every call of :class:`customerio_async.sync.CustomerIO`; the
    operation was validated and serialised in your thread (bad input raised there) and is
    admitted into the send pipeline by the loop thread moments later, in call order.

    Example::

        receipt = cio.track("42", "purchased", {"amount": 42})
        outcome = receipt.wait(timeout=5)        # blocks this thread, never the others
        if not outcome.delivered:
            log.warning("not delivered: %s", outcome.reason)

    Attributes:
        operation: The validated operation.
    """

    __slots__ = ("_error", "_event", "_handoff", "_late", "_receipt", "operation")

    def __init__(self, operation: Any, handoff: HandOff | None) -> None:
        self.operation = operation
        self._handoff = handoff
        self._receipt: Receipt | None = None
        self._error: BaseException | None = None
        self._event: threading.Event | None = None
        self._late = False

    def __repr__(self) -> str:
        outcome = self.outcome
        state = outcome.status if outcome is not None else "pending"
        return f"<SyncReceipt {self.action} {state}>"

    # ------------------------------------------------------------------ loop side

    def _bind(self, receipt: Receipt) -> None:
        self._receipt = receipt
        event = self._event
        if event is not None:
            event.set()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        event = self._event
        if event is not None:
            event.set()

    # ------------------------------------------------------------------ caller side

    @property
    def action(self) -> str:
        """The operation's action (``identify``, ``event``…)."""
        return str(getattr(self.operation, "action", "operation"))

    @property
    def event_id(self) -> str | None:
        """The id Customer.io de-duplicates on: a Track event's ULID ``id``, or a Pipelines
        message's ``messageId``; ``None`` for other operations."""
        operation = self.operation
        event_id: str | None = getattr(operation, "event_id", None)
        return event_id if event_id is not None else getattr(operation, "message_id", None)

    @property
    def admitted(self) -> bool:
        """Whether the loop thread has admitted the operation into the pipeline."""
        return self._receipt is not None

    @property
    def receipt(self) -> Receipt | None:
        """The pipeline's :class:`~customerio_async.Receipt`, once admitted."""
        return self._receipt

    @property
    def outcome(self) -> Outcome | None:
        """The terminal outcome, or ``None`` while the operation is pending."""
        receipt = self._receipt
        if receipt is not None:
            return receipt.outcome
        error = self._error
        return None if error is None else _not_admitted(error)

    def done(self) -> bool:
        """Whether the operation has reached its terminal outcome.

        Example::

            if receipt.done():
                print(receipt.outcome)
        """
        return self.outcome is not None

    def wait(self, timeout: float | None = None) -> Outcome:
        """Block this thread until the terminal outcome (its batch is sent now, no linger).

        Example::

            outcome = cio.track("42", "purchased").wait(timeout=5)

        Args:
            timeout: Seconds; ``None`` waits as long as the pipeline may take to decide
                (``enqueue_timeout`` + ``delivery_timeout`` + ``drain_timeout``).

        Returns:
            The outcome; like the async ``Receipt.wait()`` it does not raise for a
            rejected or dropped operation (``wait=True`` on a call does).

        Raises:
            TimeoutError: No outcome in time (delivery continues).
            ClientStateError: Called from the client's own event loop thread.
        """
        handoff = self._handoff
        if timeout is None:
            timeout = handoff.wait_timeout if handoff is not None else 0.0
        deadline = time.monotonic() + timeout
        self._wait_admitted(timeout)
        receipt = self._receipt
        if receipt is None:
            outcome = self.outcome
            assert outcome is not None
            return outcome
        outcome = receipt.outcome
        if outcome is not None:
            return outcome
        assert handoff is not None
        return handoff.runner.call(receipt.wait, timeout=max(0.0, deadline - time.monotonic()))

    def _wait_admitted(self, timeout: float) -> None:
        if self._receipt is not None or self._error is not None:
            return
        handoff = self._handoff
        if handoff is not None and handoff.runner.in_loop_thread():
            raise ClientStateError("waiting in the client's own event loop would deadlock")
        event = self._event
        if event is None:
            with _EVENT_LOCK:
                event = self._event
                if event is None:
                    event = self._event = threading.Event()
        # Created before this look: the loop thread's bind sets it if it comes after.
        if (self._receipt is None and self._error is None) and not event.wait(timeout):
            raise TimeoutError(f"not admitted within {timeout} s (the pipeline is backed up)")

    def _confirm(self, timeout: float | None) -> None:
        """``wait=True``: raise what the async client's ``wait=True`` would raise."""
        outcome = self.wait(timeout)
        error = self._error
        if error is not None and error is not BARRIER:
            raise error
        check_outcome(self.action, outcome)


class _Barrier(Exception):
    """Marks a barrier item as passed (it carries no operation)."""


BARRIER = _Barrier()


def _not_admitted(error: BaseException) -> Outcome:
    """The outcome of an operation the loop thread could not admit."""
    if isinstance(error, _Barrier):
        return Outcome("delivered")
    if isinstance(error, BufferFullError):
        return Outcome("dropped", "buffer_full", "send buffer full")
    if isinstance(error, ClientStateError):
        return Outcome("dropped", "client_closed", "the client closed before admitting it")
    return Outcome("dropped", "admission_error", type(error).__name__)
