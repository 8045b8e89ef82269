"""``customerio-async verify-webhook``: check a captured reporting webhook against a key."""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import os
import sys
from pathlib import Path
from typing import Any

from customerio_async import WebhookVerificationError
from customerio_async.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookEvent,
    parse_event,
    verify_signature,
)

from .errors import UsageError
from .parser import ENV_WEBHOOK_KEY
from .progress import Console

__all__ = ["read_headers", "verify_webhook"]


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


def _summary_rows(event: WebhookEvent, signed_at: int) -> list[tuple[str, Any]]:
    """What to show of an event: ids, kinds and times; never personal data."""
    when = _dt.datetime.fromtimestamp(event.timestamp, _dt.timezone.utc)
    data = event.data
    ids = data.identifiers
    who = [name for name in ("id", "email", "cio_id") if getattr(ids, name) is not None]
    return [
        ("event_id", event.event_id),
        ("event", f"{event.object_type} {event.metric}"),
        ("timestamp", f"{event.timestamp} ({when.isoformat().replace('+00:00', 'Z')})"),
        ("signed_at", signed_at),
        ("identifiers", ", ".join(who) or "none"),
        ("delivery_id", data.delivery_id),
        ("campaign_id", data.campaign_id),
        ("broadcast_id", data.broadcast_id),
        ("action_id", data.action_id),
        ("transactional_message_id", data.transactional_message_id),
    ]


def verify_webhook(args: argparse.Namespace, console: Console) -> int:
    """Verify and summarise; exit status 0 (valid) or 1 (invalid).

    Raises:
        UsageError: No signing key, or a file that cannot be read.
    """
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
        console.print(f"invalid: {exc.reason}: {exc}")
        return 1
    console.print("valid")
    for name, value in _summary_rows(event, ts):
        if value is not None:
            console.print(f"  {name:<25}{value}")
    return 0
