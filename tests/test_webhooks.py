"""Reporting webhooks: signature vectors, replay window, parsing, de-duplication, and the
aiohttp and ASGI receivers served for real (FakeCustomerIO emits signed events to them)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

import customerio_async
from customerio_async import CustomerIOError, WebhookVerificationError
from customerio_async.testing import FakeCustomerIO
from customerio_async.webhooks import (
    ASGIWebhookApp,
    WebhookDeduplicator,
    WebhookEvent,
    WebhookIdentifiers,
    WebhookReceiver,
    aiohttp_handler,
    asgi_receiver,
    parse_event,
    verify_signature,
)

KEY = "test-signing-key"
TS = 1613063089
BODY = (
    b'{"event_id":"01E4C4CT6YDC7Y5M7FE1GWWPQJ","object_type":"email","metric":"sent",'
    b'"timestamp":1613063089,"data":{"identifiers":{"id":"42"}}}'
)
# Computed outside Python: printf 'v0:1613063089:<BODY>' | openssl dgst -sha256 -hmac KEY
BODY_SIGNATURE = "0307935c9cd1e885bf789f1c738f8f6d464589b9e48c306e4123da3b7dd22082"
EMPTY_SIGNATURE = "501ba031b96c7e809032e1a5e1867fdeb4792800fbc2e3b5d8ae271b84198bb8"


def sign(body: bytes, timestamp: int | str, key: str = KEY) -> str:
    """An independent implementation of the documented scheme (contract §6)."""
    message = b"v0:" + str(timestamp).encode() + b":" + body
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def event(event_id: str = "01E4C4CT6YDC7Y5M7FE1GWWPQJ", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": event_id,
        "object_type": "email",
        "metric": "sent",
        "timestamp": TS,
        "data": {
            "action_id": 42,
            "broadcast_id": 9,
            "customer_id": "0200000001",
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "identifiers": {"id": "42", "email": "test@example.com", "cio_id": "d9c106000001"},
            "recipient": "test@example.com",
            "subject": "Hi",
        },
    }
    doc.update(overrides)
    return doc


# --------------------------------------------------------------------------- verification


def test_vectors_match_an_external_implementation() -> None:
    assert sign(BODY, TS) == BODY_SIGNATURE
    assert sign(b"", TS) == EMPTY_SIGNATURE
    assert verify_signature(BODY, str(TS), BODY_SIGNATURE, KEY, now=TS) == TS
    assert verify_signature(b"", TS, EMPTY_SIGNATURE, KEY.encode(), now=TS + 1) == TS


@pytest.mark.parametrize(
    "signature",
    [BODY_SIGNATURE.upper(), "v0=" + BODY_SIGNATURE, f"  {BODY_SIGNATURE}  "],
)
def test_tolerated_signature_spellings(signature: str) -> None:
    assert verify_signature(BODY, str(TS), signature, KEY, now=TS) == TS


@pytest.mark.parametrize("body", [bytearray(BODY), memoryview(BODY)])
def test_bytes_like_bodies(body: bytearray | memoryview) -> None:
    assert verify_signature(body, TS, BODY_SIGNATURE, KEY, now=TS) == TS  # type: ignore[arg-type]


def test_verify_uses_the_clock_by_default() -> None:
    import time

    now = int(time.time())
    assert verify_signature(BODY, now, sign(BODY, now), KEY) == now


@pytest.mark.parametrize(
    ("body", "timestamp", "signature", "key", "reason", "message"),
    [
        (BODY + b" ", str(TS), BODY_SIGNATURE, KEY, "bad_signature", "does not match"),
        (BODY.replace(b"42", b"43"), str(TS), BODY_SIGNATURE, KEY, "bad_signature", "modified"),
        (BODY, str(TS), BODY_SIGNATURE, "other-key", "bad_signature", "wrong signing key"),
        (BODY, str(TS + 1), BODY_SIGNATURE, KEY, "bad_signature", "does not match"),
        (BODY, str(TS), BODY_SIGNATURE[:-1], KEY, "bad_signature", "does not match"),
        (BODY, str(TS), "é" * 64, KEY, "bad_signature", "does not match"),
        (BODY, None, BODY_SIGNATURE, KEY, "missing_header", "X-CIO-Timestamp header is missing"),
        (BODY, "", BODY_SIGNATURE, KEY, "missing_header", "X-CIO-Timestamp header is missing"),
        (BODY, str(TS), None, KEY, "missing_header", "X-CIO-Signature header is missing"),
        (BODY, str(TS), "", KEY, "missing_header", "X-CIO-Signature header is missing"),
        (BODY, "16130630.5", BODY_SIGNATURE, KEY, "invalid_timestamp", "not Unix seconds"),
        (BODY, "-1613063089", BODY_SIGNATURE, KEY, "invalid_timestamp", "not Unix seconds"),
        (BODY, "١٦١٣٠٦٣٠٨٩", BODY_SIGNATURE, KEY, "invalid_timestamp", "not Unix seconds"),
    ],
)
def test_rejections(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    key: str,
    reason: str,
    message: str,
) -> None:
    with pytest.raises(WebhookVerificationError, match=message) as info:
        verify_signature(body, timestamp, signature, key, now=TS)
    assert info.value.reason == reason
    assert KEY not in str(info.value)


def test_replay_window_has_distinct_errors() -> None:
    # Exactly at the tolerance passes; one second beyond fails, in either direction.
    assert verify_signature(BODY, TS, BODY_SIGNATURE, KEY, now=TS + 300) == TS
    assert verify_signature(BODY, TS, BODY_SIGNATURE, KEY, now=TS - 300) == TS
    with pytest.raises(WebhookVerificationError, match="signed 301s ago") as old:
        verify_signature(BODY, TS, BODY_SIGNATURE, KEY, now=TS + 301)
    with pytest.raises(WebhookVerificationError, match="301s in the future") as new:
        verify_signature(BODY, TS, BODY_SIGNATURE, KEY, now=TS - 301)
    assert (old.value.reason, new.value.reason) == ("too_old", "too_new")
    assert str(old.value) != str(new.value)
    # A custom window.
    with pytest.raises(WebhookVerificationError, match="5s tolerance"):
        verify_signature(BODY, TS, BODY_SIGNATURE, KEY, tolerance=5, now=TS + 6)


def test_a_forged_stale_request_reports_the_signature_not_the_age() -> None:
    with pytest.raises(WebhookVerificationError) as info:
        verify_signature(BODY, TS, "0" * 64, KEY, now=TS + 10_000)
    assert info.value.reason == "bad_signature"


def test_str_bodies_are_refused() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        verify_signature(BODY.decode(), TS, BODY_SIGNATURE, KEY, now=TS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signing_key"):
        verify_signature(BODY, TS, BODY_SIGNATURE, "", now=TS)


def test_error_class() -> None:
    assert issubclass(WebhookVerificationError, CustomerIOError)
    assert issubclass(WebhookVerificationError, ValueError)
    assert customerio_async.webhooks.WebhookVerificationError is WebhookVerificationError


# --------------------------------------------------------------------------- parsing


def test_parse_documented_example() -> None:
    parsed = parse_event(json.dumps(event()).encode())
    assert parsed.event_id == "01E4C4CT6YDC7Y5M7FE1GWWPQJ"
    assert (parsed.object_type, parsed.metric, parsed.timestamp) == ("email", "sent", TS)
    data = parsed.data
    assert data.identifiers == WebhookIdentifiers("42", "test@example.com", "d9c106000001")
    assert (data.action_id, data.broadcast_id, data.campaign_id) == (42, 9, None)
    assert data.delivery_id == "RPILAgUBcRhIBqSfeiIwdIYJKxTY"
    assert data.customer_id == "0200000001"
    assert data.recipient == "test@example.com"
    assert data.get("subject") == "Hi"
    assert data.get("missing", "x") == "x"
    assert parsed.raw["data"] is data.raw


def test_parse_every_documented_field() -> None:
    doc = event(
        object_type="push",
        metric="clicked",
        data={
            "identifiers": {"id": 7, "email": None},
            "campaign_id": 5,
            "newsletter_id": 10,
            "parent_action_id": 1,
            "trigger_id": 3,
            "content_id": 4,
            "link_id": 6,
            "transactional_message_id": "welcome",
            "journey_id": "01GW20GXAAXBKZD8J96M8FNV3R",
            "trigger_event_id": None,
            "failure_message": "boom",
            "href": "https://x.io",
        },
    )
    data = parse_event(json.dumps(doc)).data
    assert data.identifiers == WebhookIdentifiers("7", None, None)
    assert (data.campaign_id, data.newsletter_id, data.parent_action_id) == (5, 10, 1)
    assert (data.trigger_id, data.content_id, data.link_id) == (3, 4, 6)
    assert data.transactional_message_id == "welcome"
    assert data.journey_id == "01GW20GXAAXBKZD8J96M8FNV3R"
    assert data.trigger_event_id is None
    assert (data.failure_message, data.href) == ("boom", "https://x.io")


def test_parse_is_tolerant() -> None:
    doc = event(object_type="carrier_pigeon", metric="landed", extra={"x": 1})
    doc["data"] = {"campaign_id": "5", "link_id": True, "transactional_message_id": [1]}
    parsed = parse_event(json.dumps(doc).encode())
    assert (parsed.object_type, parsed.metric) == ("carrier_pigeon", "landed")
    assert parsed.raw["extra"] == {"x": 1}
    assert parsed.data.campaign_id is None  # wrong JSON type: None, still in raw
    assert parsed.data.link_id is None
    assert parsed.data.transactional_message_id is None
    assert parsed.data.raw["campaign_id"] == "5"
    assert parsed.data.identifiers == WebhookIdentifiers()
    no_data = parse_event(json.dumps({k: v for k, v in event().items() if k != "data"}))
    assert no_data.data.raw == {}
    odd = parse_event(json.dumps(event(data={"identifiers": ["x"]})))
    assert odd.data.identifiers == WebhookIdentifiers()


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"\xff\xfe",
        b"[1]",
        b"null",
        json.dumps({k: v for k, v in event().items() if k != "event_id"}).encode(),
        json.dumps(event(event_id="")).encode(),
        json.dumps(event(metric=None)).encode(),
        json.dumps(event(object_type=1)).encode(),
        json.dumps(event(timestamp="1613063089")).encode(),
        json.dumps(event(timestamp=True)).encode(),
        json.dumps(event(timestamp=1.5)).encode(),
    ],
)
def test_parse_rejects_non_events(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError) as info:
        parse_event(body)
    assert info.value.reason == "invalid_payload"


def test_events_are_frozen_and_slotted() -> None:
    parsed = parse_event(json.dumps(event()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.metric = "opened"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.data.identifiers.id = "x"  # type: ignore[misc]
    for obj in (parsed, parsed.data, parsed.data.identifiers):
        assert not hasattr(obj, "__dict__")


# --------------------------------------------------------------------------- de-duplication


def test_deduplicator_lru_and_ttl() -> None:
    now = [0.0]
    dedup = WebhookDeduplicator(max_size=3, ttl=10.0, clock=lambda: now[0])
    assert [dedup.add(x) for x in ("a", "b", "a", "c")] == [True, True, False, True]
    assert "a" in dedup
    assert 1 not in dedup
    assert dedup.add("d")  # evicts the least recently seen: "b" ("a" was just seen again)
    assert "b" not in dedup
    assert len(dedup) == 3
    assert "size=3/3" in repr(dedup)
    now[0] = 10.0  # everything first seen at 0 expires at 10
    assert "a" not in dedup
    assert dedup.add("a")
    assert len(dedup) == 1
    dedup.discard("a")
    dedup.discard("never-seen")
    assert dedup.add("a")
    dedup.clear()
    assert len(dedup) == 0
    with pytest.raises(ValueError, match="max_size"):
        WebhookDeduplicator(max_size=0)
    with pytest.raises(ValueError, match="ttl"):
        WebhookDeduplicator(ttl=0)


def test_deduplicator_expired_entry_behind_a_live_one_is_renewed() -> None:
    now = [0.0]
    dedup = WebhookDeduplicator(max_size=10, ttl=10.0, clock=lambda: now[0])
    dedup.add("old")
    now[0] = 5.0
    dedup.add("young")
    dedup.add("old")  # duplicate: moves behind "young", keeps its expiry (10)
    now[0] = 12.0  # "young" (expires 15) now sits in front of the expired "old"
    assert dedup.add("old")  # expired: accepted again
    assert not dedup.add("young")


# --------------------------------------------------------------------------- receiver core


class Recorder:
    """An async callback that records events and can be told to block or fail."""

    def __init__(self) -> None:
        self.events: list[WebhookEvent] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail = False
        self.arrived = asyncio.Event()

    async def __call__(self, evt: WebhookEvent) -> None:
        self.events.append(evt)
        self.arrived.set()
        await self.release.wait()
        if self.fail:
            raise RuntimeError("callback bug")


def signed(evt: Mapping[str, Any], ts: int | None = None) -> tuple[bytes, str, str]:
    import time

    stamp = int(time.time()) if ts is None else ts
    body = json.dumps(evt).encode()
    return body, str(stamp), sign(body, stamp)


async def test_receiver_accepts_then_deduplicates() -> None:
    recorder = Recorder()
    receiver = WebhookReceiver(recorder, signing_key=KEY)
    body, ts, sig = signed(event())
    first = await receiver.handle(body, ts, sig)
    second = await receiver.handle(body, ts, sig)
    await receiver.aclose()
    assert (first.status, json.loads(first.body)) == (200, {"status": "accepted"})
    assert (second.status, json.loads(second.body)) == (200, {"status": "duplicate"})
    assert [e.event_id for e in recorder.events] == ["01E4C4CT6YDC7Y5M7FE1GWWPQJ"]
    stats = receiver.statistics()
    assert (stats.accepted, stats.duplicates, stats.running) == (1, 1, 0)
    assert "test-signing-key" not in repr(receiver)


async def test_receiver_refusals() -> None:
    receiver = WebhookReceiver(Recorder(), signing_key=KEY)
    body, ts, sig = signed(event())
    assert (await receiver.handle(body, ts, "0" * 64)).status == 401
    assert (await receiver.handle(body, None, sig)).status == 401
    stale = signed(event(), ts=TS)
    assert (await receiver.handle(*stale)).status == 401
    garbage = b"not json"
    response = await receiver.handle(garbage, ts, sign(garbage, ts))
    assert (response.status, json.loads(response.body)) == (400, {"status": "invalid_payload"})
    assert dict(receiver.statistics().rejected_by_reason) == {
        "bad_signature": 1,
        "missing_header": 1,
        "too_old": 1,
        "invalid_payload": 1,
    }


async def test_a_failing_callback_is_logged_and_still_acknowledged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    recorder.fail = True
    receiver = WebhookReceiver(recorder, signing_key=KEY)
    with caplog.at_level(logging.ERROR, logger="customerio_async"):
        response = await receiver.handle(*signed(event()))
        await receiver.aclose()
    assert response.status == 200
    assert receiver.statistics().callback_errors == 1
    assert "webhook callback failed for event 01E4C4CT6YDC7Y5M7FE1GWWPQJ" in caplog.text
    assert "callback bug" in caplog.text  # the traceback is logged


async def test_busy_receiver_answers_503_and_forgets_the_event() -> None:
    recorder = Recorder()
    recorder.release.clear()
    receiver = WebhookReceiver(recorder, signing_key=KEY, max_concurrency=1, busy_timeout=0.0)
    assert (await receiver.handle(*signed(event("E1")))).status == 200
    await asyncio.wait_for(recorder.arrived.wait(), 5)
    busy = await receiver.handle(*signed(event("E2")))
    assert (busy.status, json.loads(busy.body)) == (503, {"status": "busy"})
    recorder.release.set()
    await asyncio.wait_for(receiver.join(), 5)
    # Customer.io's retry of E2 is accepted: the busy answer did not mark it as seen.
    assert (await receiver.handle(*signed(event("E2")))).status == 200
    await receiver.aclose()
    assert [e.event_id for e in recorder.events] == ["E1", "E2"]
    assert receiver.statistics().rejected_by_reason["busy"] == 1


async def test_a_waiting_event_gets_the_next_free_slot() -> None:
    recorder = Recorder()
    recorder.release.clear()
    receiver = WebhookReceiver(recorder, signing_key=KEY, max_concurrency=1, busy_timeout=5.0)
    assert (await receiver.handle(*signed(event("E1")))).status == 200
    waiting = asyncio.ensure_future(receiver.handle(*signed(event("E2"))))
    await asyncio.wait_for(recorder.arrived.wait(), 5)
    assert not waiting.done()
    recorder.release.set()
    assert (await asyncio.wait_for(waiting, 5)).status == 200
    await receiver.aclose()
    assert [e.event_id for e in recorder.events] == ["E1", "E2"]


async def test_aclose_waits_then_cancels_and_refuses_new_events() -> None:
    recorder = Recorder()
    recorder.release.clear()
    receiver = WebhookReceiver(recorder, signing_key=KEY)
    await receiver.handle(*signed(event("E1")))
    await asyncio.wait_for(recorder.arrived.wait(), 5)
    await receiver.aclose(timeout=0.0)  # the blocked callback is cancelled
    assert receiver.statistics().running == 0
    closed = await receiver.handle(*signed(event("E2")))
    assert (closed.status, json.loads(closed.body)) == (503, {"status": "closed"})
    await receiver.aclose()  # idempotent, nothing running


async def test_dedup_can_be_disabled_or_shared() -> None:
    recorder = Recorder()
    receiver = WebhookReceiver(recorder, signing_key=KEY, dedup=False)
    request = signed(event())
    await receiver.handle(*request)
    await receiver.handle(*request)
    shared = WebhookDeduplicator()
    one = WebhookReceiver(recorder, signing_key=KEY, dedup=shared)
    two = WebhookReceiver(recorder, signing_key=KEY, dedup=shared)
    assert (await one.handle(*request)).status == 200
    assert json.loads((await two.handle(*request)).body) == {"status": "duplicate"}
    for r in (receiver, one, two):
        await r.aclose()
    assert len(recorder.events) == 3


def test_receiver_arguments() -> None:
    recorder = Recorder()
    with pytest.raises(TypeError, match="callback"):
        WebhookReceiver("nope", signing_key=KEY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signing_key"):
        WebhookReceiver(recorder, signing_key="")
    with pytest.raises(ValueError, match="max_concurrency"):
        WebhookReceiver(recorder, signing_key=KEY, max_concurrency=0)
    receiver = WebhookReceiver(recorder, signing_key=KEY)
    with pytest.raises(TypeError, match="configure the WebhookReceiver"):
        asgi_receiver(receiver, signing_key=KEY)
    with pytest.raises(TypeError, match="configure the WebhookReceiver"):
        aiohttp_handler(receiver, tolerance=1)
    with pytest.raises(TypeError, match="signing_key is required"):
        asgi_receiver(recorder)
    assert asgi_receiver(receiver).receiver is receiver
    assert "ASGIWebhookApp" in repr(asgi_receiver(recorder, signing_key=KEY, tolerance=10))


# --------------------------------------------------------------------------- aiohttp, for real


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


# --------------------------------------------------------------------------- ASGI, driven directly


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


def test_public_surface_is_documented() -> None:
    import inspect
    import typing

    from customerio_async import webhooks

    for name in webhooks.__all__:
        obj = getattr(webhooks, name)
        alias = typing.get_origin(obj) is not None  # Callable[...] is a "class" on 3.10
        if (inspect.isclass(obj) and not alias) or inspect.isfunction(obj):
            assert obj.__doc__, name
            for member_name, member in inspect.getmembers(obj):
                if not member_name.startswith("_") and inspect.isfunction(member):
                    assert member.__doc__, f"{name}.{member_name}"
