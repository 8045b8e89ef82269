"""The App API's retry and pacing rules, as data for the shared HTTP stack.

**Idempotency and retries.** App API sends and broadcast triggers carry no idempotency key: a
repeated request sends the message (or fires the broadcast) again. So a ``POST`` is retried
only when the request provably did not take effect:

* the connection was never established (:class:`ConnectError`, a connect timeout:
  ``request_sent`` is ``False``), or
* the server answered **408**, **425**, **429** or **503** (it refused before processing),
  honouring a ``Retry-After`` as a floor (capped at ``RetryPolicy.max_retry_after``) and
  otherwise backing off with full jitter; a 429 also pauses that rate-limit class for every
  caller.

Any failure after the body may have been written (a timeout waiting for the answer, a
connection reset mid-response) raises :class:`OutcomeUnknownError`, chained to the transport
error, and is never retried. Other 5xx answers (500, 502, 504...) raise :class:`ServerError`
and are not retried either: the server may have applied the request. ``GET`` requests
(reading a trigger's errors) are idempotent and are retried on transport errors, 408, 425,
429 and 5xx (but 501 and 505). Attempts per call are bounded by
``RetryPolicy.direct_attempts``.
"""

from __future__ import annotations

from types import MappingProxyType

from .._config import AppRateLimits
from .._http.rules import APIRules

__all__ = ["app_rules"]


def app_rules(limits: AppRateLimits | None) -> APIRules:
    """The App API's rules: only ``GET`` may be repeated when its outcome is unknown (sends
    and triggers have no idempotency key); a ``POST`` is retried only on statuses that prove
    the server did not act (408, 425, 429, 503). One rate-limit class per kind of call.

    Args:
        limits: Client-side limits per class; ``None`` disables them all.
    """
    limits = limits or AppRateLimits(transactional=None, general=None, broadcast=None)
    return APIRules(
        api="app",
        repeatable_methods=frozenset({"GET"}),
        credentials="the App API key",
        buckets=MappingProxyType(
            {
                "transactional": limits.transactional,
                "general": limits.general,
                "broadcast": limits.broadcast,
            }
        ),
    )
