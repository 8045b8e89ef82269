"""Scripted faults for the fake server: what goes wrong, for which requests, how often.

A :class:`Fault` describes one misbehaviour (an error status, a stall, a cut connection,
a partial batch rejection, a slow body). :class:`FaultQueue` holds them in the order they
were added; each incoming request consumes the first queued fault that matches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

FaultAction = Literal["respond", "reset_before_body", "reset_after_body", "reject_indexes", "drip"]
"""What a :class:`Fault` does (see ``Fault.action``).

Example::

    fake.add_fault(Fault(action="drip", delay=0.5))   # a body one byte every 0.5 s
"""
_ACTIONS: Final = frozenset(get_args(FaultAction))


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour for the next matching request(s).

    Example::

        fake.add_fault(Fault(status=429, headers={"Retry-After": "1"}, match="/api/v2/batch"))
        fake.add_fault(Fault(action="reset_after_body"))   # applied, but the answer is lost
        fake.add_fault(Fault(action="reject_indexes", indexes=(0, 2)))

    Attributes:
        status: Status for ``action="respond"``. With the default 200 and no ``body`` the
            request is handled normally (after ``delay``, with ``headers`` added), which is
            how you script a pure stall. Any other status, or an explicit ``body``, answers
            with that status and body and applies nothing.
        headers: Extra response headers, e.g. ``{"Retry-After": "2"}`` or an HTTP-date.
        body: Response body override (e.g. malformed JSON). Default: the contract's error
            envelope for ``status`` on that path (v1 ``meta``, v2 ``errors``; empty for 401).
        delay: Seconds to stall before acting. For ``drip`` it is instead the pause before
            each byte of the body.
        action: ``respond``: see ``status``. ``reset_before_body``: abort the connection
            without reading the body; nothing is applied. ``reset_after_body``: read and
            apply the request normally, then abort without answering (the "timed out
            after the server applied it" case). ``reject_indexes``: only for
            ``/api/v2/batch``; answer 207 rejecting the operations at ``indexes`` (reason
            ``"invalid"``) and apply the rest. ``drip``: handle normally, then send the
            response body one byte every ``delay`` seconds.
        indexes: Batch indexes for ``reject_indexes``; out-of-range ones are ignored.
        match: Only requests whose raw (percent-encoded) path contains this substring
            consume the fault; None matches any request.
        times: How many matching requests consume the fault before it is used up.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    body: bytes | None = None
    delay: float = 0.0
    action: FaultAction = "respond"
    indexes: tuple[int, ...] = ()
    match: str | None = None
    times: int = 1

    def __post_init__(self) -> None:
        """Reject faults that could never act as scripted."""
        if self.action not in _ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}")
        if not 200 <= self.status <= 599:
            raise ValueError(f"status must be a final HTTP status (200-599), got {self.status}")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.times < 1:
            raise ValueError("times must be at least 1")

    def applies_to(self, path: str, *, is_batch: bool) -> bool:
        """Return True when a request for raw ``path`` would consume this fault.

        Example::

            assert Fault(match="/api/v2/batch").applies_to("/api/v2/batch", is_batch=True)

        Args:
            path: The raw request path.
            is_batch: Whether the request is ``POST /api/v2/batch``; a
                ``reject_indexes`` fault only ever matches those.
        """
        if self.action == "reject_indexes" and not is_batch:
            return False
        return self.match is None or self.match in path

    @property
    def replaces_response(self) -> bool:
        """True when ``respond`` answers with the scripted status/body instead of handling."""
        return self.action == "respond" and (self.status != 200 or self.body is not None)


class _Slot:
    """A queued fault and how many more requests may consume it."""

    __slots__ = ("fault", "remaining")

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining = fault.times


class FaultQueue:
    """Faults in the order they were added, consumed by matching requests (FIFO)."""

    def __init__(self) -> None:
        """Create an empty queue."""
        self._slots: list[_Slot] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` behind the faults already queued."""
        self._slots.append(_Slot(fault))

    def take(self, path: str, *, is_batch: bool) -> Fault | None:
        """Consume one use of the first queued fault that matches, if any.

        Args:
            path: The raw request path.
            is_batch: Whether the request is ``POST /api/v2/batch``.

        Returns:
            The fault to act out, or None to handle the request normally.
        """
        for slot in self._slots:
            if slot.fault.applies_to(path, is_batch=is_batch):
                slot.remaining -= 1
                if slot.remaining == 0:
                    self._slots.remove(slot)
                return slot.fault
        return None

    def pending(self) -> list[Fault]:
        """Return the faults not yet used up, in queue order."""
        return [slot.fault for slot in self._slots]

    def clear(self) -> None:
        """Drop every queued fault."""
        self._slots.clear()
