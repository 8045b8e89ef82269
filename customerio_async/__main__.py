"""Command line: ``python -m customerio_async demo`` (also the ``customerio-async`` script)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="customerio-async", description="customerio-async command line"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="send a realistic mix of operations to an embedded fake")
    demo.add_argument("--people", type=int, default=2000, help="people to simulate (default 2000)")
    args = parser.parse_args(argv)
    from ._demo import run_demo  # the only command so far; argparse rejected anything else

    return asyncio.run(run_demo(people=args.people))


if __name__ == "__main__":
    sys.exit(main())
