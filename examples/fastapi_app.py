"""Recipe: FastAPI (or Starlette) with a lifespan-owned CustomerIO client and a webhook route.

* The **lifespan** opens the client at startup and, at shutdown, drains its buffer before
  the pool closes; the client reaches handlers through ``request.state`` (lifespan state)
  and a typed dependency.
* The **webhook receiver** from :mod:`customerio_async.webhooks` is an ASGI app. It is routed
  at an exact path with a Starlette ``Route``: ``app.mount("/webhooks/customerio", ...)``
  would answer the bare path with a 307 redirect to ``/webhooks/customerio/``. Its
  ``receiver`` is closed in the lifespan, so running callbacks finish at shutdown.
* ``/metrics`` serves the client's Prometheus metrics.

The same code works on plain Starlette: ``Starlette(routes=[...], lifespan=lifespan)``.

Run it with uvicorn against an in-process fake Customer.io::

    pip install fastapi uvicorn
    python examples/fastapi_app.py --fake --port 8000
    curl -X POST localhost:8000/signup -H 'content-type: application/json' \\
         -d '{"user_id": "42", "email": "ada@example.com"}'
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.routing import Route

from customerio_async import CustomerIO
from customerio_async.testing import FakeCustomerIO
from customerio_async.webhooks import WebhookEvent, WebhookReceiver, asgi_receiver

log = logging.getLogger("example")
FAKE_SIGNING_KEY = "fake-signing-key"


class Signup(BaseModel):
    user_id: str
    email: str
    plan: str = "free"


def get_cio(request: Request) -> CustomerIO:
    """The lifespan's client, as a typed dependency."""
    cio: CustomerIO = request.state.cio
    return cio


Cio = Annotated[CustomerIO, Depends(get_cio)]


def create_app(
    *, fake: bool = False, track_url: str | None = None, signing_key: str | None = None
) -> FastAPI:
    """Build the application (tests serve it with uvicorn on a random port)."""
    received: list[WebhookEvent] = []

    async def on_event(event: WebhookEvent) -> None:
        log.info("webhook %s %s %s", event.object_type, event.metric, event.event_id)
        received.append(event)

    key = signing_key or os.environ.get("CUSTOMERIO_WEBHOOK_SIGNING_KEY") or FAKE_SIGNING_KEY
    webhooks = asgi_receiver(WebhookReceiver(on_event, signing_key=key))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            if fake:
                server = await stack.enter_async_context(FakeCustomerIO())
                app.state.fake = server  # for the demo and the tests
                client = CustomerIO(server.site_id, server.api_key, track_url=server.url)
            else:  # credentials from $CUSTOMERIO_SITE_ID / $CUSTOMERIO_API_KEY
                client = CustomerIO(track_url=track_url)
            cio = await stack.enter_async_context(client)
            stack.push_async_callback(webhooks.receiver.aclose)  # runs before the client drains
            yield {"cio": cio}

    app = FastAPI(lifespan=lifespan)
    app.state.webhook_events = received
    app.router.routes.append(Route("/webhooks/customerio", webhooks, methods=["POST"]))

    @app.post("/signup", status_code=202)
    async def signup(body: Signup, cio: Cio) -> dict[str, bool]:
        await cio.identify(body.user_id, email=body.email, plan=body.plan)
        await cio.track(body.user_id, "signed_up", {"plan": body.plan})
        return {"accepted": True}

    @app.get("/metrics")
    async def metrics(cio: Cio) -> Response:
        return Response(generate_latest(cio.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="FastAPI + customerio-async recipe")
    parser.add_argument("--fake", action="store_true", help="use an in-process fake Customer.io")
    parser.add_argument("--track-url", help="Track API origin override (a proxy, a fake)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = create_app(fake=args.fake, track_url=args.track_url)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
