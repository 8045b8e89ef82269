"""The ``customerio-async`` argument parser: commands, options, and their help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from customerio_async import __version__

from .sdk import ENV_API_KEY, ENV_PIPELINES_WRITE_KEY, ENV_SITE_ID

__all__ = ["ENV_WEBHOOK_KEY", "PROG", "build_parser"]

PROG = "customerio-async"
ENV_WEBHOOK_KEY = "CUSTOMERIO_WEBHOOK_SIGNING_KEY"

IMPORT_DESCRIPTION = (
    "Send every line of FILE through the batching pipeline at the rate limit, with progress, "
    "a resumable checkpoint and a rejects file. JSONL lines look like "
    '{"type": "identify", "id": "42", "attributes": {...}}, '
    '{"type": "event", "id": "42", "name": "purchased", "data": {...}, '
    '"timestamp": 1690000000} or {"type": "device", "id": "42", "device_id": "tok", '
    '"platform": "ios"}; CSV files have a header row with the same field names '
    "(attributes.<name> and data.<name> columns). With --api pipelines each line is a "
    'Segment-spec message for the Data Pipelines API: {"type": "track", "userId": "42", '
    '"event": "Order Completed", "properties": {...}} (identify, track, page, screen, group, '
    "alias; CSV: traits.<name>, properties.<name> and context.<name> columns); a line "
    "without messageId gets one derived from the line, so a resumed run resends the same ids. "
    "Ctrl-C (or SIGTERM) stops reading at once, "
    "lets requests in flight finish for up to --stop-timeout seconds and writes the "
    "checkpoint; a second Ctrl-C stops immediately. Re-run the same command to resume."
)


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


def _add_pipelines(imp: argparse.ArgumentParser) -> None:
    group = imp.add_argument_group("Data Pipelines (--api pipelines)")
    group.add_argument(
        "--api",
        choices=("track", "pipelines"),
        default="track",
        help="track: Track API operations; pipelines: Segment-spec messages (default: track)",
    )
    group.add_argument(
        "--write-key", help=f"the Pipelines source's API key (default: ${ENV_PIPELINES_WRITE_KEY})"
    )
    group.add_argument(
        "--pipelines-url",
        metavar="URL",
        help="Data Pipelines origin override (a proxy or the fake)",
    )


def _add_import_files(imp: argparse.ArgumentParser) -> None:
    imp.add_argument("file", metavar="FILE", type=Path, help="a .jsonl or .csv file")
    imp.add_argument(
        "--format", choices=("jsonl", "csv"), help="input format (default: from the extension)"
    )
    _add_credentials(imp)
    _add_pipelines(imp)
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


def _add_import_pace(imp: argparse.ArgumentParser) -> None:
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
        help="operations per batch request at most (default 2000)",
    )
    imp.add_argument(
        "--stop-timeout",
        type=_non_negative,
        default=5.0,
        metavar="S",
        help="after Ctrl-C or SIGTERM, seconds to let requests in flight finish (default 5)",
    )
    # The old name of --stop-timeout, kept so existing scripts keep working.
    imp.add_argument(
        "--drain-timeout",
        dest="stop_timeout",
        type=_non_negative,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
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
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        help="no progress output (by default: a bar on a terminal, else a line every 10 s)",
    )


def _add_verify_webhook(sub: argparse._SubParsersAction[_Parser]) -> None:
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
        description=IMPORT_DESCRIPTION,
    )
    _add_import_files(imp)
    _add_import_pace(imp)
    _add_verify_webhook(sub)
    region = sub.add_parser(
        "region", help="print the region and environment id of a workspace's credentials"
    )
    _add_credentials(region)
    return parser
