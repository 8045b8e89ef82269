"""The Data Pipelines calls with analytics-python's names and argument order, as coroutines.

``analytics.track(user_id, event, properties)`` becomes ``await client.track(user_id, event,
properties)``: the same positional order, the same keywords (``context``, ``timestamp``,
``anonymous_id``, ``integrations``, ``message_id``), plus ``wait``. Each call is validated and
serialised in the caller's task (:mod:`.messages`; errors raise there, before any I/O) and
admitted into the send pipeline; it returns a :class:`Receipt` instead of analytics-python's
``(success, message)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import OperationDroppedError, OperationRejectedError, ValidationError
from .._pipeline.receipt import Receipt
from . import messages as m
from .messages import PipelinesCall

__all__ = ["PipelinesAPI", "confirm"]

Traits = Mapping[str, Any]


async def confirm(receipt: Receipt) -> None:
    """Wait for ``receipt``'s outcome; raise unless it was delivered.

    Raises:
        OperationRejectedError: The API refused the message (strict mode's 400).
        OperationDroppedError: The SDK gave it up (deadline, shutdown, auth…).
    """
    outcome = await receipt.wait()
    if outcome.status == "rejected":
        text = outcome.message or outcome.reason
        raise OperationRejectedError(f"{receipt.action} rejected: {text}", outcome=outcome)
    if outcome.status == "dropped":
        raise OperationDroppedError(f"{receipt.action} dropped: {outcome.reason}", outcome=outcome)


class PipelinesAPI:
    """Mixin: the six calls. Subclasses implement ``_submit``."""

    async def _submit(self, call: PipelinesCall, wait: bool) -> Receipt:
        raise NotImplementedError

    async def send(
        self, message: PipelinesCall | Mapping[str, Any], *, wait: bool = False
    ) -> Receipt:
        """Send a prebuilt :class:`PipelinesCall`, or a Segment-spec message dict
        (``{"type": "track", "userId": ..., "event": ...}``; see
        :meth:`PipelinesCall.from_dict`).

        Example::

            await client.send({"type": "track", "userId": "42", "event": "Signed Up"})

        Raises:
            ValidationError: The message breaks a rule (see the calls).
        """
        call = message if isinstance(message, PipelinesCall) else m.from_dict(message)
        return await self._submit(call, _flag(wait))

    async def identify(
        self,
        user_id: str | int | None = None,
        traits: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Identify a person and set their traits (``POST /v1/identify``, batched).

        Example::

            await client.identify("42", {"email": "ada@example.com", "plan": "pro"})

        Args:
            user_id: The person's id; or give ``anonymous_id`` (or, with neither,
                ``traits["email"]``).
            traits: Their traits; ``email`` a string, ``createdAt`` a datetime or RFC 3339.
            context: Context (``ip``, ``locale``, ``device``…); ``library`` is added.
            timestamp: When it happened: a ``datetime`` (naive = UTC) or an RFC 3339
                string; defaults to now.
            anonymous_id: The anonymous id (both ids: the two are linked).
            integrations: Destination names to booleans.
            message_id: De-duplication id; a ULID is generated when omitted, and every
                retry carries the same one.
            wait: Wait for the outcome; raise :class:`DeliveryError` unless delivered.

        Raises:
            ValidationError: A rule of the vendor document (the field is named).
            LimitExceededError: The message is over 32,000 bytes.
        """
        call = m.identify(
            user_id, traits, context, timestamp, anonymous_id, integrations, message_id
        )
        return await self._submit(call, _flag(wait))

    async def track(
        self,
        user_id: str | int | None = None,
        event: str | None = None,
        properties: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        group_id: str | int | None = None,
        wait: bool = False,
    ) -> Receipt:
        """Record an event (``POST /v1/track``, batched).

        Semantic events (``User Deleted``, ``Device Created or Updated``…) are checked for
        the fields the vendor document requires.

        Example::

            await client.track("42", "Order Completed", {"total": 42.5})

        ``context``, ``timestamp``, ``anonymous_id``, ``integrations``, ``message_id``,
        ``wait``: as for :meth:`identify`.

        Args:
            user_id: The person's id (or ``anonymous_id``, or ``group_id``).
            event: The event name (non-blank).
            properties: Event properties (any JSON; datetimes become RFC 3339).
            group_id: A group-level event names the group instead of a person (ours;
                keyword only).

        Raises:
            ValidationError: A rule of the vendor document (the field is named).
            LimitExceededError: The message is over 32,000 bytes.
        """
        call = m.track(
            user_id,
            event,
            properties,
            context,
            timestamp,
            anonymous_id,
            integrations,
            message_id,
            group_id=group_id,
        )
        return await self._submit(call, _flag(wait))

    async def page(
        self,
        user_id: str | int | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Record a page view (``POST /v1/page``, batched).

        Example::

            await client.page("42", "Docs", "Quickstart", {"url": "https://example.com/qs"})

        ``context``, ``timestamp``, ``anonymous_id``, ``integrations``, ``message_id``,
        ``wait``: as for :meth:`identify`.

        Args:
            user_id: The person's id (or ``anonymous_id``).
            category: The page's category (sent as ``category``, like analytics-python).
            name: The page's name.
            properties: ``url``, ``title``, ``referrer``, ``path``, ``search`` (strings)
                and your own.
        """
        call = m.page(
            user_id,
            category,
            name,
            properties,
            context,
            timestamp,
            anonymous_id,
            integrations,
            message_id,
        )
        return await self._submit(call, _flag(wait))

    async def screen(
        self,
        user_id: str | int | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Record a mobile screen view (``POST /v1/screen``, batched).

        Example::

            await client.screen("42", name="Feed", properties={"tab": "new"})

        ``user_id``, ``category``, ``name``, ``properties``: as for :meth:`page`.

        ``context``, ``timestamp``, ``anonymous_id``, ``integrations``, ``message_id``,
        ``wait``: as for :meth:`identify`.
        """
        call = m.screen(
            user_id,
            category,
            name,
            properties,
            context,
            timestamp,
            anonymous_id,
            integrations,
            message_id,
        )
        return await self._submit(call, _flag(wait))

    async def group(
        self,
        user_id: str | int | None = None,
        group_id: str | int | None = None,
        traits: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Associate a person with a group (a Customer.io object; ``POST /v1/group``).

        Example::

            await client.group("42", "acme", {"name": "Acme", "object_type_id": "1"})

        ``context``, ``timestamp``, ``anonymous_id``, ``integrations``, ``message_id``,
        ``wait``: as for :meth:`identify`.

        Args:
            user_id: The person's id (or ``anonymous_id``).
            group_id: The group's id (non-blank).
            traits: The group's traits; ``object_type_id`` a string,
                ``relationshipAttributes`` a mapping.
        """
        call = m.group(
            user_id, group_id, traits, context, timestamp, anonymous_id, integrations, message_id
        )
        return await self._submit(call, _flag(wait))

    async def alias(
        self,
        previous_id: str | int | None = None,
        user_id: str | int | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> Receipt:
        """Merge ``previous_id`` (an anonymous or user id) into ``user_id``.

        Sent as its own ``POST /v1/alias`` (``/v1/batch`` takes no alias), in order with
        both people's other messages.

        Example::

            await client.alias("anon-7f3a", "42")

        ``context``, ``timestamp``, ``integrations``, ``message_id``, ``wait``: as for
        :meth:`identify`.

        Args:
            previous_id: The id to merge away.
            user_id: The id to keep.
        """
        call = m.alias(previous_id, user_id, context, timestamp, integrations, message_id)
        return await self._submit(call, _flag(wait))


def _flag(wait: Any) -> bool:
    if wait is True or wait is False:
        return wait
    raise ValidationError("wait must be True or False", field="wait")
