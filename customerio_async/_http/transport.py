"""The HTTP transport: the only module of the clients that imports aiohttp.

:class:`AiohttpTransport` owns one ``aiohttp.ClientSession`` over a keep-alive
``TCPConnector`` (pool limits, DNS cache, explicit timeouts) and exposes one coroutine,
:meth:`AiohttpTransport.request`, that takes an :class:`HTTPRequest` and returns an
:class:`HTTPResponse` or raises one of our :class:`TransportError` subclasses. aiohttp
exceptions are translated here and nowhere else.

Credentials: the ``Authorization`` header is attached here, and only to requests that are
``authenticated`` (the API defines some calls as unauthenticated) and only for the configured
origin or ``https://*.customer.io``. Redirects are never followed by aiohttp: we follow them
ourselves (Customer.io redirects EU workspaces that call the US host) and refuse any target
that must not see our credentials, or that is not a URL at all.
"""

from __future__ import annotations

import asyncio
import io
import platform
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from .._common.logs import logger
from .._config import PoolLimits, Timeouts
from .._exceptions import (
    ClientStateError,
    ConnectError,
    ConnectionLostError,
    RequestTimeoutError,
    TransportError,
    UnsafeRedirectError,
)
from .._version import __version__
from .messages import HTTPRequest, HTTPResponse

__all__ = ["AiohttpTransport", "default_user_agent", "is_trusted_url"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 3
_STREAM_ABOVE = 1 << 20


def default_user_agent() -> str:
    """``customerio-async/<v> (Python <v>; aiohttp <v>)``."""
    return (
        f"customerio-async/{__version__} "
        f"(Python {platform.python_version()}; aiohttp {aiohttp.__version__})"
    )


def is_trusted_url(url: str, origin: str) -> bool:
    """Whether ``url`` may receive our Authorization header.

    Trusted: the configured ``origin`` (same scheme, host and port) and any
    ``https://*.customer.io`` host. Everything else, including plain-http Customer.io hosts,
    is not.
    """
    target = urlsplit(url)
    base = urlsplit(origin)
    if (target.scheme, target.hostname, target.port) == (base.scheme, base.hostname, base.port):
        return True
    host = (target.hostname or "").lower()
    return target.scheme == "https" and (host == "customer.io" or host.endswith(".customer.io"))


class AiohttpTransport:
    """A pooled aiohttp session bound to one origin and one Authorization header.

    Create it inside a running event loop (``open()`` builds the session), and close it with
    ``aclose()``; the client does both from ``async with``.
    """

    def __init__(
        self,
        *,
        origin: str,
        authorization: str,
        timeouts: Timeouts,
        pool: PoolLimits,
        user_agent: str | None = None,
    ) -> None:
        self._origin = origin
        self._authorization = authorization
        self._timeouts = timeouts
        self._pool = pool
        self._user_agent = user_agent or default_user_agent()
        self._session: aiohttp.ClientSession | None = None
        # Pool metrics from aiohttp's connection-level trace signals.
        self.connections_created = 0
        self.connections_reused = 0
        self.connections_in_use = 0

    def __repr__(self) -> str:
        state = "open" if self._session is not None and not self._session.closed else "closed"
        return f"<AiohttpTransport origin={self._origin!r} {state}>"

    @property
    def origin(self) -> str:
        """The origin requests are sent to."""
        return self._origin

    async def open(self) -> None:
        """Create the connector and session (must run inside the event loop)."""
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self._pool.max_connections,
            limit_per_host=self._pool.max_connections_per_host,
            keepalive_timeout=self._pool.keepalive_timeout,
            ttl_dns_cache=self._pool.dns_cache_ttl,
            use_dns_cache=True,
            enable_cleanup_closed=sys.version_info < (3, 12, 7),
        )
        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(self._on_acquire_new)
        trace.on_connection_reuseconn.append(self._on_acquire_reused)
        trace.on_request_end.append(self._on_release)
        trace.on_request_exception.append(self._on_release)
        self._session = aiohttp.ClientSession(
            connector=connector,
            trace_configs=[trace],
            timeout=aiohttp.ClientTimeout(
                total=self._timeouts.total,
                connect=self._timeouts.connect,
                sock_read=self._timeouts.sock_read,
            ),
            headers={"User-Agent": self._user_agent},
            auto_decompress=True,
            # We build URLs from already-encoded segments; yarl must not re-normalise them.
            requote_redirect_url=False,
        )

    async def _on_acquire_new(self, _s: object, ctx: object, _p: object) -> None:
        self.connections_created += 1
        self._acquired(ctx)

    async def _on_acquire_reused(self, _s: object, ctx: object, _p: object) -> None:
        self.connections_reused += 1
        self._acquired(ctx)

    def _acquired(self, ctx: object) -> None:
        ctx.acquired = True  # type: ignore[attr-defined]
        self.connections_in_use += 1

    async def _on_release(self, _s: object, ctx: object, _p: object) -> None:
        # A request that failed before getting a connection never acquired one.
        if getattr(ctx, "acquired", False):
            ctx.acquired = False  # type: ignore[attr-defined]
            self.connections_in_use -= 1

    def rebase(self, origin: str) -> None:
        """Send later requests to ``origin`` (region discovery found another region)."""
        self._origin = origin

    async def aclose(self) -> None:
        """Close the session and its pooled connections. Idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def request(self, request: HTTPRequest) -> HTTPResponse:
        """Send one request and read the whole response.

        Args:
            request: What to send; ``request.path`` is already percent-encoded.

        Returns:
            The response, whatever its status (status handling is the caller's).

        Raises:
            ConnectError: The connection could not be made; nothing was sent.
            RequestTimeoutError: The response did not complete in time.
            ConnectionLostError: The connection dropped mid-exchange.
            UnsafeRedirectError: A redirect to a host that must not see our credentials, or
                whose ``Location`` is not a usable URL.
            TransportError: Any other transport failure.
            ClientStateError: The transport is not open.
        """
        session = self._session
        if session is None:
            raise ClientStateError("the transport is not open")
        what = f"{request.method} {request.endpoint}"
        url = self._origin + request.path
        hdrs: dict[str, str] = {}
        if request.authenticated:
            hdrs["Authorization"] = self._authorization
        if request.body is not None:
            hdrs["Content-Type"] = "application/json"
        if request.headers:
            hdrs.update(request.headers)
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._send(session, request.method, url, request.body, hdrs, what)
            if response.status not in _REDIRECTS or "location" not in response.headers:
                return response
            url = self._redirect_target(url, response, what)
            logger.debug("%s: following %d redirect", what, response.status)
        raise TransportError(f"{what}: more than {_MAX_REDIRECTS} redirects")

    def _redirect_target(self, url: str, response: HTTPResponse, what: str) -> str:
        try:
            target = str(URL(url, encoded=True).join(URL(response.headers["location"])))
            host = urlsplit(target).hostname or "?"
        except ValueError:  # e.g. "http://[::1": a server bug must not crash a worker
            raise UnsafeRedirectError(
                f"{what}: refused a {response.status} redirect whose Location is not a URL"
            ) from None
        if not is_trusted_url(target, self._origin):
            raise UnsafeRedirectError(
                f"{what}: refused a {response.status} redirect to untrusted host {host!r}"
            )
        return target

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str],
        what: str,
    ) -> HTTPResponse:
        try:
            async with session.request(
                method,
                URL(url, encoded=True),
                # aiohttp warns about (and copies) large in-memory bytes bodies; a stream
                # view avoids both. A fresh one per attempt, so retries resend in full.
                data=io.BytesIO(body) if body is not None and len(body) > _STREAM_ABOVE else body,
                headers=headers,
                allow_redirects=False,
            ) as resp:
                data = await resp.read()
                return HTTPResponse(
                    resp.status, {k.lower(): v for k, v in resp.headers.items()}, data
                )
        # Order matters: specific aiohttp classes before their bases. The two whose str()
        # holds the request URL (a v1 path holds the person's identifier) are not chained.
        except aiohttp.ConnectionTimeoutError:
            raise RequestTimeoutError(f"{what}: connect timed out", request_sent=False) from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"{what}: cannot connect to {_where(exc)}") from exc
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as exc:
            raise RequestTimeoutError(f"{what}: timed out waiting for the response") from exc
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
            aiohttp.ClientPayloadError,
        ) as exc:
            raise ConnectionLostError(f"{what}: connection lost ({type(exc).__name__})") from exc
        except aiohttp.ClientResponseError as exc:  # e.g. a response that is not HTTP
            detail = str(exc.message).split("\n", 1)[0].rstrip(":") or f"HTTP {exc.status}"
            raise ConnectionLostError(
                f"{what}: connection lost ({type(exc).__name__}: {detail})"
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{what}: {type(exc).__name__}") from exc


def _where(exc: aiohttp.ClientConnectorError) -> str:
    """``host:port: reason`` in words (never an aiohttp class name)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = "the TLS certificate could not be verified"
    elif isinstance(exc, aiohttp.ClientConnectorSSLError):
        reason = "the TLS handshake failed"
    elif isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = "the host name could not be resolved"
    else:
        os_error = getattr(exc, "os_error", None)
        reason = (getattr(os_error, "strerror", None) or "connection failed").lower()
    return f"{exc.host}:{exc.port}: {reason}"
