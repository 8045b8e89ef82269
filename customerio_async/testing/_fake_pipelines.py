"""The Data Pipelines (CDP) half of the fake server.

``POST /v1/identify``, ``/v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/group``,
``/v1/alias`` and ``/v1/batch`` (contract §5; real hosts ``https://cdp[-eu].customer.io/v1``),
served from the same origin as the Track and App APIs: none of these paths collides with the
App API's ``/v1/send/*`` or ``/v1/campaigns/*``. Rules: :mod:`._rules_pipelines`.

Authentication is HTTP Basic with the source write key as the username and an EMPTY
password (``base64("KEY:")``).

Strict mode (PS ``X-Strict-Mode`` header): real Pipelines answers 200 and silently drops an
invalid, over-limit or unauthenticated request unless it carries ``X-Strict-Mode: 1``; then it
answers 400 ``{"meta": {"errors": ["..."]}}`` or 401. The fake does both:

* ``X-Strict-Mode: 1``: 401 (no body) for bad credentials; 400 listing every violation for
  anything else, and then NOTHING from the request is applied (the 400 names no batch index,
  so all-or-nothing is the only answer a client can act on);
* otherwise: 200 ``{}``, and each message that would have been refused is recorded in
  :attr:`FakeCustomerIO.pipelines_drops` with its violation, while the valid items of a batch
  are applied. A whole-request problem (credentials, not JSON, over 500 KB, no ``batch``
  list) drops the whole request as one entry.

Accepted messages are recorded in arrival order (each batch item on its own, with the batch-
level ``context``/``integrations`` merged in); a ``messageId`` seen before is recorded as a
duplicate and not applied again (like the Track event-id de-duplication).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from . import _rules_base as rules
from . import _rules_pipelines as cdp
from ._http import OK, BodyDecodingError, Call, Reply, Route, decode_body, json_reply
from ._rules_base import RuleViolation

_UNAUTHORIZED: Final = Reply(401)
_PREFIX: Final = "v1"


@dataclass(frozen=True)
class PipelinesMessage:
    """One Pipelines message the fake accepted (a single call, or one batch item).

    Example::

        await fake.wait_for_pipelines_messages(1)
        assert fake.pipelines_messages[0].type == "identify"

    Attributes:
        type: ``identify``, ``track``, ``page``, ``screen``, ``group`` or ``alias``.
        user_id: ``userId``, when sent.
        anonymous_id: ``anonymousId``, when sent.
        event: ``event`` of a track.
        name: ``name`` of a page or screen.
        group_id: ``groupId`` of a group (or of a group-level track).
        previous_id: ``previousId`` of an alias.
        message_id: ``messageId``, when sent.
        timestamp: ``timestamp`` (an ISO-8601 string), when sent.
        traits: ``traits`` of an identify or group (``{}`` when absent).
        properties: ``properties`` of a track, page or screen (``{}`` when absent).
        context: The effective ``context``: the message's own, with a batch's batch-level
            keys merged over it.
        integrations: The effective ``integrations``, merged the same way.
        body: The message exactly as it was sent (a batch item without the batch level).
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
        batch_index: Position inside ``/v1/batch``; None for a single call.
    """

    type: str
    user_id: str | None
    anonymous_id: str | None
    event: str | None
    name: str | None
    group_id: str | None
    previous_id: str | None
    message_id: str | None
    timestamp: str | None
    traits: dict[str, Any]
    properties: dict[str, Any]
    context: dict[str, Any]
    integrations: dict[str, Any]
    body: dict[str, Any]
    request_index: int
    batch_index: int | None


@dataclass(frozen=True)
class PipelinesDrop:
    """A message (or a whole request) real Pipelines would silently drop: answered 200
    without ``X-Strict-Mode: 1``, but never applied.

    Example::

        assert fake.pipelines_drops == [], [d.reason for d in fake.pipelines_drops]

    Attributes:
        path: The route, e.g. ``"/v1/track"``.
        message: The violation (the text a strict-mode 400 would carry).
        reason: ``"invalid"``, ``"required"``, ``"too_large"`` or ``"unauthorized"``.
        field: The offending field (``""`` for the whole message or request).
        body: The dropped message, or the whole decoded body for a request-level drop
            (None when it could not be decoded into a JSON object).
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
        batch_index: The item's position in ``/v1/batch``; None for a single call or a
            request-level drop.
    """

    path: str
    message: str
    reason: str
    field: str
    body: Any
    request_index: int
    batch_index: int | None


def _object(message: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    return dict(value) if isinstance(value, dict) else {}


def _to_message(
    item: dict[str, Any],
    kind: str,
    call: Call,
    index: int | None,
    batch: Mapping[str, Any] | None,
) -> PipelinesMessage:
    if batch is None:
        context, integrations = _object(item, "context"), _object(item, "integrations")
    else:
        context, integrations = cdp.merge_batch_level(item, batch)
    return PipelinesMessage(
        type=kind,
        user_id=item.get("userId"),
        anonymous_id=item.get("anonymousId"),
        event=item.get("event"),
        name=item.get("name"),
        group_id=item.get("groupId"),
        previous_id=item.get("previousId"),
        message_id=item.get("messageId"),
        timestamp=item.get("timestamp"),
        traits=_object(item, "traits"),
        properties=_object(item, "properties"),
        context=context,
        integrations=integrations,
        body=item,
        request_index=call.request_index,
        batch_index=index,
    )


class _Refused(Exception):
    """The whole request is refused (strict mode) or dropped (otherwise)."""

    def __init__(self, violation: RuleViolation, body: Any = None) -> None:
        super().__init__(violation.message)
        self.violation = violation
        self.body = body


@dataclass(frozen=True)
class _Judged:
    """One message of a request, judged: refused with ``violation``, or accepted."""

    kind: str
    body: Any
    batch_index: int | None
    violation: RuleViolation | None = None


def _in_batch(index: int, violation: RuleViolation) -> RuleViolation:
    where = f"batch[{index}]"
    field = f"{where}.{violation.field}" if violation.field else where
    return RuleViolation(f"{where}: {violation.message}", field=field, reason=violation.reason)


class FakePipelinesAPI:
    """Pipelines state and handlers (no I/O)."""

    def __init__(self, *, write_key: str, notify: Callable[[], None]) -> None:
        """Accept ``write_key`` (Basic username, empty password); ``notify`` wakes waiters."""
        self.write_key = write_key
        self._notify = notify
        self.messages: list[PipelinesMessage] = []
        self.drops: list[PipelinesDrop] = []
        self.duplicate_message_ids: list[str] = []
        self._seen_message_ids: set[str] = set()
        self.profiles: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        """Forget messages, drops, duplicates and profiles (in place)."""
        self.messages.clear()
        self.drops.clear()
        self.duplicate_message_ids.clear()
        self._seen_message_ids.clear()
        self.profiles.clear()

    def routes(self) -> tuple[Route, ...]:
        """The seven routes; each reads its raw body (it decodes gzip under its own limit)."""

        def route(kind: str, handler: Callable[[Call], Reply]) -> Route:
            return Route("POST", (_PREFIX, kind), "pipelines", "pipelines", handler, True)

        singles = tuple(route(kind, self._single(kind)) for kind in cdp.MESSAGE_TYPES)
        return (*singles, route("batch", self._batch))

    # ----------------------------------------------------------------------- handlers

    def _single(self, kind: str) -> Callable[[Call], Reply]:
        def judge(payload: dict[str, Any]) -> list[_Judged]:
            try:
                return [_Judged(kind, cdp.check_message(kind, payload), None)]
            except RuleViolation as violation:
                return [_Judged(kind, payload, None, violation)]

        def handle(call: Call) -> Reply:
            return self._handle(call, f"/{_PREFIX}/{kind}", cdp.MAX_MESSAGE_BYTES, judge)

        return handle

    def _batch(self, call: Call) -> Reply:
        def judge(payload: dict[str, Any]) -> list[_Judged]:
            judged = []
            for index, item in enumerate(cdp.check_batch(payload)):
                kind = str(item.get("type")) if isinstance(item, dict) else ""
                try:
                    judged.append(_Judged(kind, cdp.check_batch_item(item), index))
                except RuleViolation as violation:
                    judged.append(_Judged(kind, item, index, _in_batch(index, violation)))
            return judged

        return self._handle(call, f"/{_PREFIX}/batch", cdp.MAX_BATCH_BYTES, judge, batch=True)

    def _handle(
        self,
        call: Call,
        path: str,
        limit: int,
        judge: Callable[[dict[str, Any]], list[_Judged]],
        *,
        batch: bool = False,
    ) -> Reply:
        """Authenticate, decode and judge a request, then answer as its mode says."""
        strict = call.headers.get(cdp.STRICT_MODE_HEADER, "").strip() == "1"
        payload: dict[str, Any] | None = None
        try:
            self._authenticate(call)
            payload = self._payload(call, limit)
            judged = judge(payload)
        except (_Refused, RuleViolation) as problem:
            refused = problem if isinstance(problem, _Refused) else _Refused(problem, payload)
            if strict:
                if refused.violation.reason == "unauthorized":
                    return _UNAUTHORIZED
                return json_reply(400, {"meta": {"errors": [refused.violation.message]}})
            self._drop(call, path, refused.violation, refused.body, None)
            return OK
        errors = [j.violation.message for j in judged if j.violation is not None]
        if strict and errors:
            return json_reply(400, {"meta": {"errors": errors}})
        for entry in judged:
            if entry.violation is not None:
                self._drop(call, path, entry.violation, entry.body, entry.batch_index)
            else:
                self._accept(call, entry, payload if batch else None)
        return OK

    def _authenticate(self, call: Call) -> None:
        if not rules.credentials_match(call.headers.get("Authorization"), self.write_key, ""):
            violation = RuleViolation(
                "wrong or missing write key (Basic auth, empty password)", reason="unauthorized"
            )
            raise _Refused(violation)

    @staticmethod
    def _payload(call: Call, limit: int) -> dict[str, Any]:
        """Decode the body (gzip, bounded) and check its size; parse the JSON object."""
        try:
            body = decode_body(call.body, call.headers.get("Content-Encoding"), limit=limit)
        except BodyDecodingError as exc:
            if exc.status != 413:
                raise _Refused(RuleViolation(exc.message)) from None
            # Inflated past the limit: the same verdict as a plain body of that size.
            body = b""
            size = limit + 1
        else:
            size = len(body)
        if limit == cdp.MAX_BATCH_BYTES:
            cdp.check_batch_size(size)
        else:
            cdp.check_message_size(size)
        return rules.parse_json_object(body, allow_empty=False)

    # ----------------------------------------------------------------------- state

    def _drop(
        self, call: Call, path: str, violation: RuleViolation, body: Any, index: int | None
    ) -> None:
        if not call.record:
            return
        drop = PipelinesDrop(
            path, violation.message, violation.reason, violation.field, body,
            call.request_index, index,
        )  # fmt: skip
        self.drops.append(drop)
        self._notify()

    def _accept(self, call: Call, entry: _Judged, batch: Mapping[str, Any] | None) -> None:
        if not call.record:
            return
        message = _to_message(entry.body, entry.kind, call, entry.batch_index, batch)
        if message.message_id is not None:
            if message.message_id in self._seen_message_ids:
                self.duplicate_message_ids.append(message.message_id)
                self._notify()
                return
            self._seen_message_ids.add(message.message_id)
        self.messages.append(message)
        if message.type == "identify" and message.user_id:
            self.profiles.setdefault(message.user_id, {}).update(message.traits)
        self._notify()
