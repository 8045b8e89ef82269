"""Recipe: an ``aiohttp.web`` app that owns a CustomerIO client, with ``/metrics`` and webhooks.

* ``cleanup_ctx`` owns the client: it opens before the first request and, at shutdown,
  drains the send buffer (``drain_timeout``) before the pool closes, so no event is lost on a
  deploy.
* ``/metrics`` exposes the client's Prometheus metrics (``cio.metrics.registry``).
* ``/webhooks/customerio`` receives Customer.io reporting webhooks (verified, parsed,
  de-duplicated; the receiver is closed at shutdown so running callbacks finish).

Run it against an in-process fake Customer.io, then poke it::

    python examples/aiohttp_app.py --fake --port 8080
    curl -X POST localhost:8080/signup -d '{"user_id": "42", "email": "ada@example.com"}'
    curl -X POST localhost:8080/orders -d '{"user_id": "42", "total": 9}'
    curl -s localhost:8080/metrics | grep 'customerio_operations_total{outcome="delivered"'

``/signup`` answers 202 at once: its two operations are buffered and leave with the next
batch (within ``linger``, 0.5 s by default), so a ``/metrics`` right after it may still say
0 delivered. ``/orders`` uses ``wait=True``: it answers once Customer.io accepted the event,
and the person's earlier operations travel in the same batch (or an earlier one), so the
metrics line then reads 3.0.

Against Customer.io: set ``CUSTOMERIO_SITE_ID``, ``CUSTOMERIO_API_KEY`` and
``CUSTOMERIO_WEBHOOK_SIGNING_KEY`` and drop ``--fake``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from customerio_async import BatchConfig, CustomerIO, DeliveryError
from customerio_async.testing import FakeCustomerIO
from customerio_async.webhooks import WebhookEvent, WebhookReceiver, aiohttp_handler

log = logging.getLogger("example")

CIO = web.AppKey("cio", CustomerIO)
FAKE = web.AppKey("fake", FakeCustomerIO)  # set with --fake, for the demo and the tests
EVENTS = web.AppKey("events", collections.deque[WebhookEvent])
FAKE_SIGNING_KEY = "fake-signing-key"


def customerio_context(
    *, fake: bool, track_url: str | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context that owns the client (and, with ``fake``, the fake server)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if fake:
                server = await stack.enter_async_context(FakeCustomerIO())
                app[FAKE] = server
                client = CustomerIO(server.site_id, server.api_key, track_url=server.url)
            else:  # credentials from $CUSTOMERIO_SITE_ID / $CUSTOMERIO_API_KEY
                client = CustomerIO(track_url=track_url, batch=BatchConfig(drain_timeout=10))
            app[CIO] = await stack.enter_async_context(client)
            yield
            # Leaving the stack: the client drains its buffer, then the fake stops.

    return context


async def signup(request: web.Request) -> web.Response:
    """Fire-and-forget: both calls return as soon as the operations are buffered."""
    body = await request.json()
    cio = request.app[CIO]
    user_id = str(body["user_id"])
    await cio.identify(user_id, email=body.get("email"), plan=body.get("plan", "free"))
    await cio.track(user_id, "signed_up", {"plan": body.get("plan", "free")})
    return web.json_response({"accepted": True}, status=202)


async def order(request: web.Request) -> web.Response:
    """Confirmed: ``wait=True`` returns once Customer.io accepted the event, or raises."""
    body = await request.json()
    try:
        await request.app[CIO].track(str(body["user_id"]), "order_placed", body, wait=True)
    except DeliveryError as exc:
        return web.json_response({"delivered": False, "reason": exc.outcome.reason}, status=502)
    return web.json_response({"delivered": True})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus scrape endpoint."""
    body = generate_latest(request.app[CIO].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def health(request: web.Request) -> web.Response:
    """The client's counters (accepted == delivered + rejected + dropped + pending)."""
    stats = request.app[CIO].statistics()
    fields = ("accepted", "delivered", "rejected", "dropped", "pending", "state")
    return web.json_response({name: getattr(stats, name) for name in fields})


def create_app(
    *, fake: bool = False, track_url: str | None = None, signing_key: str | None = None
) -> web.Application:
    """Build the application (tests call this and serve it on a random port)."""
    app = web.Application()
    app[EVENTS] = collections.deque(maxlen=100)

    async def on_event(event: WebhookEvent) -> None:
        # Keep callbacks short and durable (enqueue, then return): the answer is already 200.
        log.info("webhook %s %s %s", event.object_type, event.metric, event.event_id)
        app[EVENTS].append(event)

    key = signing_key or os.environ.get("CUSTOMERIO_WEBHOOK_SIGNING_KEY") or FAKE_SIGNING_KEY
    receiver = WebhookReceiver(on_event, signing_key=key)

    async def close_receiver(app: web.Application) -> None:
        await receiver.aclose()

    app.cleanup_ctx.append(customerio_context(fake=fake, track_url=track_url))
    app.on_shutdown.append(close_receiver)
    app.router.add_post("/signup", signup)
    app.router.add_post("/orders", order)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", health)
    app.router.add_post("/webhooks/customerio", aiohttp_handler(receiver))
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fake", action="store_true", help="use an in-process fake Customer.io")
    parser.add_argument("--track-url", help="Track API origin override (a proxy, a fake)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = create_app(fake=args.fake, track_url=args.track_url)
    web.run_app(app, host=args.host, port=args.port)  # SIGINT/SIGTERM run cleanup_ctx
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
