"""The ``aiohttp.web`` adapter of :class:`~customerio_async.webhooks.WebhookReceiver`.

aiohttp is imported only by the transport (``_transport.py``), the fake server
(``customerio_async.testing``) and this adapter; :mod:`customerio_async.webhooks` imports this
module lazily, from :func:`~customerio_async.webhooks.aiohttp_handler`, so ASGI users never
load ``aiohttp.web``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookReceiver, WebhookResponse

__all__ = ["AiohttpHandler", "make_handler"]

AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CHUNK = 64 * 1024


def _response(response: WebhookResponse, *, allow: bool = False) -> web.Response:
    return web.Response(
        status=response.status,
        body=response.body,
        content_type=WebhookResponse.content_type,
        headers={"Allow": "POST"} if allow else None,
    )


def make_handler(receiver: WebhookReceiver) -> AiohttpHandler:
    """Return an ``aiohttp.web`` handler that feeds requests to ``receiver``.

    A plain coroutine function (not a callable object), so ``add_post`` accepts it without
    aiohttp's "bare functions are deprecated" warning.
    """

    async def handle_customerio_webhook(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _response(receiver.reject("method_not_allowed"), allow=True)
        limit = receiver.max_body_size
        declared = request.content_length
        if declared is not None and declared > limit:
            return _response(receiver.reject("too_large"))
        # Stream the body, so an undeclared (chunked) one cannot exhaust memory either.
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                return _response(receiver.reject("too_large"))
            chunks.append(chunk)
        body = b"".join(chunks)
        headers = request.headers
        result = await receiver.handle(
            body, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
        )
        return _response(result)

    return handle_customerio_webhook
