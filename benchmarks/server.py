"""A lean, fast fake Customer.io Track server for throughput benchmarks.

Run it as its own process (the pipeline benchmark does); it prints one JSON line with its
URLs, then serves until SIGTERM/SIGINT, until its parent process goes away, or until
``--max-lifetime`` seconds have passed (so an orphaned server always stops by itself)::

    python benchmarks/server.py --port 0 --site-id fake-site --api-key fake-key
    {"url": "http://127.0.0.1:41234", "control_url": "http://127.0.0.1:41234", ...}

Two implementations:

* ``--impl lean`` (default): a minimal ``aiohttp.web`` app that shares the batch-path rules
  of :class:`~customerio_async.testing.FakeCustomerIO` (``customerio_async.testing._rules``:
  Basic auth via ``credentials_match``, the 524,288-byte body limit, the type/action matrix,
  ULID event ids) but parses with ``orjson`` and keeps only counters and the set of event ids
  it has applied. A repeated event id is counted as a duplicate and not re-applied (answered
  200, like Customer.io and the fake). ``--validate`` also runs the fake's full per-operation
  rules (``check_v2_operation`` and the 32 KB per-operation size), like ``FakeCustomerIO``.
  Endpoints: ``POST /api/v2/batch``, ``POST /api/v2/entity``,
  ``POST /api/v1/customers/{id}/events`` and ``PUT /api/v1/customers/{id}`` (direct mode and
  the per-request peers: one applied operation each), ``GET /_stats``, ``POST /_reset``.
  ``--tls-cert``/``--tls-key`` add a second, TLS listener (``tls_url`` in the banner) on the
  same app and counters, for clients whose production path is https only (the official
  ``customerio`` and ``async-customerio`` packages build ``https://host:port`` URLs).
  ``--latency S`` sleeps S seconds in every API request before answering (a simulated
  network round trip; ``/_stats`` and ``/_reset`` answer at once).
* ``--impl fake``: the full ``FakeCustomerIO`` (records every request and operation), with
  ``/_stats`` and ``/_reset`` on a second, control port.

``/_stats`` answers ``{"ops": applied operations, "duplicates": repeated event ids,
"requests", "bytes", "status": {code: count}, "cpu_s": server CPU since the last reset, …}``.

The process pins itself to CPU 1 (``--cpu``) where ``os.sched_setaffinity`` exists, and
freezes the objects alive after import with rare young collections (decoded batches are
freed by reference counting as soon as they are counted). The lean server costs about
1.5–2 µs of its own CPU per operation, so one server core accepts ~500,000 ops/s;
``FakeCustomerIO`` costs ~12–15 µs per operation (~70,000 ops/s), too slow to measure a
client that should deliver 100,000 ops/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from customerio_async.testing import FakeCustomerIO
from customerio_async.testing import _rules as rules

__all__ = ["LeanServer", "main", "pin_to_cpu"]

_JSON = "application/json"
_EVENT_ACTIONS = frozenset({"event", "page", "screen"})
_OK_BODY = b"{}"


def pin_to_cpu(cpu: int) -> str:
    """Pin this process to ``cpu`` when the platform allows it; return what happened."""
    setaffinity = getattr(os, "sched_setaffinity", None)
    getaffinity = getattr(os, "sched_getaffinity", None)
    if setaffinity is None or getaffinity is None:
        return "unpinned (no sched_setaffinity)"
    allowed = getaffinity(0)
    if cpu not in allowed:
        return f"unpinned (cpu {cpu} not in {sorted(allowed)})"
    setaffinity(0, {cpu})
    return f"cpu{cpu}"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _v2_error(
    status: int, message: str, *, reason: str = "invalid", field: str = ""
) -> web.Response:
    body = {"errors": [{"reason": reason, "field": field, "message": message}]}
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON)


class _Counters:
    """Everything the lean server remembers; cleared by ``POST /_reset``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ops = 0
        self.duplicates = 0
        self.rejected_ops = 0
        self.requests = 0
        self.batches = 0
        self.bytes = 0
        self.max_body = 0
        self.status: dict[int, int] = {}
        self.seen: set[str] = set()
        self.cpu_at_reset = cpu_seconds()
        self.started = time.monotonic()
        self.first_request: float | None = None
        self.last_request: float | None = None

    def answered(self, status: int) -> None:
        self.status[status] = self.status.get(status, 0) + 1
        self.last_request = time.monotonic()

    def snapshot(self, impl: str) -> dict[str, Any]:
        return {
            "impl": impl,
            "ops": self.ops,
            "duplicates": self.duplicates,
            "rejected_ops": self.rejected_ops,
            "requests": self.requests,
            "batches": self.batches,
            "bytes": self.bytes,
            "max_body": self.max_body,
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "cpu_s": cpu_seconds() - self.cpu_at_reset,
            "active_s": (
                self.last_request - self.first_request
                if self.first_request is not None and self.last_request is not None
                else 0.0
            ),
        }


class LeanServer:
    """The minimal batch server (see the module docstring)."""

    def __init__(
        self, site_id: str, api_key: str, *, validate: bool = False, latency: float = 0.0
    ) -> None:
        self._site_id = site_id
        self._latency = latency
        self._api_key = api_key
        self._validate = validate
        # The exact header our clients send is recognised by one string comparison; any
        # other value goes through the fake's full Basic-auth parser (same verdicts).
        token = base64.b64encode(f"{site_id}:{api_key}".encode()).decode("ascii")
        self._expected_auth = f"Basic {token}"
        self.counters = _Counters()
        self.impl = "lean+rules" if validate else "lean"

    def app(self) -> web.Application:
        """Build the aiohttp application."""
        # Bodies above the contract limit must reach the handler (which answers 413 with
        # the v2 envelope), not aiohttp's own 1 MiB guard.
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/api/v2/batch", self._batch)
        app.router.add_post("/api/v2/entity", self._entity)
        app.router.add_post("/api/v1/customers/{identifier}/events", self._v1_event)
        app.router.add_put("/api/v1/customers/{identifier}", self._v1_identify)
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        return app

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if header == self._expected_auth:
            return True
        return rules.credentials_match(header, self._site_id, self._api_key)

    async def _read(self, request: web.Request) -> tuple[bytes | None, web.Response | None]:
        c = self.counters
        now = time.monotonic()
        if c.first_request is None:
            c.first_request = now
        c.requests += 1
        if self._latency:
            await asyncio.sleep(self._latency)
        if not self._authorised(request):
            c.answered(401)
            return None, web.Response(status=401)
        body = await request.read()
        c.bytes += len(body)
        c.max_body = max(c.max_body, len(body))
        return body, None

    def _apply(self, op: Any) -> str | None:
        """Count one v2 operation; return an error message when it is refused."""
        c = self.counters
        if self._validate:
            try:
                if rules.json_size(op) > rules.MAX_OP_BYTES:
                    return f"operation cannot be larger than {rules.MAX_OP_BYTES} bytes"
                rules.check_v2_operation(op, strict_ulid=True)
            except rules.RuleViolation as violation:
                return violation.message
        elif not isinstance(op, dict):
            return "operation must be a JSON object"
        kind = op.get("type")
        action = op.get("action")
        allowed = rules.V2_ACTIONS.get(kind) if isinstance(kind, str) else None
        if allowed is None or action not in allowed:
            return "invalid type/action"
        if kind == "person" and action in _EVENT_ACTIONS and "id" in op:
            event_id = op["id"]
            if not rules.is_ulid(event_id):
                return "id must be a ULID"
            key = event_id.upper()
            if key in c.seen:
                c.duplicates += 1  # answered 200, not applied again
                return None
            c.seen.add(key)
        c.ops += 1
        return None

    def _apply_lean(self, ops: list[Any]) -> list[dict[str, Any]]:
        """:meth:`_apply` for a whole batch, inlined (same verdicts, ~2× faster)."""
        c = self.counters
        seen = c.seen
        actions = rules.V2_ACTIONS
        is_ulid = rules.is_ulid
        errors: list[dict[str, Any]] = []
        applied = duplicates = 0
        for index, op in enumerate(ops):
            if type(op) is not dict:
                message = self._apply(op)  # the slow path words the error
                if message is not None:
                    errors.append({"batch_index": index, "reason": "invalid", "message": message})
                continue
            kind = op.get("type")
            action = op.get("action")
            allowed = actions.get(kind) if type(kind) is str else None
            if allowed is None or action not in allowed:
                errors.append(
                    {"batch_index": index, "reason": "invalid", "message": "invalid type/action"}
                )
                continue
            if kind == "person" and action in _EVENT_ACTIONS and "id" in op:
                event_id = op["id"]
                if not is_ulid(event_id):
                    errors.append(
                        {"batch_index": index, "reason": "invalid", "message": "id must be a ULID"}
                    )
                    continue
                before = len(seen)
                seen.add(event_id.upper())
                if len(seen) == before:
                    duplicates += 1  # answered 200, not applied again
                    continue
            applied += 1
        c.ops += applied
        c.duplicates += duplicates
        return errors

    async def _batch(self, request: web.Request) -> web.Response:
        body, refused = await self._read(request)
        if refused is not None:
            return refused
        assert body is not None
        c = self.counters
        c.batches += 1
        if len(body) > rules.MAX_BATCH_BYTES:
            c.answered(413)
            return _v2_error(
                413,
                f"request body cannot be larger than {rules.MAX_BATCH_BYTES} bytes",
                reason=rules.REASON_TOO_LARGE,
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            c.answered(400)
            return _v2_error(400, "request body is not valid JSON")
        ops = payload.get("batch") if isinstance(payload, dict) else None
        if not isinstance(ops, list) or not ops:
            c.answered(400)
            return _v2_error(400, "batch must be a non-empty list", field="batch")
        if self._validate:
            errors = [
                {"batch_index": index, "reason": "invalid", "message": message}
                for index, op in enumerate(ops)
                if (message := self._apply(op)) is not None
            ]
        else:
            errors = self._apply_lean(ops)
        if errors:
            c.rejected_ops += len(errors)
            c.answered(207)
            return web.Response(
                status=207, body=orjson.dumps({"errors": errors}), content_type=_JSON
            )
        c.answered(200)
        return web.Response(body=_OK_BODY, content_type=_JSON)

    async def _entity(self, request: web.Request) -> web.Response:
        body, refused = await self._read(request)
        if refused is not None:
            return refused
        assert body is not None
        c = self.counters
        if len(body) > rules.MAX_ENTITY_BYTES:
            c.answered(413)
            return _v2_error(413, "request body too large", reason=rules.REASON_TOO_LARGE)
        try:
            op = orjson.loads(body)
        except orjson.JSONDecodeError:
            c.answered(400)
            return _v2_error(400, "request body is not valid JSON")
        message = self._apply(op)
        if message is not None:
            c.rejected_ops += 1
            c.answered(400)
            return _v2_error(400, message)
        c.answered(200)
        return web.Response(body=_OK_BODY, content_type=_JSON)

    async def _v1_event(self, request: web.Request) -> web.Response:
        body, refused = await self._read(request)
        if refused is not None:
            return refused
        assert body is not None
        c = self.counters
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("name"), str):
            c.rejected_ops += 1
            c.answered(400)
            return web.json_response({"meta": {"error": "invalid event"}}, status=400)
        event_id = event.get("id")
        if event_id is not None:
            if not rules.is_ulid(event_id):
                c.rejected_ops += 1
                c.answered(400)
                return web.json_response({"meta": {"error": "id must be a ULID"}}, status=400)
            key = str(event_id).upper()
            if key in c.seen:
                c.duplicates += 1
                c.answered(200)
                return web.Response(body=_OK_BODY, content_type=_JSON)
            c.seen.add(key)
        c.ops += 1
        c.answered(200)
        return web.Response(body=_OK_BODY, content_type=_JSON)

    async def _v1_identify(self, request: web.Request) -> web.Response:
        body, refused = await self._read(request)
        if refused is not None:
            return refused
        assert body is not None
        c = self.counters
        if len(body) > rules.MAX_OP_BYTES:
            c.rejected_ops += 1
            c.answered(413)
            return web.json_response({"meta": {"error": "request too large"}}, status=413)
        try:
            attributes = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            attributes = None
        if not isinstance(attributes, dict) or not request.match_info["identifier"].strip():
            c.rejected_ops += 1
            c.answered(400)
            return web.json_response({"meta": {"error": "invalid identify"}}, status=400)
        c.ops += 1
        c.answered(200)
        return web.Response(body=_OK_BODY, content_type=_JSON)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(self.counters.snapshot(self.impl)), content_type=_JSON
        )

    async def _reset(self, request: web.Request) -> web.Response:
        self.counters.reset()
        return web.Response(body=_OK_BODY, content_type=_JSON)


class _FakeControl:
    """``/_stats`` and ``/_reset`` for a :class:`FakeCustomerIO`, on their own port."""

    def __init__(self, fake: FakeCustomerIO) -> None:
        self._fake = fake
        self._cpu_at_reset = cpu_seconds()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        fake = self._fake
        status: dict[str, int] = {}
        batches = 0
        body_bytes = 0
        for record in fake.requests:
            key = str(record.status)
            status[key] = status.get(key, 0) + 1
            body_bytes += len(record.body)
            if record.segments == ("api", "v2", "batch"):
                batches += 1
        rejected = sum(v for k, v in status.items() if k not in ("200", "None"))
        snapshot = {
            "impl": "FakeCustomerIO",
            "ops": len(fake.operations),
            "duplicates": len(fake.duplicate_event_ids),
            "rejected_ops": rejected,
            "requests": len(fake.requests),
            "batches": batches,
            "bytes": body_bytes,
            "max_body": max((len(r.body) for r in fake.requests), default=0),
            "status": status,
            "cpu_s": cpu_seconds() - self._cpu_at_reset,
            "active_s": 0.0,
        }
        return web.Response(body=orjson.dumps(snapshot), content_type=_JSON)

    async def _reset(self, request: web.Request) -> web.Response:
        self._fake.clear()
        self._cpu_at_reset = cpu_seconds()
        return web.Response(body=_OK_BODY, content_type=_JSON)


async def _start_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])


async def _add_tls_site(runner: web.AppRunner, host: str, cert: str, key: str) -> int:
    """A second listener of the same app over TLS (certificate verification stays on in
    every client: they are pointed at the throwaway CA that issued ``cert``)."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, host, 0, ssl_context=context)
    await site.start()
    return int(runner.addresses[-1][1])  # the socket of the site just added


async def _watch_parent(parent: int, stop: asyncio.Event, max_lifetime: float) -> None:
    """Stop when the parent process is gone or the lifetime is over."""
    deadline = time.monotonic() + max_lifetime
    while not stop.is_set():
        if os.getppid() != parent or time.monotonic() > deadline:
            stop.set()
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set; print the banner line once listening."""
    cleanup: list[Callable[[], Awaitable[None]]] = []
    tls_url = None
    try:
        if args.impl == "fake":
            fake = FakeCustomerIO(
                site_id=args.site_id, api_key=args.api_key, host=args.host, port=args.port
            )
            await fake.start()
            cleanup.append(fake.close)
            control, control_port = await _start_app(_FakeControl(fake).app(), args.host, 0)
            cleanup.append(control.cleanup)
            url = fake.url
            control_url = f"http://{args.host}:{control_port}"
            impl = "FakeCustomerIO"
        else:
            lean = LeanServer(
                args.site_id, args.api_key, validate=args.validate, latency=args.latency
            )
            runner, port = await _start_app(lean.app(), args.host, args.port)
            cleanup.append(runner.cleanup)
            url = control_url = f"http://{args.host}:{port}"
            impl = lean.impl
            if args.tls_cert and args.tls_key:
                tls_port = await _add_tls_site(runner, args.host, args.tls_cert, args.tls_key)
                tls_url = f"https://{args.host}:{tls_port}"
        banner = {
            "url": url,
            "control_url": control_url,
            "impl": impl,
            "pid": os.getpid(),
            "affinity": args.affinity,
            "tls_url": tls_url,
            "latency": args.latency,
        }
        print(orjson.dumps(banner).decode(), flush=True)
        watcher = asyncio.ensure_future(_watch_parent(args.parent, stop, args.max_lifetime))
        await stop.wait()
        watcher.cancel()
    finally:
        for close in reversed(cleanup):
            await close()


async def _main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(args, stop)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--site-id", default="fake-site")
    parser.add_argument("--api-key", default="fake-key")
    parser.add_argument("--impl", choices=("lean", "fake"), default="lean")
    parser.add_argument(
        "--validate", action="store_true", help="lean: apply the fake's full per-op rules"
    )
    parser.add_argument("--tls-cert", help="lean: PEM certificate for a second, TLS listener")
    parser.add_argument("--tls-key", help="lean: PEM private key of --tls-cert")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="lean: seconds to sleep per API request"
    )
    parser.add_argument("--cpu", type=int, default=1, help="CPU to pin to (-1: don't pin)")
    parser.add_argument(
        "--max-lifetime", type=float, default=900.0, help="exit after this many seconds"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    # Every decoded batch is garbage as soon as it is counted (reference counting frees it);
    # the cyclic collector would only re-scan those short-lived containers, so freeze what
    # was imported and make young collections rare. Measured: 1.58 -> 1.23 µs/op.
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    args.affinity = pin_to_cpu(args.cpu) if args.cpu >= 0 else "unpinned"
    args.parent = os.getppid()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("server.py serves on loopback only", file=sys.stderr)
        return 2
    asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
