"""The ``customerio-async`` entry point (also ``python -m customerio_async``): parse, dispatch,
turn failures into one line on stderr and an exit status.

Commands: ``demo`` (:mod:`.demo`), ``import`` (:mod:`.job`), ``verify-webhook``
(:mod:`.webhook`) and ``region`` (:mod:`.region`).

Credentials come from flags or the environment (``CUSTOMERIO_SITE_ID``,
``CUSTOMERIO_API_KEY``, ``CUSTOMERIO_WEBHOOK_SIGNING_KEY``); prefer the environment, since
flags are visible to other users of the machine in ``ps``. Exit status: 0 success, 1 some
lines rejected or dropped (import) or an invalid webhook, 2 bad usage or configuration,
130/143 interrupted by SIGINT/SIGTERM (import: checkpoint written).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from customerio_async import ConfigurationError, CustomerIOError

from .credentials import credentials, write_key
from .dryrun import dry_run
from .errors import CommandError, UsageError, describe, exit_status
from .job import ImportJob, ImportOptions
from .parser import PROG, build_parser
from .progress import Console
from .readers import detect_format
from .region import region
from .stopping import handle_signals
from .webhook import verify_webhook

__all__ = ["main", "run"]


def _import_options(args: argparse.Namespace) -> ImportOptions:
    path: Path = args.file
    pipelines = args.api == "pipelines"
    if pipelines and args.region == "auto":
        raise UsageError(
            "--region auto needs Track credentials; give us or eu with --api pipelines"
        )
    site = key = write = None
    if not args.dry_run:
        if pipelines:
            write = write_key(args)
        else:
            site, key = credentials(args)
    return ImportOptions(
        path=path,
        format=detect_format(path, args.format),
        checkpoint=args.checkpoint or path.with_name(path.name + ".checkpoint"),
        rejects=args.rejects or path.with_name(path.name + ".rejects.jsonl"),
        site_id=site,
        api_key=key,
        region=args.region,
        track_url=args.track_url,
        api=args.api,
        write_key=write,
        pipelines_url=args.pipelines_url,
        dry_run=args.dry_run,
        rate=args.rate,
        batch_size=args.batch_size,
        stop_timeout=args.stop_timeout,
        progress=args.progress,
    )


async def _import(args: argparse.Namespace, console: Console, *, handle: bool) -> int:
    options = _import_options(args)
    if options.dry_run:
        return dry_run(options.path, options.format, console, options.api)
    job = ImportJob(options, out=console.out, err=console.err)
    if not handle:
        return await job.run()
    with handle_signals(job.request_stop):
        return await job.run()


async def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo  # only the demo needs the fake server

    return await run_demo(people=args.people)


async def _dispatch(args: argparse.Namespace, *, handle_signals: bool) -> int:
    console = Console()
    try:
        if args.command == "import":
            return await _import(args, console, handle=handle_signals)
        if args.command == "verify-webhook":
            return verify_webhook(args, console)
        if args.command == "region":
            return await region(args, console)
        return await _demo(args)
    except CommandError as exc:
        return _fail(console, str(exc), exc.status)
    except (UsageError, ConfigurationError, CustomerIOError, OSError) as exc:
        return _fail(console, describe(exc), exit_status(exc))


def _fail(console: Console, message: str, status: int) -> int:
    console.err.write(f"{PROG}: error: {message}\n")
    return status


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


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status.

    Usage errors, ``--help`` and ``--version`` raise :class:`SystemExit` as argparse does.
    """
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_dispatch(args, handle_signals=True))
    except KeyboardInterrupt:  # a Ctrl-C before the import installed its own handling
        return 130
