"""Recipe: a plain ``asyncio.run`` worker that sends Track calls from a job queue.

A producer fills a bounded queue (here: simulated orders; in real life a broker consumer),
a few worker tasks turn each job into Customer.io calls, and before exiting the worker
flushes the client and checks every outcome. Failures are counted, not raised: the client's
``on_drop`` callback logs what the SDK gave up on.

    python examples/worker.py --fake --jobs 1000
    CUSTOMERIO_SITE_ID=... CUSTOMERIO_API_KEY=... python examples/worker.py --jobs 10

It prints one JSON line of statistics and exits 0 when everything was delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Sequence
from typing import Any

from customerio_async import BatchConfig, CustomerIO, Receipt
from customerio_async.testing import FakeCustomerIO

log = logging.getLogger("example")


def log_drop(receipt: Receipt) -> None:
    """``on_drop``: the SDK gave up on an operation (timeouts, a full buffer, bad keys…)."""
    assert receipt.outcome is not None
    log.warning("dropped %s: %s", receipt.operation.action, receipt.outcome.reason)


async def handle(cio: CustomerIO, job: dict[str, Any]) -> None:
    """One job becomes Track calls; each returns as soon as it is buffered."""
    await cio.identify(job["user_id"], plan=job["plan"])
    await cio.track(job["user_id"], "order_placed", {"total": job["total"]})


async def worker(cio: CustomerIO, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        job = await queue.get()
        try:
            await handle(cio, job)
        except ValueError:  # ValidationError: a bad job; log it and move on
            log.exception("bad job")
        finally:
            queue.task_done()


async def run(*, fake: bool, jobs: int, workers: int, track_url: str | None) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        if fake:
            server = await stack.enter_async_context(FakeCustomerIO())
            client = CustomerIO(
                server.site_id,
                server.api_key,
                track_url=server.url,
                batch=BatchConfig(linger=0.05),
                on_drop=log_drop,
            )
        else:
            client = CustomerIO(track_url=track_url, on_drop=log_drop)
        cio = await stack.enter_async_context(client)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        tasks = [asyncio.create_task(worker(cio, queue)) for _ in range(workers)]
        rng = random.Random(1)
        for i in range(jobs):
            job = {
                "user_id": f"user-{i % 500}",
                "plan": rng.choice(["free", "pro"]),
                "total": rng.randint(5, 500),
            }
            await queue.put(job)
        await queue.join()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        flushed = await cio.flush()  # a barrier: every call above has its outcome now
        stats = cio.statistics()
        return {
            "jobs": jobs,
            "accepted": stats.accepted,
            "delivered": stats.delivered,
            "rejected": stats.rejected,
            "dropped": stats.dropped,
            "deduplicated": stats.deduplicated,
            "pending": flushed.pending,
            "requests": stats.requests,
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="asyncio worker recipe")
    parser.add_argument("--fake", action="store_true", help="use an in-process fake Customer.io")
    parser.add_argument("--track-url", help="Track API origin override (a proxy, a fake)")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    result = asyncio.run(
        run(fake=args.fake, jobs=args.jobs, workers=args.workers, track_url=args.track_url)
    )
    print(json.dumps(result), flush=True)
    ok = result["rejected"] == result["dropped"] == result["pending"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
