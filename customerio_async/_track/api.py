"""The Track API surface shared by every client: the official ``customerio`` 3.x methods
(as coroutines) and ours, each turning its arguments into a validated
:class:`~customerio_async._operations.Operation` and handing it to ``_submit``.

:class:`~customerio_async.CustomerIO` submits to its own workspace;
:class:`~customerio_async.RegionalCustomerIO` routes each operation to a region first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._exceptions import OperationDroppedError, OperationRejectedError, ValidationError
from .._identifiers import IdentifierLike
from .._pipeline.receipt import Outcome, Receipt
from . import calls as ops
from .operations import Operation
from .validation import DeliveryMetric, PushEvent

__all__ = ["TrackAPI"]


class TrackAPI:
    """Mixin: every Track call, built once here. Subclasses implement ``_submit``."""

    async def _submit(self, op: Operation) -> Receipt:
        raise NotImplementedError

    async def _call(self, op: Operation, wait: bool) -> Receipt:
        receipt = await self._submit(op)
        if wait:
            await confirm(receipt)
        return receipt

    def _admit_now(self, op: Operation) -> Receipt | None:
        """Admit without awaiting anything, or ``None`` (then :meth:`_call` does it)."""
        return None

    # Set by a batched client while it is open when no admission middleware can act on an
    # event with a generated id: such events are admitted by this one call, the hot path.
    _admit_event: Callable[[Operation], Receipt | None] | None = None

    async def send(self, operation: Operation, *, wait: bool = False) -> Receipt:
        """Send one operation built with :class:`Person`, :class:`Object` or :class:`Delivery`.

        Batched mode admits it into the pipeline; direct mode POSTs it to
        ``/api/v2/entity`` (v1-only operations go to their v1 endpoint).

        Example::

            await cio.send(Person.add_relationships("42", [object_relationship("company", "acme")]))

        Args:
            operation: The operation.
            wait: Wait for the terminal outcome; raise :class:`DeliveryError` unless
                delivered.

        Raises:
            ValidationError: The operation is invalid or larger than 32,000 bytes.
            APIStatusError: Direct mode: the API refused it.
            TransportError: Direct mode: no response.
        """
        if not isinstance(operation, Operation):
            raise ValidationError("operation must be an Operation", field="operation")
        return await self._call(operation, wait)

    # ------------------------------------------------------------------ official API

    async def identify(self, id: IdentifierLike, *, wait: Any = False, **kwargs: Any) -> Receipt:
        """Create or update a person with the given attributes.

        ``wait`` means the same on every call: wait for the outcome. It is never sent as an
        attribute; to set an attribute literally named ``wait``, send
        ``Person.identify(id, {"wait": ...})`` with :meth:`send`.

        Example::

            await cio.identify("42", email="ada@example.com", plan="pro")

        Args:
            id: The person: a bare identifier (``cio_…`` → cio_id, an email → email, else
                id) or an explicit object such as ``{"id": "a@b.c"}``.
            wait: Wait for the terminal outcome (raises :class:`DeliveryError` unless
                delivered).
            **kwargs: Attributes (≤300; names ≤150 bytes; values ≤1000 bytes as JSON;
                ``created_at`` in Unix seconds).
        """
        return await self._call(ops.identify(id, kwargs), _flag(wait))

    async def delete(self, customer_id: IdentifierLike, *, wait: bool = False) -> Receipt:
        """Delete a person.

        Example::

            await cio.delete("42")
        """
        return await self._call(ops.delete(customer_id), wait)

    async def track(
        self,
        customer_id: IdentifierLike,
        name: str,
        data: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Track an event for a person.

        Example::

            await cio.track("42", "purchased", {"amount": 42}, timestamp=datetime.now(timezone.utc))

        Args:
            customer_id: The person (see :meth:`identify`).
            name: Event name, non-blank, ≤100 bytes.
            data: Event data, a mapping ≤100,000 bytes serialised.
            id: Event de-duplication id (a ULID); generated when omitted, so a retry of
                this operation is applied once by Customer.io.
            timestamp: ``datetime`` or Unix seconds; defaults to receipt time.
            wait: Wait for the terminal outcome (raises :class:`DeliveryError` unless
                delivered).
        """
        op = ops.event(customer_id, name, data, "event", id, timestamp)
        # The hot path: admitted without a further call frame (None: the general path).
        fast = self._admit_event
        if fast is not None and id is None and not wait and (receipt := fast(op)) is not None:
            return receipt
        return await self._call(op, wait)

    async def track_anonymous(
        self,
        anonymous_id: str | None,
        name: str,
        data: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Track an event for an anonymous visitor, or an invite event when
        ``anonymous_id`` is ``None``/empty (put the ``recipient`` in ``data``).

        v2 cannot carry anonymous events, so they travel as individual v1 requests
        through the same pipeline.

        Example::

            await cio.track_anonymous("visitor-7", "viewed_pricing", {"plan": "pro"})
        """
        op = ops.anonymous_event(anonymous_id, name, data, id=id, timestamp=timestamp)
        return await self._call(op, wait)

    async def pageview(
        self, customer_id: IdentifierLike, page: str, *, wait: Any = False, **data: Any
    ) -> Receipt:
        """Track a page view; ``page`` is the URL or page name.

        Example::

            await cio.pageview("42", "https://example.com/pricing", referrer="ad")

        ``wait`` waits for the outcome and is never sent as data (see :meth:`identify`).
        """
        return await self._call(ops.event(customer_id, page, data, "page"), _flag(wait))

    async def screen(
        self, customer_id: IdentifierLike, name: str, *, wait: Any = False, **data: Any
    ) -> Receipt:
        """Track a mobile screen view.

        Example::

            await cio.screen("42", "Settings")
        """
        return await self._call(ops.event(customer_id, name, data, "screen"), _flag(wait))

    async def backfill(
        self,
        customer_id: IdentifierLike,
        name: str,
        timestamp: Any,
        *,
        wait: Any = False,
        **data: Any,
    ) -> Receipt:
        """Track a historical event; ``timestamp`` is required.

        Example::

            await cio.backfill("42", "signed_up", datetime(2024, 1, 1, tzinfo=UTC))
        """
        if timestamp is None:
            raise ValidationError("timestamp is required in backfill", field="timestamp")
        op = ops.event(customer_id, name, data, timestamp=timestamp)
        return await self._call(op, _flag(wait))

    async def add_device(
        self,
        customer_id: IdentifierLike,
        device_id: str,
        platform: str,
        *,
        wait: Any = False,
        **data: Any,
    ) -> Receipt:
        """Add or update a push device (``platform`` is ``"ios"`` or ``"android"``).

        Example::

            await cio.add_device("42", "fcm-token", "android", last_used=datetime.now(UTC))
        """
        op = ops.add_device(customer_id, device_id, platform, data)
        return await self._call(op, _flag(wait))

    async def delete_device(
        self, customer_id: IdentifierLike, device_id: str, *, wait: bool = False
    ) -> Receipt:
        """Remove a push device from a person.

        Example::

            await cio.delete_device("42", fcm_token)
        """
        return await self._call(ops.delete_device(customer_id, device_id), wait)

    async def suppress(self, customer_id: IdentifierLike, *, wait: bool = False) -> Receipt:
        """Delete a person and block their identifier from being re-added.

        Example::

            await cio.suppress("42")
        """
        return await self._call(ops.suppress(customer_id), wait)

    async def unsuppress(self, customer_id: IdentifierLike, *, wait: bool = False) -> Receipt:
        """Unblock a suppressed identifier (the profile is not restored).

        Example::

            await cio.unsuppress("42")
        """
        return await self._call(ops.unsuppress(customer_id), wait)

    async def merge_customers(
        self,
        primary_id_type: str,
        primary_id: str,
        secondary_id_type: str,
        secondary_id: str,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Merge the secondary person into the primary one (irreversible).

        Id types are ``"id"``, ``"email"`` or ``"cio_id"``.

        Example::

            await cio.merge_customers("id", "42", "email", "old@example.com")
        """
        op = ops.merge_customers(primary_id_type, primary_id, secondary_id_type, secondary_id)
        return await self._call(op, wait)

    # ------------------------------------------------------------------ ours

    async def add_to_segment(
        self,
        segment_id: int,
        ids: Sequence[str | int],
        *,
        id_type: str = "id",
        wait: bool = False,
    ) -> Receipt:
        """Add 1–1000 people to a manual segment (``id_type``: id, email or cio_id).

        Example::

            await cio.add_to_segment(7, ["42", "43"])
        """
        return await self._call(ops.segment_membership(True, segment_id, ids, id_type), wait)

    async def remove_from_segment(
        self,
        segment_id: int,
        ids: Sequence[str | int],
        *,
        id_type: str = "id",
        wait: bool = False,
    ) -> Receipt:
        """Remove 1–1000 people from a manual segment.

        Example::

            await cio.remove_from_segment(7, ["42"])
        """
        return await self._call(ops.segment_membership(False, segment_id, ids, id_type), wait)

    # ------------------------------------------------------------------ forms, delivery reports
    # Names follow async-customerio 2.18.0, the closest SDK that has all four calls.

    async def submit_form(
        self, form_id: str | int, data: Mapping[str, str], *, wait: bool = False
    ) -> Receipt:
        """Submit a form response (``POST /api/v1/forms/{form_id}/submit``; success is 204).

        Named like async-customerio's ``submit_form``; the fields are one mapping here, not
        keywords, so a form field may be called ``wait`` or ``form_id``. Customer.io creates
        the form connection for an unknown ``form_id`` and the respondent if they do not
        exist; fields become attributes of the same name (it ignores the reserved keys
        ``form_id``, ``form_name``, ``form_type``, ``form_url``, ``form_url_param``). The
        submission is ordered with the respondent's other operations.

        Example::

            await cio.submit_form("newsletter", {"email": "ada@example.com", "plan": "pro"})

        Args:
            form_id: Your name for the form (a string; an integer is sent as its digits).
            data: Form fields: string names to **string** values, carrying exactly one of
                ``email`` and ``id`` (≤150 bytes) to identify the respondent.
            wait: Wait for the terminal outcome (raises :class:`DeliveryError` unless
                delivered).

        Raises:
            ValidationError: A blank ``form_id``, a non-string value, no or two identifiers.
        """
        return await self._call(ops.submit_form(form_id, data), wait)

    async def unsubscribe(
        self, delivery_id: str, unsubscribe: bool = True, *, wait: bool = False
    ) -> Receipt:
        """Custom unsubscribe handling for a delivery, for your own unsubscribe page
        (``POST /unsubscribe/{delivery_id}`` at the host root; sent without credentials).

        Named like async-customerio's ``unsubscribe`` (which always sends ``true``).
        ``unsubscribe=True`` sets the person's ``unsubscribed`` attribute and attributes it
        to the delivery; custom subscription-center attributes need an :meth:`identify`.
        Unsubscribes of one delivery keep their order. With :class:`RegionalCustomerIO`
        it goes to the default region (``using("eu")`` picks another).

        Example::

            await cio.unsubscribe(request.query["delivery_id"], wait=True)

        Args:
            delivery_id: The ``CIO-Delivery-ID`` of the message (≤150 bytes).
            unsubscribe: ``True`` to unsubscribe (the default), ``False`` to send ``false``.
            wait: Wait for the terminal outcome.
        """
        return await self._call(ops.unsubscribe(delivery_id, unsubscribe), wait)

    async def report_metric(
        self,
        delivery_id: str,
        metric: DeliveryMetric,
        *,
        timestamp: Any = None,
        recipient: str | int | None = None,
        reason: str | None = None,
        href: str | None = None,
        wait: bool = False,
    ) -> Receipt:
        """Report a delivery metric for any channel (``POST /api/v1/metrics``; sent
        without credentials).

        Named like async-customerio's ``report_metric`` (Ruby: ``track_delivery_metric``).
        For push opened/converted/delivered with the device token, ``await
        cio.send(Delivery.event(delivery_id, metric, device_token=...))`` is the better
        route in batched mode: it travels inside ``/api/v2/batch`` with your other
        operations instead of as a request of its own.

        Example::

            await cio.report_metric(delivery_id, "clicked", href="https://example.com/sale")

        Args:
            delivery_id: The message's ``CIO-Delivery-ID`` (≤150 bytes).
            metric: One of :data:`DeliveryMetric` (which apply depends on the channel).
            timestamp: ``datetime`` or Unix seconds; defaults to receipt time.
            recipient: The recipient's email, id or device (a string), or for SMS the
                phone number as an integer (then ``metric`` must be an SMS metric:
                bounced, clicked, delivered or opened).
            reason: Why, for failure metrics such as ``bounced``.
            href: The link clicked, for ``clicked``.
            wait: Wait for the terminal outcome.
        """
        op = ops.delivery_metric(
            delivery_id, metric, timestamp=timestamp, recipient=recipient, reason=reason, href=href
        )
        return await self._call(op, wait)

    async def report_push_metric(
        self,
        delivery_id: str,
        device_id: str,
        event: PushEvent,
        *,
        timestamp: Any = None,
        wait: bool = False,
    ) -> Receipt:
        """Report a device-side push metric (``POST /api/v1/push/events``; sent without
        credentials; deprecated by Customer.io in favour of :meth:`report_metric`).

        Named like async-customerio's ``report_push_metric`` (Node: ``trackPush``, Ruby:
        ``track_push_notification_event``). In batched mode ``await
        cio.send(Delivery.event(delivery_id, event, device_token=device_id))`` carries the
        same report inside ``/api/v2/batch`` instead of a request of its own.

        Example::

            await cio.report_push_metric(delivery_id, device_token, "opened")

        Args:
            delivery_id: The notification's ``CIO-Delivery-ID`` (≤150 bytes).
            device_id: The ``CIO-Delivery-Token`` of the device (≤150 bytes).
            event: ``"opened"``, ``"converted"`` or ``"delivered"``.
            timestamp: ``datetime`` or Unix seconds; defaults to receipt time.
            wait: Wait for the terminal outcome.
        """
        op = ops.push_metric(delivery_id, device_id, event, timestamp)
        return await self._call(op, wait)


def _flag(wait: Any) -> bool:
    """``wait`` on the calls that take attributes as keywords: typed loosely so that
    ``identify("42", **attributes)`` type-checks, checked strictly here."""
    if wait is True or wait is False:
        return wait
    raise ValidationError(
        "wait must be True or False (it is never sent as an attribute; to send an attribute "
        "named 'wait', use send(Person.identify(id, {'wait': ...})))",
        field="wait",
    )


async def confirm(receipt: Receipt) -> None:
    """Wait for ``receipt``'s outcome; raise unless it was delivered (or deduplicated).

    Raises:
        OperationRejectedError: The API refused the operation.
        OperationDroppedError: The SDK gave it up.
    """
    check_outcome(receipt.action, await receipt.wait())


def check_outcome(action: str, outcome: Outcome) -> None:
    """Raise unless ``outcome`` is delivered (or deduplicated): what ``wait=True`` means.

    Raises:
        OperationRejectedError: The API refused the operation.
        OperationDroppedError: The SDK gave it up.
    """
    if outcome.status == "rejected":
        raise OperationRejectedError(
            f"{action} rejected: {outcome.message or outcome.reason}", outcome=outcome
        )
    if outcome.status == "dropped":
        raise OperationDroppedError(f"{action} dropped: {outcome.reason}", outcome=outcome)
