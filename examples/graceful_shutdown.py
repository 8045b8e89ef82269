"""Recipe: graceful SIGTERM shutdown that drains the send buffer before exiting.

Batched calls return once an operation is *buffered*; a process that exits without closing
its client loses what is still in the buffer. Here a SIGTERM (what Kubernetes, systemd and
Docker send before killing) or Ctrl-C sets an event; the service stops producing and calls
``await cio.aclose(timeout=...)``, which sends everything buffered (bounded by the timeout,
after which the rest is dropped with reason ``shutdown_timeout`` and logged), then exits.

    python examples/graceful_shutdown.py --fake --linger 30   # then: kill -TERM <pid>

With ``--linger 30`` nothing would be sent for 30 s; the SIGTERM drains it at once. The last
line printed is a JSON summary: ``accepted`` equals ``delivered`` when nothing was lost.
Keep ``--drain-timeout`` below your orchestrator's grace period (Kubernetes: 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

from customerio_async import BatchConfig, CustomerIO
from customerio_async.testing import FakeCustomerIO

log = logging.getLogger("example")


async def produce(cio: CustomerIO, stop: asyncio.Event, interval: float) -> None:
    """The service's work: here, an event every ``interval`` seconds until told to stop."""
    n = 0
    while not stop.is_set():
        await cio.track(f"user-{n % 100}", "heartbeat", {"n": n})
        n += 1
        # asyncio.TimeoutError: the builtin TimeoutError only from Python 3.11
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    batch = BatchConfig(linger=args.linger)
    async with contextlib.AsyncExitStack() as stack:
        if args.fake:
            server = await stack.enter_async_context(FakeCustomerIO())
            client = CustomerIO(server.site_id, server.api_key, track_url=server.url, batch=batch)
        else:
            client = CustomerIO(track_url=args.track_url, batch=batch)
        cio = await stack.enter_async_context(client)
        producer = asyncio.create_task(produce(cio, stop, args.interval))
        print(f"running as pid {os.getpid()}; send SIGTERM to stop", flush=True)
        await stop.wait()
        log.info("SIGTERM: draining the send buffer (up to %s s)", args.drain_timeout)
        await producer
        buffered = cio.statistics().pending
        await cio.aclose(timeout=args.drain_timeout)  # the drain; `async with` would do it too
        stats = cio.statistics()
        return {
            "buffered_at_sigterm": buffered,
            "accepted": stats.accepted,
            "delivered": stats.delivered,
            "dropped": stats.dropped,
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="graceful SIGTERM shutdown recipe")
    parser.add_argument("--fake", action="store_true", help="use an in-process fake Customer.io")
    parser.add_argument("--track-url", help="Track API origin override (a proxy, a fake)")
    parser.add_argument("--linger", type=float, default=0.5, help="BatchConfig.linger, seconds")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between events")
    parser.add_argument("--drain-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    return 0 if result["accepted"] == result["delivered"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
