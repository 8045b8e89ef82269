"""Webhook benchmark: verify + parse of a 2 KB event, and receiver throughput on loopback.

Run it with ``python benchmarks/bench_webhooks.py`` (``--help`` for the knobs). It prints:

1. **verify + parse**: microseconds per ``verify_signature()`` + ``parse_event()`` of one
   2,048-byte ``email``/``sent`` event (HMAC-SHA256 over ``v0:{ts}:{body}``, constant-time
   comparison, one ``json.loads``, frozen slotted dataclasses), measured with
   ``time.perf_counter_ns`` over ``--loops`` calls, repeated ``--repeat`` times: median and
   best run. Target: at most 20 µs on one core.
2. **aiohttp receiver**: requests per second that ``aiohttp_handler()`` serves on
   127.0.0.1 (its own ``AppRunner``, random port) to ``--concurrency`` keep-alive client
   tasks in the same process and event loop (so the figure includes the client's cost:
   it is a floor for the receiver alone). Every request is a distinct, signed event, so
   each one is verified, parsed, de-duplicated and dispatched to a no-op callback.
3. **ASGI receiver, in process**: calls per second of the ASGI app driven directly with
   ``scope``/``receive``/``send`` (no server, no sockets): the receiver's own ceiling.

Bodies and signatures are prepared before timing starts.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from customerio_async.webhooks import (
    WebhookEvent,
    WebhookReceiver,
    aiohttp_handler,
    asgi_receiver,
    parse_event,
    verify_signature,
)

KEY = "whsec-benchmark-signing-key-0123456789abcdef"
TARGET_BYTES = 2048


def make_event(event_id: str, size: int = TARGET_BYTES) -> bytes:
    """A realistic ``email``/``sent`` event padded to exactly ``size`` bytes."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "object_type": "email",
        "metric": "sent",
        "timestamp": 1_760_000_000,
        "data": {
            "action_id": 42,
            "campaign_id": 23,
            "customer_id": "0200000001",
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "identifiers": {"id": "42", "email": "ada@example.com", "cio_id": "d9c106000001"},
            "recipient": "ada@example.com",
            "subject": "Your order #10293 has shipped",
            "journey_id": "01GW20GXAAXBKZD8J96M8FNV3R",
            "trigger_event_id": "21E4C3CT6YDC7Y4N7FE1GWWABC",
            "headers": {"X-Mailgun-Tag": ["orders"], "List-Unsubscribe": ["<https://x.io/u>"]},
            "content": "",
        },
    }
    base = len(json.dumps(event, separators=(",", ":")).encode())
    event["data"]["content"] = ("Hello Ada, your parcel is on its way. " * 80)[: size - base]
    body = json.dumps(event, separators=(",", ":")).encode()
    assert len(body) == size, len(body)
    return body


def sign(body: bytes, ts: int) -> str:
    return hmac.new(KEY.encode(), b"v0:%d:" % ts + body, hashlib.sha256).hexdigest()


def bench_verify_parse(loops: int, repeat: int) -> tuple[float, float]:
    """(median, best) microseconds per verify + parse."""
    body = make_event("01HZY0A7Q4J6M8N9P0R1S2T3V4")
    ts = int(time.time())
    ts_text, signature = str(ts), sign(body, ts)
    now = float(ts)
    event: WebhookEvent | None = None
    runs: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(loops):
            verify_signature(body, ts_text, signature, KEY, now=now)
            event = parse_event(body)
        runs.append((time.perf_counter_ns() - start) / loops / 1000)
    assert event is not None
    assert event.metric == "sent"
    return statistics.median(runs), min(runs)


def _bodies(n: int, tag: str) -> list[tuple[bytes, Mapping[str, str]]]:
    ts = int(time.time())
    out = []
    for i in range(n):
        body = make_event(f"{tag}{i:020d}")
        out.append(
            (
                body,
                {
                    "Content-Type": "application/json",
                    "X-CIO-Timestamp": str(ts),
                    "X-CIO-Signature": sign(body, ts),
                },
            )
        )
    return out


async def _noop(event: WebhookEvent) -> None:
    return None


async def bench_aiohttp(requests: int, concurrency: int) -> float:
    """Requests per second served by aiohttp_handler() on loopback."""
    receiver = WebhookReceiver(_noop, signing_key=KEY, max_concurrency=4 * concurrency)
    app = web.Application()
    app.router.add_post("/cio", aiohttp_handler(receiver))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/cio"
    work = _bodies(requests, "01HZA")
    warm = _bodies(200, "01HZW")
    statuses: list[int] = []
    try:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker(items: list[tuple[bytes, Mapping[str, str]]]) -> None:
                for body, headers in items:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        statuses.append(resp.status)

            await asyncio.gather(*(worker(warm[i::concurrency]) for i in range(concurrency)))
            statuses.clear()
            start = time.perf_counter()
            await asyncio.gather(*(worker(work[i::concurrency]) for i in range(concurrency)))
            elapsed = time.perf_counter() - start
        await receiver.aclose()
    finally:
        await runner.cleanup()
    assert statuses.count(200) == requests, {s: statuses.count(s) for s in set(statuses)}
    assert receiver.statistics().accepted == requests + len(warm)
    return requests / elapsed


async def bench_asgi(requests: int) -> float:
    """ASGI app calls per second, driven in process."""
    app = asgi_receiver(_noop, signing_key=KEY, max_concurrency=requests + 1)
    work = _bodies(requests, "01HZB")
    sent: list[Mapping[str, Any]] = []

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    start = time.perf_counter()
    for body, headers in work:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        message = {"type": "http.request", "body": body, "more_body": False}

        async def receive(message: Mapping[str, Any] = message) -> Mapping[str, Any]:
            return message

        await app(scope, receive, send)
    elapsed = time.perf_counter() - start
    await app.receiver.aclose()
    assert sum(1 for m in sent if m.get("status") == 200) == requests
    return requests / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=20_000, help="verify+parse calls per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs of --loops")
    parser.add_argument("--requests", type=int, default=20_000, help="receiver requests")
    parser.add_argument("--concurrency", type=int, default=32, help="client tasks/connections")
    args = parser.parse_args(argv)

    print(f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}")
    median, best = bench_verify_parse(args.loops, args.repeat)
    verdict = "OK" if median <= 20.0 else "OVER TARGET"
    print(
        f"verify+parse, {TARGET_BYTES}-byte event: {median:.2f} µs median, {best:.2f} µs best "
        f"({args.repeat} x {args.loops} calls; target <= 20 µs: {verdict})"
    )
    rps = asyncio.run(bench_aiohttp(args.requests, args.concurrency))
    print(
        f"aiohttp receiver on loopback: {rps:,.0f} req/s "
        f"({args.requests} signed events, {args.concurrency} keep-alive connections, "
        "client in the same process)"
    )
    calls = asyncio.run(bench_asgi(args.requests))
    print(f"ASGI receiver in process: {calls:,.0f} calls/s ({args.requests} signed events)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
