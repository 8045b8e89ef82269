"""The framework-free receiver core: accept, de-duplicate, refuse, dispatch and close."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from customerio_async.webhooks import (
    WebhookDeduplicator,
    WebhookReceiver,
    aiohttp_handler,
    asgi_receiver,
)

from ._support import KEY, TS, Recorder, event, sign, signed, started


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


async def test_a_huge_timestamp_is_refused_with_401() -> None:
    receiver = WebhookReceiver(Recorder(), signing_key=KEY)
    body = json.dumps(event()).encode()
    stamp = "9" * 400
    response = await receiver.handle(body, stamp, sign(body, stamp))
    assert (response.status, json.loads(response.body)) == (401, {"status": "invalid_timestamp"})
    assert dict(receiver.statistics().rejected_by_reason) == {"invalid_timestamp": 1}


async def test_a_delivery_cancelled_while_waiting_for_a_slot_is_forgotten() -> None:
    # The request of a delivery can be cancelled while it waits for a callback slot (the
    # sender gave up and the server cancels the handler). Its event must not count as
    # seen: Customer.io's retry has to run the callback, once.
    recorder = Recorder()
    recorder.release.clear()
    receiver = WebhookReceiver(recorder, signing_key=KEY, max_concurrency=1, busy_timeout=30.0)
    assert (await receiver.handle(*signed(event("E1")))).status == 200  # takes the one slot
    request = signed(event("E2"))
    waiting = await started(receiver.handle(*request))
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    retry = await started(receiver.handle(*request))
    recorder.release.set()
    response = await asyncio.wait_for(retry, 5)
    assert (response.status, json.loads(response.body)) == (200, {"status": "accepted"})
    await asyncio.wait_for(receiver.join(), 5)
    assert [e.event_id for e in recorder.events] == ["E1", "E2"]
    await receiver.aclose()


async def test_a_copy_that_arrives_while_the_first_waits_is_passed_on_once() -> None:
    recorder = Recorder()
    recorder.release.clear()
    receiver = WebhookReceiver(recorder, signing_key=KEY, max_concurrency=1, busy_timeout=30.0)
    assert (await receiver.handle(*signed(event("E1")))).status == 200
    request = signed(event("E2"))
    first = await started(receiver.handle(*request))
    copy = await started(receiver.handle(*request))  # not seen yet: it waits as well
    recorder.release.set()
    answers = [json.loads((await asyncio.wait_for(t, 5)).body) for t in (first, copy)]
    assert answers == [{"status": "accepted"}, {"status": "duplicate"}]
    await receiver.aclose()
    assert [e.event_id for e in recorder.events] == ["E1", "E2"]
    stats = receiver.statistics()
    assert (stats.accepted, stats.duplicates, stats.running) == (2, 1, 0)


async def test_a_delivery_waiting_when_the_receiver_closes_is_refused() -> None:
    # aclose() waits for the callbacks running when it is called; a delivery still waiting
    # for a slot must not start one behind its back.
    recorder = Recorder()
    recorder.release.clear()
    receiver = WebhookReceiver(recorder, signing_key=KEY, max_concurrency=1, busy_timeout=30.0)
    assert (await receiver.handle(*signed(event("E1")))).status == 200
    waiting = await started(receiver.handle(*signed(event("E2"))))
    await receiver.aclose(timeout=0.0)  # cancels E1's callback: its slot frees
    response = await asyncio.wait_for(waiting, 5)
    assert (response.status, json.loads(response.body)) == (503, {"status": "closed"})
    assert [e.event_id for e in recorder.events] == ["E1"]
    assert receiver.statistics().running == 0
