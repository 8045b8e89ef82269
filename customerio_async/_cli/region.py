"""``customerio-async region``: the region and environment id of a workspace's credentials."""

from __future__ import annotations

import argparse

from customerio_async import CustomerIO, CustomerIOError, RetryPolicy

from .credentials import credentials
from .errors import failure
from .progress import Console

__all__ = ["region"]

# Two quick attempts: a person is waiting at the terminal for one line of answer.
RETRY = RetryPolicy(direct_attempts=2, backoff_base=0.2, backoff_cap=1.0)


async def region(args: argparse.Namespace, console: Console) -> int:
    """Ask Customer.io which region the credentials belong to; print one line.

    Raises:
        UsageError: Missing credentials.
        CommandError: Customer.io could not be reached or refused the request (in words).
    """
    site, key = credentials(args)
    wanted = "us" if args.region == "auto" else args.region
    cio = CustomerIO(
        site, key, region=wanted, track_url=args.track_url, batching=False, retry=RETRY
    )
    async with cio:
        try:
            info = await cio.get_region()
        except CustomerIOError as exc:
            raise failure(exc, cio.origin) from exc
    console.print(f"{info.region.value} (environment {info.environment_id}, {info.url})")
    return 0
