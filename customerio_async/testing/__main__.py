"""Run the fake Customer.io server from a shell until Ctrl-C or SIGTERM.

``python -m customerio_async.testing --port 8080 [--host 127.0.0.1] [--site-id S
--api-key K] [--region us|eu] [--latency SECONDS]`` prints one line with the URL and the
(fake) credentials to use, then serves.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

from ._fake import FakeCustomerIO


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0-65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m customerio_async.testing",
        description="Serve a fake Customer.io Track API on loopback.",
    )
    parser.add_argument("--port", type=_port, required=True, help="TCP port; 0 picks one")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    parser.add_argument("--site-id", default="fake-site", help="Track site id to accept")
    parser.add_argument("--api-key", default="fake-key", help="Track API key to accept")
    parser.add_argument("--region", choices=("us", "eu"), default="us", help="reported region")
    parser.add_argument(
        "--latency",
        type=_non_negative_float,
        default=0.0,
        help="seconds added before every response",
    )
    return parser


def describe(fake: FakeCustomerIO) -> str:
    """Return the one-line banner: URL, credentials and region of a started fake."""
    return (
        f"FakeCustomerIO listening url={fake.url} site_id={fake.site_id} "
        f"api_key={fake.api_key} region={fake.region}"
    )


def announce(fake: FakeCustomerIO) -> None:
    """Print the banner; flushed so a parent process reading the pipe sees it at once."""
    print(describe(fake), flush=True)


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Run a fake configured from ``args`` until ``stop`` is set."""
    fake = FakeCustomerIO(
        site_id=args.site_id,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        region=args.region,
        latency=args.latency,
    )
    async with fake:
        announce(fake)
        await stop.wait()


async def _serve_until_signalled(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(args, stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, serve until SIGINT/SIGTERM, and return the exit status (0)."""
    args = build_parser().parse_args(argv)
    asyncio.run(_serve_until_signalled(args))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess
    raise SystemExit(main())
