"""The fake Customer.io server, :class:`FakeCustomerIO` (Track API and App API).

An ``aiohttp.web`` app on loopback that implements the Track v1 and v2 endpoints of the
shared contract (§2, §3) and the App API's sends and broadcast triggers (§4, via
:mod:`._fake_app`), enforces their rules (§9, via :mod:`._rules`), records every request and
every applied operation, and can act out scripted faults (:mod:`._faults`). It can also emit
signed reporting webhooks (§6) to a receiver under test.

It deliberately imports nothing from the client side of ``customerio_async``: it is a
second, independent reading of the contract, so a misreading in the client shows up as a
failing test instead of being shared by both sides.

Request flow, per request::

    record arrival -> take a matching fault -> latency -> fault delay
      -> (reset_before_body: cut) -> read body -> scripted reply, or route + auth + rules
      -> apply -> (reset_after_body: cut) -> respond (or drip)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Literal

from aiohttp import web

from . import _fake_app as app_rules
from . import _rules as rules
from ._fake_app import AppliedSend, AppliedTrigger
from ._faults import Fault, FaultQueue
from ._rules import RuleViolation

Region = Literal["us", "eu"]
V1ErrorEnvelope = Literal["meta.error", "meta.errors"]
_Auth = Literal["track", "app", "none"]  # Basic site_id:api_key, Bearer app key, nothing
_Envelope = Literal["v1", "v2", "app"]

_REGION_URLS: Final[Mapping[str, str]] = {
    "us": "https://track.customer.io",
    "eu": "https://track-eu.customer.io",
}
# aiohttp answers bodies above client_max_size (1 MiB by default) with its own 413 before
# any handler runs. The fake must see, record and judge large bodies itself (v2 answers
# 413 with the contract's envelope; v1 has no documented cap, §10 U1), so the cap is far
# above every contract limit.
_MAX_REQUEST_BYTES: Final = 64 * 1024 * 1024
# Handlers wake up as soon as close() is called, so only a client stuck half-way through
# sending a body can hold the shutdown; don't let it hold it for long.
_SHUTDOWN_TIMEOUT: Final = 1.0
_JSON_HEADERS: Final[Mapping[str, str]] = {"Content-Type": "application/json"}


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One HTTP request as the fake received it.

    Attributes:
        method: HTTP method.
        path: Raw path as received, still percent-encoded (``"/api/v1/customers/a%2Fb"``).
        segments: The path without its leading ``/``, split on ``/`` and then each segment
            percent-decoded: ``("api", "v1", "customers", "a/b")``. ``@`` and ``%40``
            both decode to ``@``.
        query: Decoded query parameters (the last value wins for repeated names).
        headers: Request headers with lower-cased names (the last value wins).
        body: Raw body; ``b""`` when none was sent or it was never read
            (``reset_before_body``).
        status: The status the fake answered, or None if it cut the connection (or the
            client went away first). Also None while the request is still in flight; use
            :meth:`FakeCustomerIO.wait_for_requests` to wait for final records.
        received_at: ``time.monotonic()`` when the request arrived.
    """

    method: str
    path: str
    segments: tuple[str, ...]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int | None
    received_at: float

    def json(self) -> Any:
        """Decode the body as JSON.

        Returns:
            The decoded value, or None when the body is empty.

        Raises:
            ValueError: The body is not JSON.
        """
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        """Summarise without headers (they carry credentials) or the full body."""
        return (
            f"RecordedRequest({self.method} {self.path} -> {self.status}, "
            f"{len(self.body)} body bytes)"
        )


@dataclass(frozen=True)
class AppliedOperation:
    """One operation the fake accepted and applied, from v1 or v2.

    Attributes:
        source: ``"v1"`` or ``"v2"``.
        type: ``"person"``, ``"object"`` or ``"delivery"``.
        action: The v2 action vocabulary (``identify``, ``delete``, ``event``, ``page``,
            ``screen``, ``add_device``, ``delete_device``, ``suppress``, ``unsuppress``,
            ``merge``, ``add_relationships``, ``delete_relationships``,
            ``identify_anonymous``), plus ``anonymous_event`` (v1 ``POST /events``),
            ``add_to_segment``/``remove_from_segment`` (v1 segments) and ``metric``
            (v1 ``POST /metrics``).
        identifiers: The v2 ``identifiers``. For v1 person paths, inferred from the path
            like the real server: ``cio_x`` -> ``{"cio_id": "x"}``, a value with ``@`` ->
            ``{"email": ...}``, else ``{"id": ...}``. v1 anonymous events give
            ``{"anonymous_id": ...}`` (or ``{}``), segments ``{"segment_id", "id_type"}``,
            metrics ``{"id": delivery_id}``; merges have ``{}``.
        body: The operation object (v2) or the decoded request body (v1; ``{}`` if none).
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
    """

    source: Literal["v1", "v2"]
    type: str
    action: str
    identifiers: dict[str, str]
    body: dict[str, Any]
    request_index: int


@dataclass(frozen=True)
class _Reply:
    """A response decided by the fake, before it goes on the wire."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def with_headers(self, extra: Mapping[str, str]) -> _Reply:
        """Return a copy with ``extra`` headers added, replacing same-named ones."""
        if not extra:
            return self
        replaced = {name.lower() for name in extra}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in replaced}
        headers.update(extra)
        return dataclasses.replace(self, headers=headers)


def _json_reply(status: int, payload: Any) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), _JSON_HEADERS)


_OK: Final = _json_reply(200, {})


@dataclass(frozen=True)
class _Call:
    """What an endpoint handler gets: path parameters, query, body and bookkeeping."""

    params: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    request_index: int
    generation: int
    reject_indexes: frozenset[int]


_Handler = Callable[[_Call], _Reply]


@dataclass(frozen=True)
class _Route:
    """One endpoint: method, path template (``{name}`` captures a segment), auth, handler."""

    method: str
    template: tuple[str, ...]
    auth: _Auth
    envelope: _Envelope
    handler: _Handler

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        """Return the captured parameters if the decoded ``segments`` fit the template."""
        if len(segments) != len(self.template):
            return None
        params: dict[str, str] = {}
        for pattern, segment in zip(self.template, segments, strict=True):
            if pattern.startswith("{"):
                params[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return params


class _Exchange:
    """Bookkeeping for one request in flight."""

    __slots__ = ("fault", "generation", "index", "segments", "status")

    def __init__(
        self, generation: int, index: int, segments: tuple[str, ...], fault: Fault | None
    ) -> None:
        self.generation = generation
        self.index = index
        self.segments = segments
        self.fault = fault
        self.status: int | None = None


def _envelope_for(segments: tuple[str, ...]) -> _Envelope:
    if segments[:2] == ("api", "v2"):
        return "v2"
    # App API paths (/v1/...) answer {"meta": {"error": ...}} whatever v1_error_envelope says.
    return "app" if segments[:1] == ("v1",) else "v1"


def _person_key(identifiers: Mapping[str, str]) -> str:
    ((kind, value),) = identifiers.items()
    return f"{kind}:{value}"


def _cut(request: web.BaseRequest) -> web.Response:
    """Abort the connection so the client sees a reset instead of a response."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # aiohttp still writes whatever the handler returns; on an aborted transport that
    # write fails with a ConnectionError, which aiohttp treats as a client disconnect and
    # swallows without logging, so no response ever reaches the wire.
    return web.Response()


class FakeCustomerIO:
    """A local, contract-faithful fake of Customer.io's Track API (v1 and v2).

    Use it as an async context manager, point the client at :attr:`url` (the client
    appends ``/api/v1`` and ``/api/v2``), then assert on :attr:`requests`,
    :attr:`operations`, :meth:`people` and :meth:`event_ids`::

        async with FakeCustomerIO() as fake:
            fake.add_fault(Fault(status=429, headers={"Retry-After": "1"}))
            ...  # drive the client against fake.url
            await fake.wait_for_operations(3)

    Track endpoints require Basic auth ``site_id:api_key``; anything else gets 401 with
    an empty body. The instance is bound to the event loop it is started in.
    """

    def __init__(
        self,
        *,
        site_id: str = "fake-site",
        api_key: str = "fake-key",
        app_api_key: str = "fake-app-key",
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
            app_api_key: App API key (``Authorization: Bearer <key>`` on ``/v1/...``).
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
        if region not in _REGION_URLS:
            raise ValueError(f"region must be 'us' or 'eu', got {region!r}")
        if v1_error_envelope not in ("meta.error", "meta.errors"):
            raise ValueError(f"unknown v1_error_envelope {v1_error_envelope!r}")
        if latency < 0:
            raise ValueError("latency must not be negative")
        self._site_id = site_id
        self._api_key = api_key
        self._app_api_key = app_api_key
        self._host = host
        self._port = port
        self._region: Region = region
        self._environment_id = environment_id
        self._latency = latency
        self._strict_ulid = strict_ulid
        self._v1_error_envelope: V1ErrorEnvelope = v1_error_envelope

        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order, including rejected and faulted ones."""
        self.operations: list[AppliedOperation] = []
        """Every operation accepted and applied, in order, from v1 and v2."""
        self.duplicate_event_ids: list[str] = []
        """Event ids received again after they were applied (answered 200, not re-applied)."""

        self._completed: list[bool] = []  # parallel to requests: final record written
        self._event_ids: list[str] = []
        self._seen_event_ids: set[str] = set()
        self._people: dict[str, dict[str, Any]] = {}
        self._faults = FaultQueue()
        self._app = app_rules.FakeAppAPI(
            broadcast_interval=broadcast_interval, in_app_enabled=in_app_enabled
        )
        # clear() bumps this so requests that straddle it cannot write into the new history.
        self._generation = 0
        # Set and replaced on every state change; waiters re-check their condition.
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._closed = False
        self._routes = self._build_routes()

    # ----------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind and start serving. A second call while running does nothing.

        Raises:
            RuntimeError: The fake was already closed (create a new one instead).
            OSError: The address could not be bound.
        """
        if self._closed:
            raise RuntimeError("FakeCustomerIO is closed; create a new instance")
        if self._runner is not None:
            return
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        # One catch-all route: aiohttp's router matches on the decoded path, where "%2F"
        # has already become "/", so the fake splits the raw path itself (§1.4).
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving. Requests still stalled or dripping are cut. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeCustomerIO:
        """Start the server and return it."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the server."""
        await self.close()

    # ----------------------------------------------------------------------- properties

    @property
    def port(self) -> int:
        """The bound TCP port.

        Raises:
            RuntimeError: The fake has not been started.
        """
        if self._bound_port is None:
            raise RuntimeError("FakeCustomerIO is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        """The origin, e.g. ``"http://127.0.0.1:54321"``; the client appends the API path."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

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
        return self._region

    # ----------------------------------------------------------------------- inspection

    def event_ids(self) -> list[str]:
        """Return the de-duplication ids of applied events, in the order applied."""
        return list(self._event_ids)

    def people(self) -> dict[str, dict[str, Any]]:
        """Return each known person's merged attributes.

        Keys are ``"id:<v>"``, ``"email:<v>"``, ``"cio_id:<v>"`` or ``"phone:<v>"``, from
        the v1 path or the v2 identifiers. Identify merges attributes (v1: the whole body,
        v2: ``attributes``); delete and suppress remove the person; merge folds the
        secondary into an existing primary (the primary's values win).
        """
        return {key: dict(attributes) for key, attributes in self._people.items()}

    def add_fault(self, fault: Fault) -> None:
        """Queue a scripted fault; matching requests consume queued faults in FIFO order."""
        self._faults.add(fault)

    def pending_faults(self) -> list[Fault]:
        """Return the queued faults not yet used up, in queue order."""
        return self._faults.pending()

    def clear(self) -> None:
        """Forget requests, operations, duplicates, people, event ids and queued faults.

        A request in flight when this is called is still answered, but neither its
        record nor its operations land in the fresh history.
        """
        self._generation += 1
        self.requests.clear()
        self._completed.clear()
        self.operations.clear()
        self.duplicate_event_ids.clear()
        self._event_ids.clear()
        self._seen_event_ids.clear()
        self._people.clear()
        self._faults.clear()
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

        Raises:
            TimeoutError: Fewer than ``n`` after ``timeout`` seconds.
        """
        await self._wait_until(
            lambda: len(self.operations) >= n,
            timeout,
            lambda: f"{n} operations (have {len(self.operations)})",
        )

    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Wait until the first ``n`` requests are finished (answered or cut).

        Afterwards ``requests[:n]`` hold their final ``body`` and ``status``.

        Raises:
            TimeoutError: Not done after ``timeout`` seconds.
        """
        await self._wait_until(
            lambda: len(self._completed) >= n and all(self._completed[:n]),
            timeout,
            lambda: f"{n} finished requests (have {sum(self._completed)})",
        )

    async def wait_for_arrivals(self, n: int, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` requests have arrived (headers read, maybe no more).

        Useful to act while a request is provably stalled inside the fake.

        Raises:
            TimeoutError: Fewer than ``n`` after ``timeout`` seconds.
        """
        await self._wait_until(
            lambda: len(self.requests) >= n,
            timeout,
            lambda: f"{n} arrivals (have {len(self.requests)})",
        )

    async def _wait_until(
        self, predicate: Callable[[], bool], timeout: float, describe: Callable[[], str]
    ) -> None:
        async def wait() -> None:
            while not predicate():
                await self._changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting for {describe()}") from None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ----------------------------------------------------------------------- HTTP plumbing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        exchange = self._arrive(request)
        try:
            return await self._respond(request, exchange)
        finally:
            self._finish(exchange)

    def _arrive(self, request: web.Request) -> _Exchange:
        raw_path = request.rel_url.raw_path
        segments = rules.split_path(raw_path)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=raw_path,
                segments=segments,
                query=dict(request.rel_url.query.items()),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=b"",
                status=None,
                received_at=time.monotonic(),
            )
        )
        self._completed.append(False)
        # Faults are taken on arrival so they are consumed in arrival order, whatever
        # latency or stalls happen later.
        is_batch = request.method == "POST" and segments == ("api", "v2", "batch")
        fault = self._faults.take(raw_path, is_batch=is_batch)
        self._notify()
        return _Exchange(self._generation, len(self.requests) - 1, segments, fault)

    def _finish(self, exchange: _Exchange) -> None:
        if exchange.generation != self._generation:
            return
        record = self.requests[exchange.index]
        self.requests[exchange.index] = dataclasses.replace(record, status=exchange.status)
        self._completed[exchange.index] = True
        self._notify()

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, returning early if the fake is closing."""
        if seconds <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _respond(self, request: web.Request, exchange: _Exchange) -> web.StreamResponse:
        fault = exchange.fault
        await self._pause(self._latency)
        if fault is not None and fault.action != "drip":
            await self._pause(fault.delay)
        if self._closing.is_set() or (fault is not None and fault.action == "reset_before_body"):
            return _cut(request)
        try:
            body = await request.read()
        except ConnectionError:
            return _cut(request)  # the client went away mid-body
        record = self.requests[exchange.index] if exchange.generation == self._generation else None
        if record is not None:
            self.requests[exchange.index] = dataclasses.replace(record, body=body)

        if fault is not None and fault.replaces_response:
            reply = self._fault_reply(fault, exchange.segments)
        else:
            reject = fault.indexes if fault is not None and fault.action == "reject_indexes" else ()
            reply = self._dispatch(request, exchange, body, frozenset(reject))
            if fault is not None:
                reply = reply.with_headers(fault.headers)

        if fault is not None and fault.action == "reset_after_body":
            return _cut(request)
        exchange.status = reply.status
        if fault is not None and fault.action == "drip":
            return await self._drip(request, exchange, reply, fault.delay)
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    async def _drip(
        self, request: web.Request, exchange: _Exchange, reply: _Reply, interval: float
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_length = len(reply.body)
        try:
            await response.prepare(request)
            for offset in range(len(reply.body)):
                await self._pause(interval)
                if self._closing.is_set():
                    exchange.status = None
                    _cut(request)
                    return response
                await response.write(reply.body[offset : offset + 1])
            await response.write_eof()
        except ConnectionError:
            exchange.status = None  # the client gave up before the last byte
        return response

    def _fault_reply(self, fault: Fault, segments: tuple[str, ...]) -> _Reply:
        if fault.body is not None:
            reply = _Reply(fault.status, fault.body, _JSON_HEADERS)
        elif fault.status == 401 or fault.status < 400:
            # 401 has no body schema (TS); success and redirect fakes carry no envelope.
            reply = _Reply(fault.status)
        else:
            try:
                phrase = HTTPStatus(fault.status).phrase
            except ValueError:  # e.g. Cloudflare's 522/524
                phrase = f"HTTP {fault.status}"
            violation = RuleViolation(
                phrase, reason=phrase.lower().replace(" ", "_"), status=fault.status
            )
            reply = self._error_reply(_envelope_for(segments), violation)
        return reply.with_headers(fault.headers)

    def _error_reply(self, envelope: _Envelope, violation: RuleViolation) -> _Reply:
        payload: dict[str, Any]
        if envelope == "app":
            payload = {"meta": {"error": violation.message}}
        elif envelope == "v2":
            error = {"reason": violation.reason, "field": violation.field}
            payload = {"errors": [{**error, "message": violation.message}]}
        elif self._v1_error_envelope == "meta.errors":
            payload = {"meta": {"errors": [violation.message]}}
        else:
            payload = {"meta": {"error": violation.message}}
        return _json_reply(violation.status, payload)

    # ----------------------------------------------------------------------- routing

    def _build_routes(self) -> tuple[_Route, ...]:
        v1 = ("api", "v1")
        person = (*v1, "customers", "{identifier}")
        segment = (*v1, "segments", "{segment_id}")
        broadcast = ("v1", "campaigns", "{broadcast_id}")

        def track_v1(method: str, template: tuple[str, ...], handler: _Handler) -> _Route:
            return _Route(method, template, "track", "v1", handler)

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
            # Unauthenticated by design (TS `security: []`).
            _Route("POST", (*v1, "metrics"), "none", "v1", self._metric),
            _Route("POST", ("api", "v2", "entity"), "track", "v2", self._entity),
            _Route("POST", ("api", "v2", "batch"), "track", "v2", self._batch),
            # App API (§4), Bearer auth.
            _Route("POST", ("v1", "send", "{channel}"), "app", "app", self._app_send),
            _Route("POST", (*broadcast, "triggers"), "app", "app", self._app_trigger),
            _Route(
                "GET",
                (*broadcast, "triggers", "{trigger_id}", "errors"),
                "app",
                "app",
                self._app_trigger_errors,
            ),
        )

    def _dispatch(
        self,
        request: web.Request,
        exchange: _Exchange,
        body: bytes,
        reject_indexes: frozenset[int],
    ) -> _Reply:
        segments = exchange.segments
        candidates = [
            (route, params)
            for route in self._routes
            if (params := route.match(segments)) is not None
        ]
        if not candidates:
            violation = RuleViolation("no such endpoint", reason="not_found", status=404)
            return self._error_reply(_envelope_for(segments), violation)
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
        if route.auth == "track" and not rules.credentials_match(
            request.headers.get("Authorization"), self._site_id, self._api_key
        ):
            return _Reply(401)
        if route.auth == "app" and not app_rules.bearer_matches(
            request.headers.get("Authorization"), self._app_api_key
        ):
            return _json_reply(*app_rules.UNAUTHORIZED)
        call = _Call(
            params=params,
            query=dict(request.rel_url.query.items()),
            body=body,
            request_index=exchange.index,
            generation=exchange.generation,
            reject_indexes=reject_indexes,
        )
        try:
            return route.handler(call)
        except RuleViolation as violation:
            return self._error_reply(route.envelope, violation)

    # ----------------------------------------------------------------------- state

    def _apply(self, call: _Call, operation: AppliedOperation, event_id: str | None = None) -> None:
        """Record and apply an accepted operation, de-duplicating events by id (§1.6)."""
        if call.generation != self._generation:
            return  # arrived before clear(): not part of the fresh history
        if event_id is not None:
            # ULIDs are case-insensitive; other ids (strict_ulid=False) compare exactly.
            key = event_id.upper() if rules.is_ulid(event_id) else event_id
            if key in self._seen_event_ids:
                self.duplicate_event_ids.append(event_id)
                self._notify()
                return
            self._seen_event_ids.add(key)
            self._event_ids.append(event_id)
        self.operations.append(operation)
        if operation.type == "person":
            self._update_people(operation)
        self._notify()

    def _update_people(self, operation: AppliedOperation) -> None:
        action = operation.action
        if action == "identify":
            attributes = (
                operation.body if operation.source == "v1" else operation.body.get("attributes", {})
            )
            self._people.setdefault(_person_key(operation.identifiers), {}).update(attributes)
        elif action in ("delete", "suppress"):
            # Suppress deletes the profile and blocks the identifier (§2 row 7).
            self._people.pop(_person_key(operation.identifiers), None)
        elif action == "merge":
            primary = _person_key(operation.body["primary"])
            secondary = _person_key(operation.body["secondary"])
            # "The primary must already exist, otherwise nothing happens" (§2.5).
            if primary in self._people and primary != secondary:
                merged = self._people.pop(secondary, {})
                merged.update(self._people[primary])
                self._people[primary] = merged

    # ----------------------------------------------------------------------- v1 handlers

    def _region_info(self, call: _Call) -> _Reply:
        return _json_reply(
            200,
            {
                "url": _REGION_URLS[self._region],
                "region": self._region,
                "environment_id": self._environment_id,
            },
        )

    def _person_call(
        self, call: _Call, *, allow_empty: bool = False
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Read a ``/customers/{identifier}`` call: path identifiers first, then the body."""
        identifiers = rules.v1_person_identifiers(call.params["identifier"])
        return identifiers, rules.parse_json_object(call.body, allow_empty=allow_empty)

    def _apply_v1_person(
        self,
        call: _Call,
        action: str,
        identifiers: dict[str, str],
        body: dict[str, Any],
        event_id: str | None = None,
    ) -> _Reply:
        operation = AppliedOperation("v1", "person", action, identifiers, body, call.request_index)
        self._apply(call, operation, event_id)
        return _OK

    def _identify(self, call: _Call) -> _Reply:
        identifiers, body = self._person_call(call)
        rules.check_person_attributes(body, field="")
        return self._apply_v1_person(call, "identify", identifiers, body)

    def _bodyless_person_op(self, action: str) -> _Handler:
        def handle(call: _Call) -> _Reply:
            identifiers, body = self._person_call(call, allow_empty=True)
            return self._apply_v1_person(call, action, identifiers, body)

        return handle

    def _customer_event(self, call: _Call) -> _Reply:
        identifiers, body = self._person_call(call)
        event_type, event_id = rules.check_v1_event(body, strict_ulid=self._strict_ulid)
        return self._apply_v1_person(call, event_type, identifiers, body, event_id)

    def _add_device(self, call: _Call) -> _Reply:
        identifiers, body = self._person_call(call)
        rules.check_v1_device(body)
        return self._apply_v1_person(call, "add_device", identifiers, body)

    def _delete_device(self, call: _Call) -> _Reply:
        identifiers, body = self._person_call(call, allow_empty=True)
        if not call.params["device_id"]:
            raise RuleViolation("device_id must not be blank", field="device_id")
        return self._apply_v1_person(call, "delete_device", identifiers, body)

    def _anonymous_event(self, call: _Call) -> _Reply:
        body = rules.parse_json_object(call.body, allow_empty=False)
        _, event_id = rules.check_v1_event(body, strict_ulid=self._strict_ulid)
        anonymous_id = body.get("anonymous_id")
        identifiers = {"anonymous_id": anonymous_id} if anonymous_id else {}
        operation = AppliedOperation(
            "v1", "person", "anonymous_event", identifiers, body, call.request_index
        )
        self._apply(call, operation, event_id)
        return _OK

    def _merge(self, call: _Call) -> _Reply:
        body = rules.parse_json_object(call.body, allow_empty=False)
        rules.check_merge_side(body.get("primary"), field="primary")
        rules.check_merge_side(body.get("secondary"), field="secondary")
        self._apply(call, AppliedOperation("v1", "person", "merge", {}, body, call.request_index))
        return _OK

    def _segment_op(self, action: str) -> _Handler:
        def handle(call: _Call) -> _Reply:
            segment_id = rules.check_segment_id(call.params["segment_id"])
            body = rules.parse_json_object(call.body, allow_empty=False)
            id_type = call.query.get("id_type", "id")
            rules.check_segment_request(body, id_type)
            identifiers = {"segment_id": segment_id, "id_type": id_type}
            operation = AppliedOperation(
                "v1", "person", action, identifiers, body, call.request_index
            )
            self._apply(call, operation)
            return _OK

        return handle

    def _metric(self, call: _Call) -> _Reply:
        body = rules.parse_json_object(call.body, allow_empty=False)
        delivery_id = rules.check_metric(body)
        operation = AppliedOperation(
            "v1", "delivery", "metric", {"id": delivery_id}, body, call.request_index
        )
        self._apply(call, operation)
        return _OK

    # ----------------------------------------------------------------------- App handlers

    def _app_reply(self, call: _Call, handle: Callable[[bool], app_rules.AppReply]) -> _Reply:
        """Run an App handler; it records only when the call belongs to this generation."""
        record = call.generation == self._generation
        try:
            status, payload = handle(record)
        except app_rules.AppViolation as violation:
            return _json_reply(violation.status, violation.payload)
        if record:
            self._notify()
        return _json_reply(status, payload)

    def _app_send(self, call: _Call) -> _Reply:
        return self._app_reply(
            call,
            lambda record: self._app.send(
                call.params["channel"], call.body, call.request_index, record
            ),
        )

    def _app_trigger(self, call: _Call) -> _Reply:
        return self._app_reply(
            call,
            lambda record: self._app.trigger(
                call.params["broadcast_id"],
                call.body,
                call.request_index,
                record,
                lambda kind, value: f"{kind}:{value}" in self._people,
            ),
        )

    def _app_trigger_errors(self, call: _Call) -> _Reply:
        return self._app_reply(
            call,
            lambda _record: self._app.trigger_errors(
                call.params["broadcast_id"], call.params["trigger_id"], call.query
            ),
        )

    # ----------------------------------------------------------------------- v2 handlers

    def _apply_v2(self, call: _Call, op: dict[str, Any]) -> None:
        kind, action = op["type"], op["action"]
        event_id = (
            op.get("id") if kind == "person" and action in ("event", "page", "screen") else None
        )
        identifiers = dict(op.get("identifiers", {}))
        operation = AppliedOperation("v2", kind, action, identifiers, op, call.request_index)
        self._apply(call, operation, event_id)

    def _entity(self, call: _Call) -> _Reply:
        if len(call.body) > rules.MAX_ENTITY_BYTES:
            raise RuleViolation(
                f"request body cannot be larger than {rules.MAX_ENTITY_BYTES} bytes",
                reason=rules.REASON_TOO_LARGE,
                status=413,
            )
        op = rules.parse_json_object(call.body, allow_empty=False)
        self._apply_v2(call, rules.check_v2_operation(op, strict_ulid=self._strict_ulid))
        return _OK

    def _batch(self, call: _Call) -> _Reply:
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
            return _json_reply(207, {"errors": errors})
        return _OK
