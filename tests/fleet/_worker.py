"""One process of the fleet scenario (``_scenario.py``): a ``CustomerIO`` client that wants
far more than its share, paced by a shared :class:`RedisLimiter`.

Run as ``python _worker.py '<json settings>'``. It prints ``ready`` once its client is open
and the limiter's script is loaded, starts on a ``go`` line on stdin, sends direct
(unbatched) events from ``concurrency`` loops for ``duration`` seconds, then prints one JSON
line: the event ids it saw delivered, the errors it got and the limiter's statistics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import Any

from customerio_async import CustomerIO, RateLimit
from customerio_async._common.ulid import new_ulid
from customerio_async.fleet import RedisLimiter, RedisLimiterConfig


async def _sender(cio: CustomerIO, person: str, until: float, out: dict[str, list[str]]) -> None:
    loop = asyncio.get_running_loop()
    n = 0
    while loop.time() < until:
        event_id = new_ulid()
        try:
            await cio.track(person, "tick", {"n": n}, id=event_id)
        except Exception as exc:  # reported to the test, which expects none
            out["errors"].append(type(exc).__name__)
        else:
            out["delivered"].append(event_id)
        n += 1


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(settings: dict[str, Any]) -> None:
    """Open, report ready, wait for go, send for ``duration`` s, report."""
    loop = asyncio.get_running_loop()
    config = RedisLimiterConfig(
        processes=settings["processes"], retry_interval=settings["retry_interval"]
    )
    limit = RateLimit(requests_per_second=settings["rate"], burst=settings["burst"])
    out: dict[str, list[str]] = {"delivered": [], "errors": []}
    async with (
        RedisLimiter(settings["redis_url"], config=config) as limiter,
        CustomerIO(
            settings["site_id"],
            settings["api_key"],
            track_url=settings["fake_url"],
            batching=False,
            rate_limit=limit,
            limiter=limiter,
        ) as cio,
    ):
        # The first call connects and loads the script: on a busy machine that can take
        # longer than the limiter's timeout, so try until Redis answers in time.
        while not await limiter.ping():  # noqa: ASYNC110 - a probe to repeat, not an event
            await asyncio.sleep(settings["retry_interval"])
        _say("ready")
        await loop.run_in_executor(None, sys.stdin.readline)
        until = loop.time() + settings["duration"]
        index = settings["index"]
        await asyncio.gather(
            *(_sender(cio, f"w{index}-{k}", until, out) for k in range(settings["concurrency"]))
        )
        stats = dataclasses.asdict(limiter.statistics())
    _say(json.dumps({**out, "stats": stats}))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
