"""Track routes beside the identify/event core: form submissions and delivery reports.

``POST /api/v1/forms/{form_id}/submit`` (Basic auth, answers **204** with no body, §1.7) and
the three routes that take NO credentials (§1.2, TS ``security: []``):
``POST /unsubscribe/{delivery_id}`` at the host root, ``POST /api/v1/metrics`` and
``POST /api/v1/push/events``. Their rules are in :mod:`._rules_track_extra`.

An SDK must never send credentials to the unauthenticated routes. Customer.io ignores an
``Authorization`` header there, so the fake accepts the request either way, but notes on
every record whether one arrived (``authorization_sent``), and
:attr:`FakeCustomerIO.authorization_leaks` lists the offending requests.

Each accepted request is recorded twice: as a typed record here (``form_submissions``,
``unsubscribes``, ``delivery_metrics``, ``push_events``) and as an
:class:`~._fake_track.AppliedOperation` in the ordered Track log, so
:meth:`FakeCustomerIO.wait_for_operations` covers them too. A form submission also updates
:meth:`FakeCustomerIO.people` (its fields become attributes, TS submitForm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from . import _rules as rules
from . import _rules_track_extra as extra_rules
from ._fake_track import AppliedOperation, FakeTrackAPI
from ._http import OK, Call, Reply, Route

NO_CONTENT: Final = Reply(204)  # forms: "Successful requests do not return anything" (TS)


@dataclass(frozen=True)
class AppliedFormSubmission:
    """One form submission the fake accepted (``POST /api/v1/forms/{form_id}/submit``).

    Example::

        await cio.submit_form("newsletter", {"email": "ada@example.com"}, wait=True)
        assert fake.form_submissions[0].form_id == "newsletter"

    Attributes:
        form_id: The ``{form_id}`` path segment, percent-decoded.
        identifiers: The respondent: ``{"email": ...}`` or ``{"id": ...}``.
        data: The submitted ``data`` object (all values strings), as sent.
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
    """

    form_id: str
    identifiers: dict[str, str]
    data: dict[str, str]
    request_index: int


@dataclass(frozen=True)
class AppliedUnsubscribe:
    """One custom unsubscribe the fake accepted (``POST /unsubscribe/{delivery_id}``).

    Example::

        await cio.unsubscribe(delivery_id, wait=True)
        assert fake.unsubscribes[0].authorization_sent is False

    Attributes:
        delivery_id: The ``{delivery_id}`` path segment, percent-decoded.
        unsubscribe: The body's ``unsubscribe`` flag.
        authorization_sent: Whether the request carried an ``Authorization`` header (it
            must not: the route takes no credentials).
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
    """

    delivery_id: str
    unsubscribe: bool
    authorization_sent: bool
    request_index: int


@dataclass(frozen=True)
class AppliedMetric:
    """One delivery metric the fake accepted (``POST /api/v1/metrics``).

    Example::

        await cio.report_metric(delivery_id, "clicked", wait=True)
        assert fake.delivery_metrics[0].metric == "clicked"

    Attributes:
        delivery_id: The message's ``CIO-Delivery-ID``.
        metric: ``bounced``, ``clicked``, ``converted``, ``deferred``, ``delivered``,
            ``dropped``, ``opened`` or ``spammed``.
        channels: The channels whose documented shape the body fits (``email``, ``in_app``,
            ``push``, ``slack``, ``sms``, ``webhook``); the body does not name its channel.
        timestamp: Unix seconds, when sent.
        recipient: When sent (a string; an integer phone number for SMS).
        reason: When sent (failure metrics).
        href: When sent (clicks).
        body: The decoded request body.
        authorization_sent: Whether the request carried an ``Authorization`` header.
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
    """

    delivery_id: str
    metric: str
    channels: tuple[str, ...]
    timestamp: int | None
    recipient: str | int | None
    reason: str | None
    href: str | None
    body: dict[str, Any]
    authorization_sent: bool
    request_index: int


@dataclass(frozen=True)
class AppliedPushEvent:
    """One push metric the fake accepted (``POST /api/v1/push/events``, deprecated by TS in
    favour of ``/api/v1/metrics``).

    Example::

        await cio.report_push_metric(delivery_id, device_token, "opened", wait=True)
        assert fake.push_events[0].event == "opened"

    Attributes:
        delivery_id: The notification's ``CIO-Delivery-ID``.
        device_id: The ``CIO-Delivery-Token`` of the device.
        event: ``opened``, ``converted`` or ``delivered``.
        timestamp: Unix seconds, when sent.
        authorization_sent: Whether the request carried an ``Authorization`` header.
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
    """

    delivery_id: str
    device_id: str
    event: str
    timestamp: int | None
    authorization_sent: bool
    request_index: int


def _carries_authorization(call: Call) -> bool:
    return "Authorization" in call.headers


class FakeTrackExtra:
    """State and handlers of the form and delivery-report routes (no I/O)."""

    def __init__(self, track: FakeTrackAPI) -> None:
        """Share the Track operation log and people view of ``track``."""
        self._track = track
        self.form_submissions: list[AppliedFormSubmission] = []
        self.unsubscribes: list[AppliedUnsubscribe] = []
        self.delivery_metrics: list[AppliedMetric] = []
        self.push_events: list[AppliedPushEvent] = []

    def clear(self) -> None:
        """Forget every record (in place)."""
        self.form_submissions.clear()
        self.unsubscribes.clear()
        self.delivery_metrics.clear()
        self.push_events.clear()

    def routes(self) -> tuple[Route, ...]:
        """The four routes; only forms take (Track Basic) credentials."""
        v1 = ("api", "v1")
        return (
            Route("POST", (*v1, "forms", "{form_id}", "submit"), "track", "v1", self._form),
            # Unauthenticated by design (TS `security: []`); /unsubscribe sits at the root.
            Route("POST", ("unsubscribe", "{delivery_id}"), "none", "v1", self._unsubscribe),
            Route("POST", (*v1, "metrics"), "none", "v1", self._metric),
            Route("POST", (*v1, "push", "events"), "none", "v1", self._push_event),
        )

    def _log(self, call: Call, kind: str, action: str, ids: dict[str, str], body: Any) -> None:
        self._track.apply(call, AppliedOperation("v1", kind, action, ids, body, call.request_index))

    def _form(self, call: Call) -> Reply:
        form_id = extra_rules.check_form_id(call.params["form_id"])
        body = rules.parse_json_object(call.body, allow_empty=False)
        identifiers = extra_rules.check_form_submission(body)
        if call.record:
            record = AppliedFormSubmission(form_id, identifiers, body["data"], call.request_index)
            self.form_submissions.append(record)
        self._log(call, "person", "form_submit", identifiers, body)
        return NO_CONTENT

    def _unsubscribe(self, call: Call) -> Reply:
        extra_rules.check_json_content_type(call.headers.get("Content-Type"))
        body = rules.parse_json_object(call.body, allow_empty=False)
        delivery_id = call.params["delivery_id"]
        flag = extra_rules.check_unsubscribe(delivery_id, body)
        if call.record:
            self.unsubscribes.append(
                AppliedUnsubscribe(
                    delivery_id, flag, _carries_authorization(call), call.request_index
                )
            )
        self._log(call, "delivery", "unsubscribe", {"id": delivery_id}, body)
        return OK

    def _metric(self, call: Call) -> Reply:
        body = rules.parse_json_object(call.body, allow_empty=False)
        delivery_id, channels = extra_rules.check_metric(body)
        if call.record:
            record = AppliedMetric(
                delivery_id=delivery_id,
                metric=body["metric"],
                channels=channels,
                timestamp=body.get("timestamp"),
                recipient=body.get("recipient"),
                reason=body.get("reason"),
                href=body.get("href"),
                body=body,
                authorization_sent=_carries_authorization(call),
                request_index=call.request_index,
            )
            self.delivery_metrics.append(record)
        self._log(call, "delivery", "metric", {"id": delivery_id}, body)
        return OK

    def _push_event(self, call: Call) -> Reply:
        body = rules.parse_json_object(call.body, allow_empty=False)
        delivery_id, device_id, event = extra_rules.check_push_event(body)
        if call.record:
            record = AppliedPushEvent(
                delivery_id,
                device_id,
                event,
                body.get("timestamp"),
                _carries_authorization(call),
                call.request_index,
            )
            self.push_events.append(record)
        self._log(call, "delivery", "push_event", {"id": delivery_id}, body)
        return OK
