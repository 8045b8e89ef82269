"""Run the fake Customer.io server from a shell until Ctrl-C or SIGTERM.

``python -m customerio_async.testing --port 8080 [--host 127.0.0.1] [--site-id S
--api-key K] [--app-api-key A] [--pipelines-write-key W] [--region us|eu]
[--latency SECONDS]`` prints a banner with the URL and every (fake) credential a client
needs (Track site id and API key, App API key, Pipelines write key), then serves. stdout
gets one stable, machine-readable line (URL, Track credentials, region); stderr the full
banner with the App API key and the Pipelines write key.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
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
        description="Serve a fake Customer.io (Track, App and Pipelines APIs) on loopback.",
    )
    parser.add_argument("--port", type=_port, required=True, help="TCP port; 0 picks one")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    parser.add_argument("--site-id", default="fake-site", help="Track site id to accept")
    parser.add_argument("--api-key", default="fake-key", help="Track API key to accept")
    parser.add_argument("--app-api-key", default="fake-app-key", help="App API key to accept")
    parser.add_argument(
        "--pipelines-write-key", default="fake-write-key", help="Pipelines write key to accept"
    )
    parser.add_argument("--region", choices=("us", "eu"), default="us", help="reported region")
    parser.add_argument(
        "--latency",
        type=_non_negative_float,
        default=0.0,
        help="seconds added before every response",
    )
    return parser


def describe(fake: FakeCustomerIO) -> str:
    """Return the one-line, machine-readable banner: URL, Track credentials and region.

    Scripts and tests parse this exact line from stdout, so its shape stays stable; every
    other credential is in :func:`credentials_banner`."""
    return (
        f"FakeCustomerIO listening url={fake.url} site_id={fake.site_id} "
        f"api_key={fake.api_key} region={fake.region}"
    )


def credentials_banner(fake: FakeCustomerIO) -> str:
    """Return the human-readable startup banner: the URL and EVERY credential a client needs.

    The values are the fake's own test credentials, printed on purpose (never start the fake
    with real ones)."""
    return "\n".join(
        (
            f"Fake Customer.io at {fake.url} (one origin for every API)",
            f"  Track API  ({fake.url}/api/v1, /api/v2): site_id={fake.site_id} "
            f"api_key={fake.api_key}",
            f"  App API    ({fake.url}/v1/send, /v1/campaigns): app_api_key={fake.app_api_key}",
            f"  Pipelines  ({fake.url}/v1/identify ... /v1/batch): "
            f"pipelines_write_key={fake.pipelines_write_key} (empty password)",
            f"  region={fake.region}; Ctrl-C stops it",
        )
    )


def announce(fake: FakeCustomerIO) -> None:
    """Print the banners: the stable one-liner on stdout (flushed, so a parent process
    reading the pipe sees it at once) and the full credentials banner on stderr."""
    print(describe(fake), flush=True)
    print(credentials_banner(fake), file=sys.stderr, flush=True)


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Run a fake configured from ``args`` until ``stop`` is set."""
    fake = FakeCustomerIO(
        site_id=args.site_id,
        api_key=args.api_key,
        app_api_key=args.app_api_key,
        pipelines_write_key=args.pipelines_write_key,
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
