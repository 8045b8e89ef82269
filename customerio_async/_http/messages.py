"""What travels through the HTTP chain: :class:`HTTPRequest` in, :class:`HTTPResponse` out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["HTTPHandler", "HTTPMiddleware", "HTTPRequest", "HTTPResponse"]


@dataclass(slots=True)
class HTTPRequest:
    """One HTTP request as HTTP middleware sees it.

    Example::

        async def tag(request: HTTPRequest, handler: HTTPHandler) -> HTTPResponse:
            request.headers["X-Service"] = "billing"
            return await handler(request)

    Attributes:
        method: HTTP method.
        path: Percent-encoded path and query below the origin.
        body: Body bytes, or ``None``.
        endpoint: Endpoint template (``/api/v2/batch``, ``/api/v1/customers/{id}``), safe
            for logs and metric labels: never a concrete identifier.
        api: ``"track"``, ``"app"`` or ``"pipelines"``.
        region: The workspace region (``"us"``/``"eu"``).
        headers: Extra request headers; middleware may add to them.
        deadline: Event-loop time after which retrying is pointless (``None``: no deadline).
        attempt: 1 for the first attempt, 2 for the first retry, …
        ops: Operations carried by this request (for metrics).
        bucket: The rate-limit class the request draws from (``"default"`` for Track).
        authenticated: ``False`` for the calls the API defines as unauthenticated
            (delivery and push metrics, custom unsubscribe): no credentials are sent.
        gated: The send pipeline already passed the gate for this attempt (it waits for the
            gate before sealing a batch); the gate layer lets it through once.
    """

    method: str
    path: str
    body: bytes | None
    endpoint: str
    api: str = "track"
    region: str = "us"
    headers: dict[str, str] = field(default_factory=dict)
    deadline: float | None = None
    attempt: int = 1
    ops: int = 1
    bucket: str = "default"
    authenticated: bool = True
    gated: bool = False


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    """A complete HTTP response.

    Example::

        async def log_server_errors(request: HTTPRequest, call_next) -> HTTPResponse:
            response: HTTPResponse = await call_next(request)
            if response.status >= 500:
                logger.info("%s answered %d", request.endpoint, response.status)
            return response

        cio = CustomerIO(http_middleware=[log_server_errors])

    Attributes:
        status: The HTTP status code.
        headers: Response headers with lower-cased names.
        body: The raw body bytes.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


HTTPHandler = Callable[[HTTPRequest], Awaitable[HTTPResponse]]
"""The next layer of the chain: ``await handler(request)``."""

HTTPMiddleware = Callable[[HTTPRequest, HTTPHandler], Awaitable[HTTPResponse]]
"""``async def mw(request, call_next) -> HTTPResponse``: sees every attempt of every request.

Example::

    async def tag(request: HTTPRequest, call_next) -> HTTPResponse:
        request.headers["X-Request-Source"] = "billing"   # not a credential, not an id
        return await call_next(request)

    cio = CustomerIO(http_middleware=[tag])
"""
"""``async def mw(request, handler) -> HTTPResponse``; the second argument is passed
positionally, so ``call_next``, ``handler`` or any other name works."""
