"""What the pipeline needs to know about an API: its batch envelope and its operations.

The pipeline is API-neutral. An API describes its batch request with a
:class:`BatchFormat` (endpoint, envelope, byte limits, how to read a 2xx answer) and hands
the pipeline operations that satisfy :class:`Admissible`: serialised bytes, ordering keys,
and for operations the batch endpoint cannot carry, a :class:`SingleRequest` of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .._http.messages import HTTPRequest, HTTPResponse
from .receipt import Outcome

__all__ = ["Admissible", "BatchFormat", "BodyEncoder", "Settlement", "SingleRequest"]

Settlement = tuple[Outcome, "dict[int, Outcome] | None"]
"""How a 2xx answer settles a batch: the outcome of every operation, and the exceptions by
index (e.g. the operations a 207 rejected)."""

BodyEncoder = Callable[[bytes], "tuple[bytes, Mapping[str, str]]"]
"""Turns a batch body into the bytes to send and the headers that say how (e.g. gzip and
``Content-Encoding: gzip``); it may return the body unchanged with no headers."""


@dataclass(frozen=True, slots=True)
class SingleRequest:
    """An operation the batch endpoint cannot carry, sent as its own request.

    Attributes:
        method: HTTP method.
        path: Percent-encoded path and query below the origin.
        endpoint: Endpoint template for logs and metrics (never an identifier).
        authenticated: ``False`` for calls the API defines as unauthenticated.
        has_body: Whether the operation's bytes are sent as the body (``False``: no body).
    """

    method: str
    path: str
    endpoint: str
    authenticated: bool = True
    has_body: bool = True


class Admissible(Protocol):
    """An operation as the pipeline sees it (validated and serialised at the call site)."""

    @property
    def action(self) -> str:
        """What the operation does (for logs and receipts)."""
        ...

    @property
    def data(self) -> bytes:
        """The serialised operation (a batch element, or a single request's body)."""
        ...

    @property
    def key(self) -> Hashable | None:
        """The ordering key: operations with equal keys are delivered in admission order."""
        ...

    @property
    def more_keys(self) -> tuple[Hashable, ...]:
        """Further keys the operation touches (a merge touches two people)."""
        ...

    @property
    def single(self) -> SingleRequest | None:
        """Set when the batch endpoint cannot carry this operation."""
        ...


@dataclass(frozen=True, slots=True)
class BatchFormat:
    """One API's batch request.

    Attributes:
        api: ``"track"`` or ``"pipelines"`` (request label).
        path: The batch endpoint's path (also its template).
        head: Envelope bytes before the first operation (``{"batch":[``).
        tail: Envelope bytes after the last one (``]}``).
        max_batch_bytes: Body size cap, envelope included.
        max_batch_ops: Operations per batch request.
        settle: Reads a 2xx answer for ``n`` operations into outcomes.
        accept: Whether a 2xx answer is really a success (else it is retried).
        split_statuses: Statuses that split a multi-operation batch in two to isolate a bad
            operation instead of failing all of them.
        headers: Extra headers on every request of the API (batches and single requests).
        encode: Applied once to each batch body (after the byte limits were checked on the
            plain body; a retry resends the encoded bytes); ``None`` sends it as it is.
    """

    api: str
    path: str
    head: bytes
    tail: bytes
    max_batch_bytes: int
    max_batch_ops: int
    settle: Callable[[HTTPResponse, int], Settlement]
    accept: Callable[[HTTPRequest, HTTPResponse], bool]
    split_statuses: frozenset[int] = frozenset({400, 413})
    headers: dict[str, str] = field(default_factory=dict)
    encode: BodyEncoder | None = None

    @property
    def envelope(self) -> int:
        """Bytes of envelope around the operations."""
        return len(self.head) + len(self.tail)

    def body(self, parts: list[bytes]) -> bytes:
        """The request body for ``parts``."""
        return b"".join((self.head, b",".join(parts), self.tail))
