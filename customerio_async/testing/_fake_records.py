"""What the fake server recorded and applied, and waiting for it: the read side of
:class:`~._fake.FakeCustomerIO`.

:class:`FakeRecords` holds the accessors (``sends``, ``people()``, ``wait_for_operations()``…)
over the per-API stores that :class:`~._fake.FakeCustomerIO` creates and routes requests to;
keeping them apart keeps each module readable (the routing stays in :mod:`._fake`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _fake_app as app_rules
from ._fake_app import AppliedSend, AppliedTrigger, FakeAppAPI
from ._fake_pipelines import FakePipelinesAPI, PipelinesDrop, PipelinesMessage
from ._fake_track import AppliedOperation, FakeTrackAPI, Region
from ._fake_track_extra import (
    AppliedFormSubmission,
    AppliedMetric,
    AppliedPushEvent,
    AppliedUnsubscribe,
    FakeTrackExtra,
)
from ._server import LoopbackServer

__all__ = ["FakeRecords"]


class FakeRecords(LoopbackServer):
    """The fake's records and waits; :class:`~._fake.FakeCustomerIO` sets the stores up.

    Example::

        async with FakeCustomerIO() as fake:
            ...  # drive a client against fake.url
            assert fake.people()["id:42"]["plan"] == "pro"
    """

    # Created by FakeCustomerIO.__init__.
    _site_id: str
    _api_key: str
    _app_api_key: str
    _track: FakeTrackAPI
    _extra: FakeTrackExtra
    _app: FakeAppAPI
    _pipelines: FakePipelinesAPI
    operations: list[AppliedOperation]

    # ----------------------------------------------------------------------- properties

    @property
    def site_id(self) -> str:
        """The Track site id the fake accepts."""
        return self._site_id

    @property
    def api_key(self) -> str:
        """The Track API key the fake accepts."""
        return self._api_key

    @property
    def app_api_key(self) -> str:
        """The App API key the fake accepts as ``Authorization: Bearer <key>``."""
        return self._app_api_key

    @property
    def sends(self) -> list[AppliedSend]:
        """Every transactional message accepted (``/v1/send/*``), in order."""
        return self._app.sends

    @property
    def triggers(self) -> list[AppliedTrigger]:
        """Every broadcast trigger accepted, in order, with its per-recipient errors."""
        return self._app.triggers

    @property
    def region(self) -> Region:
        """The region the fake reports from ``GET /api/v1/accounts/region``."""
        return self._track.region

    @property
    def pipelines_write_key(self) -> str:
        """The Pipelines write key the fake accepts (Basic ``<key>:``, empty password)."""
        return self._pipelines.write_key

    @property
    def form_submissions(self) -> list[AppliedFormSubmission]:
        """Every form submission accepted (``/api/v1/forms/{form_id}/submit``), in order."""
        return self._extra.form_submissions

    @property
    def unsubscribes(self) -> list[AppliedUnsubscribe]:
        """Every custom unsubscribe accepted (``/unsubscribe/{delivery_id}``), in order."""
        return self._extra.unsubscribes

    @property
    def delivery_metrics(self) -> list[AppliedMetric]:
        """Every delivery metric accepted (``/api/v1/metrics``), in order."""
        return self._extra.delivery_metrics

    @property
    def push_events(self) -> list[AppliedPushEvent]:
        """Every push metric accepted (``/api/v1/push/events``), in order."""
        return self._extra.push_events

    @property
    def pipelines_messages(self) -> list[PipelinesMessage]:
        """Every Pipelines message accepted, in arrival order (each ``/v1/batch`` item on its
        own), without ``messageId`` repeats (see :attr:`duplicate_message_ids`)."""
        return self._pipelines.messages

    @property
    def pipelines_drops(self) -> list[PipelinesDrop]:
        """Pipelines messages (or whole requests) answered 200 but dropped, as real
        Pipelines does without ``X-Strict-Mode: 1``, each with its violation: assert this is
        empty to prove nothing was silently lost."""
        return self._pipelines.drops

    @property
    def duplicate_message_ids(self) -> list[str]:
        """Pipelines ``messageId`` s received again after they were accepted (answered 200,
        not recorded again)."""
        return self._pipelines.duplicate_message_ids

    # ----------------------------------------------------------------------- inspection

    def event_ids(self) -> list[str]:
        """Return the de-duplication ids of applied events, in the order applied.

        Example::

            await cio.track("42", "purchased", wait=True)
            assert len(fake.event_ids()) == 1
        """
        return list(self._track.event_ids)

    def people(self) -> dict[str, dict[str, Any]]:
        """Return each known person's merged attributes.

        Keys are ``"id:<v>"``, ``"email:<v>"``, ``"cio_id:<v>"`` or ``"phone:<v>"``, from
        the v1 path or the v2 identifiers. Identify merges attributes (v1: the whole body,
        v2: ``attributes``); delete and suppress remove the person; merge folds the
        secondary into an existing primary (the primary's values win).

        Example::

            await cio.identify("42", plan="pro", wait=True)
            assert fake.people()["id:42"] == {"plan": "pro"}
        """
        return {key: dict(attributes) for key, attributes in self._track.people.items()}

    def pipelines_profiles(self) -> dict[str, dict[str, Any]]:
        """Return the traits of each ``userId``, merged over its Pipelines ``identify``
        messages in arrival order (later values win). Anonymous identifies, groups and
        aliases do not change profiles.

        Example::

            assert fake.pipelines_profiles()["42"]["plan"] == "pro"
        """
        return {user: dict(traits) for user, traits in self._pipelines.profiles.items()}

    def clear(self) -> None:
        """Forget requests, everything applied or recorded (Track, App, Pipelines) and queued
        faults.

        A request in flight when this is called is still answered, but neither its
        record nor its operations land in the fresh history.

        Example::

            fake.clear()                 # between two phases of one test
            assert fake.requests == []
        """
        self._clear_history()
        self._track.clear()
        self._extra.clear()
        self._pipelines.clear()
        self._app.clear()

    async def emit_webhook(
        self,
        url: str,
        event: Mapping[str, Any] | bytes,
        signing_key: str,
        *,
        timestamp: int | None = None,
    ) -> int:
        """POST a signed reporting-webhook event to your receiver, like Customer.io does.

        The body is the compact JSON of ``event`` (or ``event`` itself when it is bytes),
        with ``X-CIO-Timestamp`` and ``X-CIO-Signature`` (hex HMAC-SHA256 of
        ``v0:{timestamp}:{body}`` keyed with ``signing_key``) and Customer.io's 4 s timeout.

        Example::

            event = {"event_id": "01HZY0A7Q4J6M8N9P0R1S2T3V4", "object_type": "email",
                     "metric": "sent", "timestamp": 1760000000, "data": {}}
            assert await fake.emit_webhook(receiver_url, event, SIGNING_KEY) == 200

        Args:
            url: The receiver's URL.
            event: A reporting-webhook event, e.g. ``{"event_id": ..., "object_type":
                "email", "metric": "sent", "timestamp": ..., "data": {...}}``.
            signing_key: The webhook's signing key.
            timestamp: ``X-CIO-Timestamp``; defaults to now (pass an old one to test
                replay protection).

        Returns:
            The receiver's HTTP status.
        """
        return await app_rules.emit_webhook(url, event, signing_key, timestamp=timestamp)

    async def wait_for_operations(self, n: int, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` operations have been applied.

        Example::

            await cio.track("42", "opened")        # fire-and-forget
            await fake.wait_for_operations(1)

        Raises:
            TimeoutError: Fewer than ``n`` after ``timeout`` seconds.
        """
        await self._wait_until(
            lambda: len(self.operations) >= n,
            timeout,
            lambda: f"{n} operations (have {len(self.operations)})",
        )

    async def wait_for_pipelines_messages(self, n: int, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` Pipelines messages have been accepted.

        Example::

            await fake.wait_for_pipelines_messages(3, timeout=2)

        Raises:
            TimeoutError: Fewer than ``n`` after ``timeout`` seconds.
        """
        messages = self._pipelines.messages
        await self._wait_until(
            lambda: len(messages) >= n,
            timeout,
            lambda: f"{n} Pipelines messages (have {len(messages)})",
        )
