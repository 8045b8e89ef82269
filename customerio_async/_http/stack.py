"""One API's whole HTTP path, assembled once per client."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .._config import RetryPolicy
from .accounting import AccountingLayer
from .chain import build_chain
from .errors import make_status_error
from .gate import Gate, GateLayer
from .messages import HTTPMiddleware, HTTPRequest, HTTPResponse
from .retry import RetryCounters, RetryLayer, parse_retry_after
from .rules import APIRules
from .transport import AiohttpTransport

__all__ = ["HTTPStack"]


class HTTPStack:
    """``retry → gate → your middleware → accounting → transport`` for one API.

    Two entry points share every layer but the retry mode (see :mod:`.retry`):
    :meth:`deliver` for batched delivery (retries until the request's deadline, raises
    ``GiveUp``) and :meth:`call` / :meth:`call_ok` for a caller awaiting one request.

    Example::

        stack = HTTPStack(transport, rules=TRACK_RULES, policy=RetryPolicy(), gate=gate)
        response = await stack.call_ok(HTTPRequest("GET", "/api/v1/accounts/region", None,
                                                   "/api/v1/accounts/region"))

    Args:
        transport: The pooled transport (origin + credentials).
        rules: The API's retry and pacing rules.
        policy: Backoff settings.
        gate: Pause and rate limit for this workspace and API.
        middleware: The user's HTTP middleware, run once per attempt.
        accept: ``deliver`` mode: whether a 2xx response is really a success.
        clock: Monotonic clock matching the requests' deadlines.
    """

    def __init__(
        self,
        transport: AiohttpTransport,
        *,
        rules: APIRules,
        policy: RetryPolicy,
        gate: Gate,
        middleware: Sequence[HTTPMiddleware] = (),
        accept: Callable[[HTTPRequest, HTTPResponse], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.rules = rules
        self.gate = gate
        self.counters = RetryCounters(policy)
        self.accounting = AccountingLayer()
        inner: list[HTTPMiddleware] = [GateLayer(gate), *middleware, self.accounting]

        def retry(mode: str) -> RetryLayer:
            return RetryLayer(
                rules,
                policy,
                gate,
                self.counters,
                mode="deliver" if mode == "deliver" else "call",
                accept=accept if mode == "deliver" else None,
                clock=clock,
            )

        self.deliver = build_chain(transport.request, [retry("deliver"), *inner])
        self.call = build_chain(transport.request, [retry("call"), *inner])

    async def call_ok(self, request: HTTPRequest) -> HTTPResponse:
        """:meth:`call`, then raise the matching ``APIStatusError`` unless it is a 2xx.

        Raises:
            APIStatusError: The API answered an error status (after the allowed retries).
            TransportError: No response (after the allowed retries).
        """
        response = await self.call(request)
        if 200 <= response.status < 300:
            return response
        raise make_status_error(
            response.status,
            response.body,
            response.headers,
            endpoint=request.endpoint,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
