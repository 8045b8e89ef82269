"""What the webhook tests share: a signing key, the documented example event, an independent
signer, and a callback that records events and can be told to block or fail."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from customerio_async.webhooks import WebhookEvent

T = TypeVar("T")

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
    """The documented example event, with ``overrides`` applied."""
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


def signed(evt: Mapping[str, Any], ts: int | None = None) -> tuple[bytes, str, str]:
    """``(body, X-CIO-Timestamp, X-CIO-Signature)`` for ``evt``, signed now by default."""
    stamp = int(time.time()) if ts is None else ts
    body = json.dumps(evt).encode()
    return body, str(stamp), sign(body, stamp)


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


async def started(work: Awaitable[T]) -> asyncio.Task[T]:
    """Run ``work`` in a task and return once it is suspended at its first wait.

    The task signals just before it awaits ``work``; this coroutine resumes only after the
    task has run on to its first suspension (the event loop runs one step at a time), so
    no sleep is needed to know where it stands. The receiver does no I/O before it waits
    for a callback slot, so for a delivery to a saturated receiver that first wait is the
    slot.
    """
    running = asyncio.Event()

    async def run() -> T:
        running.set()
        return await work

    task = asyncio.ensure_future(run())
    await running.wait()
    return task
