"""Retries: which failures earn another attempt, how long to wait, when to give up.

One :class:`RetryLayer` serves every API; what differs is data (:class:`~.rules.APIRules`)
and the mode:

* ``deliver`` (batched delivery): retry until the request's deadline (or
  ``RetryPolicy.max_attempts``), then raise :class:`~customerio_async._exceptions.GiveUp`
  with the drop reason. A 401/403 pauses the workspace's gate for ``auth_pause`` and is
  retried (the key may be fixed); a 2xx that ``accept`` refuses (a batch answer whose errors
  cannot be mapped to its operations) is retried like a server error.
* ``call`` (a caller awaits this one request): at most ``RetryPolicy.direct_attempts``; the
  last response is returned for the caller to raise, the last transport error re-raised. A
  server-requested wait longer than ``backoff_cap`` is not slept through: the caller gets
  the 429 at once. A request the rules call non-repeatable (App API sends) whose outcome is
  unknown raises :class:`~customerio_async._exceptions.OutcomeUnknownError` instead.

Backoff is full jitter, ``uniform(0, min(cap, base * 2**(attempt-1)))``; a ``Retry-After``
(seconds or HTTP-date; Customer.io documents none, so absence is normal) is a floor capped at
``max_retry_after``, plus up to 10 % jitter. A 429 also pauses the gate, so every sender of
the workspace backs off. A retry budget (each failure spends a token, each success earns a
fraction back) turns retries into slow probes while an API keeps failing.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import email.utils
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .._common.logs import RateLimitedLog, logger
from .._config import RetryPolicy
from .._exceptions import (
    ConnectionLostError,
    GiveUp,
    OutcomeUnknownError,
    TransportError,
    UnsafeRedirectError,
)
from .gate import Gate
from .messages import HTTPHandler, HTTPRequest, HTTPResponse
from .rules import APIRules

__all__ = ["RetryCounters", "RetryLayer", "backoff", "parse_retry_after"]

AUTH_STATUSES = frozenset({401, 403})
Mode = Literal["deliver", "call"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header into non-negative seconds.

    Accepts delay-seconds (``"2"``, ``"1.5"``) and an HTTP-date (naive dates read as UTC).
    Customer.io documents no ``Retry-After``, so absence and garbage both yield ``None``
    and the caller falls back to its own backoff.

    Args:
        value: The header value, or ``None`` when absent.
        now: Current Unix time, for tests; defaults to ``time.time()``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            # "-0000" dates parse naive; reading them as local time is the bug Segment had.
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class RetryCounters:
    """Retries by cause, unknown outcomes and the retry budget of one API stack."""

    __slots__ = ("budget", "by_cause", "outcome_unknown", "policy", "retries")

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.budget = policy.budget
        self.retries = 0
        self.outcome_unknown = 0
        self.by_cause: collections.Counter[str] = collections.Counter()

    def succeeded(self) -> None:
        """A request succeeded: earn back part of a budget token."""
        self.budget = min(self.policy.budget, self.budget + self.policy.budget_refill)

    def failed(self) -> None:
        """An attempt failed: spend a budget token."""
        self.budget = max(0.0, self.budget - 1.0)

    def retried(self, cause: str) -> None:
        """Count one retry of ``cause``."""
        self.retries += 1
        self.by_cause[cause] += 1

    @property
    def depleted(self) -> bool:
        """Below half the budget: retries become slow probes."""
        return self.budget < self.policy.budget / 2


def backoff(policy: RetryPolicy, attempt: int, retry_after: float | None, *, probe: bool) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    Args:
        policy: Backoff settings.
        attempt: The attempt that just failed (1 for the first).
        retry_after: The server's ``Retry-After`` in seconds, if it sent one.
        probe: The retry budget is spent: wait between half and all of ``backoff_cap``.
    """
    if probe:
        delay = policy.backoff_cap / 2 + random.uniform(0, policy.backoff_cap / 2)
    else:
        ceiling = min(policy.backoff_cap, policy.backoff_base * (2 ** (attempt - 1)))
        delay = random.uniform(0, ceiling)  # full jitter
    if retry_after is not None:
        # A floor, plus up to 10 % jitter so clients told the same value do not return in
        # lock-step.
        floor = min(retry_after, policy.max_retry_after)
        delay = max(delay, floor) + random.uniform(0, 0.1 * floor)
    return delay


@dataclass(slots=True)
class _Failure:
    """Why an attempt failed, and what to hand back if it is the last one."""

    cause: str
    response: HTTPResponse | None = None
    error: TransportError | None = None
    retry_after: float | None = None
    reason: str = "delivery_timeout"  # the drop reason if a deliver-mode retry runs out of time


class RetryLayer:
    """Retry middleware (the outermost layer of an API's chain); see the module docstring.

    Args:
        rules: The API's retry rules.
        policy: Backoff and limits.
        gate: The gate to pause after a 429 (and, in ``deliver`` mode, a 401/403).
        counters: Where retries are counted (shared by the stack's modes).
        mode: ``"deliver"`` or ``"call"``.
        accept: ``deliver`` mode: whether a 2xx response is really a success.
        clock: Monotonic clock matching the requests' deadlines.
    """

    def __init__(
        self,
        rules: APIRules,
        policy: RetryPolicy,
        gate: Gate,
        counters: RetryCounters,
        *,
        mode: Mode,
        accept: Callable[[HTTPRequest, HTTPResponse], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = rules
        self._policy = policy
        self._gate = gate
        self._counters = counters
        self._mode = mode
        self._accept = accept
        self._clock = clock
        self._log = RateLimitedLog()

    async def __call__(self, request: HTTPRequest, handler: HTTPHandler) -> HTTPResponse:
        reset_retried = False
        while True:
            try:
                response = await handler(request)
            except TransportError as exc:
                failure = self._transport_failure(request, exc)
                # A reset on a reused keep-alive socket is retried once at once: the server
                # closed an idle connection under us. Only where repeating is safe.
                if (
                    isinstance(exc, ConnectionLostError)
                    and not reset_retried
                    and self._mode == "deliver"
                ):
                    reset_retried = True
                    self._next_attempt(request, failure.cause)
                    continue
            else:
                verdict = await self._response_failure(request, response)
                if verdict is None:
                    self._counters.succeeded()
                    return response
                failure = verdict
            delay = self._delay_or_stop(request, failure)
            if isinstance(delay, HTTPResponse):
                return delay
            logger.debug("retrying %s in %.3f s after %s", request.endpoint, delay, failure.cause)
            await asyncio.sleep(delay)
            self._next_attempt(request, failure.cause)

    def _next_attempt(self, request: HTTPRequest, cause: str) -> None:
        self._counters.retried(cause)
        request.attempt += 1
        request.headers["X-Retry-Count"] = str(request.attempt - 1)

    def _transport_failure(self, request: HTTPRequest, exc: TransportError) -> _Failure:
        """Classify a transport error; raise it (or what it means) when it is final."""
        if isinstance(exc, UnsafeRedirectError):
            # The same redirect would be refused again: retrying cannot help.
            if self._mode == "deliver":
                raise GiveUp("unsafe_redirect", type(exc).__name__) from exc
            raise exc
        if exc.request_sent and not self._rules.repeatable(request.method):
            self._counters.outcome_unknown += 1
            raise OutcomeUnknownError(
                f"{exc}; the request may have reached Customer.io and was NOT retried "
                f"({self._rules.api} API {request.method} requests have no idempotency key, "
                "so a retry could apply it twice)"
            ) from exc
        cause = "connection_lost" if isinstance(exc, ConnectionLostError) else type(exc).__name__
        return _Failure(cause, error=exc)

    async def _response_failure(
        self, request: HTTPRequest, response: HTTPResponse
    ) -> _Failure | None:
        """``None`` for a success; a failure to retry; raise nothing (final answers are
        returned to the caller by :meth:`_delay_or_stop`)."""
        status = response.status
        if status < 300:
            if self._accept is None or self._accept(request, response):
                return None
            return _Failure("invalid_response", response)
        if status in AUTH_STATUSES and self._mode == "deliver":
            await self._gate.pause(self._policy.auth_pause, "auth_failed")
            self._log.log(
                logging.ERROR,
                "auth",
                "Customer.io answered %d to %s: check %s; %s sending is paused for %.0f s",
                status,
                request.endpoint,
                self._rules.credentials,
                self._rules.api,
                self._policy.auth_pause,
            )
            return _Failure("auth_failed", response, reason="auth_failed")
        if not self._rules.may_retry(request.method, status):
            return _Failure(f"http_{status}", response, reason="final")
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if status == 429:
            await self._pause_for_429(retry_after, request)
        return _Failure(f"http_{status}", response, retry_after=retry_after)

    def _delay_or_stop(self, request: HTTPRequest, failure: _Failure) -> float | HTTPResponse:
        """The wait before the next attempt, or the final response (call mode). Raises the
        final transport error (call mode) or :class:`GiveUp` (deliver mode)."""
        if failure.reason == "final":
            assert failure.response is not None
            return failure.response
        counters = self._counters
        counters.failed()
        delay = backoff(self._policy, request.attempt, failure.retry_after, probe=counters.depleted)
        if self._mode == "call":
            last = request.attempt >= self._policy.direct_attempts
            if last or (failure.retry_after or 0.0) > self._policy.backoff_cap:
                if failure.response is not None:
                    return failure.response
                assert failure.error is not None
                raise failure.error
            return delay
        status = failure.response.status if failure.response is not None else None
        if request.attempt >= self._policy.max_attempts:
            raise GiveUp("retries_exhausted", failure.cause, status) from failure.error
        if request.deadline is not None and self._clock() + delay >= request.deadline:
            raise GiveUp(failure.reason, failure.cause, status) from failure.error
        return delay

    async def _pause_for_429(self, retry_after: float | None, request: HTTPRequest) -> None:
        """Pause the gate: for the server's ``Retry-After`` (capped) when it sent one, else
        for a jittered backoff but at least one slot of the request's rate-limit class (a
        class limited to 1 per 10 s gains nothing from retrying sooner)."""
        policy = self._policy
        if retry_after is not None:
            pause = min(retry_after, policy.max_retry_after)
        else:
            ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (request.attempt - 1))
            limit = self._rules.buckets.get(request.bucket)
            slot = 1.0 / limit.requests_per_second if limit is not None else 0.0
            pause = max(random.uniform(0, ceiling), slot)
        await self._gate.pause(pause, "rate_limited")
