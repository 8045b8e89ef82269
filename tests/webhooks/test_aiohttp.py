"""The aiohttp adapter, served for real on loopback; FakeCustomerIO emits signed events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from customerio_async.testing import FakeCustomerIO
from customerio_async.webhooks import WebhookReceiver, aiohttp_handler

from ._support import KEY, TS, Recorder, event, sign, signed

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest_asyncio.fixture
async def aiohttp_site() -> AsyncIterator[tuple[str, Recorder, WebhookReceiver]]:
    """An aiohttp.web app on 127.0.0.1 (random port) serving aiohttp_handler()."""
    recorder = Recorder()
    receiver = WebhookReceiver(recorder, signing_key=KEY, max_body_size=64 * 1024)
    app = web.Application()
    app.router.add_route("*", "/cio", aiohttp_handler(receiver))
    app.on_shutdown.append(lambda _app: receiver.aclose())
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/cio")), recorder, receiver


async def test_fake_emits_signed_webhooks_end_to_end(
    aiohttp_site: tuple[str, Recorder, WebhookReceiver],
) -> None:
    url, recorder, receiver = aiohttp_site
    async with FakeCustomerIO() as fake:
        assert await fake.emit_webhook(url, event("E1"), KEY) == 200
        assert await fake.emit_webhook(url, event("E1"), KEY) == 200  # a retried delivery
        assert await fake.emit_webhook(url, event("E2"), "wrong-key") == 401
        assert await fake.emit_webhook(url, event("E3"), KEY, timestamp=TS) == 401  # stale
        assert await fake.emit_webhook(url, b"[]", KEY) == 400
    await asyncio.wait_for(receiver.join(), 5)
    assert [e.event_id for e in recorder.events] == ["E1"]
    assert recorder.events[0].data.identifiers.id == "42"
    stats = receiver.statistics()
    assert (stats.accepted, stats.duplicates) == (1, 1)


async def test_emitted_signature_is_the_documented_one() -> None:
    seen: list[tuple[bytes, Mapping[str, str]]] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/raw", capture)
    async with TestServer(app, host="127.0.0.1") as server, FakeCustomerIO() as fake:
        status = await fake.emit_webhook(str(server.make_url("/raw")), event(), KEY, timestamp=TS)
    assert status == 204
    ((body, headers),) = seen
    assert json.loads(body) == event()
    assert headers["X-CIO-Timestamp"] == str(TS)
    assert headers["X-CIO-Signature"] == sign(body, TS)
    assert headers["Content-Type"] == "application/json"


async def post(
    url: str, body: bytes | Any, headers: Mapping[str, str], method: str = "POST"
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_aiohttp_handler_refusals(
    aiohttp_site: tuple[str, Recorder, WebhookReceiver],
) -> None:
    url, recorder, receiver = aiohttp_site
    body, ts, sig = signed(event())
    ok = {"X-CIO-Timestamp": ts, "X-CIO-Signature": sig}
    tampered = body.replace(b'"sent"', b'"opened"')
    assert await post(url, tampered, ok) == (401, {"status": "bad_signature"})
    assert await post(url, body, {"X-CIO-Timestamp": ts}) == (401, {"status": "missing_header"})
    assert await post(url, body, {"X-CIO-Signature": sig}) == (401, {"status": "missing_header"})
    assert await post(url, body, ok, method="GET") == (405, {"status": "method_not_allowed"})
    big = b"x" * (64 * 1024 + 1)
    assert await post(url, big, ok) == (413, {"status": "too_large"})

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed
        for _ in range(65):
            yield b"y" * 1024

    assert await post(url, chunks(), ok) == (413, {"status": "too_large"})

    async def pieces() -> AsyncIterator[bytes]:  # a valid body in several chunks
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    assert await post(url, pieces(), ok) == (200, {"status": "accepted"})
    assert await post(url, body, ok) == (200, {"status": "duplicate"})
    await asyncio.wait_for(recorder.arrived.wait(), 5)
    assert receiver.statistics().rejected_by_reason["too_large"] == 2


async def test_a_huge_timestamp_is_answered_401(
    aiohttp_site: tuple[str, Recorder, WebhookReceiver],
) -> None:
    url, _, _ = aiohttp_site
    body = json.dumps(event()).encode()
    stamp = "9" * 400
    headers = {"X-CIO-Timestamp": stamp, "X-CIO-Signature": sign(body, stamp)}
    assert await post(url, body, headers) == (401, {"status": "invalid_timestamp"})


async def test_a_delivery_dropped_while_waiting_is_processed_on_retry() -> None:
    # Customer.io gives up on a delivery after 4 s and retries it later. aiohttp cancels
    # the handler of a dropped connection (TestServer turns handler_cancellation on, as
    # production servers may), so the delivery is cancelled while it waits for a callback
    # slot; its retry must run the callback, once.
    recorder = Recorder()
    recorder.release.clear()
    receiver = WebhookReceiver(recorder, signing_key=KEY, max_concurrency=1, busy_timeout=30.0)
    cancelled = asyncio.Event()

    @web.middleware
    async def watch(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    app = web.Application(middlewares=[watch])
    app.router.add_post("/cio", aiohttp_handler(receiver))
    body, ts, sig = signed(event("E2"))
    headers = {"X-CIO-Timestamp": ts, "X-CIO-Signature": sig}
    async with TestServer(app, host="127.0.0.1") as server, FakeCustomerIO() as fake:
        url = str(server.make_url("/cio"))
        assert await fake.emit_webhook(url, event("E1"), KEY) == 200  # takes the one slot
        await asyncio.wait_for(recorder.arrived.wait(), 5)
        impatient = aiohttp.ClientTimeout(total=0.5)
        async with aiohttp.ClientSession(timeout=impatient) as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.post(url, data=body, headers=headers)
        await asyncio.wait_for(cancelled.wait(), 5)
        retry = asyncio.ensure_future(post(url, body, headers))
        recorder.release.set()
        assert await asyncio.wait_for(retry, 5) == (200, {"status": "accepted"})
        await asyncio.wait_for(receiver.join(), 5)
    assert [e.event_id for e in recorder.events] == ["E1", "E2"]
    await receiver.aclose()
