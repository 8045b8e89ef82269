"""The ASGI adapter: serve a :class:`WebhookReceiver` from Starlette, FastAPI or any ASGI
server. No framework is imported."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

from .receiver import EventCallback, WebhookReceiver, WebhookResponse, receiver_for
from .verify import SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["ASGIWebhookApp", "asgi_receiver"]

_Scope: TypeAlias = "Mapping[str, Any]"
_Receive: TypeAlias = "Callable[[], Awaitable[Mapping[str, Any]]]"
_Send: TypeAlias = "Callable[[Mapping[str, Any]], Awaitable[None]]"
_TS_KEY = TIMESTAMP_HEADER.lower().encode()
_SIG_KEY = SIGNATURE_HEADER.lower().encode()


class ASGIWebhookApp:
    """An ASGI 3 application that receives Customer.io reporting webhooks.

    Mount it at any path (``app.mount("/webhooks/customerio", asgi_receiver(...))`` in
    Starlette or FastAPI) or serve it directly. It answers every path it is given; POST
    only. It handles the ``lifespan`` protocol when served directly (shutdown waits for
    running callbacks); when mounted, call ``await app.receiver.aclose()`` from your
    shutdown hook.

    Example::

        webhooks = asgi_receiver(on_event, signing_key=SIGNING_KEY)
        app = FastAPI()
        app.mount("/webhooks/customerio", webhooks)
        # on shutdown: await webhooks.receiver.aclose()

    Attributes:
        receiver: The :class:`WebhookReceiver` doing the work.
    """

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    def __repr__(self) -> str:
        return f"<ASGIWebhookApp {self.receiver!r}>"

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        """Serve one ASGI connection scope."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # Other scopes (websocket) are not ours; returning closes them.

    async def _lifespan(self, receive: _Receive, send: _Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.receiver.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        receiver = self.receiver
        timestamp, signature, declared = _headers(scope["headers"])
        if scope["method"] != "POST":
            await _asgi_send(send, receiver.reject("method_not_allowed"), allow=True)
            return
        if declared > receiver.max_body_size:
            await _asgi_send(send, receiver.reject("too_large"))
            return
        body = await _read_body(receive, receiver)
        if body is None:  # the client went away
            return
        if isinstance(body, WebhookResponse):  # too large
            await _asgi_send(send, body)
            return
        await _asgi_send(send, await receiver.handle(body, timestamp, signature))


def _headers(headers: Any) -> tuple[str | None, str | None, int]:
    """``(timestamp, signature, declared Content-Length or 0)`` from ASGI headers."""
    timestamp = signature = None
    declared = 0
    for name, value in headers:
        if name == _TS_KEY:
            timestamp = value.decode("latin-1")
        elif name == _SIG_KEY:
            signature = value.decode("latin-1")
        elif name == b"content-length" and value.isdigit():
            declared = int(value)
    return timestamp, signature, declared


async def _read_body(
    receive: _Receive, receiver: WebhookReceiver
) -> bytes | WebhookResponse | None:
    """The whole body; ``None`` on disconnect; the 413 answer beyond ``max_body_size``."""
    limit = receiver.max_body_size
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return receiver.reject("too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _asgi_send(send: _Send, response: WebhookResponse, *, allow: bool = False) -> None:
    headers = [
        (b"content-type", WebhookResponse.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
    ]
    if allow:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def asgi_receiver(
    target: WebhookReceiver | EventCallback,
    *,
    signing_key: str | bytes | None = None,
    **options: Any,
) -> ASGIWebhookApp:
    """Build an ASGI app that verifies, parses and de-duplicates webhooks, then calls you.

    Example::

        async def on_event(event: WebhookEvent) -> None:
            await events.put(event)

        app = asgi_receiver(on_event, signing_key=SIGNING_KEY, max_concurrency=16)
        # uvicorn module:app   (served directly: lifespan shutdown waits for callbacks)

    Args:
        target: ``async def on_event(event)``, or a configured :class:`WebhookReceiver`.
        signing_key: The webhook's signing key (with a callback).
        **options: :class:`WebhookReceiver` options (``tolerance``, ``dedup``,
            ``max_concurrency``, ``busy_timeout``, ``max_body_size``), with a callback.

    Returns:
        The ASGI application; its ``receiver`` attribute holds the receiver.
    """
    return ASGIWebhookApp(receiver_for(target, signing_key, options))
