"""The HTTP half of the fake server: a loopback ``aiohttp.web`` server that records every
request and acts out scripted faults, whatever the API.

:class:`LoopbackServer` owns the socket, the request log (:attr:`~LoopbackServer.requests`),
the fault queue and the waiting helpers; the API semantics come from a subclass
(:class:`~._fake.FakeCustomerIO`) through three hooks: ``_dispatch`` (route, authenticate,
judge, apply), ``_envelope_for`` and ``_error_reply`` (the error body each path speaks).

Request flow, per request::

    record arrival -> take a matching fault -> latency -> fault delay
      -> (reset_before_body: cut) -> read body -> scripted reply, or _dispatch
      -> (reset_after_body: cut) -> respond (or drip)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import Final, TypeVar

from aiohttp import web

from . import _rules as rules
from ._faults import Fault, FaultQueue
from ._http import JSON_HEADERS, MAX_REQUEST_BYTES, Envelope, RecordedRequest, Reply, cut
from ._rules import RuleViolation

# Handlers wake up as soon as close() is called, so only a client stuck half-way through
# sending a body can hold the shutdown; don't let it hold it for long.
_SHUTDOWN_TIMEOUT: Final = 1.0
_Server = TypeVar("_Server", bound="LoopbackServer")


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


class LoopbackServer:
    """A recording, fault-injecting HTTP server on loopback; subclasses give it an API."""

    def __init__(self, *, host: str, port: int, latency: float) -> None:
        """Configure the socket and the simulated round trip; nothing is bound yet.

        Raises:
            ValueError: ``latency`` is negative.
        """
        if latency < 0:
            raise ValueError("latency must not be negative")
        self._host = host
        self._port = port
        self._latency = latency
        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order, including rejected and faulted ones."""
        self._completed: list[bool] = []  # parallel to requests: final record written
        self._faults = FaultQueue()
        # clear() bumps this so requests that straddle it cannot write into the new history.
        self._generation = 0
        # Set and replaced on every state change; waiters re-check their condition.
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._closed = False

    # ----------------------------------------------------------------------- API hooks

    def _dispatch(
        self,
        request: web.Request,
        exchange: _Exchange,
        body: bytes,
        reject_indexes: frozenset[int],
    ) -> Reply:
        """Route, authenticate, judge and apply one request (the body is fully read)."""
        raise NotImplementedError

    def _envelope_for(self, segments: tuple[str, ...]) -> Envelope:
        """The error-body shape the path speaks (for scripted fault statuses)."""
        raise NotImplementedError

    def _error_reply(self, envelope: Envelope, violation: RuleViolation) -> Reply:
        """The error response for ``violation`` in ``envelope``'s shape."""
        raise NotImplementedError

    # ----------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind and start serving. A second call while running does nothing.

        Example::

            fake = FakeCustomerIO()
            await fake.start()          # or `async with FakeCustomerIO() as fake:`

        Raises:
            RuntimeError: The fake was already closed (create a new one instead).
            OSError: The address could not be bound.
        """
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed; create a new instance")
        if self._runner is not None:
            return
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        # One catch-all route: aiohttp's router matches on the decoded path, where "%2F"
        # has already become "/", so the fake splits the raw path itself (§1.4).
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # auto_decompress=False: the fake records the body as it came over the wire and
        # decodes Content-Encoding itself, under each route's own limit (a gzip bomb never
        # inflates past it, and Pipelines can drop rather than error in permissive mode).
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT, auto_decompress=False
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop serving. Requests still stalled or dripping are cut. Safe to call twice.

        Example::

            await fake.close()
        """
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self: _Server) -> _Server:
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

    # ----------------------------------------------------------------------- socket

    @property
    def port(self) -> int:
        """The bound TCP port.

        Raises:
            RuntimeError: The fake has not been started.
        """
        if self._bound_port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        """The origin, e.g. ``"http://127.0.0.1:54321"``; the client appends the API path."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    # ----------------------------------------------------------------------- faults and history

    def add_fault(self, fault: Fault) -> None:
        """Queue a scripted fault; matching requests consume queued faults in FIFO order.

        Example::

            fake.add_fault(Fault(status=503, times=2))   # the next two requests get a 503
        """
        self._faults.add(fault)

    def pending_faults(self) -> list[Fault]:
        """Return the queued faults not yet used up, in queue order.

        Example::

            assert fake.pending_faults() == []           # every scripted fault was used
        """
        return self._faults.pending()

    def _clear_history(self) -> None:
        """Forget the request log and the queued faults; in-flight requests stay out of the
        fresh history (see :meth:`~._fake.FakeCustomerIO.clear`)."""
        self._generation += 1
        self.requests.clear()
        self._completed.clear()
        self._faults.clear()

    # ----------------------------------------------------------------------- waiting

    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Wait until the first ``n`` requests are finished (answered or cut).

        Afterwards ``requests[:n]`` hold their final ``body`` and ``status``.

        Example::

            await fake.wait_for_requests(2)
            assert fake.requests[1].status == 200

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

        Example::

            fake.add_fault(Fault(delay=5))               # stall the next request
            task = asyncio.create_task(cio.get_region())
            await fake.wait_for_arrivals(1)              # it is on the server now

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
            return cut(request)
        try:
            body = await request.read()
        except ConnectionError:
            return cut(request)  # the client went away mid-body
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
            return cut(request)
        exchange.status = reply.status
        if fault is not None and fault.action == "drip":
            return await self._drip(request, exchange, reply, fault.delay)
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    async def _drip(
        self, request: web.Request, exchange: _Exchange, reply: Reply, interval: float
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_length = len(reply.body)
        try:
            await response.prepare(request)
            for offset in range(len(reply.body)):
                await self._pause(interval)
                if self._closing.is_set():
                    exchange.status = None
                    cut(request)
                    return response
                await response.write(reply.body[offset : offset + 1])
            await response.write_eof()
        except ConnectionError:
            exchange.status = None  # the client gave up before the last byte
        return response

    def _fault_reply(self, fault: Fault, segments: tuple[str, ...]) -> Reply:
        if fault.body is not None:
            reply = Reply(fault.status, fault.body, JSON_HEADERS)
        elif fault.status == 401 or fault.status < 400:
            # 401 has no body schema (TS); success and redirect fakes carry no envelope.
            reply = Reply(fault.status)
        else:
            try:
                phrase = HTTPStatus(fault.status).phrase
            except ValueError:  # e.g. Cloudflare's 522/524
                phrase = f"HTTP {fault.status}"
            violation = RuleViolation(
                phrase, reason=phrase.lower().replace(" ", "_"), status=fault.status
            )
            reply = self._error_reply(self._envelope_for(segments), violation)
        return reply.with_headers(fault.headers)
