"""An import line becomes an SDK operation: ``identify``, ``track`` or ``add_device`` (Track),
or a Segment-spec Data Pipelines call (``--api pipelines``: :func:`build_call`).

Operations are built by the same code as ``cio.identify()``/``cio.track()``/
``cio.add_device()``, so a bad line fails with the SDK's own :class:`ValidationError`
message (which names fields and limits, never values).

An event line without ``event_id`` gets a deterministic ULID (:func:`derive_event_id`): a
re-run after an interruption resends the *same* ids, so Customer.io discards the events that
had already arrived. A Pipelines line without ``messageId`` gets one the same way.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from customerio_async import Operation, PipelinesCall

from . import sdk
from .readers import PIPELINES_CSV, TRACK_CSV, CsvColumns, Line

__all__ = [
    "FIELDS",
    "LINE_APIS",
    "LineAPI",
    "LineError",
    "build_call",
    "build_operation",
    "derive_event_id",
]

FIELDS: Mapping[str, frozenset[str]] = {
    "identify": frozenset({"type", "id", "attributes"}),
    "event": frozenset({"type", "id", "name", "data", "timestamp", "event_id"}),
    "device": frozenset({"type", "id", "device_id", "platform", "last_used", "attributes"}),
}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class LineError(ValueError):
    """A line that cannot become an operation (its message never contains values)."""


def derive_event_id(identity: str, line: int, raw: bytes, timestamp: int | None) -> str:
    """A deterministic ULID for an event line without ``event_id``.

    The 80 "random" bits are the first 10 bytes of SHA-256(identity, line number, line bytes);
    the 48-bit time part is the event timestamp in milliseconds (0 without one). The result
    is a valid ULID (26 Crockford base32 characters, the first one 0-7), identical on every
    run over the same file, so Customer.io de-duplicates re-sent events.
    """
    digest = hashlib.sha256(
        identity.encode() + b"\x00" + line.to_bytes(8, "big") + b"\x00" + raw
    ).digest()
    value = ((timestamp or 0) * 1000) << 80 | int.from_bytes(digest[:10], "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def _timestamp(value: Any) -> int | None:
    """Unix seconds from seconds, a digit string or an ISO 8601 date-time (UTC if naive)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and not value.strip().isdigit():
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise LineError("timestamp must be Unix seconds or an ISO 8601 date-time") from None
        return sdk.to_timestamp(parsed)
    return sdk.to_timestamp(value)


def _mapping(record: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LineError(f"{key} must be an object")
    return value


def _check_fields(record: Mapping[str, Any]) -> str:
    """The line's type, after checking its field names; raises :class:`LineError`."""
    kind = record.get("type")
    allowed = FIELDS.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise LineError("type must be 'identify', 'event' or 'device'")
    unknown = sorted(set(record) - allowed)
    if unknown:
        hint = ' (attributes go inside "attributes")' if kind != "event" else ""
        raise LineError(
            f"unknown field{'s' if len(unknown) > 1 else ''} for {kind}: "
            + ", ".join(repr(k)[:60] for k in unknown)
            + hint
        )
    if "id" not in record:
        raise LineError("id is required")
    sdk.person_ref(record["id"], "id")  # the SDK's check, reported under this field name
    assert isinstance(kind, str)
    return kind


def _event(line: Line, record: Mapping[str, Any], identity: str) -> Operation:
    if "name" not in record:
        raise LineError("name is required for events")
    timestamp = _timestamp(record.get("timestamp"))
    event_id = record.get("event_id") or derive_event_id(identity, line.number, line.raw, timestamp)
    data = _mapping(record, "data")
    return sdk.event(record["id"], record["name"], data, id=event_id, timestamp=timestamp)


def _device(record: Mapping[str, Any]) -> Operation:
    for key in ("device_id", "platform"):
        if key not in record:
            raise LineError(f"{key} is required for devices")
    extra: dict[str, Any] = {}
    if "last_used" in record:
        extra["last_used"] = _timestamp(record["last_used"])
    attributes = _mapping(record, "attributes")
    if attributes:
        extra["attributes"] = attributes
    return sdk.add_device(record["id"], record["device_id"], record["platform"], extra)


def build_operation(line: Line, identity: str) -> Operation:
    """Turn a parsed line into a validated, serialised operation.

    Raises:
        LineError: Unknown type or fields, missing required fields.
        ValidationError: The SDK refused the values (its own message).
    """
    record = line.record
    assert record is not None
    kind = _check_fields(record)
    if kind == "identify":
        op = sdk.identify(record["id"], _mapping(record, "attributes"))
    elif kind == "event":
        op = _event(line, record, identity)
    else:
        op = _device(record)
    op.v2_bytes()  # serialise and size-check now, exactly as admission would
    return op


def build_call(line: Line, identity: str) -> PipelinesCall:
    """Turn a parsed line (a Segment-spec message: ``type``, ``userId``, ``event``…) into a
    validated, serialised Pipelines call; a line without ``messageId`` gets a deterministic
    one (:func:`derive_event_id` of the line), so a resumed run resends the same ids.

    Raises:
        ValidationError: The SDK refused the message (its own message).
    """
    record = line.record
    assert record is not None
    if record.get("messageId") in (None, ""):
        record = {**record, "messageId": derive_event_id(identity, line.number, line.raw, None)}
    return sdk.pipelines_call(record)


@dataclass(frozen=True, slots=True)
class LineAPI:
    """What an import line means for one API (``--api``)."""

    name: str
    columns: CsvColumns
    build: Callable[[Line, str], Operation | PipelinesCall]


LINE_APIS: Mapping[str, LineAPI] = {
    "track": LineAPI("track", TRACK_CSV, build_operation),
    "pipelines": LineAPI("pipelines", PIPELINES_CSV, build_call),
}
