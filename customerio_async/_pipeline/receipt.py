"""What a caller holds: a light :class:`Receipt` per operation, and the :class:`Outcome`.

A receipt is two references and an index: the batch that carries the operation and the
operation's position in it. The outcome lives in the batch (one for the whole batch, plus
the exceptions a 207 or a split reported), so resolving 2,000 operations is one assignment,
not 2,000; a future is created only when somebody waits, and only one per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import ClientStateError

if TYPE_CHECKING:
    from .batch import Batch

__all__ = [
    "DEDUPLICATED",
    "DELIVERED",
    "FlushResult",
    "Outcome",
    "OutcomeCallback",
    "Receipt",
    "Statistics",
]

OutcomeStatus = Literal["delivered", "rejected", "dropped", "deduplicated"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an admitted operation ended.

    Example::

        outcome = await (await cio.track("42", "purchased")).wait()
        if not outcome.delivered:
            log.warning("not delivered: %s (%s)", outcome.status, outcome.reason)

    Attributes:
        status: ``"delivered"`` (the API accepted it), ``"rejected"`` (the API refused it;
            never retried), ``"dropped"`` (the SDK gave up) or ``"deduplicated"`` (identical
            to one sent moments ago, so never admitted — not an error).
        reason: Why, when not delivered: the API's ``reason`` or ``http_<status>`` for
            rejections; ``buffer_full``, ``delivery_timeout``, ``retries_exhausted``,
            ``auth_failed``, ``unsafe_redirect``, ``shutdown_timeout``, ``not_closed`` (the
            event loop ended with the client open) or ``internal_error`` for drops;
            ``duplicate`` for de-duplicated operations.
        message: The API's message for a rejection, or our explanation (never a value).
        http_status: The last HTTP status seen, when there was one.
        field: The field the API named for a rejection, when it named one.
    """

    status: OutcomeStatus
    reason: str | None = None
    message: str | None = None
    http_status: int | None = None
    field: str | None = None

    @property
    def delivered(self) -> bool:
        """Whether the API accepted the operation."""
        return self.status == "delivered"


DELIVERED = Outcome("delivered")
DEDUPLICATED = Outcome("deduplicated", "duplicate")
# drop_oldest evicts a prefix of a batch: ``Batch.evicted`` says how long, and this is the
# outcome of every index below it (no per-index record: eviction runs under overload).
EVICTED = Outcome("dropped", "buffer_full", "evicted by drop_oldest")


class Receipt:
    """Proof of admission for one operation, and the way to its outcome.

    ``await receipt.wait()`` returns the terminal :class:`Outcome` without raising;
    cancelling that wait never cancels delivery. (A receipt is deliberately not awaitable
    itself: fire-and-forget calls would then trip mypy's ``unused-awaitable`` check.)

    Example::

        receipt = await cio.track("42", "purchased", {"amount": 42})
        outcome = await receipt.wait(timeout=5)   # waiting sends its batch now (no linger)

    Attributes:
        operation: The admitted operation.
        response: The parsed response body, in direct (unbatched) mode.
    """

    __slots__ = ("_batch", "_index", "_outcome", "operation", "response")

    def __init__(
        self,
        operation: Any,
        batch: Batch | None = None,
        index: int = 0,
        *,
        outcome: Outcome | None = None,
        response: Any = None,
    ) -> None:
        self.operation = operation
        self._batch = batch
        self._index = index
        self._outcome = outcome
        self.response = response

    def __repr__(self) -> str:
        outcome = self.outcome
        state = outcome.status if outcome is not None else "pending"
        return f"<Receipt {self.action} {state}>"

    @property
    def action(self) -> str:
        """The operation's action (``identify``, ``event``…)."""
        return str(self.operation.action)

    @property
    def event_id(self) -> str | None:
        """The event's ULID ``id`` (the one Customer.io de-duplicates on), for events."""
        event_id: str | None = self.operation.event_id
        return event_id

    @property
    def outcome(self) -> Outcome | None:
        """The terminal outcome, or ``None`` while the operation is pending."""
        if self._outcome is not None:
            return self._outcome
        batch = self._batch
        if batch is None:
            return None
        index = self._index
        while batch.forward is not None:  # merged into a later batch
            index += batch.offset
            batch = batch.forward
        outcome = batch.outcome
        if index < batch.evicted:
            outcome = EVICTED
        elif (exceptions := batch.exceptions) is not None:
            # Exceptions are final when recorded (an eviction decides before the batch).
            outcome = exceptions.get(index, outcome)
        if outcome is not None:
            self._outcome = outcome
        return outcome

    def done(self) -> bool:
        """Whether the operation has reached its terminal outcome.

        Example::

            receipt = await cio.track("42", "opened")
            if receipt.done():
                print(receipt.outcome)
        """
        return self.outcome is not None

    def mirror(self, operation: Any) -> Receipt:
        """A receipt for ``operation``, a duplicate skipped while this (its twin) is still
        pending: it resolves when the twin does — ``deduplicated`` if the twin was
        delivered, else the twin's outcome — and gets the outcome callbacks too.

        Example::

            # What de-duplication does with a repeat of a still-pending identify:
            duplicate = first_receipt.mirror(repeated_operation)
        """
        mirrored = _Mirror(operation, self._batch, self._index)
        batch = self._batch
        if batch is not None:
            root = batch.root()
            if root.receipts is not None:
                root.mirrors = [*(root.mirrors or ()), mirrored]
        return mirrored

    async def wait(self, timeout: float | None = None) -> Outcome:
        """Wait for the terminal outcome (and send the operation's batch now).

        Example::

            receipt = await cio.track("42", "purchased")
            outcome = await receipt.wait(timeout=5)   # TimeoutError if not decided in 5 s

        Args:
            timeout: Seconds to wait; ``None`` waits until the pipeline decides (bounded by
                the delivery deadline and shutdown).

        Raises:
            TimeoutError: The outcome was not known in time (delivery continues).
            ClientStateError: Called from another event loop than the client's.
        """
        outcome = self.outcome
        if outcome is not None:
            return outcome
        batch = self._batch
        assert batch is not None  # only pipeline receipts can be pending
        while batch.forward is not None:
            batch = batch.forward
        pipeline = batch.pipeline
        if asyncio.get_running_loop() is not pipeline.loop:
            raise ClientStateError(
                "this receipt belongs to a client opened in another event loop; "
                "wait for it in that loop"
            )
        future = pipeline.waiter(batch)
        # shield: cancelling (or timing out) this wait must not cancel the shared future.
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:  # the builtin TimeoutError (documented) only from 3.11
            raise TimeoutError(f"no outcome within {timeout} s; delivery continues") from None
        outcome = self.outcome
        assert outcome is not None
        return outcome


class _Mirror(Receipt):
    """A skipped duplicate's receipt: its twin's verdict, ``deduplicated`` for success."""

    __slots__ = ()

    @property
    def outcome(self) -> Outcome | None:
        """``deduplicated`` once the twin is delivered, else the twin's outcome."""
        if self._outcome is not None:
            return self._outcome
        outcome = Receipt.outcome.fget(self)  # type: ignore[attr-defined]
        if outcome is not None and outcome.delivered:
            outcome = self._outcome = DEDUPLICATED
        return outcome  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class FlushResult:
    """Outcomes of the operations a ``flush()`` covered (admitted since the last flush).

    ``pending`` is how many of them were still undecided when the flush returned; 0 means
    the barrier completed.

    Example::

        result = await cio.flush(timeout=5)
        assert result.pending == 0, "some operations are still on their way"
    """

    delivered: int = 0
    rejected: int = 0
    dropped: int = 0
    pending: int = 0


@dataclass(frozen=True, slots=True)
class Statistics:
    """A cheap snapshot of the pipeline's counters.

    The invariant ``accepted == delivered + rejected + dropped + pending`` holds in every
    snapshot.

    Example::

        stats = cio.statistics()
        print(stats.delivered, dict(stats.dropped_by_reason))
    """

    accepted: int
    delivered: int
    rejected: int
    dropped: int
    pending: int
    buffered_ops: int
    buffered_bytes: int
    in_flight_requests: int
    requests: int
    batches: int
    bytes_sent: int
    retries: int
    deduplicated: int = 0
    rejected_by_reason: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    dropped_by_reason: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    retries_by_cause: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    state: str = "open"


OutcomeCallback = Callable[[Receipt], Awaitable[None] | None]
"""``on_outcome(receipt)`` / ``on_drop(receipt)``: sync or async; exceptions are logged."""
