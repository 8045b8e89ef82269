"""The Track API half of the fake server: v1 and v2 endpoints, operations and people.

:class:`FakeTrackAPI` holds the Track state of :class:`~customerio_async.testing.FakeCustomerIO`
(applied operations, event de-duplication, the people view) and judges each Track request
by the shared contract (§2, §3, §9 rules 3-6) through :mod:`._rules`. It does no I/O: each
handler takes a :class:`~._http.Call` and returns a :class:`~._http.Reply`, which
``_fake.py`` puts on the wire. The unauthenticated and form routes live in
:mod:`._fake_track_extra`.

Like the rest of the fake, nothing here is imported from the client side of the package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from . import _rules as rules
from . import _rules_track_extra as extra_rules
from ._http import OK, Call, Handler, Reply, Route, json_reply
from ._rules import RuleViolation

Region = Literal["us", "eu"]
"""What the fake's ``GET /api/v1/accounts/region`` reports.

Example::

    async with FakeCustomerIO(region="eu") as fake:
        ...
"""

REGION_URLS: Final[Mapping[str, str]] = {
    "us": "https://track.customer.io",
    "eu": "https://track-eu.customer.io",
}


@dataclass(frozen=True)
class AppliedOperation:
    """One operation the fake accepted and applied, from v1 or v2.

    Example::

        await cio.identify("42", plan="pro")
        await cio.flush()
        op = fake.operations[0]
        assert (op.action, op.identifiers) == ("identify", {"id": "42"})

    Attributes:
        source: ``"v1"`` or ``"v2"``.
        type: ``"person"``, ``"object"`` or ``"delivery"``.
        action: The v2 action vocabulary (``identify``, ``delete``, ``event``, ``page``,
            ``screen``, ``add_device``, ``delete_device``, ``suppress``, ``unsuppress``,
            ``merge``, ``add_relationships``, ``delete_relationships``,
            ``identify_anonymous``), plus ``anonymous_event`` (v1 ``POST /events``),
            ``add_to_segment``/``remove_from_segment`` (v1 segments), ``form_submit``
            (``POST /forms/{form_id}/submit``), and the delivery reports ``metric``
            (``POST /metrics``), ``push_event`` (``POST /push/events``) and ``unsubscribe``
            (``POST /unsubscribe/{delivery_id}`` at the host root).
        identifiers: The v2 ``identifiers``. For v1 person paths, inferred from the path
            like the real server: ``cio_x`` -> ``{"cio_id": "x"}``, a value with ``@`` ->
            ``{"email": ...}``, else ``{"id": ...}``. v1 anonymous events give
            ``{"anonymous_id": ...}`` (or ``{}``), segments ``{"segment_id", "id_type"}``,
            form submissions the one identifier in ``data`` (``{"email": ...}`` or
            ``{"id": ...}``), delivery reports ``{"id": delivery_id}``; merges have ``{}``.
        body: The operation object (v2) or the decoded request body (v1; ``{}`` if none).
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
    """

    source: Literal["v1", "v2"]
    type: str
    action: str
    identifiers: dict[str, str]
    body: dict[str, Any]
    request_index: int


def person_key(identifiers: Mapping[str, str]) -> str:
    """The :meth:`FakeCustomerIO.people` key of a one-identifier object: ``"kind:value"``."""
    ((kind, value),) = identifiers.items()
    return f"{kind}:{value}"


class FakeTrackAPI:
    """Track API state and handlers (no I/O)."""

    def __init__(
        self,
        *,
        region: Region,
        environment_id: int,
        strict_ulid: bool,
        notify: Callable[[], None],
    ) -> None:
        """Configure the Track half; ``notify`` wakes the fake's waiters after a change."""
        self.region: Region = region
        self._environment_id = environment_id
        self._strict_ulid = strict_ulid
        self._notify = notify
        self.operations: list[AppliedOperation] = []
        self.duplicate_event_ids: list[str] = []
        self.event_ids: list[str] = []
        self._seen_event_ids: set[str] = set()
        self.people: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        """Forget operations, duplicates, event ids and people (in place)."""
        self.operations.clear()
        self.duplicate_event_ids.clear()
        self.event_ids.clear()
        self._seen_event_ids.clear()
        self.people.clear()

    def routes(self) -> tuple[Route, ...]:
        """The Track v1/v2 endpoints (Basic auth), in the contract's order."""
        v1 = ("api", "v1")
        person = (*v1, "customers", "{identifier}")
        segment = (*v1, "segments", "{segment_id}")

        def track_v1(method: str, template: tuple[str, ...], handler: Handler) -> Route:
            return Route(method, template, "track", "v1", handler)

        return (
            track_v1("GET", (*v1, "accounts", "region"), self._region_info),
            track_v1("PUT", person, self._identify),
            track_v1("DELETE", person, self._bodyless_person_op("delete")),
            track_v1("POST", (*person, "events"), self._customer_event),
            track_v1("PUT", (*person, "devices"), self._add_device),
            track_v1("DELETE", (*person, "devices", "{device_id}"), self._delete_device),
            track_v1("POST", (*person, "suppress"), self._bodyless_person_op("suppress")),
            track_v1("POST", (*person, "unsuppress"), self._bodyless_person_op("unsuppress")),
            track_v1("POST", (*v1, "events"), self._anonymous_event),
            track_v1("POST", (*v1, "merge_customers"), self._merge),
            track_v1("POST", (*segment, "add_customers"), self._segment_op("add_to_segment")),
            track_v1(
                "POST", (*segment, "remove_customers"), self._segment_op("remove_from_segment")
            ),
            Route("POST", ("api", "v2", "entity"), "track", "v2", self._entity),
            Route("POST", ("api", "v2", "batch"), "track", "v2", self._batch),
        )

    # ----------------------------------------------------------------------- state

    def apply(self, call: Call, operation: AppliedOperation, event_id: str | None = None) -> None:
        """Record and apply an accepted operation, de-duplicating events by id (§1.6)."""
        if not call.record:
            return  # arrived before clear(): not part of the fresh history
        if event_id is not None:
            # ULIDs are case-insensitive; other ids (strict_ulid=False) compare exactly.
            key = event_id.upper() if rules.is_ulid(event_id) else event_id
            if key in self._seen_event_ids:
                self.duplicate_event_ids.append(event_id)
                self._notify()
                return
            self._seen_event_ids.add(key)
            self.event_ids.append(event_id)
        self.operations.append(operation)
        if operation.type == "person":
            self._update_people(operation)
        self._notify()

    def _update_people(self, operation: AppliedOperation) -> None:
        action = operation.action
        if action in ("identify", "form_submit"):
            if action == "form_submit":
                attributes = extra_rules.form_attributes(operation.body)
            elif operation.source == "v1":
                attributes = operation.body
            else:
                attributes = operation.body.get("attributes", {})
            self.people.setdefault(person_key(operation.identifiers), {}).update(attributes)
        elif action in ("delete", "suppress"):
            # Suppress deletes the profile and blocks the identifier (§2 row 7).
            self.people.pop(person_key(operation.identifiers), None)
        elif action == "merge":
            primary = person_key(operation.body["primary"])
            secondary = person_key(operation.body["secondary"])
            # "The primary must already exist, otherwise nothing happens" (§2.5).
            if primary in self.people and primary != secondary:
                merged = self.people.pop(secondary, {})
                merged.update(self.people[primary])
                self.people[primary] = merged

    # ----------------------------------------------------------------------- v1 handlers

    def _region_info(self, call: Call) -> Reply:
        return json_reply(
            200,
            {
                "url": REGION_URLS[self.region],
                "region": self.region,
                "environment_id": self._environment_id,
            },
        )

    def _person_call(
        self, call: Call, *, allow_empty: bool = False
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Read a ``/customers/{identifier}`` call: path identifiers first, then the body."""
        identifiers = rules.v1_person_identifiers(call.params["identifier"])
        return identifiers, rules.parse_json_object(call.body, allow_empty=allow_empty)

    def _apply_v1_person(
        self,
        call: Call,
        action: str,
        identifiers: dict[str, str],
        body: dict[str, Any],
        event_id: str | None = None,
    ) -> Reply:
        operation = AppliedOperation("v1", "person", action, identifiers, body, call.request_index)
        self.apply(call, operation, event_id)
        return OK

    def _identify(self, call: Call) -> Reply:
        identifiers, body = self._person_call(call)
        rules.check_person_attributes(body, field="")
        return self._apply_v1_person(call, "identify", identifiers, body)

    def _bodyless_person_op(self, action: str) -> Handler:
        def handle(call: Call) -> Reply:
            identifiers, body = self._person_call(call, allow_empty=True)
            return self._apply_v1_person(call, action, identifiers, body)

        return handle

    def _customer_event(self, call: Call) -> Reply:
        identifiers, body = self._person_call(call)
        event_type, event_id = rules.check_v1_event(body, strict_ulid=self._strict_ulid)
        return self._apply_v1_person(call, event_type, identifiers, body, event_id)

    def _add_device(self, call: Call) -> Reply:
        identifiers, body = self._person_call(call)
        rules.check_v1_device(body)
        return self._apply_v1_person(call, "add_device", identifiers, body)

    def _delete_device(self, call: Call) -> Reply:
        identifiers, body = self._person_call(call, allow_empty=True)
        if not call.params["device_id"]:
            raise RuleViolation("device_id must not be blank", field="device_id")
        return self._apply_v1_person(call, "delete_device", identifiers, body)

    def _anonymous_event(self, call: Call) -> Reply:
        body = rules.parse_json_object(call.body, allow_empty=False)
        _, event_id = rules.check_v1_event(body, strict_ulid=self._strict_ulid)
        anonymous_id = body.get("anonymous_id")
        identifiers = {"anonymous_id": anonymous_id} if anonymous_id else {}
        operation = AppliedOperation(
            "v1", "person", "anonymous_event", identifiers, body, call.request_index
        )
        self.apply(call, operation, event_id)
        return OK

    def _merge(self, call: Call) -> Reply:
        body = rules.parse_json_object(call.body, allow_empty=False)
        rules.check_merge_side(body.get("primary"), field="primary")
        rules.check_merge_side(body.get("secondary"), field="secondary")
        self.apply(call, AppliedOperation("v1", "person", "merge", {}, body, call.request_index))
        return OK

    def _segment_op(self, action: str) -> Handler:
        def handle(call: Call) -> Reply:
            segment_id = rules.check_segment_id(call.params["segment_id"])
            body = rules.parse_json_object(call.body, allow_empty=False)
            id_type = call.query.get("id_type", "id")
            rules.check_segment_request(body, id_type)
            identifiers = {"segment_id": segment_id, "id_type": id_type}
            operation = AppliedOperation(
                "v1", "person", action, identifiers, body, call.request_index
            )
            self.apply(call, operation)
            return OK

        return handle

    # ----------------------------------------------------------------------- v2 handlers

    def _apply_v2(self, call: Call, op: dict[str, Any]) -> None:
        kind, action = op["type"], op["action"]
        event_id = (
            op.get("id") if kind == "person" and action in ("event", "page", "screen") else None
        )
        identifiers = dict(op.get("identifiers", {}))
        operation = AppliedOperation("v2", kind, action, identifiers, op, call.request_index)
        self.apply(call, operation, event_id)

    def _entity(self, call: Call) -> Reply:
        if len(call.body) > rules.MAX_ENTITY_BYTES:
            raise RuleViolation(
                f"request body cannot be larger than {rules.MAX_ENTITY_BYTES} bytes",
                reason=rules.REASON_TOO_LARGE,
                status=413,
            )
        op = rules.parse_json_object(call.body, allow_empty=False)
        self._apply_v2(call, rules.check_v2_operation(op, strict_ulid=self._strict_ulid))
        return OK

    def _batch(self, call: Call) -> Reply:
        if len(call.body) > rules.MAX_BATCH_BYTES:
            raise RuleViolation(
                f"request body cannot be larger than {rules.MAX_BATCH_BYTES} bytes",
                reason=rules.REASON_TOO_LARGE,
                status=413,
            )
        payload = rules.parse_json_object(call.body, allow_empty=False)
        ops = payload.get("batch")
        if not isinstance(ops, list):
            raise RuleViolation(
                "batch must be a list of operations", field="batch", reason="required"
            )
        if not ops:
            raise RuleViolation("batch must hold at least one operation", field="batch")
        errors: list[dict[str, Any]] = []
        for index, op in enumerate(ops):
            try:
                if index in call.reject_indexes:
                    raise RuleViolation("operation rejected by a scripted fault")
                if rules.json_size(op) > rules.MAX_OP_BYTES:
                    raise RuleViolation(
                        f"operation cannot be larger than {rules.MAX_OP_BYTES} bytes",
                        reason=rules.REASON_TOO_LARGE,
                    )
                checked = rules.check_v2_operation(op, strict_ulid=self._strict_ulid)
            except RuleViolation as violation:
                errors.append(
                    {
                        "batch_index": index,
                        "reason": violation.reason,
                        "field": violation.field,
                        "message": violation.message,
                    }
                )
                continue
            # Valid items are applied even when others fail: 207 means "the rest were
            # accepted" (§3.4).
            self._apply_v2(call, checked)
        if errors:
            return json_reply(207, {"errors": errors})
        return OK
