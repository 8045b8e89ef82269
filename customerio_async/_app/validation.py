"""Validation and encoding of sends and broadcast triggers, in the caller's task.

Every documented rule is checked before any I/O, so a bad request raises
:class:`ValidationError` (or :class:`LimitExceededError`) where it was made; the result is
the exact JSON body that goes on the wire.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from .._common.wire import check_size, dumps, to_timestamp
from .._config import (
    MAX_ATTACHMENT_BYTES,
    MAX_BROADCAST_BODY_BYTES,
    MAX_BROADCAST_DATA_BYTES,
    MAX_BROADCAST_RECIPIENTS,
    MAX_SEND_AT_AHEAD,
    MAX_SEND_RECIPIENTS,
    MAX_TRANSACTIONAL_BYTES,
)
from .._exceptions import LimitExceededError, ValidationError
from .._identifiers import check_identifier, person_ref

__all__ = [
    "EMAIL",
    "INBOX_MESSAGE",
    "IN_APP",
    "PUSH",
    "SMS",
    "WHATSAPP",
    "SendShape",
    "attachment_size",
    "check_attachment_total",
    "encode_send",
    "encode_trigger",
    "errors_query",
    "positive_int",
]

_SEND_KEYS = ("id", "email", "cio_id")


# ============================================================================ sends


@dataclass(frozen=True, slots=True)
class SendShape:
    """Wire-level rules of one send endpoint (by wire name)."""

    strings: frozenset[str]
    bools: frozenset[str]
    mappings: frozenset[str]
    needs_to: bool = False
    email: bool = False


_COMMON_STRINGS = frozenset({"language"})
_COMMON_BOOLS = frozenset(
    {"disable_message_retention", "queue_draft", "send_to_unsubscribed", "auto_create"}
)
_COMMON_MAPPINGS = frozenset({"message_data"})

EMAIL = SendShape(
    strings=_COMMON_STRINGS
    | {"to", "from", "reply_to", "cc", "bcc", "subject", "preheader", "body"}
    | {"body_plain", "body_amp"},
    bools=_COMMON_BOOLS | {"fake_bcc", "tracked", "disable_css_preprocessing"},
    mappings=_COMMON_MAPPINGS,
    needs_to=True,
    email=True,
)
PUSH = SendShape(
    strings=_COMMON_STRINGS | {"to", "title", "message", "image_url", "link", "sound"},
    bools=_COMMON_BOOLS,
    mappings=_COMMON_MAPPINGS | {"custom_data", "custom_payload", "custom_device"},
)
SMS = SendShape(
    strings=_COMMON_STRINGS | {"to", "from"},
    bools=_COMMON_BOOLS | {"tracked"},
    mappings=_COMMON_MAPPINGS,
    needs_to=True,
)
WHATSAPP = SendShape(
    strings=_COMMON_STRINGS | {"to"},
    bools=_COMMON_BOOLS | {"tracked"},
    mappings=_COMMON_MAPPINGS,
    needs_to=True,
)
INBOX_MESSAGE = SendShape(
    strings=_COMMON_STRINGS | {"to"}, bools=_COMMON_BOOLS, mappings=_COMMON_MAPPINGS
)
IN_APP = SendShape(strings=_COMMON_STRINGS, bools=_COMMON_BOOLS, mappings=_COMMON_MAPPINGS)


def attachment_size(name: str, value: Any) -> int:
    """The decoded size of one base64 attachment.

    Raises:
        ValidationError: ``value`` is not a base64 string.
    """
    if not isinstance(value, str):
        raise ValidationError(
            f"attachment {name!r} must be a base64 string", field=f"attachments.{name}"
        )
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise ValidationError(
            f"attachment {name!r} must be base64 encoded", field=f"attachments.{name}"
        ) from None


def check_attachment_total(total: int) -> None:
    """Refuse attachments totalling 2,000,000 decoded bytes or more.

    Raises:
        LimitExceededError: ``total`` is at or over the limit.
    """
    if total >= MAX_ATTACHMENT_BYTES:
        raise LimitExceededError(
            f"attachments total {total} bytes; the limit is below {MAX_ATTACHMENT_BYTES}",
            size=total,
            limit=MAX_ATTACHMENT_BYTES,
            field="attachments",
        )


def _check_mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"{field} must be a mapping with string keys", field=field)
    return dict(value)


def _check_template(payload: Mapping[str, Any], shape: SendShape) -> None:
    template = payload.get("transactional_message_id")
    if template is None:
        if shape.email and all(payload.get(k) for k in ("body", "subject", "from")):
            return  # a template-less email: body, subject and from stand in for it
        extra = " (or body, subject and from)" if shape.email else ""
        raise ValidationError(
            f"transactional_message_id is required{extra}", field="transactional_message_id"
        )
    if isinstance(template, bool) or not isinstance(template, (int, str)):
        raise ValidationError(
            "transactional_message_id must be an integer id or a trigger name",
            field="transactional_message_id",
        )
    if isinstance(template, int) and template < 1:
        raise ValidationError(
            "transactional_message_id must be a positive integer", field="transactional_message_id"
        )
    if isinstance(template, str) and not template.strip():
        raise ValidationError(
            "transactional_message_id cannot be blank", field="transactional_message_id"
        )


def _check_identifiers(payload: dict[str, Any]) -> None:
    ids = payload.get("identifiers")
    if ids is None:
        raise ValidationError(
            "identifiers is required: exactly one of id, email or cio_id", field="identifiers"
        )
    payload["identifiers"] = person_ref(ids, "identifiers", v2_keys=_SEND_KEYS).identifiers


def _check_types(payload: dict[str, Any], shape: SendShape) -> None:
    for key in shape.strings:
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{key} must be a string", field=key)
    for key in shape.bools:
        value = payload.get(key)
        if value is not None and not isinstance(value, bool):
            raise ValidationError(f"{key} must be a boolean", field=key)
    for key in shape.mappings:
        if payload.get(key) is not None:
            payload[key] = _check_mapping(payload[key], key)


def _check_send_at(payload: dict[str, Any], now: float) -> None:
    if payload.get("send_at") is None:
        return
    send_at = to_timestamp(payload["send_at"], field="send_at")
    if send_at > now + MAX_SEND_AT_AHEAD:
        raise ValidationError("send_at can be at most 90 days in the future", field="send_at")
    payload["send_at"] = send_at


def _count_recipients(payload: Mapping[str, Any]) -> int:
    headers = [payload[k] for k in ("to", "cc", "bcc") if payload.get(k)]
    # getaddresses understands quoted display names ("Doe, Jane" <j@d.io>) and comma lists.
    return sum(1 for name, addr in email.utils.getaddresses(headers) if name or addr)


def _check_headers(value: Any) -> None:
    if isinstance(value, str):
        return  # the spec's declared shape: a JSON string (contract §10 U3)
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError(
            "headers must be a mapping of header names to string values", field="headers"
        )


def _check_email_parts(payload: dict[str, Any]) -> int:
    """Recipients, headers and attachments of an email; returns the attachments' size."""
    count = _count_recipients(payload)
    if count > MAX_SEND_RECIPIENTS:
        raise ValidationError(
            f"to, cc and bcc name {count} recipients; the limit is {MAX_SEND_RECIPIENTS}",
            field="to",
        )
    if payload.get("headers") is not None:
        _check_headers(payload["headers"])
    attachments = payload.get("attachments")
    if attachments is None:
        return 0
    if not isinstance(attachments, Mapping):
        raise ValidationError(
            "attachments must map file names to base64 strings", field="attachments"
        )
    total = sum(attachment_size(str(n), v) for n, v in attachments.items())
    check_attachment_total(total)
    payload["attachments"] = dict(attachments)
    return total


def encode_send(payload: dict[str, Any], shape: SendShape, now: float) -> bytes:
    """Validate a send's wire payload (normalising it in place) and return its JSON body.

    Args:
        payload: The wire-shaped request (a copy: it is normalised in place).
        shape: The endpoint's rules.
        now: Current Unix time, the reference for ``send_at``.

    Raises:
        ValidationError: The request breaks a documented rule.
        LimitExceededError: Attachments ≥ 2,000,000 bytes, or the body without them over
            1,000,000 bytes.
    """
    _check_template(payload, shape)
    _check_identifiers(payload)
    _check_types(payload, shape)
    if shape.needs_to and not (payload.get("to") or "").strip():
        raise ValidationError("to is required", field="to")
    _check_send_at(payload, now)
    attachment_bytes = _check_email_parts(payload) if shape.email else 0
    body = dumps(payload, field="request")
    if len(body) - attachment_bytes > MAX_TRANSACTIONAL_BYTES:
        # Attachments do not count toward the body limit; measure the rest exactly.
        rest = {k: v for k, v in payload.items() if k != "attachments"}
        check_size(len(dumps(rest, field="request")), MAX_TRANSACTIONAL_BYTES, "request body")
    return body


# ============================================================================ broadcasts


def _check_list(value: Any, field: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(f"{field} must be a list", field=field)
    if not value:
        raise ValidationError(
            f"{field} cannot be empty; omit it to use the broadcast's default audience",
            field=field,
        )
    if len(value) > MAX_BROADCAST_RECIPIENTS:
        raise LimitExceededError(
            f"{field} has {len(value)} entries; the limit is {MAX_BROADCAST_RECIPIENTS}",
            size=len(value),
            limit=MAX_BROADCAST_RECIPIENTS,
            field=field,
        )
    return value


def _user_entry(entry: Any, index: int) -> dict[str, Any]:
    where = f"per_user_data[{index}]"
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where} must be a mapping", field=where)
    keys = [k for k in ("id", "email") if k in entry]
    if len(keys) != 1 or set(entry) - {"id", "email", "data"}:
        raise ValidationError(
            f"{where} needs exactly one of id or email, plus an optional data", field=where
        )
    out: dict[str, Any] = {keys[0]: check_identifier(entry[keys[0]], f"{where}.{keys[0]}")}
    if entry.get("data") is not None:
        out["data"] = _check_mapping(entry["data"], f"{where}.data")
    return out


# Which recipient options each audience kind accepts (the official Go SDK drops the others
# because "extra fields cause server-side rejection"; we refuse them instead).
_OPTIONS: dict[str, frozenset[str]] = {
    "default": frozenset(),
    "recipients": frozenset(),
    "ids": frozenset({"id_ignore_missing"}),
    "emails": frozenset({"email_ignore_missing", "email_add_duplicates"}),
    "per_user_data": frozenset(
        {"id_ignore_missing", "email_ignore_missing", "email_add_duplicates"}
    ),
    "data_file_url": frozenset(
        {"id_ignore_missing", "email_ignore_missing", "email_add_duplicates"}
    ),
}


def _audience(kind: str, value: Any) -> Any:
    """The wire value of a ``kind`` audience (never ``default``)."""
    if kind == "recipients":
        filt = _check_mapping(value, "recipients")
        if not filt:
            raise ValidationError(
                "recipients cannot be an empty filter; omit it to use the default audience",
                field="recipients",
            )
        return filt
    if kind in ("ids", "emails"):
        items = _check_list(value, kind)
        return [check_identifier(v, f"{kind}[{i}]") for i, v in enumerate(items)]
    if kind == "per_user_data":
        return [_user_entry(e, i) for i, e in enumerate(_check_list(value, kind))]
    # data_file_url
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise ValidationError("data_file_url must be an http(s) URL", field=kind)
    return value


def _options(kind: str, options: Mapping[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for name, value in options.items():
        if value is None:
            continue
        if not isinstance(value, bool):
            raise ValidationError(f"{name} must be a boolean", field=name)
        if name not in _OPTIONS[kind]:
            raise ValidationError(
                f"{name} does not apply to a {kind.replace('_', ' ')} audience", field=name
            )
        out[name] = value
    return out


def encode_trigger(
    *,
    data: Any,
    audience: Mapping[str, Any],
    options: Mapping[str, Any],
) -> bytes:
    """Validate the parts of a broadcast trigger and return its JSON body.

    Args:
        data: Liquid data for ``{{trigger.*}}``, or ``None``.
        audience: Each audience kind and its value (``None`` when not given).
        options: The recipient options and their values (``None`` when not given).

    Raises:
        ValidationError: More than one audience kind, an empty audience, an option that
            does not apply to the audience, or a malformed entry.
        LimitExceededError: Over 10,000 recipients, ``data`` over 50,000 bytes, or the
            body over 25,000,000 bytes.
    """
    given = {k: v for k, v in audience.items() if v is not None}
    if len(given) > 1:
        raise ValidationError(
            f"give at most one audience, got {', '.join(sorted(given))}", field=min(given)
        )
    payload: dict[str, Any] = {}
    if data is not None:
        payload["data"] = _check_mapping(data, "data")
        check_size(len(dumps(payload["data"], field="data")), MAX_BROADCAST_DATA_BYTES, "data")
    kind = next(iter(given), "default")
    if kind != "default":
        payload[kind] = _audience(kind, given[kind])
    payload.update(_options(kind, options))
    body = dumps(payload, field="trigger")
    check_size(len(body), MAX_BROADCAST_BODY_BYTES, "trigger body")
    return body


def positive_int(value: Any, field: str) -> int:
    """``value`` when it is a positive ``int`` (not a bool).

    Raises:
        ValidationError: Anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{field} must be a positive integer", field=field)
    return value


def errors_query(start: int | None, limit: int | None) -> str:
    """The query string (``?start=…&limit=…``, or empty) of a trigger-errors page.

    Raises:
        ValidationError: ``start`` or ``limit`` is not a non-negative integer.
    """
    query: dict[str, int] = {}
    for name, value in (("start", start), ("limit", limit)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"{name} must be a non-negative integer", field=name)
            query[name] = value
    return "?" + urlencode(query) if query else ""
