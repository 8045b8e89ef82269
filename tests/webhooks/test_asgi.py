"""The ASGI adapter, driven directly through the ASGI protocol."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from customerio_async.webhooks import ASGIWebhookApp, asgi_receiver

from ._support import KEY, Recorder, event, sign, signed, started


class ASGICall:
    """Drive one ASGI http request: scope, receive (scripted messages) and send (recorded)."""

    def __init__(
        self,
        body_chunks: list[bytes],
        headers: Mapping[str, str],
        method: str = "POST",
        disconnect: bool = False,
    ) -> None:
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "path": "/webhooks/customerio",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        self.messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(body_chunks) - 1}
            for i, chunk in enumerate(body_chunks)
        ]
        if disconnect:
            self.messages = self.messages[:1]
            self.messages[0]["more_body"] = True
            self.messages.append({"type": "http.disconnect"})
        self.sent: list[Mapping[str, Any]] = []

    async def receive(self) -> Mapping[str, Any]:
        return self.messages.pop(0)

    async def send(self, message: Mapping[str, Any]) -> None:
        self.sent.append(message)

    async def run(self, app: ASGIWebhookApp) -> tuple[int | None, dict[bytes, bytes], Any]:
        await app(self.scope, self.receive, self.send)
        return self.answer()

    def answer(self) -> tuple[int | None, dict[bytes, bytes], Any]:
        """The recorded response: status, headers and decoded body (``None`` when none)."""
        if not self.sent:
            return None, {}, None
        start, body = self.sent
        assert start["type"] == "http.response.start"
        assert body["type"] == "http.response.body"
        return start["status"], dict(start["headers"]), json.loads(body["body"])


async def test_asgi_receiver() -> None:
    recorder = Recorder()
    app = asgi_receiver(recorder, signing_key=KEY, max_body_size=4096)
    body, ts, sig = signed(event())
    ok = {"X-CIO-Timestamp": ts, "X-CIO-Signature": sig, "Content-Length": str(len(body))}
    third = len(body) // 3
    status, headers, reply = await ASGICall(
        [body[:third], body[third : 2 * third], body[2 * third :]], ok
    ).run(app)
    assert (status, reply) == (200, {"status": "accepted"})
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(json.dumps(reply))).encode()
    assert (await ASGICall([body], ok).run(app))[2] == {"status": "duplicate"}
    assert (await ASGICall([body + b" "], ok).run(app))[0] == 401
    assert (await ASGICall([body], {"Content-Length": "9"}).run(app))[0] == 401
    status, headers, reply = await ASGICall([b""], ok, method="GET").run(app)
    assert (status, headers[b"allow"]) == (405, b"POST")
    huge = {**ok, "Content-Length": "4097"}
    assert (await ASGICall([b"x"], huge).run(app))[0] == 413
    streamed = {"X-CIO-Timestamp": ts, "X-CIO-Signature": sig}
    assert (await ASGICall([b"x" * 3000, b"x" * 3000], streamed).run(app))[0] == 413
    assert (await ASGICall([body], ok, disconnect=True).run(app))[0] is None
    await app.receiver.aclose()
    assert [e.event_id for e in recorder.events] == ["01E4C4CT6YDC7Y5M7FE1GWWPQJ"]


async def test_asgi_lifespan_and_other_scopes() -> None:
    recorder = Recorder()
    recorder.release.clear()
    app = asgi_receiver(recorder, signing_key=KEY)
    body, ts, sig = signed(event())
    headers = {"X-CIO-Timestamp": ts, "X-CIO-Signature": sig}
    assert (await ASGICall([body], headers).run(app))[0] == 200
    await asyncio.wait_for(recorder.arrived.wait(), 5)

    inbox: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()

    async def send(message: Mapping[str, Any]) -> None:
        await outbox.put(message)

    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    assert await asyncio.wait_for(outbox.get(), 5) == {"type": "lifespan.startup.complete"}
    await inbox.put({"type": "lifespan.shutdown"})
    shutdown = asyncio.ensure_future(outbox.get())
    done, _ = await asyncio.wait({lifespan, shutdown}, timeout=0.05)
    assert not done  # shutdown waits for the running callback
    recorder.release.set()
    assert await asyncio.wait_for(shutdown, 5) == {"type": "lifespan.shutdown.complete"}
    await asyncio.wait_for(lifespan, 5)

    never: Callable[[], Awaitable[Mapping[str, Any]]] = inbox.get
    await app({"type": "websocket"}, never, send)  # not ours: returns without a message
    assert outbox.empty()


async def test_a_huge_timestamp_is_answered_401() -> None:
    app = asgi_receiver(Recorder(), signing_key=KEY)
    body = json.dumps(event()).encode()
    stamp = "9" * 400
    headers = {"X-CIO-Timestamp": stamp, "X-CIO-Signature": sign(body, stamp)}
    status, _, reply = await ASGICall([body], headers).run(app)
    assert (status, reply) == (401, {"status": "invalid_timestamp"})


async def test_a_request_cancelled_while_waiting_for_a_slot_is_processed_on_retry() -> None:
    # An ASGI server cancels the app's task when the client goes away. A delivery
    # cancelled while it waits for a callback slot must not make its retry a "duplicate".
    recorder = Recorder()
    recorder.release.clear()
    app = asgi_receiver(recorder, signing_key=KEY, max_concurrency=1, busy_timeout=30.0)
    first = signed(event("E1"))
    first_headers = {"X-CIO-Timestamp": first[1], "X-CIO-Signature": first[2]}
    assert (await ASGICall([first[0]], first_headers).run(app))[0] == 200  # the one slot
    body, ts, sig = signed(event("E2"))
    headers = {"X-CIO-Timestamp": ts, "X-CIO-Signature": sig}
    dropped = ASGICall([body], headers)
    waiting = await started(app(dropped.scope, dropped.receive, dropped.send))
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert dropped.sent == []  # no answer went out
    retry = ASGICall([body], headers)
    retried = await started(app(retry.scope, retry.receive, retry.send))
    recorder.release.set()
    await asyncio.wait_for(retried, 5)
    status, _, reply = retry.answer()
    assert (status, reply) == (200, {"status": "accepted"})
    await app.receiver.aclose()
    assert [e.event_id for e in recorder.events] == ["E1", "E2"]
