"""Customer.io reporting webhooks: verify, parse, de-duplicate and receive them.

Customer.io POSTs one event per request with two headers (contract §6):

* ``X-CIO-Timestamp``: Unix seconds when it signed the request;
* ``X-CIO-Signature``: lowercase hex HMAC-SHA256, keyed with the webhook's *signing key*, of
  ``v0:{X-CIO-Timestamp as received}:{raw request body}``.

Verification and parsing are separate steps, and both are cheap (a few microseconds for a
2 KB event)::

    from customerio_async.webhooks import parse_event, verify_signature

    verify_signature(raw_body, headers["X-CIO-Timestamp"], headers["X-CIO-Signature"], KEY)
    event = parse_event(raw_body)          # WebhookEvent(object_type="email", metric="sent"...)

Always pass the **raw** body bytes: re-serialised JSON does not hash the same.

Ready-made receivers do both, de-duplicate by ``event_id`` and call your coroutine:
:func:`asgi_receiver` (an ASGI app for Starlette, FastAPI or any ASGI server) and
:func:`aiohttp_handler` (an ``aiohttp.web`` handler). Their answers are:

* **401** when verification fails (missing header, bad signature, timestamp outside the
  tolerance), **400** when the verified body is not a reporting-webhook event, **413** when it
  is larger than ``max_body_size``, **405** for other methods;
* **200** once an event is verified, parsed and *accepted*, before your callback finishes: the
  callback runs in a background task (strong references kept, at most ``max_concurrency`` at
  once), so the answer goes out in well under Customer.io's 4-second timeout. A duplicate
  ``event_id`` is answered 200 and not passed on again;
* **503** only when every callback slot stays busy for ``busy_timeout`` seconds; the event is
  then forgotten by the de-duplicator, so Customer.io's retry is processed.

A callback that raises is logged (``logging.getLogger("customerio_async")``) and counted in
:meth:`WebhookReceiver.statistics`; it does **not** turn into a non-2xx answer. Customer.io
retries non-2xx deliveries for up to 7 days and holds *every later event* back behind the
failing one, so failing a delivery because of a bug in your handler would stall the whole
stream. Make your callback durable (enqueue, then acknowledge) if losing an event to a
crash matters; call :meth:`WebhookReceiver.aclose` at shutdown to let running callbacks
finish.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from ._config import (
    WEBHOOK_BUSY_TIMEOUT,
    WEBHOOK_DEDUP_SIZE,
    WEBHOOK_DEDUP_TTL,
    WEBHOOK_MAX_BODY_BYTES,
    WEBHOOK_MAX_CONCURRENCY,
    WEBHOOK_TOLERANCE,
)
from ._exceptions import WebhookVerificationError

if TYPE_CHECKING:
    from ._webhook_aiohttp import AiohttpHandler

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ASGIWebhookApp",
    "EventCallback",
    "EventData",
    "ObjectType",
    "ReceiverStatistics",
    "WebhookDeduplicator",
    "WebhookEvent",
    "WebhookIdentifiers",
    "WebhookReceiver",
    "WebhookResponse",
    "WebhookVerificationError",
    "aiohttp_handler",
    "asgi_receiver",
    "parse_event",
    "verify_signature",
]

logger: logging.Logger = logging.getLogger("customerio_async")

TIMESTAMP_HEADER = "X-CIO-Timestamp"
SIGNATURE_HEADER = "X-CIO-Signature"

ObjectType: TypeAlias = Literal[
    "customer", "email", "push", "in_app", "sms", "slack", "webhook", "whatsapp"
]
"""The documented ``object_type`` values; :attr:`WebhookEvent.object_type` is a plain ``str``
so that types Customer.io adds later still parse."""


# ============================================================================ verification


def _missing(header: str) -> WebhookVerificationError:
    return WebhookVerificationError(f"the {header} header is missing", reason="missing_header")


def verify_signature(
    raw_body: bytes,
    timestamp: str | int | None,
    signature: str | None,
    signing_key: str | bytes,
    *,
    tolerance: float = WEBHOOK_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check that a request really comes from Customer.io, and recently.

    The signature is compared in constant time. It is checked before the timestamp, so
    "too old" and "too new" are only ever reported for genuine (but stale or early)
    requests. A ``v0=`` prefix and upper-case hex in the header are tolerated.

    Args:
        raw_body: The request body exactly as received (``bytes``, never re-serialised).
        timestamp: The ``X-CIO-Timestamp`` header as received (``None`` when absent).
        signature: The ``X-CIO-Signature`` header (``None`` when absent).
        signing_key: The webhook's signing key.
        tolerance: Largest accepted ``|now - timestamp|`` in seconds (Customer.io documents
            none; 300 s is the usual replay window).
        now: Current Unix time, for tests; defaults to ``time.time()``.

    Returns:
        The verified timestamp, in Unix seconds.

    Raises:
        WebhookVerificationError: ``reason`` is ``"missing_header"``, ``"invalid_timestamp"``,
            ``"bad_signature"``, ``"too_old"`` or ``"too_new"``, each with its own message.
        TypeError: ``raw_body`` is not bytes (a ``str`` body has usually been re-encoded).
        ValueError: ``signing_key`` is empty.
    """
    if not isinstance(raw_body, (bytes, bytearray, memoryview)):
        raise TypeError("raw_body must be the raw request body as bytes")
    if timestamp is None or timestamp == "":
        raise _missing(TIMESTAMP_HEADER)
    if not signature:
        raise _missing(SIGNATURE_HEADER)
    ts_text = str(timestamp) if isinstance(timestamp, int) else timestamp
    if not (ts_text.isascii() and ts_text.isdigit()):
        raise WebhookVerificationError(
            f"the {TIMESTAMP_HEADER} header is not Unix seconds", reason="invalid_timestamp"
        )
    key = signing_key.encode() if isinstance(signing_key, str) else signing_key
    if not key:
        raise ValueError("signing_key is required")
    expected = hmac.digest(key, b"v0:" + ts_text.encode() + b":" + bytes(raw_body), "sha256")
    given = signature.strip()
    if given[:3] in ("v0=", "V0="):
        given = given[3:]
    if not (given.isascii() and hmac.compare_digest(expected.hex(), given.lower())):
        raise WebhookVerificationError(
            f"the {SIGNATURE_HEADER} header does not match the body (wrong signing key, or a "
            "modified or re-serialised body)",
            reason="bad_signature",
        )
    ts = int(ts_text)
    age = (time.time() if now is None else now) - ts
    if age > tolerance:
        raise WebhookVerificationError(
            f"the request was signed {age:.0f}s ago, more than the {tolerance:g}s tolerance "
            "(a replay, or a clock far behind)",
            reason="too_old",
        )
    if -age > tolerance:
        raise WebhookVerificationError(
            f"the request is signed {-age:.0f}s in the future, more than the {tolerance:g}s "
            "tolerance (check this server's clock)",
            reason="too_new",
        )
    return ts


# ============================================================================ events


@dataclass(frozen=True, slots=True)
class WebhookIdentifiers:
    """Who the event is about (``data.identifiers``); any of them may be ``None``."""

    id: str | None = None
    email: str | None = None
    cio_id: str | None = None


_NO_IDENTIFIERS = WebhookIdentifiers()


@dataclass(frozen=True, slots=True)
class EventData:
    """The ``data`` object of an event, with the documented fields typed.

    Which fields are present depends on what produced the message: campaigns set
    ``campaign_id``/``action_id``, API-triggered broadcasts ``broadcast_id``/``trigger_id``,
    newsletters ``newsletter_id``/``content_id``, transactional messages
    ``transactional_message_id``; failures add ``failure_message`` and clicks ``href`` and
    ``link_id``. A field of an unexpected JSON type reads as ``None``; :attr:`raw` always
    holds the object exactly as received, unknown fields included.

    Attributes:
        identifiers: The person (``id``, ``email``, ``cio_id``).
        customer_id: Deprecated by Customer.io in favour of ``identifiers.id``.
        delivery_id: The message instance (matches :attr:`SendResult.delivery_id`).
        recipient: The address, number or device the message went to.
        raw: The whole ``data`` object.
    """

    identifiers: WebhookIdentifiers
    customer_id: str | None
    delivery_id: str | None
    recipient: str | None
    campaign_id: int | None
    broadcast_id: int | None
    newsletter_id: int | None
    action_id: int | None
    parent_action_id: int | None
    trigger_id: int | None
    content_id: int | None
    link_id: int | None
    transactional_message_id: int | str | None
    journey_id: str | None
    trigger_event_id: str | None
    failure_message: str | None
    href: str | None
    raw: Mapping[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        """A field of :attr:`raw`, e.g. ``data.get("subject")``."""
        return self.raw.get(key, default)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One reporting-webhook event.

    ``object_type`` and ``metric`` are plain strings (see :data:`ObjectType` and contract
    §6 for the documented values), so events Customer.io adds later still parse.

    Attributes:
        event_id: Unique id of the event (ULID-like); retried deliveries repeat it.
        object_type: ``customer``, ``email``, ``push``, ``in_app``, ``sms``, ``slack``,
            ``webhook``, ``whatsapp``, or something newer.
        metric: ``sent``, ``delivered``, ``opened``, ``clicked``, ``bounced``...
        timestamp: Unix seconds when the event happened.
        data: The typed ``data`` object.
        raw: The whole decoded event.
    """

    event_id: str
    object_type: str
    metric: str
    timestamp: int
    data: EventData
    raw: Mapping[str, Any]


def _invalid(message: str) -> WebhookVerificationError:
    return WebhookVerificationError(message, reason="invalid_payload")


def _s(value: Any) -> str | None:
    # Strings as they are; ints (ids some producers send unquoted) as text.
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None


def _i(value: Any) -> int | None:
    return value if type(value) is int else None


def parse_event(raw_body: bytes | str) -> WebhookEvent:
    """Decode a reporting-webhook body into a :class:`WebhookEvent`.

    Parse only after :func:`verify_signature` has accepted the body. Unknown object types,
    metrics and fields are kept, not rejected.

    Args:
        raw_body: The request body.

    Returns:
        The event.

    Raises:
        WebhookVerificationError: ``reason="invalid_payload"`` when the body is not JSON or
            lacks ``event_id``, ``object_type``, ``metric`` or an integer ``timestamp``.
    """
    try:
        # Decoding ourselves skips json's encoding sniffing (Customer.io sends UTF-8).
        doc = json.loads(raw_body if isinstance(raw_body, str) else bytes(raw_body).decode())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _invalid("the webhook body is not valid JSON") from None
    if type(doc) is not dict:
        raise _invalid("the webhook body is not a JSON object")
    event_id = doc.get("event_id")
    object_type = doc.get("object_type")
    metric = doc.get("metric")
    timestamp = doc.get("timestamp")
    if (
        type(event_id) is not str
        or not event_id
        or type(object_type) is not str
        or type(metric) is not str
        or type(timestamp) is not int
    ):
        raise _invalid(
            "the webhook body needs a string event_id, object_type and metric, and an "
            "integer timestamp"
        )
    data = doc.get("data")
    if type(data) is not dict:
        data = {}
    ids = data.get("identifiers")
    identifiers = (
        WebhookIdentifiers(_s(ids.get("id")), _s(ids.get("email")), _s(ids.get("cio_id")))
        if type(ids) is dict
        else _NO_IDENTIFIERS
    )
    get = data.get
    template = get("transactional_message_id")
    return WebhookEvent(
        event_id,
        object_type,
        metric,
        timestamp,
        EventData(
            identifiers,
            _s(get("customer_id")),
            _s(get("delivery_id")),
            _s(get("recipient")),
            _i(get("campaign_id")),
            _i(get("broadcast_id")),
            _i(get("newsletter_id")),
            _i(get("action_id")),
            _i(get("parent_action_id")),
            _i(get("trigger_id")),
            _i(get("content_id")),
            _i(get("link_id")),
            template if type(template) in (int, str) else None,
            _s(get("journey_id")),
            _s(get("trigger_event_id")),
            _s(get("failure_message")),
            _s(get("href")),
            data,
        ),
        doc,
    )


# ============================================================================ de-duplication


class WebhookDeduplicator:
    """Remembers recently accepted ``event_id`` s: a bounded LRU with a time-to-live.

    Customer.io retries a delivery whose answer it did not get, with the same ``event_id``;
    the receivers use this to pass each event to your callback once. Memory is bounded by
    ``max_size`` (the least recently seen ids are forgotten first) and entries expire after
    ``ttl`` seconds.

    Args:
        max_size: Ids remembered at most.
        ttl: Seconds an id is remembered after it was first accepted.
        clock: Monotonic clock, for tests.
    """

    __slots__ = ("_clock", "_entries", "_max_size", "_ttl")

    def __init__(
        self,
        max_size: int = WEBHOOK_DEDUP_SIZE,
        ttl: float = WEBHOOK_DEDUP_TTL,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1 or ttl <= 0:
            raise ValueError("max_size must be >= 1 and ttl > 0")
        self._max_size = max_size
        self._ttl = ttl
        self._clock = clock
        self._entries: collections.OrderedDict[str, float] = collections.OrderedDict()

    def __repr__(self) -> str:
        return f"<WebhookDeduplicator size={len(self._entries)}/{self._max_size} ttl={self._ttl:g}>"

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        expires = self._entries.get(event_id) if isinstance(event_id, str) else None
        return expires is not None and expires > self._clock()

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; return ``False`` when it was already remembered (a duplicate).

        A duplicate becomes the most recently used entry; its expiry is not extended.
        """
        now = self._clock()
        entries = self._entries
        # Entries are (mostly) in expiry order: drop the expired ones at the front.
        while entries:
            first = next(iter(entries.values()))
            if first > now:
                break
            entries.popitem(last=False)
        expires = entries.get(event_id)
        if expires is not None and expires > now:
            entries.move_to_end(event_id)
            return False
        entries[event_id] = now + self._ttl
        entries.move_to_end(event_id)
        if len(entries) > self._max_size:
            entries.popitem(last=False)
        return True

    def discard(self, event_id: str) -> None:
        """Forget ``event_id`` (the receiver does this when it could not accept the event)."""
        self._entries.pop(event_id, None)

    def clear(self) -> None:
        """Forget every id."""
        self._entries.clear()


# ============================================================================ receiver core

EventCallback: TypeAlias = Callable[[WebhookEvent], Awaitable[None]]
"""``async def on_event(event: WebhookEvent) -> None``."""


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What a receiver answers: an HTTP status and a small JSON body."""

    status: int
    body: bytes

    content_type: ClassVar[str] = "application/json"


@dataclass(frozen=True, slots=True)
class ReceiverStatistics:
    """A snapshot of a :class:`WebhookReceiver`'s counters.

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
    receiver; the callback runs in a background task (see the module documentation for
    the exact answers and why a failing callback still gets a 200).

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
        """A snapshot of the counters."""
        return ReceiverStatistics(
            accepted=self._accepted,
            duplicates=self._duplicates,
            callback_errors=self._callback_errors,
            running=len(self._tasks),
            rejected_by_reason=MappingProxyType(dict(self._rejected)),
        )

    def reject(self, reason: str) -> WebhookResponse:
        """Count a refusal made by an adapter (``too_large``, ``method_not_allowed``)."""
        self._rejected[reason] += 1
        return _TOO_LARGE if reason == "too_large" else _NOT_ALLOWED

    async def handle(
        self, body: bytes, timestamp: str | None, signature: str | None
    ) -> WebhookResponse:
        """Judge one delivery and, when accepted, start the callback in the background.

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
            self._rejected["closed"] += 1
            return _CLOSED
        dedup = self._dedup
        if dedup is not None and not dedup.add(event.event_id):
            self._duplicates += 1
            return _DUPLICATE
        slots = self._slots
        if slots is None:
            slots = self._slots = asyncio.Semaphore(self._max_concurrency)
        if slots.locked():
            try:
                await asyncio.wait_for(slots.acquire(), self._busy_timeout)
            except asyncio.TimeoutError:
                # Not accepted: let Customer.io's retry through the de-duplicator.
                if dedup is not None:
                    dedup.discard(event.event_id)
                self._rejected["busy"] += 1
                logger.warning(
                    "webhook receiver busy: %d callbacks running; answered 503",
                    self._max_concurrency,
                )
                return _BUSY
        else:
            await slots.acquire()  # free: returns at once
        task = asyncio.get_running_loop().create_task(self._run(event, slots))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._accepted += 1
        return _ACCEPTED

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
        """
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self, timeout: float | None = 10.0) -> None:
        """Refuse new events (503) and wait for running callbacks; cancel them after
        ``timeout`` seconds. Idempotent."""
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


def _receiver(
    target: WebhookReceiver | EventCallback,
    signing_key: str | bytes | None,
    options: Mapping[str, Any],
) -> WebhookReceiver:
    if isinstance(target, WebhookReceiver):
        if signing_key is not None or options:
            raise TypeError("configure the WebhookReceiver itself, not the adapter")
        return target
    if signing_key is None:
        raise TypeError("signing_key is required")
    return WebhookReceiver(target, signing_key=signing_key, **options)


# ============================================================================ ASGI

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
        limit = receiver.max_body_size
        timestamp = signature = None
        declared = 0
        for name, value in scope["headers"]:
            if name == _TS_KEY:
                timestamp = value.decode("latin-1")
            elif name == _SIG_KEY:
                signature = value.decode("latin-1")
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        if scope["method"] != "POST":
            await _asgi_send(send, receiver.reject("method_not_allowed"), allow=True)
            return
        if declared > limit:
            await _asgi_send(send, receiver.reject("too_large"))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _asgi_send(send, receiver.reject("too_large"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        await _asgi_send(send, await receiver.handle(body, timestamp, signature))


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

    Args:
        target: ``async def on_event(event)``, or a configured :class:`WebhookReceiver`.
        signing_key: The webhook's signing key (with a callback).
        **options: :class:`WebhookReceiver` options (``tolerance``, ``dedup``,
            ``max_concurrency``, ``busy_timeout``, ``max_body_size``), with a callback.

    Returns:
        The ASGI application; its ``receiver`` attribute holds the receiver.
    """
    return ASGIWebhookApp(_receiver(target, signing_key, options))


def aiohttp_handler(
    target: WebhookReceiver | EventCallback,
    *,
    signing_key: str | bytes | None = None,
    **options: Any,
) -> AiohttpHandler:
    """Build an ``aiohttp.web`` request handler with the same behaviour as :func:`asgi_receiver`.

    ``app.router.add_post("/webhooks/customerio", aiohttp_handler(on_event, signing_key=K))``.
    To wait for running callbacks at shutdown, create the :class:`WebhookReceiver`
    yourself, pass it here, and register ``receiver.aclose`` in ``app.on_shutdown``.

    Args:
        target: ``async def on_event(event)``, or a configured :class:`WebhookReceiver`.
        signing_key: The webhook's signing key (with a callback).
        **options: :class:`WebhookReceiver` options, with a callback.
    """
    from ._webhook_aiohttp import make_handler  # aiohttp.web is imported only if used

    return make_handler(_receiver(target, signing_key, options))
