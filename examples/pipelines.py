"""Recipe: the Data Pipelines API, migrated from analytics-python by adding ``await``.

A signup flow as a server sends it: an anonymous page view, the signup (``identify`` with
both ids, then ``alias``), a ``group`` and some events. The ``async with`` block drains the
buffer before the process exits, so nothing sent is lost; every receipt's outcome is checked
at the end.

    python examples/pipelines.py --fake --users 200
    CUSTOMERIO_PIPELINES_WRITE_KEY=... python examples/pipelines.py --region eu --users 3

It prints one JSON line of statistics and exits 0 when everything was delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

from customerio_async import PipelinesClient, Receipt
from customerio_async.testing import FakeCustomerIO

log = logging.getLogger("example")


def log_drop(receipt: Receipt) -> None:
    """``on_drop``: the SDK gave up on a message (deadline, a full buffer, a wrong key…)."""
    assert receipt.outcome is not None
    log.warning("dropped %s: %s", receipt.action, receipt.outcome.reason)


async def signup(analytics: PipelinesClient, n: int) -> list[Receipt]:
    """The calls of one signup: analytics-python's names and argument order, awaited."""
    user, anonymous = f"user-{n}", f"anon-{n}"
    receipts = [
        await analytics.page(
            anonymous_id=anonymous, name="Pricing", properties={"url": "/pricing"}
        ),
        await analytics.identify(
            user,
            {"email": f"{user}@example.com", "plan": "free", "createdAt": dt.datetime.now()},
            anonymous_id=anonymous,
        ),
        await analytics.alias(anonymous, user),
        await analytics.group(user, "acme", {"name": "Acme", "object_type_id": "1"}),
    ]
    for step in range(3):
        receipts.append(await analytics.track(user, "Onboarding Step", {"step": step}))
    return receipts


async def run(*, fake: bool, users: int, region: str) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        server: FakeCustomerIO | None = None
        if fake:
            server = await stack.enter_async_context(FakeCustomerIO())
            client = PipelinesClient(server.pipelines_write_key, server.url, on_drop=log_drop)
        else:  # the write key from $CUSTOMERIO_PIPELINES_WRITE_KEY
            client = PipelinesClient(region=region, on_drop=log_drop)
        async with client as analytics:
            receipts = [r for n in range(users) for r in await signup(analytics, n)]
        # Closed: the buffer was drained, so every receipt has its outcome now.
        outcomes = [r.outcome.status if r.outcome else "pending" for r in receipts]
        stats = client.statistics()
        return {
            "messages": len(receipts),
            "delivered": outcomes.count("delivered"),
            "rejected": outcomes.count("rejected"),
            "dropped": outcomes.count("dropped"),
            "requests": stats.requests,
            "bytes_sent": stats.bytes_sent,
            "accepted_by_fake": len(server.pipelines_messages) if server else None,
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Data Pipelines recipe")
    parser.add_argument("--fake", action="store_true", help="use an in-process fake Customer.io")
    parser.add_argument("--region", choices=("us", "eu"), default="us")
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    result = asyncio.run(run(fake=args.fake, users=args.users, region=args.region))
    print(json.dumps(result), flush=True)
    return 0 if result["delivered"] == result["messages"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
