"""The fake Customer.io server, :class:`FakeCustomerIO` (Track, App and Pipelines APIs).

An ``aiohttp.web`` app on loopback that serves, from ONE origin, the Track v1 and v2
endpoints of the shared contract (§2, §3; :mod:`._fake_track`), the form and delivery-report
routes (§2 rows 13-16; :mod:`._fake_track_extra`), the App API's sends and broadcast triggers
(§4; :mod:`._fake_app`) and the Data Pipelines API (§5; :mod:`._fake_pipelines`). It enforces
their rules (§9; the ``_rules*`` modules), records every request and everything it applied,
and can act out scripted faults (:mod:`._faults`) on any route. It can also emit signed
reporting webhooks (§6) to a receiver under test.

It deliberately imports nothing from the client side of ``customerio_async``: it is a
second, independent reading of the contract, so a misreading in the client shows up as a
failing test instead of being shared by both sides.

The socket, the request log, scripted faults and waiting live in :mod:`._server`
(:class:`~._server.LoopbackServer`), what the fake applied is read through
:mod:`._fake_records`; this module routes each request (auth, ``Content-Encoding``, rules,
apply).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web

from . import _fake_app as app_rules
from . import _rules as rules
from ._fake_pipelines import FakePipelinesAPI
from ._fake_records import FakeRecords
from ._fake_track import REGION_URLS, AppliedOperation, FakeTrackAPI, Region
from ._fake_track_extra import (
    FakeTrackExtra,
)
from ._http import (
    MAX_REQUEST_BYTES,
    Auth,
    BodyDecodingError,
    Call,
    Envelope,
    RecordedRequest,
    Reply,
    Route,
    decode_body,
    json_reply,
)
from ._rules import RuleViolation
from ._server import _Exchange

__all__ = ["FakeCustomerIO", "Region", "V1ErrorEnvelope"]

V1ErrorEnvelope = Literal["meta.error", "meta.errors"]
"""The shape of the fake's v1 error bodies (the contract documents both).

Example::

    FakeCustomerIO(v1_error_envelope="meta.errors")   # {"meta": {"errors": ["..."]}}
"""


class FakeCustomerIO(FakeRecords):
    """A local, contract-faithful fake of Customer.io's Track, App and Pipelines APIs.

    Use it as an async context manager and point every client at :attr:`url` (the Track
    client appends ``/api/v1`` and ``/api/v2``, the App client ``/v1/send``..., the
    Pipelines client ``/v1/identify``...), then assert on :attr:`requests`,
    :attr:`operations`, :meth:`people`, :meth:`event_ids`, :attr:`sends`,
    :attr:`pipelines_messages`...

    Example::

        async with FakeCustomerIO() as fake:
            fake.add_fault(Fault(status=429, headers={"Retry-After": "1"}))
            ...  # drive the client against fake.url
            await fake.wait_for_operations(3)

    Track endpoints require Basic auth ``site_id:api_key`` (401 with an empty body
    otherwise), App endpoints ``Bearer app_api_key``, Pipelines endpoints Basic
    ``pipelines_write_key:`` (empty password). ``/unsubscribe/{delivery_id}``,
    ``/api/v1/metrics`` and ``/api/v1/push/events`` take none (see
    :attr:`authorization_leaks`). The instance is bound to the event loop it is started in.
    """

    def __init__(
        self,
        *,
        site_id: str = "fake-site",
        api_key: str = "fake-key",
        app_api_key: str = "fake-app-key",
        pipelines_write_key: str = "fake-write-key",
        host: str = "127.0.0.1",
        port: int = 0,
        region: Region = "us",
        environment_id: int = 1,
        latency: float = 0.0,
        strict_ulid: bool = True,
        v1_error_envelope: V1ErrorEnvelope = "meta.error",
        broadcast_interval: float = 10.0,
        in_app_enabled: bool = True,
    ) -> None:
        """Configure the fake; nothing is bound until :meth:`start`.

        Args:
            site_id: Track API site id (Basic auth username).
            api_key: Track API key (Basic auth password).
            app_api_key: App API key (``Authorization: Bearer <key>`` on ``/v1/send``...).
            pipelines_write_key: Pipelines source write key (Basic auth username with an
                empty password on ``/v1/identify``, ``/v1/track``... ``/v1/batch``).
            host: Interface to bind; loopback by default.
            port: Port to bind; 0 picks a free one (read it back from :attr:`port`).
            region: What ``GET /api/v1/accounts/region`` reports.
            environment_id: The workspace id that endpoint reports.
            latency: Seconds added before every response (simulated round trip).
            strict_ulid: Reject event ids that are not ULIDs with 400 (§10 U13).
            v1_error_envelope: Shape of v1 400 bodies: ``{"meta": {"error": "..."}}`` or
                ``{"meta": {"errors": ["..."]}}`` (§2.6; the contract documents both).
            broadcast_interval: Seconds between accepted broadcast triggers; sooner ones get
                429 (Customer.io: one per 10 s per workspace). Shorten it in tests.
            in_app_enabled: When False, ``/v1/send/in_app`` answers 403 like a workspace
                without in-app messaging.

        Raises:
            ValueError: An option is out of range.
        """
        if region not in REGION_URLS:
            raise ValueError(f"region must be 'us' or 'eu', got {region!r}")
        if v1_error_envelope not in ("meta.error", "meta.errors"):
            raise ValueError(f"unknown v1_error_envelope {v1_error_envelope!r}")
        super().__init__(host=host, port=port, latency=latency)
        self._site_id = site_id
        self._api_key = api_key
        self._app_api_key = app_api_key
        self._v1_error_envelope: V1ErrorEnvelope = v1_error_envelope
        self._track = FakeTrackAPI(
            region=region,
            environment_id=environment_id,
            strict_ulid=strict_ulid,
            notify=self._notify,
        )
        self.operations: list[AppliedOperation] = self._track.operations
        """Every Track operation accepted and applied, in order, from v1 and v2 (including
        form submissions and delivery reports)."""
        self.duplicate_event_ids: list[str] = self._track.duplicate_event_ids
        """Event ids received again after they were applied (answered 200, not re-applied)."""
        self._extra = FakeTrackExtra(self._track)
        self._pipelines = FakePipelinesAPI(write_key=pipelines_write_key, notify=self._notify)
        self._app = app_rules.FakeAppAPI(
            broadcast_interval=broadcast_interval, in_app_enabled=in_app_enabled
        )
        self._routes: tuple[Route, ...] = (
            *self._track.routes(),
            *self._extra.routes(),
            *self._app_routes(),
            *self._pipelines.routes(),
        )

    # ----------------------------------------------------------------------- inspection

    @property
    def authorization_leaks(self) -> list[RecordedRequest]:
        """Requests to a route that takes no credentials (``/unsubscribe/{delivery_id}``,
        ``/api/v1/metrics``, ``/api/v1/push/events``; TS ``security: []``) that carried an
        ``Authorization`` header anyway, in arrival order. Customer.io ignores the header,
        and so does the fake, but an SDK must never send credentials there:
        ``assert fake.authorization_leaks == []``."""
        return [
            req
            for req in self.requests
            if "authorization" in req.headers
            and self._route_auth(req.method, req.segments) == "none"
        ]

    def _error_reply(self, envelope: Envelope, violation: RuleViolation) -> Reply:
        payload: dict[str, Any]
        if envelope == "app":
            payload = {"meta": {"error": violation.message}}
        elif envelope == "pipelines":
            payload = {"meta": {"errors": [violation.message]}}
        elif envelope == "v2":
            error = {"reason": violation.reason, "field": violation.field}
            payload = {"errors": [{**error, "message": violation.message}]}
        elif self._v1_error_envelope == "meta.errors":
            payload = {"meta": {"errors": [violation.message]}}
        else:
            payload = {"meta": {"error": violation.message}}
        return json_reply(violation.status, payload)

    # ----------------------------------------------------------------------- routing

    def _app_routes(self) -> tuple[Route, ...]:
        broadcast = ("v1", "campaigns", "{broadcast_id}")
        return (
            Route("POST", ("v1", "send", "{channel}"), "app", "app", self._app_send),
            Route("POST", (*broadcast, "triggers"), "app", "app", self._app_trigger),
            Route(
                "GET",
                (*broadcast, "triggers", "{trigger_id}", "errors"),
                "app",
                "app",
                self._app_trigger_errors,
            ),
        )

    def _candidates(self, segments: tuple[str, ...]) -> list[tuple[Route, dict[str, str]]]:
        return [
            (route, params)
            for route in self._routes
            if (params := route.match(segments)) is not None
        ]

    def _route_auth(self, method: str, segments: tuple[str, ...]) -> Auth | None:
        return next((r.auth for r, _ in self._candidates(segments) if r.method == method), None)

    def _envelope_for(self, segments: tuple[str, ...]) -> Envelope:
        candidates = self._candidates(segments)
        if candidates:
            return candidates[0][0].envelope
        if segments[:2] == ("api", "v2"):
            return "v2"
        # Unknown App API paths (/v1/...) answer {"meta": {"error": ...}} whatever
        # v1_error_envelope says.
        return "app" if segments[:1] == ("v1",) else "v1"

    def _dispatch(
        self,
        request: web.Request,
        exchange: _Exchange,
        body: bytes,
        reject_indexes: frozenset[int],
    ) -> Reply:
        segments = exchange.segments
        candidates = self._candidates(segments)
        if not candidates:
            violation = RuleViolation("no such endpoint", reason="not_found", status=404)
            return self._error_reply(self._envelope_for(segments), violation)
        chosen = next(((r, p) for r, p in candidates if r.method == request.method), None)
        if chosen is None:
            allowed = ", ".join(sorted({route.method for route, _ in candidates}))
            violation = RuleViolation(
                f"method {request.method} is not allowed here",
                reason="method_not_allowed",
                status=405,
            )
            reply = self._error_reply(candidates[0][0].envelope, violation)
            return reply.with_headers({"Allow": allowed})
        route, params = chosen
        denied = self._deny(route, request)
        if denied is not None:
            return denied
        try:
            if not route.raw_body:
                body = decode_body(
                    body, request.headers.get("Content-Encoding"), limit=MAX_REQUEST_BYTES
                )
            call = Call(
                params=params,
                query=dict(request.rel_url.query.items()),
                headers=request.headers,
                body=body,
                request_index=exchange.index,
                record=exchange.generation == self._generation,
                reject_indexes=reject_indexes,
            )
            return route.handler(call)
        except BodyDecodingError as exc:
            violation = RuleViolation(exc.message, status=exc.status)
            return self._error_reply(route.envelope, violation)
        except RuleViolation as violation:
            return self._error_reply(route.envelope, violation)

    def _deny(self, route: Route, request: web.Request) -> Reply | None:
        """The 401 for a Track or App route called without its credentials, else None.

        Pipelines routes judge their own credentials (strict mode picks 401 or 200)."""
        header = request.headers.get("Authorization")
        if route.auth == "track" and not rules.credentials_match(
            header, self._site_id, self._api_key
        ):
            return Reply(401)
        if route.auth == "app" and not app_rules.bearer_matches(header, self._app_api_key):
            return json_reply(*app_rules.UNAUTHORIZED)
        return None

    # ----------------------------------------------------------------------- App handlers

    def _app_reply(self, call: Call, handle: Callable[[bool], app_rules.AppReply]) -> Reply:
        """Run an App handler; it records only when the call belongs to this generation."""
        record = call.record
        try:
            status, payload = handle(record)
        except app_rules.AppViolation as violation:
            return json_reply(violation.status, violation.payload)
        if record:
            self._notify()
        return json_reply(status, payload)

    def _app_send(self, call: Call) -> Reply:
        return self._app_reply(
            call,
            lambda record: self._app.send(
                call.params["channel"], call.body, call.request_index, record
            ),
        )

    def _app_trigger(self, call: Call) -> Reply:
        return self._app_reply(
            call,
            lambda record: self._app.trigger(
                call.params["broadcast_id"],
                call.body,
                call.request_index,
                record,
                lambda kind, value: f"{kind}:{value}" in self._track.people,
            ),
        )

    def _app_trigger_errors(self, call: Call) -> Reply:
        return self._app_reply(
            call,
            lambda _record: self._app.trigger_errors(
                call.params["broadcast_id"], call.params["trigger_id"], call.query
            ),
        )
