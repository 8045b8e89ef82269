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
    from .._pipeline.core import Receipt
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
        """Whether this layer acts on ``op``; when ``False`` it is skipped for ``op``."""
        ...

    async def __call__(self, op: Operation, handler: OperationHandler) -> Receipt:
        """Handle ``op`` (call ``handler(op)`` to pass it on)."""
        ...


class AdmissionChain:
    """The operation middleware composed around the admission handler.

    Layers implementing :meth:`AdmissionMiddleware.wants` are consulted per operation, and
    the composed chain for each combination of interested layers is built once and cached.
    A chain without such layers is one pre-built callable.

    Args:
        handler: The innermost step (pipeline admission or a direct send).
        middleware: Layers, outermost first.
    """

    __slots__ = ("_chains", "_filters", "_handler", "_layers", "call")

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
        self._chains: dict[tuple[bool, ...], OperationHandler] = {}
        self.call: OperationHandler = (
            self._dispatch if self._filters else build_chain(handler, self._layers)
        )

    async def _dispatch(self, op: Operation) -> Receipt:
        key = tuple(wants(op) for _, wants in self._filters)
        chain = self._chains.get(key)
        if chain is None:
            skipped = {i for (i, _), wanted in zip(self._filters, key, strict=True) if not wanted}
            layers = [mw for i, mw in enumerate(self._layers) if i not in skipped]
            chain = self._chains[key] = build_chain(self._handler, layers)
        return await chain(op)
