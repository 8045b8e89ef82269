"""The framework-free receiver: verify, parse, de-duplicate and dispatch one delivery.

The ASGI and aiohttp adapters only read the request and write the answer this core
decides.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

from .._config import (
    WEBHOOK_BUSY_TIMEOUT,
    WEBHOOK_MAX_BODY_BYTES,
    WEBHOOK_MAX_CONCURRENCY,
    WEBHOOK_TOLERANCE,
)
from .._exceptions import WebhookVerificationError
from .dedup import WebhookDeduplicator
from .parse import WebhookEvent, parse_event
from .verify import verify_signature

__all__ = [
    "EventCallback",
    "ReceiverStatistics",
    "WebhookReceiver",
    "WebhookResponse",
    "receiver_for",
]

logger: logging.Logger = logging.getLogger("customerio_async")

EventCallback: TypeAlias = Callable[[WebhookEvent], Awaitable[None]]
"""``async def on_event(event: WebhookEvent) -> None``.

Example::

    async def on_event(event: WebhookEvent) -> None:
        await queue.put(event.raw)          # durable hand-off, then return

    receiver = WebhookReceiver(on_event, signing_key=SIGNING_KEY)
"""


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What a receiver answers: an HTTP status and a small JSON body.

    Example::

        answer = await receiver.handle(body, timestamp, signature)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
    """

    status: int
    body: bytes

    content_type: ClassVar[str] = "application/json"


@dataclass(frozen=True, slots=True)
class ReceiverStatistics:
    """A snapshot of a :class:`WebhookReceiver`'s counters.

    Example::

        stats = receiver.statistics()
        if stats.rejected_by_reason.get("busy"):
            logger.warning("webhook callbacks are too slow: %d running", stats.running)

    Attributes:
        accepted: Events passed to the callback.
        duplicates: Events answered 200 but not passed on (``event_id`` seen before).
        rejected_by_reason: Requests refused, by reason (``bad_signature``, ``too_old``,
            ``invalid_payload``, ``too_large``, ``busy``...).
        callback_errors: Callbacks that raised.
        running: Callbacks running now.
    """

    accepted: int
    duplicates: int
    callback_errors: int
    running: int
    rejected_by_reason: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )


def _reply(status: int, text: str) -> WebhookResponse:
    return WebhookResponse(status, json.dumps({"status": text}).encode())


_ACCEPTED = _reply(200, "accepted")
_DUPLICATE = _reply(200, "duplicate")
_BUSY = _reply(503, "busy")
_CLOSED = _reply(503, "closed")
_TOO_LARGE = _reply(413, "too_large")
_NOT_ALLOWED = _reply(405, "method_not_allowed")


class WebhookReceiver:
    """Framework-neutral core of the receivers: verify, parse, de-duplicate, dispatch.

    :meth:`handle` answers within microseconds for everything except a saturated
    receiver; the callback runs in a background task (see the package documentation for
    the exact answers and why a failing callback still gets a 200).

    Example::

        receiver = WebhookReceiver(on_event, signing_key=SIGNING_KEY, max_concurrency=16)
        app.mount("/webhooks/customerio", asgi_receiver(receiver))
        ...
        await receiver.aclose()             # at shutdown: let running callbacks finish

    Args:
        callback: ``async def on_event(event: WebhookEvent) -> None``.
        signing_key: The webhook's signing key.
        tolerance: Accepted timestamp skew in seconds.
        dedup: ``True`` for a default :class:`WebhookDeduplicator`, your own instance (to
            share it between receivers), or ``False`` to pass duplicates on.
        max_concurrency: Callbacks running at once.
        busy_timeout: Longest wait for a free callback slot before answering 503.
        max_body_size: Larger bodies are answered 413 (the adapters enforce it).
    """

    def __init__(
        self,
        callback: EventCallback,
        *,
        signing_key: str | bytes,
        tolerance: float = WEBHOOK_TOLERANCE,
        dedup: WebhookDeduplicator | bool = True,
        max_concurrency: int = WEBHOOK_MAX_CONCURRENCY,
        busy_timeout: float = WEBHOOK_BUSY_TIMEOUT,
        max_body_size: int = WEBHOOK_MAX_BODY_BYTES,
    ) -> None:
        if not callable(callback):
            raise TypeError("callback must be an async function taking a WebhookEvent")
        if not signing_key:
            raise ValueError("signing_key is required")
        if max_concurrency < 1 or busy_timeout < 0 or max_body_size < 1 or tolerance < 0:
            raise ValueError(
                "max_concurrency and max_body_size must be >= 1; busy_timeout and tolerance >= 0"
            )
        self._callback = callback
        # Encoded once: verification is on the hot path.
        self._key = signing_key.encode() if isinstance(signing_key, str) else bytes(signing_key)
        self._tolerance = tolerance
        self._dedup: WebhookDeduplicator | None = (
            WebhookDeduplicator() if dedup is True else (None if dedup is False else dedup)
        )
        self._busy_timeout = busy_timeout
        self.max_body_size = max_body_size
        self._slots: asyncio.Semaphore | None = None  # created in the serving loop
        self._max_concurrency = max_concurrency
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._accepted = 0
        self._duplicates = 0
        self._callback_errors = 0
        self._rejected: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        # Never the signing key.
        state = "closed" if self._closed else "open"
        return f"<WebhookReceiver {state} running={len(self._tasks)}>"

    def statistics(self) -> ReceiverStatistics:
        """A snapshot of the counters.

        Example::

            stats = receiver.statistics()
            print(stats.accepted, stats.duplicates, dict(stats.rejected_by_reason))
        """
        return ReceiverStatistics(
            accepted=self._accepted,
            duplicates=self._duplicates,
            callback_errors=self._callback_errors,
            running=len(self._tasks),
            rejected_by_reason=MappingProxyType(dict(self._rejected)),
        )

    def reject(self, reason: str) -> WebhookResponse:
        """Count a refusal made by an adapter (``too_large``, ``method_not_allowed``).

        Example::

            if len(body) > receiver.max_body_size:
                answer = receiver.reject("too_large")       # 413, counted
        """
        self._rejected[reason] += 1
        return _TOO_LARGE if reason == "too_large" else _NOT_ALLOWED

    async def handle(
        self, body: bytes, timestamp: str | None, signature: str | None
    ) -> WebhookResponse:
        """Judge one delivery and, when accepted, start the callback in the background.

        An event counts as seen (later copies are answered "duplicate") only once its
        callback has started. A copy that arrives while the first still waits for a slot
        waits too; a delivery cancelled before its callback starts (its sender went away)
        leaves nothing behind, so Customer.io's retry runs the callback.

        Example::

            answer = await receiver.handle(
                raw_body, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
            )
            return answer.status, answer.body

        Args:
            body: The raw request body.
            timestamp: The ``X-CIO-Timestamp`` header, or ``None``.
            signature: The ``X-CIO-Signature`` header, or ``None``.

        Returns:
            The answer to send: 200 accepted/duplicate, 400, 401, 413 or 503.
        """
        try:
            verify_signature(body, timestamp, signature, self._key, tolerance=self._tolerance)
            event = parse_event(body)
        except WebhookVerificationError as exc:
            self._rejected[exc.reason] += 1
            status = 400 if exc.reason == "invalid_payload" else 401
            logger.debug("webhook refused with %d: %s", status, exc.reason)
            return _reply(status, exc.reason)
        if self._closed:
            return self._refuse_closed()
        if self._dedup is not None and event.event_id in self._dedup:
            self._duplicates += 1
            return _DUPLICATE
        slots = self._slots
        if slots is None:
            slots = self._slots = asyncio.Semaphore(self._max_concurrency)
        if not await self._acquire(slots):
            return _BUSY
        # The slot is ours, and nothing below awaits: the callback starts, or the slot is
        # given back, with no cancellation point in between.
        return self._start(event, slots)

    async def _acquire(self, slots: asyncio.Semaphore) -> bool:
        """Take a callback slot, waiting at most ``busy_timeout``; ``False`` when busy."""
        if not slots.locked():
            await slots.acquire()  # free: returns at once
            return True
        try:
            await asyncio.wait_for(slots.acquire(), self._busy_timeout)
        except asyncio.TimeoutError:
            self._rejected["busy"] += 1
            logger.warning(
                "webhook receiver busy: %d callbacks running; answered 503",
                self._max_concurrency,
            )
            return False
        return True

    def _start(self, event: WebhookEvent, slots: asyncio.Semaphore) -> WebhookResponse:
        if self._closed:  # closed while this delivery waited: aclose would not see it
            slots.release()
            return self._refuse_closed()
        if self._dedup is not None and not self._dedup.add(event.event_id):
            # Another copy of this event started its callback while this one waited.
            slots.release()
            self._duplicates += 1
            return _DUPLICATE
        task = asyncio.get_running_loop().create_task(self._run(event, slots))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._accepted += 1
        return _ACCEPTED

    def _refuse_closed(self) -> WebhookResponse:
        self._rejected["closed"] += 1
        return _CLOSED

    async def _run(self, event: WebhookEvent, slots: asyncio.Semaphore) -> None:
        try:
            await self._callback(event)
        except Exception:
            self._callback_errors += 1
            logger.exception(
                "webhook callback failed for event %s (%s %s); Customer.io was answered 200 "
                "and will not retry it",
                event.event_id,
                event.object_type,
                event.metric,
            )
        finally:
            slots.release()

    async def join(self) -> None:
        """Wait until no callback is running (including ones started meanwhile).

        Handy in tests: emit an event, ``await receiver.join()``, then assert.

        Example::

            assert await fake.emit_webhook(url, event, SIGNING_KEY) == 200
            await receiver.join()
            assert handled == [event["event_id"]]
        """
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self, timeout: float | None = 10.0) -> None:
        """Refuse new events (503) and wait for running callbacks; cancel them after
        ``timeout`` seconds. Idempotent.

        Example::

            app.on_shutdown.append(lambda _app: receiver.aclose(timeout=5.0))
        """
        self._closed = True
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning("webhook receiver closed with %d callbacks cancelled", len(pending))
            await asyncio.wait(pending)


def receiver_for(
    target: WebhookReceiver | EventCallback,
    signing_key: str | bytes | None,
    options: Mapping[str, Any],
) -> WebhookReceiver:
    """The receiver an adapter serves: ``target`` itself, or one built around a callback.

    Example::

        receiver = receiver_for(on_event, SIGNING_KEY, {"max_concurrency": 8})

    Raises:
        TypeError: Options given with a ready receiver, or a callback without a key.
    """
    if isinstance(target, WebhookReceiver):
        if signing_key is not None or options:
            raise TypeError("configure the WebhookReceiver itself, not the adapter")
        return target
    if signing_key is None:
        raise TypeError("signing_key is required")
    return WebhookReceiver(target, signing_key=signing_key, **options)
