"""Track API credentials from the command line or the environment."""

from __future__ import annotations

import argparse
import os

from .errors import UsageError
from .sdk import ENV_API_KEY, ENV_SITE_ID

__all__ = ["credentials"]


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
