"""The ``aiohttp.web`` adapter of :class:`~customerio_async.webhooks.WebhookReceiver`.

The only module of :mod:`customerio_async.webhooks` that imports aiohttp;
:func:`~customerio_async.webhooks.aiohttp_handler` imports it lazily, so ASGI users never
load ``aiohttp.web``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .receiver import WebhookReceiver, WebhookResponse
from .verify import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["AiohttpHandler", "make_handler"]

AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An ``aiohttp.web`` request handler."""

_CHUNK = 64 * 1024


def _response(response: WebhookResponse, *, allow: bool = False) -> web.Response:
    return web.Response(
        status=response.status,
        body=response.body,
        content_type=WebhookResponse.content_type,
        headers={"Allow": "POST"} if allow else None,
    )


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, streamed (a chunked one cannot exhaust memory); ``None`` when it
    is larger than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def make_handler(receiver: WebhookReceiver) -> AiohttpHandler:
    """Return an ``aiohttp.web`` handler that feeds requests to ``receiver``.

    A plain coroutine function (not a callable object), so ``add_post`` accepts it without
    aiohttp's "bare functions are deprecated" warning.

    Example::

        app.router.add_post("/webhooks/customerio", make_handler(receiver))
    """

    async def handle_customerio_webhook(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _response(receiver.reject("method_not_allowed"), allow=True)
        limit = receiver.max_body_size
        declared = request.content_length
        if declared is not None and declared > limit:
            return _response(receiver.reject("too_large"))
        body = await _read_body(request, limit)
        if body is None:
            return _response(receiver.reject("too_large"))
        headers = request.headers
        result = await receiver.handle(
            body, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
        )
        return _response(result)

    return handle_customerio_webhook
