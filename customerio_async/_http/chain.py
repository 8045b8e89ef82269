"""Composing middleware: aiohttp's shape, ``async def mw(request, handler) -> response``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["Handler", "Middleware", "build_chain"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Req], Awaitable[Resp]]
Middleware = Callable[[Req, Callable[[Req], Awaitable[Resp]]], Awaitable[Resp]]


def _link(mw: Middleware[Req, Resp], nxt: Handler[Req, Resp]) -> Handler[Req, Resp]:
    async def layer(request: Req) -> Resp:
        # Positional, so the middleware may name its second parameter as it likes
        # (aiohttp's `handler`, Starlette's `call_next`, ...).
        return await mw(request, nxt)

    layer.__qualname__ = f"chain[{getattr(mw, '__qualname__', type(mw).__qualname__)}]"
    return layer


def build_chain(
    handler: Handler[Req, Resp], middlewares: Sequence[Middleware[Req, Resp]]
) -> Handler[Req, Resp]:
    """Compose ``middlewares`` (outermost first) around ``handler``, once.

    Example::

        chain = build_chain(transport.request, [retry, gate, accounting])
        response = await chain(request)
    """
    for mw in reversed(middlewares):
        handler = _link(mw, handler)
    return handler
