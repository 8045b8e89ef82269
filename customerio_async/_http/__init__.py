"""The one HTTP stack every API client sends through.

Per request, outermost first::

    retry ─▶ gate ─▶ your HTTP middleware ─▶ accounting ─▶ transport (aiohttp)
    (rules)  (pause + rate)                   (counters,     (pool, redirects,
                                               latency)       credentials)

* :mod:`.retry` decides, per attempt, whether to try again and when; what is retryable is
  data (:class:`~.rules.APIRules`), so Track, App and Pipelines share the code and differ
  only in their rules (App sends, which have no idempotency key, are never repeated once
  their outcome is unknown).
* :mod:`.gate` waits out a pause (a 429, an auth failure) and takes a rate-limit token; a
  :class:`~.gate.Limiter` hands out one gate per workspace and API (local by default, shared
  between processes with the Redis extra).
* :mod:`.accounting` counts requests, bytes and in-flight requests and times each exchange.
* :mod:`.transport` is the only client module that imports aiohttp.

:class:`~.stack.HTTPStack` assembles the chain once per client. This package imports no API
package: the APIs import it.
"""

from .errors import ErrorDetail, make_status_error, parse_error_body
from .gate import Gate, Limiter, LocalGate, LocalLimiter
from .messages import HTTPHandler, HTTPMiddleware, HTTPRequest, HTTPResponse
from .rules import APIRules
from .stack import HTTPStack
from .transport import AiohttpTransport

__all__ = [
    "APIRules",
    "AiohttpTransport",
    "ErrorDetail",
    "Gate",
    "HTTPHandler",
    "HTTPMiddleware",
    "HTTPRequest",
    "HTTPResponse",
    "HTTPStack",
    "Limiter",
    "LocalGate",
    "LocalLimiter",
    "make_status_error",
    "parse_error_body",
]
