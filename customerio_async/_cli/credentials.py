"""API credentials from the command line or the environment."""

from __future__ import annotations

import argparse
import os

from .errors import UsageError
from .sdk import ENV_API_KEY, ENV_PIPELINES_WRITE_KEY, ENV_SITE_ID

__all__ = ["credentials", "write_key"]


def credentials(args: argparse.Namespace) -> tuple[str, str]:
    """``(site_id, api_key)`` from ``--site-id``/``--api-key`` or the environment.

    Prefer the environment: flags are visible to other users of the machine in ``ps``.

    Raises:
        UsageError: Either one is missing.
    """
    site = args.site_id or os.environ.get(ENV_SITE_ID)
    key = args.api_key or os.environ.get(ENV_API_KEY)
    if not site or not key:
        raise UsageError(
            "missing credentials: pass --site-id and --api-key "
            f"or set {ENV_SITE_ID} and {ENV_API_KEY}"
        )
    return site, key


def write_key(args: argparse.Namespace) -> str:
    """The Pipelines write key from ``--write-key`` or the environment.

    Raises:
        UsageError: It is missing.
    """
    key = args.write_key or os.environ.get(ENV_PIPELINES_WRITE_KEY)
    if not key:
        raise UsageError(f"missing credentials: pass --write-key or set {ENV_PIPELINES_WRITE_KEY}")
    return str(key)
