"""Admission middleware: layers that see each operation in the caller's task.

An admission middleware has aiohttp's shape, ``async def mw(op, handler) -> Receipt``: it
gets the validated :class:`~customerio_async.Operation` before it is buffered (or, in direct
mode, sent) and returns the :class:`~customerio_async.Receipt`; returning one without calling
``handler`` short-circuits (nothing is sent). De-duplication is one such layer, with no
special case in the client: any middleware may also implement :meth:`AdmissionMiddleware.wants`
to declare which operations it acts on, and the chain then skips it for the others at no cost
(most traffic is events with generated ids, which de-duplication can never act on).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .._http.chain import build_chain

if TYPE_CHECKING:
    from .._pipeline.receipt import Receipt
    from .operations import Operation

__all__ = ["AdmissionChain", "AdmissionMiddleware", "OperationHandler", "OperationMiddleware"]

OperationHandler = Callable[["Operation"], Awaitable["Receipt"]]
"""The next layer: ``await handler(op)``."""

OperationMiddleware = Callable[["Operation", OperationHandler], Awaitable["Receipt"]]
"""``async def mw(op, handler) -> Receipt``; the second argument is passed positionally."""


@runtime_checkable
class AdmissionMiddleware(Protocol):
    """An operation middleware that can say which operations it acts on.

    Example::

        class AuditEvents:
            def wants(self, op: Operation) -> bool:
                return op.action == "event"

            async def __call__(self, op: Operation, handler: OperationHandler) -> Receipt:
                audit.write(op.action)
                return await handler(op)
    """

    def wants(self, op: Operation) -> bool:
        """Whether this layer acts on ``op``; when ``False`` it is skipped for ``op``.

        Example::

            def wants(self, op: Operation) -> bool:
                return op.action == "event"
        """
        ...

    generated_events: bool
    """Optional: ``False`` declares that :meth:`wants` is ``False`` for every event whose id
    the SDK generated (most traffic), so those are admitted without asking."""

    async def __call__(self, op: Operation, handler: OperationHandler) -> Receipt:
        """Handle ``op`` (call ``handler(op)`` to pass it on)."""
        ...


class AdmissionChain:
    """The operation middleware composed around the admission handler.

    Layers implementing :meth:`AdmissionMiddleware.wants` are consulted per operation; the
    composed chain for each combination of interested layers is built once and cached.
    :meth:`select` returns ``None`` when no layer is interested, so the caller can admit
    the operation without a coroutine per layer (the common case: de-duplication ignores
    events with generated ids).

    Args:
        handler: The innermost step (pipeline admission or a direct send).
        middleware: Layers, outermost first.
    """

    __slots__ = ("_always", "_chains", "_filters", "_handler", "_layers", "_single")

    def __init__(
        self, handler: OperationHandler, middleware: Sequence[OperationMiddleware]
    ) -> None:
        self._handler = handler
        self._layers = tuple(middleware)
        self._filters = tuple(
            (i, mw.wants)
            for i, mw in enumerate(self._layers)
            if isinstance(mw, AdmissionMiddleware)
        )
        self._chains: dict[tuple[bool, ...], OperationHandler | None] = {}
        # Without filters the chain is fixed (``None``: no layer at all).
        self._always = build_chain(handler, self._layers) if self._layers else None
        # The usual configuration (only de-duplication) needs no tuple per operation.
        single = len(self._filters) == len(self._layers) == 1
        self._single = self._always if single else None

    @property
    def skips_generated_events(self) -> bool:
        """Whether no layer can act on an event whose id the SDK generated."""
        return all(getattr(mw, "generated_events", True) is False for mw in self._layers)

    def select(self, op: Operation) -> OperationHandler | None:
        """The chain ``op`` must pass through, or ``None`` when no layer wants it."""
        if self._single is not None:
            return self._single if self._filters[0][1](op) else None
        if not self._filters:
            return self._always
        key = tuple(wants(op) for _, wants in self._filters)
        if key not in self._chains:
            skipped = {i for (i, _), wanted in zip(self._filters, key, strict=True) if not wanted}
            layers = [mw for i, mw in enumerate(self._layers) if i not in skipped]
            self._chains[key] = build_chain(self._handler, layers) if layers else None
        return self._chains[key]

    async def call(self, op: Operation) -> Receipt:
        """Pass ``op`` through the layers that want it, then the handler."""
        chain = self.select(op)
        return await (chain or self._handler)(op)
