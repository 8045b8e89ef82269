"""A loopback TCP fault proxy, in the style of Toxiproxy, for the reliability tests.

``FaultProxy`` listens on 127.0.0.1, forwards every client connection to one upstream (the
fake Customer.io server), and injects faults *on the wire* without touching the SDK::

    async with FaultProxy(fake.port) as proxy:
        client = CustomerIO(..., track_url=proxy.url)
        proxy.fault = ProxyFault("blackhole")      # every request: accept, read, never answer
        proxy.script(ProxyFault("close_after_response"))  # the next request only
        proxy.latency = 0.05                       # one-way delay per message
        proxy.bandwidth = 20_000                   # bytes/s per direction per connection
        proxy.forget_connections()                 # stale keep-alive: RST on the next request
        await proxy.refuse(); await proxy.restore()  # closed port, then back
        await proxy.stall_connects()               # SYNs dropped: connects time out

It frames HTTP/1.1 messages (``Content-Length`` bodies; aiohttp and the fake use nothing
else), so a fault can act on one request: a reset part-way through the request body, a
response read from the server and then thrown away with a reset ("applied, answer lost"),
a response cut part-way, a synthesized status (503, 429 + ``Retry-After``…), or raw
garbage instead of HTTP. Faults are scripted for the next requests (:meth:`script`), set for
all of them (``fault``), or drawn at random: ``chaos`` applies a fault from
``chaos_faults`` to that fraction of requests (seeded, so a run is reproducible).

Resets are real TCP RSTs (``SO_LINGER`` 0, then abort), the failure users of keep-alive
pools actually see.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Literal

__all__ = ["PASS", "FaultProxy", "ProxyFault", "ProxyMode"]

ProxyMode = Literal[
    "pass",
    "blackhole",
    "reset_request",
    "close_after_response",
    "stall_response",
    "cut_response",
    "respond",
    "garbage",
]
_MAX_HEAD = 1 << 20


@dataclass(frozen=True)
class ProxyFault:
    """What the proxy does with one request.

    Attributes:
        mode: ``pass`` forwards. ``blackhole`` reads the request and everything after it and
            never answers (nor forwards). ``reset_request`` forwards the first
            ``reset_after`` request bytes upstream, then resets both connections (the
            server sees a body cut mid-way). ``close_after_response`` forwards the request,
            reads the server's whole response (so the server has applied it), then resets
            the client instead of relaying it. ``stall_response`` does the same but keeps
            the client connection open and silent, so the client times out. ``cut_response``
            relays the first ``cut_after`` response bytes, then resets. ``respond``
            answers ``status``/``headers``/``body`` itself (keep-alive kept) without
            forwarding. ``garbage`` writes ``body`` raw (not HTTP) and closes.
        reset_after: Request bytes forwarded before ``reset_request`` resets.
        cut_after: Response bytes relayed before ``cut_response`` resets.
        status: Status of a ``respond`` answer.
        headers: Extra headers of a ``respond`` answer.
        body: Body of a ``respond`` answer, or the raw bytes of ``garbage``.
    """

    mode: ProxyMode
    reset_after: int = 0
    cut_after: int = 0
    status: int = 503
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


PASS = ProxyFault("pass")


@dataclass
class ProxyStats:
    """What the proxy saw (counters only grow)."""

    connections: int = 0
    requests: int = 0
    forwarded: int = 0
    relayed: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    request_times: list[float] = field(default_factory=list)


class _Conn:
    __slots__ = ("client", "stale", "task", "upstream")

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.stale = False
        self.task: asyncio.Task[None] | None = None


class _Reset(Exception):
    """End the connection pair with a reset."""


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close ``writer``'s socket with a TCP RST instead of a FIN."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


def _body_length(head: bytes, *, response: bool) -> int | None:
    """Bytes of body after ``head``; ``None`` means "until the connection closes"."""
    if _header(head, b"transfer-encoding") is not None:
        raise ValueError("the fault proxy does not support chunked bodies")
    if response:
        status = int(head.split(b" ", 2)[1])
        if status < 200 or status in (204, 304):
            return 0
    length = _header(head, b"content-length")
    if length is not None:
        return int(length)
    return None if response else 0


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """One message head (through the blank line), or ``b""`` at a clean end of stream."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise _Reset from exc
        return b""


class FaultProxy:
    """A fault-injecting TCP proxy on 127.0.0.1 in front of one upstream port.

    Knobs (``fault``, ``latency``, ``bandwidth``, ``chaos``) take effect for the next request
    on every connection. Use it as an async context manager.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        upstream_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        seed: int = 0,
    ) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._host = host
        self._port = 0
        self._server: asyncio.Server | None = None
        self._stalled: list[socket.socket] = []
        self._conns: set[_Conn] = set()
        self._random = random.Random(seed)
        self._changed = asyncio.Event()
        self.fault: ProxyFault = PASS
        self.latency = 0.0
        self.bandwidth: float | None = None
        self.chaos = 0.0
        self.chaos_faults: tuple[ProxyFault, ...] = ()
        self.stats = ProxyStats()
        self._scripted: collections.deque[ProxyFault] = collections.deque()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port after ``refuse``)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, reuse_address=True, limit=_MAX_HEAD
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and reset every connection. Safe to call twice."""
        await self.refuse()
        for sock in self._stalled:
            sock.close()
        self._stalled = []

    async def refuse(self) -> None:
        """Close the listener and reset every open connection: new connects are refused."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        conns = list(self._conns)
        for conn in conns:
            _reset(conn.client)
            _reset(conn.upstream)
        tasks = [c.task for c in conns if c.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def stall_connects(self) -> None:
        """Let TCP handshakes hang, like a host that drops SYNs: clients wait out their own
        connect timeout. (A listener on our port whose accept backlog is kept full and
        never accepted from; the kernel then drops further SYNs.)"""
        await self.refuse()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        listener.listen(0)
        self._stalled = [listener]
        for _ in range(4):  # fill the backlog; their own handshakes may hang too
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((self._host, self._port))
            self._stalled.append(filler)
        await asyncio.sleep(0.05)  # bounded: let the fillers' handshakes fill the queue

    async def restore(self) -> None:
        """Listen again on the same port after :meth:`refuse` or :meth:`stall_connects`."""
        for sock in self._stalled:
            sock.close()
        self._stalled = []
        await self.start()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The listening port."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: use it as the client's ``track_url``."""
        return f"http://{self._host}:{self._port}"

    @property
    def open_connections(self) -> int:
        """Client connections currently open through the proxy."""
        return len(self._conns)

    def forget_connections(self) -> None:
        """Make every open connection stale, like a load balancer that dropped idle state:
        the next request on it is answered with a reset, and nothing is forwarded."""
        for conn in self._conns:
            conn.stale = True

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked whenever the proxy sees a request).

        Raises:
            TimeoutError: Not after ``timeout`` seconds.
        """

        async def wait() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ plumbing

    def script(self, fault: ProxyFault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests (before ``fault``/``chaos``)."""
        self._scripted.extend([fault] * times)

    def _pick(self) -> ProxyFault:
        if self._scripted:
            return self._scripted.popleft()
        if self.chaos and self.chaos_faults and self._random.random() < self.chaos:
            return self._random.choice(self.chaos_faults)
        return self.fault

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        rate = self.bandwidth
        if not rate:
            writer.write(data)
            await writer.drain()
            return
        step = max(1, int(rate / 50))  # 20 ms worth of bytes per write
        for start in range(0, len(data), step):
            chunk = data[start : start + step]
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(len(chunk) / rate)

    async def _delay(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task (not the one asyncio.start_server would make of a coroutine): it can
        # be cancelled at close without asyncio's stream callback complaining about it.
        conn = _Conn(writer)
        self._conns.add(conn)
        self.stats.connections += 1
        conn.task = asyncio.get_running_loop().create_task(self._serve(conn, reader, writer))

    async def _serve(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        upstream: asyncio.StreamReader | None = None
        up: asyncio.StreamWriter | None = None
        try:
            while True:
                head = await _read_head(reader)
                if not head:
                    break
                body = await reader.readexactly(_body_length(head, response=False) or 0)
                self.stats.requests += 1
                self.stats.request_times.append(time.monotonic())
                self._notify()
                if conn.stale:
                    self.stats.faults["stale"] += 1
                    raise _Reset
                fault = self._pick()
                if fault.mode != "pass":
                    self.stats.faults[fault.mode] += 1
                if fault.mode == "blackhole":
                    while await reader.read(65536):
                        pass  # swallow everything; never answer
                    break
                if fault.mode == "garbage":
                    writer.write(fault.body)
                    await writer.drain()
                    break
                if fault.mode == "respond":
                    await self._delay()
                    await self._write(writer, _synthesize(fault))
                    continue
                await self._delay()
                if upstream is None or up is None:
                    try:
                        upstream, up = await asyncio.open_connection(
                            *self._upstream, limit=_MAX_HEAD
                        )
                    except OSError as exc:
                        raise _Reset from exc
                    conn.upstream = up
                if fault.mode == "reset_request":
                    await self._write(up, (head + body)[: fault.reset_after])
                    raise _Reset
                await self._write(up, head + body)
                self.stats.forwarded += 1
                if fault.mode in ("close_after_response", "stall_response"):
                    await self._read_response(upstream, None)
                    if fault.mode == "close_after_response":
                        raise _Reset
                    while await reader.read(65536):
                        pass  # hold the client connection, silent, until it gives up
                    break
                limit = fault.cut_after if fault.mode == "cut_response" else None
                closing = await self._read_response(upstream, writer, limit)
                if fault.mode == "cut_response":
                    raise _Reset
                self.stats.relayed += 1
                self._notify()
                if closing:
                    break
        except (_Reset, ConnectionError, asyncio.IncompleteReadError, OSError):
            _reset(writer)
            _reset(conn.upstream)
        finally:
            self._conns.discard(conn)
            for w in (writer, conn.upstream):
                if w is not None and not w.transport.is_closing():
                    w.close()

    async def _read_response(
        self,
        upstream: asyncio.StreamReader,
        client: asyncio.StreamWriter | None,
        limit: int | None = None,
    ) -> bool:
        """Read one response from upstream, streaming it to ``client`` (if any) as it arrives,
        at most ``limit`` bytes of it. Returns whether the connection closes after it."""
        head = await _read_head(upstream)
        if not head:
            raise _Reset  # upstream closed (or cut) instead of answering: pass the cut on
        length = _body_length(head, response=True)
        closing = length is None or (_header(head, b"connection") or b"").lower() == b"close"
        sent = 0

        async def relay(data: bytes) -> None:
            nonlocal sent
            if client is None:
                return
            if limit is not None:
                data = data[: max(0, limit - sent)]
            if data:
                sent += len(data)
                await self._write(client, data)

        if client is not None:
            await self._delay()
        await relay(head)
        remaining = length
        while remaining is None or remaining > 0:
            chunk = await upstream.read(65536 if remaining is None else min(65536, remaining))
            if not chunk:
                if remaining is None:
                    break
                raise _Reset
            if remaining is not None:
                remaining -= len(chunk)
            await relay(chunk)
        return closing


def _synthesize(fault: ProxyFault) -> bytes:
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Status"
    lines = [f"HTTP/1.1 {fault.status} {phrase}", f"Content-Length: {len(fault.body)}"]
    if fault.body:
        lines.append("Content-Type: application/json")
    lines.extend(f"{k}: {v}" for k, v in fault.headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + fault.body
