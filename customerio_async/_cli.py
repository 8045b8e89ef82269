"""The ``customerio-async`` command line (also ``python -m customerio_async``).

Commands:

* ``demo`` — the README's first command: the SDK against an embedded fake server.
* ``import FILE`` — bulk backfill from JSONL/CSV with progress, checkpoint and rejects file
  (see :mod:`customerio_async._cli_import`).
* ``verify-webhook`` — check a captured reporting webhook against a signing key.
* ``region`` — print the region and environment id of a workspace's credentials.

Credentials come from flags or the environment (``CUSTOMERIO_SITE_ID``,
``CUSTOMERIO_API_KEY``, ``CUSTOMERIO_WEBHOOK_SIGNING_KEY``); prefer the environment, since
flags are visible to other users of the machine in ``ps``. Errors are one line on stderr.
Exit status: 0 success, 1 some lines rejected or dropped (import) or an invalid webhook,
2 bad usage or configuration, 130/143 interrupted by SIGINT/SIGTERM (import: checkpoint
written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import io
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._cli_import import ImportJob, ImportOptions, UsageError, detect_format
from ._config import ENV_API_KEY, ENV_SITE_ID, RetryPolicy
from ._exceptions import (
    AuthenticationError,
    ConfigurationError,
    CustomerIOError,
    PermissionDeniedError,
    TransportError,
    WebhookVerificationError,
)
from ._version import __version__

__all__ = ["build_parser", "main", "run"]

PROG = "customerio-async"
ENV_WEBHOOK_KEY = "CUSTOMERIO_WEBHOOK_SIGNING_KEY"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``prog: error: message (see --help)``), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number >= 0")
    return value


def _add_credentials(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("credentials (flags override the environment)")
    group.add_argument("--site-id", help=f"Track API site id (default: ${ENV_SITE_ID})")
    group.add_argument("--api-key", help=f"Track API key (default: ${ENV_API_KEY})")
    group.add_argument(
        "--region",
        choices=("us", "eu", "auto"),
        default="us",
        help="workspace region; auto asks Customer.io (default: us)",
    )
    group.add_argument(
        "--track-url", metavar="URL", help="Track API origin override (a proxy or the fake)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``customerio-async`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Customer.io from the command line: backfills, webhook checks, a demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="send a realistic mix of operations to an embedded fake")
    demo.add_argument("--people", type=int, default=2000, help="people to simulate (default 2000)")

    imp = sub.add_parser(
        "import",
        help="bulk backfill people, events and devices from JSONL or CSV",
        description=(
            "Send every line of FILE through the batching pipeline at the rate limit, with a "
            "progress bar, a resumable checkpoint and a rejects file. JSONL lines look like "
            '{"type": "identify", "id": "42", "attributes": {...}}, '
            '{"type": "event", "id": "42", "name": "purchased", "data": {...}, '
            '"timestamp": 1690000000} or {"type": "device", "id": "42", "device_id": "tok", '
            '"platform": "ios"}; CSV files have a header row with the same field names '
            "(attributes.<name> and data.<name> columns)."
        ),
    )
    imp.add_argument("file", metavar="FILE", type=Path, help="a .jsonl or .csv file")
    imp.add_argument(
        "--format", choices=("jsonl", "csv"), help="input format (default: from the extension)"
    )
    _add_credentials(imp)
    imp.add_argument(
        "--checkpoint", type=Path, metavar="PATH", help="checkpoint file (default: FILE.checkpoint)"
    )
    imp.add_argument(
        "--rejects",
        type=Path,
        metavar="PATH",
        help="where failed lines go (default: FILE.rejects.jsonl)",
    )
    imp.add_argument(
        "--dry-run", action="store_true", help="validate the whole file offline; send nothing"
    )
    imp.add_argument(
        "--rate",
        type=_non_negative,
        default=100.0,
        metavar="N",
        help="requests per second, each up to --batch-size operations (default 100; 0: no limit)",
    )
    imp.add_argument(
        "--batch-size",
        type=_positive_int,
        default=2000,
        metavar="N",
        help="operations per /api/v2/batch request at most (default 2000)",
    )
    imp.add_argument(
        "--drain-timeout",
        type=_non_negative,
        default=10.0,
        metavar="S",
        help="seconds to finish in-flight requests when interrupted (default 10)",
    )
    progress = imp.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_const",
        const=True,
        help="draw the progress bar even when stderr is not a terminal",
    )
    progress.add_argument(
        "--no-progress", dest="progress", action="store_const", const=False, help="no progress bar"
    )

    hook = sub.add_parser(
        "verify-webhook",
        help="check a captured reporting webhook against a signing key",
        description=(
            "Verify the X-CIO-Signature of a captured webhook body (the raw bytes, exactly as "
            "received) and print the parsed event, or 'invalid: <reason>' with status 1."
        ),
    )
    hook.add_argument("--body", required=True, metavar="FILE", help="raw body file ('-': stdin)")
    hook.add_argument("--timestamp", metavar="TS", help="the X-CIO-Timestamp header")
    hook.add_argument("--signature", metavar="SIG", help="the X-CIO-Signature header")
    hook.add_argument(
        "--headers",
        metavar="FILE",
        type=Path,
        help="a file of 'Name: value' header lines to read the two headers from",
    )
    hook.add_argument("--key", help=f"the webhook signing key (default: ${ENV_WEBHOOK_KEY})")
    hook.add_argument(
        "--tolerance",
        type=_non_negative,
        default=300.0,
        metavar="S",
        help="accepted clock skew in seconds (default 300)",
    )
    hook.add_argument(
        "--now",
        type=int,
        metavar="TS",
        help="check the replay window as of this Unix time (for old captures)",
    )

    region = sub.add_parser(
        "region", help="print the region and environment id of a workspace's credentials"
    )
    _add_credentials(region)
    return parser


# ----------------------------------------------------------------------------- commands


def _credentials(args: argparse.Namespace) -> tuple[str, str]:
    site = args.site_id or os.environ.get(ENV_SITE_ID)
    key = args.api_key or os.environ.get(ENV_API_KEY)
    if not site or not key:
        raise UsageError(
            "missing credentials: pass --site-id and --api-key "
            f"or set {ENV_SITE_ID} and {ENV_API_KEY}"
        )
    return site, key


@contextlib.contextmanager
def _signals(on_signal: Callable[[str], None]) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``on_signal(name)`` while the block runs (main thread only)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal, signum.name)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            continue  # not the main thread, or Windows: Ctrl-C still works, just harder
        installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def _import(args: argparse.Namespace, *, handle_signals: bool) -> int:
    path: Path = args.file
    fmt = detect_format(path, args.format)
    site: str | None = None
    key: str | None = None
    if not args.dry_run:
        site, key = _credentials(args)
    options = ImportOptions(
        path=path,
        format=fmt,
        checkpoint=args.checkpoint or path.with_name(path.name + ".checkpoint"),
        rejects=args.rejects or path.with_name(path.name + ".rejects.jsonl"),
        site_id=site,
        api_key=key,
        region=args.region,
        track_url=args.track_url,
        dry_run=args.dry_run,
        rate=args.rate,
        batch_size=args.batch_size,
        drain_timeout=args.drain_timeout,
        progress=args.progress,
    )
    job = ImportJob(options)
    if args.dry_run:
        return job.dry_run()
    if not handle_signals:
        return await job.run()
    with _signals(job.request_stop):
        return await job.run()


def read_headers(text: str) -> dict[str, str]:
    """``Name: value`` lines (an HTTP header block; a request or status line is ignored)."""
    headers: dict[str, str] = {}
    for raw in io.StringIO(text):
        name, sep, value = raw.partition(":")
        name = name.strip()
        if sep and name and " " not in name:
            headers[name.lower()] = value.strip()
    return headers


def _read_bytes(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None


def _verify_webhook(args: argparse.Namespace) -> int:
    from .webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_event, verify_signature

    key = args.key or os.environ.get(ENV_WEBHOOK_KEY)
    if not key:
        raise UsageError(f"missing signing key: pass --key or set {ENV_WEBHOOK_KEY}")
    body = _read_bytes(args.body)
    timestamp, signature = args.timestamp, args.signature
    if args.headers is not None:
        headers = read_headers(_read_bytes(str(args.headers)).decode("utf-8", "replace"))
        timestamp = timestamp or headers.get(TIMESTAMP_HEADER.lower())
        signature = signature or headers.get(SIGNATURE_HEADER.lower())
    try:
        ts = verify_signature(
            body, timestamp, signature, key, tolerance=args.tolerance, now=args.now
        )
        event = parse_event(body)
    except WebhookVerificationError as exc:
        print(f"invalid: {exc.reason}: {exc}")
        return 1
    when = _dt.datetime.fromtimestamp(event.timestamp, _dt.timezone.utc)
    data = event.data
    ids = data.identifiers
    who = [name for name in ("id", "email", "cio_id") if getattr(ids, name) is not None]
    print("valid")
    rows: list[tuple[str, Any]] = [
        ("event_id", event.event_id),
        ("event", f"{event.object_type} {event.metric}"),
        ("timestamp", f"{event.timestamp} ({when.isoformat().replace('+00:00', 'Z')})"),
        ("signed_at", ts),
        ("identifiers", ", ".join(who) or "none"),
        ("delivery_id", data.delivery_id),
        ("campaign_id", data.campaign_id),
        ("broadcast_id", data.broadcast_id),
        ("action_id", data.action_id),
        ("transactional_message_id", data.transactional_message_id),
    ]
    for name, value in rows:
        if value is not None:
            print(f"  {name:<25}{value}")
    return 0


async def _region(args: argparse.Namespace) -> int:
    from ._track.client import CustomerIO

    site, key = _credentials(args)
    region = "us" if args.region == "auto" else args.region
    retry = RetryPolicy(direct_attempts=2, backoff_base=0.2, backoff_cap=1.0)
    async with CustomerIO(
        site, key, region=region, track_url=args.track_url, batching=False, retry=retry
    ) as cio:
        info = await cio.get_region()
    print(f"{info.region.value} (environment {info.environment_id}, {info.url})")
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(people=args.people)


async def run(argv: Sequence[str], *, handle_signals: bool = False) -> int:
    """Run a command inside the current event loop; returns the exit status.

    ``main()`` is this plus ``asyncio.run`` and signal handling; tests and embedders call it
    directly.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    return await _dispatch(args, handle_signals=handle_signals)


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


async def _dispatch(args: argparse.Namespace, *, handle_signals: bool) -> int:
    try:
        if args.command == "import":
            return await _import(args, handle_signals=handle_signals)
        if args.command == "verify-webhook":
            return _verify_webhook(args)
        if args.command == "region":
            return await _region(args)
        return await _demo(args)
    except (UsageError, ConfigurationError) as exc:
        return _fail(str(exc), 2)
    except (AuthenticationError, PermissionDeniedError) as exc:
        return _fail(f"Customer.io refused these credentials (HTTP {exc.status_code})", 2)
    except TransportError as exc:
        return _fail(f"cannot reach Customer.io: {exc}", 2)
    except CustomerIOError as exc:
        return _fail(f"{type(exc).__name__}: {exc}", 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status.

    Usage errors, ``--help`` and ``--version`` raise :class:`SystemExit` as argparse does.
    """
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_dispatch(args, handle_signals=True))
    except KeyboardInterrupt:  # pragma: no cover - a Ctrl-C outside the import's handling
        return 130
