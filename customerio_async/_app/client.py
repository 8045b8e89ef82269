"""``APIClient``: the App API client (transactional sends and API-triggered broadcasts).

Names and constructor parameters follow the official ``customerio`` 3.x ``APIClient`` and its
``Send*Request`` classes, as coroutines, so migrating is "add ``await``". Every call validates
its request in the caller's task (errors raise there, before any I/O; see
:mod:`.validation`), then sends it through the same HTTP stack as the Track client with
``Authorization: Bearer <App API key>`` and the retry rules of :mod:`.rules`: a send or a
trigger is retried only when it provably did not take effect.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .._common.lifecycle import SingleUseClient, State
from .._config import (
    DEFAULT_APP_RATE_LIMITS,
    DEFAULT_POOL,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ENV_APP_API_KEY,
    AppRateLimits,
    PoolLimits,
    Region,
    RetryPolicy,
    Timeouts,
    env_or,
    resolve_app_origin,
    resolve_region,
)
from .._exceptions import ConfigurationError
from .._http.gate import Limiter, LocalLimiter
from .._http.messages import HTTPMiddleware, HTTPRequest, HTTPResponse
from .._http.stack import HTTPStack
from .._http.transport import AiohttpTransport
from .._metrics import Metrics
from .metrics import app_metric_families
from .requests import (
    SendEmailRequest,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendRequest,
    SendSMSRequest,
    SendWhatsAppRequest,
    wire_payload,
)
from .results import (
    AppStatistics,
    BroadcastTrigger,
    SendResult,
    TriggerErrors,
    read_send_result,
    read_trigger,
    read_trigger_errors,
)
from .rules import app_rules
from .validation import encode_send, encode_trigger, errors_query, positive_int

if TYPE_CHECKING:
    from prometheus_client.core import Metric

__all__ = ["APIClient"]

_TRIGGERS = "/v1/campaigns/{broadcast_id}/triggers"
_TRIGGER_ERRORS = "/v1/campaigns/{broadcast_id}/triggers/{trigger_id}/errors"


class APIClient(SingleUseClient):
    """Asyncio client for Customer.io's App API: transactional messages and broadcasts.

    Use it as an async context manager; the pooled aiohttp session lives exactly as long as
    the ``async with`` block.

    Example::

        async with APIClient("APP_API_KEY", region="eu") as api:
            request = SendEmailRequest(
                transactional_message_id=44, to="ada@example.com", identifiers={"id": "42"}
            )
            request.attach("receipt.pdf", pdf_bytes)
            result = await api.send_email(request)          # SendResult(delivery_id=...)
            trigger = await api.trigger_broadcast(9, ids=["42", "43"], data={"sale": "30%"})

    Sends and triggers are never retried once the request may have reached Customer.io
    (there is no idempotency key): such failures raise :class:`OutcomeUnknownError`. See
    :mod:`customerio_async._app.rules` for the exact retry rules.

    Args:
        key: The App API key (Bearer); defaults to ``$CUSTOMERIO_APP_API_KEY``.
        region: ``"us"``, ``"eu"`` or a :class:`Region`.
        api_url: Origin override such as ``http://127.0.0.1:8080`` (``/v1/...`` is
            appended; a trailing ``/v1`` is tolerated), for tests and proxies.
        url: The official SDK's name for ``api_url``; give one or the other.
        retry: Backoff settings; ``direct_attempts`` bounds the attempts per call.
        rate_limits: Client-side limits per class (transactional 100/s, general 10/s,
            broadcast triggers 1 per 10 s); ``None`` disables them all.
        timeouts: Per-request time limits.
        pool: Connection-pool limits.
        user_agent: Replaces the default ``customerio-async/<version> ...`` User-Agent.
        http_middleware: Your HTTP middleware, ``async def mw(request, call_next)``, as for
            :class:`CustomerIO`: they run inside the retry and rate-limit layers, once per
            attempt (``request.api == "app"``), outside the accounting layer.
        metrics: Where Prometheus metrics go (default: a private registry,
            ``api.metrics.registry``). Share one :class:`Metrics` with your
            :class:`CustomerIO` clients to export them together: request latency lands in
            ``customerio_http_request_duration_seconds{api="app"}``, plus
            ``customerio_app_retries_total``, ``customerio_app_outcome_unknown_total``,
            ``customerio_app_bytes_sent_total`` and ``customerio_app_in_flight_requests``.
        limiter: Where this client's rate limits and 429 pauses live (a ``Limiter``); the
            default keeps them in this client.

    Raises:
        ConfigurationError: Missing key, unknown region, or a bad ``api_url``.
    """

    _usage = "async with APIClient(...) as api:"

    def __init__(
        self,
        key: str | None = None,
        *,
        region: Region | str = Region.US,
        api_url: str | None = None,
        url: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limits: AppRateLimits | None = DEFAULT_APP_RATE_LIMITS,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        pool: PoolLimits = DEFAULT_POOL,
        user_agent: str | None = None,
        http_middleware: Sequence[HTTPMiddleware] = (),
        metrics: Metrics | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        app_key = env_or(key, ENV_APP_API_KEY, "key (the App API key)")
        if app_key != app_key.strip() or any(c in app_key for c in "\r\n\t "):
            raise ConfigurationError("key must not contain whitespace")
        if api_url is not None and url is not None:
            raise ConfigurationError("give api_url or url, not both")
        self._region = resolve_region(region)
        self._origin = resolve_app_origin(self._region, api_url if api_url is not None else url)
        self._transport = AiohttpTransport(
            origin=self._origin,
            authorization=f"Bearer {app_key}",
            timeouts=timeouts,
            pool=pool,
            user_agent=user_agent,
        )
        # The same HTTP path as CustomerIO (see _http), with the App API's rules.
        rules = app_rules(rate_limits)
        self._http = HTTPStack(
            self._transport,
            rules=rules,
            policy=retry,
            gate=(limiter or LocalLimiter()).gate(
                api="app",
                # A digest, never the key: a Limiter may store or show workspace ids.
                workspace=hashlib.sha256(app_key.encode()).hexdigest()[:16],
                buckets=rules.buckets,
            ),
            middleware=http_middleware,
        )
        self.metrics: Metrics = metrics if metrics is not None else Metrics()
        self._state = State.NEW

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return (
            f"<APIClient region={self._region.value!r} origin={self._origin!r} "
            f"state={self._state.value!r}>"
        )

    @property
    def region(self) -> Region:
        """The configured region.

        Example::

            assert APIClient(key, region="eu").region is Region.EU
        """
        return self._region

    @property
    def origin(self) -> str:
        """The App API origin requests go to.

        Example::

            APIClient(key, region="eu").origin      # 'https://api-eu.customer.io'
        """
        return self._origin

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create the connection pool. ``async with`` calls this.

        Example::

            api = APIClient(key)
            await api.open()
            try:
                await api.send_email(request)
            finally:
                await api.aclose()

        Raises:
            ClientStateError: When the client was already opened or closed (a client is
                single-use: create a new one instead of reopening).
        """
        self._begin_open()
        await self._transport.open()
        self._state = State.OPEN
        try:
            self.metrics.attach(self)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent; later calls raise :class:`ClientStateError`.

        Example::

            await api.aclose()
        """
        if self._state is State.CLOSED:
            return
        self._state = State.CLOSED
        await self._transport.aclose()

    def statistics(self) -> AppStatistics:
        """A cheap snapshot of the client's counters (requests, retries, outcome-unknown).

        Example::

            stats = api.statistics()
            print(stats.requests, stats.retries, dict(stats.retries_by_cause))
        """
        accounting = self._http.accounting
        counters = self._http.counters
        return AppStatistics(
            requests=accounting.requests,
            retries=counters.retries,
            in_flight_requests=accounting.in_flight,
            bytes_sent=accounting.bytes_sent,
            outcome_unknown=counters.outcome_unknown,
            retries_by_cause=MappingProxyType(dict(counters.by_cause)),
            state=self._state.value,
        )

    # ------------------------------------------------------------------ metrics

    @property
    def metrics_label(self) -> str:
        """This client's key in a shared :class:`Metrics` (``"us:app"``/``"eu:app"``), so
        it can share one with the Track client of the same region.

        Example::

            shared = Metrics()
            api = APIClient(key, metrics=shared)
            api.metrics_label                       # 'us:app'
        """
        return f"{self._region.value}:app"

    def metric_families(self, prefix: str) -> Iterable[Metric]:
        """This client's Prometheus families (see :class:`Metrics`).

        Example::

            names = [family.name for family in api.metric_families("customerio_")]
        """
        return app_metric_families(self._region.value, self._http, prefix)

    # ------------------------------------------------------------------ transport

    async def _request(
        self, method: str, path: str, body: bytes | None, endpoint: str, bucket: str
    ) -> HTTPResponse:
        """Send with the App API's retry rules (:mod:`.rules`); a 2xx or raise."""
        request = HTTPRequest(
            method, path, body, endpoint, api="app", region=self._region.value, bucket=bucket
        )
        return await self._http.call_ok(request)

    async def _send(self, cls: type[SendRequest], request: Any) -> SendResult:
        self._check_state()
        body = encode_send(wire_payload(cls, request), cls._SHAPE, time.time())
        response = await self._request("POST", cls._PATH, body, cls._PATH, "transactional")
        return read_send_result(response, cls._PATH)

    # ------------------------------------------------------------------ sends

    async def send_email(self, request: SendEmailRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional email.

        Example::

            result = await api.send_email(
                SendEmailRequest(
                    transactional_message_id=44, to="ada@example.com", identifiers={"id": "42"}
                )
            )

        Args:
            request: A :class:`SendEmailRequest`, or its wire-shaped dict.

        Returns:
            The delivery id and queue time.

        Raises:
            ValidationError: Before any I/O: not exactly one identifier, more than 15
                recipients, ``send_at`` beyond 90 days, attachments not base64...
            LimitExceededError: Attachments of 2,000,000 bytes or more, or a body over
                1,000,000 bytes without them.
            OutcomeUnknownError: The request may have been applied; it was not retried.
            APIStatusError: The API refused it (``BadRequestError``, ``RateLimitError``...).
            TransportError: It provably never arrived, on every attempt.
        """
        return await self._send(SendEmailRequest, request)

    async def send_push(self, request: SendPushRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional push notification (see :meth:`send_email` for errors).

        Example::

            await api.send_push(SendPushRequest("order-shipped", identifiers={"id": "42"}))
        """
        return await self._send(SendPushRequest, request)

    async def send_sms(self, request: SendSMSRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional SMS (see :meth:`send_email` for errors).

        Example::

            await api.send_sms(SendSMSRequest(7, "+15551234567", {"id": "42"}))
        """
        return await self._send(SendSMSRequest, request)

    async def send_whatsapp(self, request: SendWhatsAppRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional WhatsApp message (see :meth:`send_email` for errors).

        Example::

            await api.send_whatsapp(SendWhatsAppRequest(7, "+15551234567", {"id": "42"}))
        """
        return await self._send(SendWhatsAppRequest, request)

    async def send_inbox_message(
        self, request: SendInboxMessageRequest | Mapping[str, Any]
    ) -> SendResult:
        """Send a transactional inbox message (see :meth:`send_email` for errors).

        Example::

            await api.send_inbox_message(SendInboxMessageRequest(7, {"id": "42"}))
        """
        return await self._send(SendInboxMessageRequest, request)

    async def send_in_app(self, request: SendInAppRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional in-app message (see :meth:`send_email` for errors).

        Example::

            await api.send_in_app(SendInAppRequest(7, {"email": "ada@example.com"}))
        """
        return await self._send(SendInAppRequest, request)

    # ------------------------------------------------------------------ broadcasts

    async def trigger_broadcast(
        self,
        broadcast_id: int,
        *,
        data: Mapping[str, Any] | None = None,
        recipients: Mapping[str, Any] | None = None,
        emails: Sequence[str] | None = None,
        ids: Sequence[str | int] | None = None,
        per_user_data: Sequence[Mapping[str, Any]] | None = None,
        data_file_url: str | None = None,
        email_add_duplicates: bool | None = None,
        email_ignore_missing: bool | None = None,
        id_ignore_missing: bool | None = None,
    ) -> BroadcastTrigger:
        """Trigger an API-triggered broadcast (``POST /v1/campaigns/{id}/triggers``).

        Give at most one audience: none (the broadcast's own audience), a ``recipients``
        filter (``and``/``or``/``not``/``segment``/``attribute``), ``emails``, ``ids``,
        ``per_user_data`` (``[{"id"|"email": ..., "data": {...}}]``) or ``data_file_url``.
        Customer.io allows one trigger per 10 seconds per workspace; the client waits for
        its turn (see :class:`AppRateLimits`). The people must already exist.

        Example::

            trigger = await api.trigger_broadcast(
                9, ids=["42", "43"], data={"sale": "30%"}, id_ignore_missing=True
            )

        Args:
            broadcast_id: The broadcast's id (the path says "campaigns"; it is a broadcast).
            data: Liquid data for ``{{trigger.*}}``, at most 50,000 bytes serialised.
            recipients: An audience filter; never empty.
            emails: Up to 10,000 email addresses.
            ids: Up to 10,000 person ids.
            per_user_data: Up to 10,000 per-person entries.
            data_file_url: URL of a JSON-lines file of per-person entries.
            email_add_duplicates: Emails/per-user data/file audiences only.
            email_ignore_missing: Emails/per-user data/file audiences only.
            id_ignore_missing: Ids/per-user data/file audiences only.

        Returns:
            The trigger, whose ``id`` reads its errors with :meth:`get_trigger_errors`.

        Raises:
            ValidationError: Before any I/O, for the shape rules above.
            LimitExceededError: More than 10,000 entries, or ``data`` too large.
            OutcomeUnknownError: The trigger may have fired; it was not retried.
            APIStatusError: The API refused it (404 unknown broadcast, 422, 429...).
            TransportError: It provably never arrived, on every attempt.
        """
        self._check_state()
        bid = positive_int(broadcast_id, "broadcast_id")
        body = encode_trigger(
            data=data,
            audience={
                "recipients": recipients,
                "emails": emails,
                "ids": ids,
                "per_user_data": per_user_data,
                "data_file_url": data_file_url,
            },
            options={
                "email_add_duplicates": email_add_duplicates,
                "email_ignore_missing": email_ignore_missing,
                "id_ignore_missing": id_ignore_missing,
            },
        )
        path = f"/v1/campaigns/{bid}/triggers"
        response = await self._request("POST", path, body, _TRIGGERS, "broadcast")
        return read_trigger(response, _TRIGGERS)

    async def get_trigger_errors(
        self,
        broadcast_id: int,
        trigger_id: int,
        *,
        start: int | None = None,
        limit: int | None = None,
    ) -> TriggerErrors:
        """Read one page of a trigger's per-recipient errors.

        Example::

            page = await api.get_trigger_errors(9, trigger.id, limit=100)
            if page.next is not None:
                more = await api.get_trigger_errors(9, trigger.id, start=page.next)

        Args:
            broadcast_id: The broadcast's id.
            trigger_id: :attr:`BroadcastTrigger.id`.
            start: The ``next`` cursor of the previous page.
            limit: Errors per page.

        Raises:
            ValidationError: Non-positive ids, or a negative ``start``/``limit``.
            APIStatusError: The API refused it (404 when either id does not exist).
            TransportError: No answer after every attempt (reads are retried).
        """
        self._check_state()
        bid = positive_int(broadcast_id, "broadcast_id")
        tid = positive_int(trigger_id, "trigger_id")
        path = f"/v1/campaigns/{bid}/triggers/{tid}/errors" + errors_query(start, limit)
        response = await self._request("GET", path, None, _TRIGGER_ERRORS, "general")
        return read_trigger_errors(response, _TRIGGER_ERRORS)
