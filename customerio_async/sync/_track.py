"""``customerio_async.sync.CustomerIO``: the Track client for threads and prefork workers.

Same constructor and method names as :class:`customerio_async.CustomerIO`, as plain
functions. A call validates and serialises its operation in your thread (bad input raises
there), hands it to the background loop and returns a :class:`SyncReceipt` at once; the
loop thread admits it through the async client's own admission path (de-duplication, your
admission middleware, the overflow policy) into the same send pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._config import (
    DEFAULT_BATCH,
    DEFAULT_DEDUP,
    DEFAULT_POOL,
    DEFAULT_RATE_LIMIT,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    BatchConfig,
    DedupConfig,
    PoolLimits,
    RateLimit,
    Region,
    RetryPolicy,
    Timeouts,
)
from .._exceptions import ValidationError
from .._http.gate import Limiter
from .._http.messages import HTTPMiddleware
from .._identifiers import IdentifierLike
from .._metrics import Metrics
from .._pipeline.receipt import OutcomeCallback
from .._track import calls as ops
from .._track.admission import OperationMiddleware
from .._track.api import _flag
from .._track.client import CustomerIO as AsyncCustomerIO
from .._track.operations import Operation
from .._track.results import BatchResult, RegionInfo
from .._track.validation import DeliveryMetric, PushEvent
from ._facade import SyncClient
from ._receipt import SyncReceipt

__all__ = ["CustomerIO"]


class CustomerIO(SyncClient[AsyncCustomerIO]):
    """Customer.io's Track API for synchronous code (Django, Flask, Celery, scripts).

    Every call returns in microseconds: the operation is validated in your thread and
    handed to a background event loop (a daemon thread) that batches it like the async
    client does. Create one client per process and share it between threads.

    Example::

        cio = CustomerIO(site_id, api_key)          # the loop starts on first use
        cio.identify("42", email="ada@example.com")
        receipt = cio.track("42", "purchased", {"amount": 42})
        receipt.wait(timeout=5)                     # optional: block for the outcome

        with CustomerIO(site_id, api_key) as cio:   # or scoped: close() drains
            cio.track("42", "signed_up", wait=True) # raises unless delivered

    Open clients are drained at interpreter exit (``atexit``, within
    ``batch.drain_timeout``). After ``os.fork()`` the child builds its own loop on first use
    and never sends the parent's buffered operations.

    The arguments are those of :class:`customerio_async.CustomerIO`. ``wait=True`` on a
    call blocks for up to ``enqueue_timeout + delivery_timeout + drain_timeout`` and raises
    :class:`OperationRejectedError`/:class:`OperationDroppedError` unless delivered,
    :class:`TimeoutError` past that bound. With ``batching=False`` each call blocks for its
    own request, like the official SDK.

    Raises:
        ConfigurationError: Missing credentials, unknown region or a bad ``track_url``.
    """

    def __init__(
        self,
        site_id: str | None = None,
        api_key: str | None = None,
        *,
        region: Region | str = Region.US,
        track_url: str | None = None,
        batching: bool = True,
        batch: BatchConfig = DEFAULT_BATCH,
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        pool: PoolLimits = DEFAULT_POOL,
        user_agent: str | None = None,
        on_outcome: OutcomeCallback | None = None,
        on_drop: OutcomeCallback | None = None,
        dedup: DedupConfig | None = DEFAULT_DEDUP,
        metrics: Metrics | None = None,
        operation_middleware: Sequence[OperationMiddleware] = (),
        http_middleware: Sequence[HTTPMiddleware] = (),
        limiter: Limiter | None = None,
        verify_credentials: bool = False,
    ) -> None:
        shared = metrics if metrics is not None else Metrics()

        def build() -> AsyncCustomerIO:
            return AsyncCustomerIO(
                site_id,
                api_key,
                region=region,
                track_url=track_url,
                batching=batching,
                batch=batch,
                retry=retry,
                rate_limit=rate_limit,
                timeouts=timeouts,
                pool=pool,
                user_agent=user_agent,
                on_outcome=on_outcome,
                on_drop=on_drop,
                dedup=dedup,
                metrics=shared,
                operation_middleware=operation_middleware,
                http_middleware=http_middleware,
                limiter=limiter,
                verify_credentials=verify_credentials,
            )

        super().__init__(build, batch=batch, retry=retry, name="customerio-async-sync")
        self.metrics: Metrics = shared

    def __repr__(self) -> str:
        # Never the site id or key: reprs end up in logs and tracebacks.
        client = self._client
        return (
            f"<customerio_async.sync.CustomerIO region={client.region.value!r} "
            f"origin={client.origin!r} state={self._state.value!r}>"
        )

    def _retire(self, client: AsyncCustomerIO) -> None:
        self.metrics.detach(client)

    @property
    def region(self) -> Region:
        """The configured (or, with ``region="auto"``, discovered) region."""
        return self._client.region

    @property
    def origin(self) -> str:
        """The Track API origin requests go to."""
        return self._client.origin

    @property
    def batching(self) -> bool:
        """Whether calls go through the batching pipeline (else direct mode)."""
        return self._client.batching

    # ------------------------------------------------------------------ calls

    def send(self, operation: Operation, *, wait: bool = False) -> SyncReceipt:
        """Send one operation built with :class:`Person`, :class:`Object` or :class:`Delivery`.

        Example::

            cio.send(Person.add_relationships("42", [object_relationship("company", "acme")]))
        """
        if not isinstance(operation, Operation):
            raise ValidationError("operation must be an Operation", field="operation")
        return self._put(operation, wait)

    def identify(self, id: IdentifierLike, *, wait: Any = False, **kwargs: Any) -> SyncReceipt:
        """Create or update a person with the given attributes (see the async ``identify``).

        Example::

            cio.identify("42", email="ada@example.com", plan="pro")
        """
        return self._put(ops.identify(id, kwargs), _flag(wait))

    def delete(self, customer_id: IdentifierLike, *, wait: bool = False) -> SyncReceipt:
        """Delete a person.

        Example::

            cio.delete("42")
        """
        return self._put(ops.delete(customer_id), wait)

    def track(
        self,
        customer_id: IdentifierLike,
        name: str,
        data: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: Any = None,
        *,
        wait: bool = False,
    ) -> SyncReceipt:
        """Track an event for a person (``id``: a ULID, generated when omitted).

        Example::

            cio.track("42", "purchased", {"amount": 42})
        """
        return self._put(ops.event(customer_id, name, data, "event", id, timestamp), wait)

    def track_anonymous(
        self,
        anonymous_id: str | None,
        name: str,
        data: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: Any = None,
        *,
        wait: bool = False,
    ) -> SyncReceipt:
        """Track an anonymous event, or an invite event when ``anonymous_id`` is empty.

        Example::

            cio.track_anonymous("visitor-7", "viewed_pricing")
        """
        op = ops.anonymous_event(anonymous_id, name, data, id=id, timestamp=timestamp)
        return self._put(op, wait)

    def pageview(
        self, customer_id: IdentifierLike, page: str, *, wait: Any = False, **data: Any
    ) -> SyncReceipt:
        """Track a page view; ``page`` is the URL or page name.

        Example::

            cio.pageview("42", "https://example.com/pricing", referrer="ad")
        """
        return self._put(ops.event(customer_id, page, data, "page"), _flag(wait))

    def screen(
        self, customer_id: IdentifierLike, name: str, *, wait: Any = False, **data: Any
    ) -> SyncReceipt:
        """Track a mobile screen view.

        Example::

            cio.screen("42", "Settings")
        """
        return self._put(ops.event(customer_id, name, data, "screen"), _flag(wait))

    def backfill(
        self,
        customer_id: IdentifierLike,
        name: str,
        timestamp: Any,
        *,
        wait: Any = False,
        **data: Any,
    ) -> SyncReceipt:
        """Track a historical event; ``timestamp`` is required.

        Example::

            cio.backfill("42", "signed_up", datetime(2024, 1, 1, tzinfo=UTC))
        """
        if timestamp is None:
            raise ValidationError("timestamp is required in backfill", field="timestamp")
        return self._put(ops.event(customer_id, name, data, timestamp=timestamp), _flag(wait))

    def add_device(
        self,
        customer_id: IdentifierLike,
        device_id: str,
        platform: str,
        *,
        wait: Any = False,
        **data: Any,
    ) -> SyncReceipt:
        """Add or update a push device (``platform``: ``"ios"`` or ``"android"``).

        Example::

            cio.add_device("42", "fcm-token", "android")
        """
        return self._put(ops.add_device(customer_id, device_id, platform, data), _flag(wait))

    def delete_device(
        self, customer_id: IdentifierLike, device_id: str, *, wait: bool = False
    ) -> SyncReceipt:
        """Remove a push device from a person.

        Example::

            cio.delete_device("42", "fcm-token")
        """
        return self._put(ops.delete_device(customer_id, device_id), wait)

    def suppress(self, customer_id: IdentifierLike, *, wait: bool = False) -> SyncReceipt:
        """Delete a person and block their identifier from being re-added.

        Example::

            cio.suppress("42")
        """
        return self._put(ops.suppress(customer_id), wait)

    def unsuppress(self, customer_id: IdentifierLike, *, wait: bool = False) -> SyncReceipt:
        """Unblock a suppressed identifier (the profile is not restored).

        Example::

            cio.unsuppress("42")
        """
        return self._put(ops.unsuppress(customer_id), wait)

    def merge_customers(
        self,
        primary_id_type: str,
        primary_id: str,
        secondary_id_type: str,
        secondary_id: str,
        *,
        wait: bool = False,
    ) -> SyncReceipt:
        """Merge the secondary person into the primary one (irreversible).

        Example::

            cio.merge_customers("id", "42", "email", "old@example.com")
        """
        op = ops.merge_customers(primary_id_type, primary_id, secondary_id_type, secondary_id)
        return self._put(op, wait)

    def add_to_segment(
        self,
        segment_id: int,
        ids: Sequence[str | int],
        *,
        id_type: str = "id",
        wait: bool = False,
    ) -> SyncReceipt:
        """Add 1–1000 people to a manual segment.

        Example::

            cio.add_to_segment(7, ["42", "43"])
        """
        return self._put(ops.segment_membership(True, segment_id, ids, id_type), wait)

    def remove_from_segment(
        self,
        segment_id: int,
        ids: Sequence[str | int],
        *,
        id_type: str = "id",
        wait: bool = False,
    ) -> SyncReceipt:
        """Remove 1–1000 people from a manual segment.

        Example::

            cio.remove_from_segment(7, ["42"])
        """
        return self._put(ops.segment_membership(False, segment_id, ids, id_type), wait)

    def submit_form(
        self, form_id: str | int, data: Mapping[str, str], *, wait: bool = False
    ) -> SyncReceipt:
        """Submit a form response; fields carry exactly one of ``email`` and ``id``.

        Example::

            cio.submit_form("newsletter", {"email": "ada@example.com", "plan": "pro"})
        """
        return self._put(ops.submit_form(form_id, data), wait)

    def unsubscribe(
        self, delivery_id: str, unsubscribe: bool = True, *, wait: bool = False
    ) -> SyncReceipt:
        """Custom unsubscribe handling for a delivery (sent without credentials).

        Example::

            cio.unsubscribe(request.args["delivery_id"])
        """
        return self._put(ops.unsubscribe(delivery_id, unsubscribe), wait)

    def report_metric(
        self,
        delivery_id: str,
        metric: DeliveryMetric,
        *,
        timestamp: Any = None,
        recipient: str | int | None = None,
        reason: str | None = None,
        href: str | None = None,
        wait: bool = False,
    ) -> SyncReceipt:
        """Report a delivery metric for any channel (sent without credentials).

        Example::

            cio.report_metric(delivery_id, "clicked", href="https://example.com/sale")
        """
        op = ops.delivery_metric(
            delivery_id, metric, timestamp=timestamp, recipient=recipient, reason=reason, href=href
        )
        return self._put(op, wait)

    def report_push_metric(
        self,
        delivery_id: str,
        device_id: str,
        event: PushEvent,
        *,
        timestamp: Any = None,
        wait: bool = False,
    ) -> SyncReceipt:
        """Report a device-side push metric (sent without credentials).

        Example::

            cio.report_push_metric(delivery_id, device_token, "opened")
        """
        return self._put(ops.push_metric(delivery_id, device_id, event, timestamp), wait)

    # ------------------------------------------------------------------ direct requests

    def batch(
        self, operations: Iterable[Operation | Mapping[str, Any]], *, timeout: float | None = None
    ) -> BatchResult:
        """Send v2 operations in exactly one ``/api/v2/batch`` request now, and block for it.

        Example::

            result = cio.batch([Person.identify("42", {"plan": "pro"})])

        Raises:
            ValidationError: Empty input, a v1-only operation, or a size limit.
            APIStatusError: The whole request was refused.
            TimeoutError: No answer within ``timeout`` (default: the wait bound).
        """
        ops_list = list(operations)
        return self._run(self._client.batch, ops_list, timeout=timeout or self._wait_timeout)

    def get_region(self) -> RegionInfo:
        """Ask Customer.io which region these credentials belong to (blocks).

        Example::

            info = cio.get_region()
        """
        return self._run(self._client.get_region, timeout=self._wait_timeout)

    def check_credentials(self) -> RegionInfo:
        """Check the site id and API key now (one cheap authenticated request; blocks).

        Example::

            cio.check_credentials()   # AuthenticationError if wrong
        """
        return self._run(self._client.check_credentials, timeout=self._wait_timeout)
