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
* **503** only when every callback slot stays busy for ``busy_timeout`` seconds.

An ``event_id`` counts as seen only once its callback has started: an event answered 503,
or whose request was cancelled while it waited for a slot (its sender went away), is
processed when Customer.io retries it.

A callback that raises is logged (``logging.getLogger("customerio_async")``) and counted in
:meth:`WebhookReceiver.statistics`; it does **not** turn into a non-2xx answer. Customer.io
retries non-2xx deliveries for up to 7 days and holds *every later event* back behind the
failing one, so failing a delivery because of a bug in your handler would stall the whole
stream. Make your callback durable (enqueue, then acknowledge) if losing an event to a
crash matters; call :meth:`WebhookReceiver.aclose` at shutdown to let running callbacks
finish.

The package, by module: :mod:`.verify` (signatures), :mod:`.parse` (events), :mod:`.dedup`
(seen ids), :mod:`.receiver` (the framework-free core), :mod:`.asgi` and :mod:`.aiohttp`
(the adapters; only the latter imports aiohttp, and only when :func:`aiohttp_handler` is
called).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._exceptions import WebhookVerificationError
from .asgi import ASGIWebhookApp, asgi_receiver
from .dedup import WebhookDeduplicator
from .parse import EventData, ObjectType, WebhookEvent, WebhookIdentifiers, parse_event
from .receiver import EventCallback, ReceiverStatistics, WebhookReceiver, WebhookResponse
from .receiver import receiver_for as _receiver_for
from .verify import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

if TYPE_CHECKING:
    from .aiohttp import AiohttpHandler

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


def aiohttp_handler(
    target: WebhookReceiver | EventCallback,
    *,
    signing_key: str | bytes | None = None,
    **options: Any,
) -> AiohttpHandler:
    """Build an ``aiohttp.web`` request handler with the same behaviour as :func:`asgi_receiver`.

    To wait for running callbacks at shutdown, create the :class:`WebhookReceiver`
    yourself, pass it here, and register ``receiver.aclose`` in ``app.on_shutdown``.

    Example::

        receiver = WebhookReceiver(on_event, signing_key=SIGNING_KEY)
        app = web.Application()
        app.router.add_post("/webhooks/customerio", aiohttp_handler(receiver))
        app.on_shutdown.append(lambda _app: receiver.aclose())

    Args:
        target: ``async def on_event(event)``, or a configured :class:`WebhookReceiver`.
        signing_key: The webhook's signing key (with a callback).
        **options: :class:`WebhookReceiver` options, with a callback.
    """
    # Imported here, not above: importing this package must not load aiohttp.web.
    from .aiohttp import make_handler

    return make_handler(_receiver_for(target, signing_key, options))
