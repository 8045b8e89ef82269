"""``APIClient``: the App API client (transactional sends and API-triggered broadcasts).

Names and constructor parameters follow the official ``customerio`` 3.x ``APIClient`` and its
``Send*Request`` classes, as coroutines, so migrating is "add ``await``". Every call validates
its request in the caller's task (errors raise there, before any I/O), then sends it over the
same pooled :class:`~customerio_async._transport.AiohttpTransport` the Track client uses, with
``Authorization: Bearer <App API key>``.

**Idempotency and retries.** App API sends and broadcast triggers carry no idempotency key: a
repeated request sends the message (or fires the broadcast) again. So this client retries a
``POST`` only when the request provably did not take effect:

* the connection was never established (:class:`ConnectError`, a connect timeout:
  ``request_sent`` is ``False``), or
* the server answered **429** or **503** (it refused before processing), honouring a
  ``Retry-After`` as a floor (capped at ``RetryPolicy.max_retry_after``) and otherwise backing
  off with full jitter; a 429 also pauses that rate-limit class for every caller.

Any failure after the body may have been written (a timeout waiting for the answer, a
connection reset mid-response) raises :class:`OutcomeUnknownError`, chained to the transport
error, and is never retried. Other 5xx answers (500, 502, 504) raise :class:`ServerError` and
are not retried either: the server may have applied the request. ``GET`` requests (reading a
trigger's errors) are idempotent and are retried on transport errors, 408, 429 and 5xx.
Attempts per call are bounded by ``RetryPolicy.direct_attempts``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import email.utils
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias
from urllib.parse import urlencode, urlsplit

from .._common.lifecycle import SingleUseClient, State
from .._common.wire import check_size, dumps, to_timestamp
from .._config import (
    DEFAULT_APP_RATE_LIMITS,
    DEFAULT_POOL,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ENV_APP_API_KEY,
    MAX_ATTACHMENT_BYTES,
    MAX_BROADCAST_BODY_BYTES,
    MAX_BROADCAST_DATA_BYTES,
    MAX_BROADCAST_RECIPIENTS,
    MAX_SEND_AT_AHEAD,
    MAX_SEND_RECIPIENTS,
    MAX_TRANSACTIONAL_BYTES,
    AppRateLimits,
    PoolLimits,
    Region,
    RetryPolicy,
    Timeouts,
    env_or,
    resolve_app_origin,
    resolve_region,
)
from .._exceptions import (
    ConfigurationError,
    LimitExceededError,
    ServerError,
    ValidationError,
)
from .._http.gate import Limiter, LocalLimiter
from .._http.messages import HTTPMiddleware, HTTPRequest, HTTPResponse
from .._http.rules import APIRules
from .._http.stack import HTTPStack
from .._http.transport import AiohttpTransport
from .._identifiers import check_identifier, person_ref
from .._metrics import Metrics, counter, gauge, histogram_family

if TYPE_CHECKING:
    from prometheus_client.core import Metric

__all__ = [
    "APIClient",
    "AppStatistics",
    "BroadcastTrigger",
    "SendEmailRequest",
    "SendInAppRequest",
    "SendInboxMessageRequest",
    "SendPushRequest",
    "SendResult",
    "SendSMSRequest",
    "SendWhatsAppRequest",
    "TriggerErrors",
]

logger = logging.getLogger("customerio_async")

_SEND_KEYS = ("id", "email", "cio_id")

SendIdentifiers: TypeAlias = "str | int | Mapping[str, str | int]"
"""``{"id": ...}``, ``{"email": ...}`` or ``{"cio_id": ...}`` (ids may be ints, as in the
official SDK); a bare value is read like a Track identifier (``cio_…``, an email, else id)."""
# Statuses that prove the server refused before processing: safe to retry any request.
_REFUSED = frozenset({429, 503})
# Further statuses worth retrying when the request is idempotent (GET).
_RETRYABLE_IDEMPOTENT = frozenset({408, 429, 500, 502, 503, 504})


# ============================================================================ results


@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer to a transactional send (``200`` from ``/v1/send/*``).

    Attributes:
        delivery_id: The delivery's id; webhook events for this message carry it.
        queued_at: Unix seconds when Customer.io queued the message.
        send_at: Unix seconds it is scheduled for, when ``send_at`` was in the future.
    """

    delivery_id: str
    queued_at: int
    send_at: int | None = None


@dataclass(frozen=True, slots=True)
class BroadcastTrigger:
    """The answer to :meth:`APIClient.trigger_broadcast`.

    Attributes:
        id: The trigger id; pass it to :meth:`APIClient.get_trigger_errors`.
    """

    id: int


@dataclass(frozen=True, slots=True)
class TriggerErrors:
    """One page of a broadcast trigger's per-recipient errors.

    Attributes:
        errors: Error lines as Customer.io reports them (``"line 3: ..."``).
        next: Cursor for the next page (pass it as ``start``), or ``None`` on the last page.
    """

    errors: list[str]
    next: int | None = None


@dataclass(frozen=True, slots=True)
class AppStatistics:
    """A cheap snapshot of an :class:`APIClient`'s counters.

    Attributes:
        requests: HTTP attempts made (retries included).
        retries: Attempts that were retries.
        in_flight_requests: Attempts currently waiting for an answer.
        bytes_sent: Request body bytes sent, retries included.
        outcome_unknown: Calls that raised :class:`OutcomeUnknownError`.
        retries_by_cause: Retries by cause (``http_429``, ``ConnectError``...).
        state: ``new``, ``open`` or ``closed``.
    """

    requests: int
    retries: int
    in_flight_requests: int
    bytes_sent: int
    outcome_unknown: int
    retries_by_cause: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})
    )
    state: str = "open"


# ============================================================================ requests


class _SendRequest:
    """Behaviour shared by the ``Send*Request`` classes (the official SDK's shapes).

    Attributes are plain and mutable, like the official classes; ``None`` means "not sent".
    Validation happens when the request is sent, so it sees the final values.
    """

    __slots__ = ()
    _PATH: ClassVar[str]
    # attribute name -> wire name; unlisted attributes keep their own name
    _RENAMES: ClassVar[Mapping[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload this request sends (wire names; unset fields left out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None:
                out[self._RENAMES.get(f.name, f.name)] = value
        return out

    # The official SDK's spelling, for code that called it.
    _to_dict = to_dict

    def __repr__(self) -> str:
        # Field names only: values are personal data and message content.
        names = ", ".join(self.to_dict())
        return f"{type(self).__name__}(fields=[{names}])"


# The official classes' parameter order is kept, so positional calls migrate unchanged.


@dataclass(repr=False, eq=False, slots=True)
class SendEmailRequest(_SendRequest):
    """A transactional email (``POST /v1/send/email``), as in the official SDK.

    Give either ``transactional_message_id`` (a template id or trigger name) or ``body``,
    ``subject`` and ``_from``. ``to`` holds one or more comma-separated addresses; ``to``,
    ``cc`` and ``bcc`` together may name at most 15 recipients. ``headers`` is a mapping
    (what every SDK sends) or a JSON string. Add files with :meth:`attach`.
    """

    _PATH = "/v1/send/email"
    _RENAMES: ClassVar[Mapping[str, str]] = {"_from": "from"}

    transactional_message_id: int | str | None = None
    to: str | None = None
    identifiers: SendIdentifiers | None = None
    _from: str | None = None
    headers: Mapping[str, str] | str | None = None
    reply_to: str | None = None
    cc: str | None = None
    bcc: str | None = None
    subject: str | None = None
    preheader: str | None = None
    body: str | None = None
    body_plain: str | None = None
    body_amp: str | None = None
    fake_bcc: bool | None = None
    disable_message_retention: bool | None = None
    send_to_unsubscribed: bool | None = None
    tracked: bool | None = None
    queue_draft: bool | None = None
    message_data: Mapping[str, Any] | None = None
    attachments: dict[str, str] | None = None
    disable_css_preprocessing: bool | None = None
    send_at: int | _dt.datetime | None = None
    language: str | None = None

    def attach(self, name: str, content: str | bytes, encode: bool = True) -> None:
        """Add an attachment, base64-encoding it (as the official ``attach`` does).

        Args:
            name: The file name Customer.io shows, e.g. ``"receipt.pdf"``.
            content: The file; ``str`` is encoded as UTF-8 first.
            encode: ``False`` when ``content`` is already base64 text.

        Raises:
            ValidationError: A blank or duplicate name, or ``encode=False`` content that is
                not base64.
            LimitExceededError: The attachments would total 2,000,000 bytes or more
                (decoded).
        """
        if not isinstance(name, str) or not name:
            raise ValidationError("attachment names must be non-empty strings", field="attachments")
        current = dict(self.attachments or {})
        if name in current:
            raise ValidationError(f"attachment {name!r} already exists", field="attachments")
        if encode:
            raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            size, text = len(raw), base64.b64encode(raw).decode("ascii")
        else:
            text = content.decode("ascii", "replace") if isinstance(content, bytes) else content
            size = _decoded_size(name, text)
        total = size + sum(_decoded_size(n, v) for n, v in current.items())
        _check_attachment_total(total)
        current[name] = text
        self.attachments = current


@dataclass(repr=False, eq=False, slots=True)
class SendPushRequest(_SendRequest):
    """A transactional push (``POST /v1/send/push``), as in the official SDK.

    ``to`` is ``"all"`` (default), ``"last_used"`` or a device token; ``device`` is sent as
    ``custom_device``.
    """

    _PATH = "/v1/send/push"
    _RENAMES: ClassVar[Mapping[str, str]] = {"device": "custom_device"}

    transactional_message_id: int | str | None = None
    to: str | None = None
    identifiers: SendIdentifiers | None = None
    title: str | None = None
    message: str | None = None
    disable_message_retention: bool | None = None
    send_to_unsubscribed: bool | None = None
    queue_draft: bool | None = None
    message_data: Mapping[str, Any] | None = None
    send_at: int | _dt.datetime | None = None
    language: str | None = None
    image_url: str | None = None
    link: str | None = None
    custom_data: Mapping[str, Any] | None = None
    custom_payload: Mapping[str, Any] | None = None
    device: Mapping[str, Any] | None = None
    sound: str | None = None


@dataclass(repr=False, eq=False, slots=True)
class SendSMSRequest(_SendRequest):
    """A transactional SMS (``POST /v1/send/sms``), as in the official SDK.

    ``to`` is an E.164 number or Liquid such as ``{{customer.phone}}``.
    """

    _PATH = "/v1/send/sms"

    transactional_message_id: int | str | None = None
    to: str | None = None
    identifiers: SendIdentifiers | None = None
    disable_message_retention: bool | None = None
    send_to_unsubscribed: bool | None = None
    queue_draft: bool | None = None
    message_data: Mapping[str, Any] | None = None
    send_at: int | _dt.datetime | None = None
    language: str | None = None


@dataclass(repr=False, eq=False, slots=True)
class SendWhatsAppRequest(_SendRequest):
    """A transactional WhatsApp message (``POST /v1/send/whatsapp``), as in the official SDK."""

    _PATH = "/v1/send/whatsapp"

    transactional_message_id: int | str | None = None
    to: str | None = None
    identifiers: SendIdentifiers | None = None
    tracked: bool | None = None
    disable_message_retention: bool | None = None
    send_to_unsubscribed: bool | None = None
    queue_draft: bool | None = None
    message_data: Mapping[str, Any] | None = None
    send_at: int | _dt.datetime | None = None
    language: str | None = None


@dataclass(repr=False, eq=False, slots=True)
class SendInboxMessageRequest(_SendRequest):
    """A transactional inbox message (``POST /v1/send/inbox_message``), as in the official SDK."""

    _PATH = "/v1/send/inbox_message"

    transactional_message_id: int | str | None = None
    identifiers: SendIdentifiers | None = None
    disable_message_retention: bool | None = None
    queue_draft: bool | None = None
    message_data: Mapping[str, Any] | None = None
    send_at: int | _dt.datetime | None = None
    language: str | None = None


@dataclass(repr=False, eq=False, slots=True)
class SendInAppRequest(_SendRequest):
    """A transactional in-app message (``POST /v1/send/in_app``), as in the official SDK.

    The workspace must have in-app messaging enabled (otherwise the API answers 403).
    """

    _PATH = "/v1/send/in_app"

    transactional_message_id: int | str | None = None
    identifiers: SendIdentifiers | None = None
    disable_message_retention: bool | None = None
    queue_draft: bool | None = None
    message_data: Mapping[str, Any] | None = None
    send_at: int | _dt.datetime | None = None
    language: str | None = None


# ============================================================================ validation


@dataclass(frozen=True, slots=True)
class _Shape:
    """Wire-level rules of one send endpoint."""

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

_SHAPES: dict[type[_SendRequest], _Shape] = {
    SendEmailRequest: _Shape(
        strings=_COMMON_STRINGS
        | {"to", "from", "reply_to", "cc", "bcc", "subject", "preheader", "body"}
        | {"body_plain", "body_amp"},
        bools=_COMMON_BOOLS | {"fake_bcc", "tracked", "disable_css_preprocessing"},
        mappings=_COMMON_MAPPINGS,
        needs_to=True,
        email=True,
    ),
    SendPushRequest: _Shape(
        strings=_COMMON_STRINGS | {"to", "title", "message", "image_url", "link", "sound"},
        bools=_COMMON_BOOLS,
        mappings=_COMMON_MAPPINGS | {"custom_data", "custom_payload", "custom_device"},
    ),
    SendSMSRequest: _Shape(
        strings=_COMMON_STRINGS | {"to", "from"},
        bools=_COMMON_BOOLS | {"tracked"},
        mappings=_COMMON_MAPPINGS,
        needs_to=True,
    ),
    SendWhatsAppRequest: _Shape(
        strings=_COMMON_STRINGS | {"to"},
        bools=_COMMON_BOOLS | {"tracked"},
        mappings=_COMMON_MAPPINGS,
        needs_to=True,
    ),
    SendInboxMessageRequest: _Shape(
        strings=_COMMON_STRINGS | {"to"}, bools=_COMMON_BOOLS, mappings=_COMMON_MAPPINGS
    ),
    SendInAppRequest: _Shape(
        strings=_COMMON_STRINGS, bools=_COMMON_BOOLS, mappings=_COMMON_MAPPINGS
    ),
}


def _decoded_size(name: str, value: Any) -> int:
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


def _check_attachment_total(total: int) -> None:
    if total >= MAX_ATTACHMENT_BYTES:
        raise LimitExceededError(
            f"attachments total {total} bytes; the limit is below {MAX_ATTACHMENT_BYTES}",
            size=total,
            limit=MAX_ATTACHMENT_BYTES,
            field="attachments",
        )


def _check_template(payload: Mapping[str, Any], shape: _Shape) -> None:
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


def _validate_send(
    payload: dict[str, Any], shape: _Shape, now: float
) -> tuple[dict[str, Any], int]:
    """Validate a wire payload in place; return it and its attachments' total size."""
    _check_template(payload, shape)
    ids = payload.get("identifiers")
    if ids is None:
        raise ValidationError(
            "identifiers is required: exactly one of id, email or cio_id", field="identifiers"
        )
    payload["identifiers"] = person_ref(ids, "identifiers", v2_keys=_SEND_KEYS).identifiers
    for key in shape.strings:
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{key} must be a string", field=key)
    for key in shape.bools:
        value = payload.get(key)
        if value is not None and not isinstance(value, bool):
            raise ValidationError(f"{key} must be a boolean", field=key)
    for key in shape.mappings:
        value = payload.get(key)
        if value is not None:
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ValidationError(f"{key} must be a mapping with string keys", field=key)
            payload[key] = dict(value)
    if shape.needs_to and not (payload.get("to") or "").strip():
        raise ValidationError("to is required", field="to")
    if payload.get("send_at") is not None:
        send_at = to_timestamp(payload["send_at"], field="send_at")
        if send_at > now + MAX_SEND_AT_AHEAD:
            raise ValidationError("send_at can be at most 90 days in the future", field="send_at")
        payload["send_at"] = send_at
    attachment_bytes = 0
    if shape.email:
        count = _count_recipients(payload)
        if count > MAX_SEND_RECIPIENTS:
            raise ValidationError(
                f"to, cc and bcc name {count} recipients; the limit is {MAX_SEND_RECIPIENTS}",
                field="to",
            )
        if payload.get("headers") is not None:
            _check_headers(payload["headers"])
        attachments = payload.get("attachments")
        if attachments is not None:
            if not isinstance(attachments, Mapping):
                raise ValidationError(
                    "attachments must map file names to base64 strings", field="attachments"
                )
            total = sum(_decoded_size(str(n), v) for n, v in attachments.items())
            _check_attachment_total(total)
            payload["attachments"] = dict(attachments)
            attachment_bytes = total
    return payload, attachment_bytes


def encode_send(cls: type[_SendRequest], request: Any, now: float) -> bytes:
    """Validate a ``Send*Request`` (or a wire-shaped mapping) and return its JSON body.

    Raises:
        ValidationError: The request breaks a documented rule.
        LimitExceededError: Attachments ≥ 2,000,000 bytes, or the body without them over
            1,000,000 bytes.
    """
    if isinstance(request, cls):
        payload = request.to_dict()
    elif isinstance(request, Mapping):
        payload = dict(request)  # the official SDK also takes a wire-shaped dict
    else:
        raise ValidationError(f"request must be a {cls.__name__} or a mapping", field="request")
    payload, attachment_bytes = _validate_send(payload, _SHAPES[cls], now)
    body = dumps(payload, field="request")
    if len(body) - attachment_bytes > MAX_TRANSACTIONAL_BYTES:
        rest = {k: v for k, v in payload.items() if k != "attachments"}
        check_size(len(dumps(rest, field="request")), MAX_TRANSACTIONAL_BYTES, "request body")
    return body


def _check_mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"{field} must be a mapping with string keys", field=field)
    return dict(value)


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


def encode_trigger(
    *,
    data: Any,
    audience: Mapping[str, Any],
    options: Mapping[str, Any],
) -> bytes:
    """Validate the parts of a broadcast trigger and return its JSON body.

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
    if kind == "recipients":
        filt = _check_mapping(given[kind], "recipients")
        if not filt:
            raise ValidationError(
                "recipients cannot be an empty filter; omit it to use the default audience",
                field="recipients",
            )
        payload["recipients"] = filt
    elif kind in ("ids", "emails"):
        items = _check_list(given[kind], kind)
        payload[kind] = [check_identifier(v, f"{kind}[{i}]") for i, v in enumerate(items)]
    elif kind == "per_user_data":
        items = _check_list(given[kind], kind)
        payload[kind] = [_user_entry(e, i) for i, e in enumerate(items)]
    elif kind == "data_file_url":
        url = given[kind]
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ValidationError("data_file_url must be an http(s) URL", field=kind)
        payload[kind] = url
    for name, value in options.items():
        if value is None:
            continue
        if not isinstance(value, bool):
            raise ValidationError(f"{name} must be a boolean", field=name)
        if name not in _OPTIONS[kind]:
            raise ValidationError(
                f"{name} does not apply to a {kind.replace('_', ' ')} audience", field=name
            )
        payload[name] = value
    body = dumps(payload, field="trigger")
    check_size(len(body), MAX_BROADCAST_BODY_BYTES, "trigger body")
    return body


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{field} must be a positive integer", field=field)
    return value


# ============================================================================ responses


def _json_object(response: HTTPResponse) -> dict[str, Any]:
    try:
        doc = json.loads(response.body) if response.body else None
    except (ValueError, UnicodeDecodeError):
        doc = None
    return doc if isinstance(doc, dict) else {}


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _unexpected(response: HTTPResponse, endpoint: str, what: str) -> ServerError:
    return ServerError(
        f"{endpoint} answered HTTP {response.status} with an unexpected body; {what}",
        status_code=response.status,
        headers=response.headers,
    )


# ============================================================================ client


def app_rules(limits: AppRateLimits | None) -> APIRules:
    """The App API's rules: only ``GET`` may be repeated when its outcome is unknown (sends
    and triggers have no idempotency key); a ``POST`` is retried only on statuses that prove
    the server did not act (408, 425, 429, 503). One rate-limit class per kind of call."""
    limits = limits or AppRateLimits(transactional=None, general=None, broadcast=None)
    return APIRules(
        api="app",
        repeatable_methods=frozenset({"GET"}),
        credentials="the App API key",
        buckets=MappingProxyType(
            {
                "transactional": limits.transactional,
                "general": limits.general,
                "broadcast": limits.broadcast,
            }
        ),
    )


class APIClient(SingleUseClient):
    """Asyncio client for Customer.io's App API: transactional messages and broadcasts.

    Use it as an async context manager; the pooled aiohttp session lives exactly as long as
    the ``async with`` block::

        async with APIClient("APP_API_KEY", region="eu") as api:
            request = SendEmailRequest(
                transactional_message_id=44, to="ada@example.com", identifiers={"id": "42"}
            )
            request.attach("receipt.pdf", pdf_bytes)
            result = await api.send_email(request)          # SendResult(delivery_id=...)
            trigger = await api.trigger_broadcast(9, ids=["42", "43"], data={"sale": "30%"})

    Sends and triggers are never retried once the request may have reached Customer.io
    (there is no idempotency key): such failures raise :class:`OutcomeUnknownError`. See the
    module documentation for the exact retry rules.

    Args:
        key: The App API key (Bearer); defaults to ``$CUSTOMERIO_APP_API_KEY``.
        region: ``"us"``, ``"eu"`` or a :class:`Region`.
        api_url: Origin override such as ``http://127.0.0.1:8080`` (``/v1/...`` is
            appended; a trailing ``/v1`` is tolerated), for tests and proxies.
        url: The official SDK's name for ``api_url``; give one or the other.
        retry: Backoff settings; ``direct_attempts`` bounds the attempts per call.
        rate_limits: Client-side limits per class (transactional 100/s, general 10/s,
            broadcast triggers 1 per 10 s); ``None`` disables them all.
        timeouts: Per-request time limits.
        pool: Connection-pool limits.
        user_agent: Replaces the default ``customerio-async/<version> ...`` User-Agent.
        http_middleware: Your HTTP middleware, ``async def mw(request, call_next)``, as for
            :class:`CustomerIO`: they run inside the retry and rate-limit layers, once per
            attempt (``request.api == "app"``), outside the accounting layer.
        metrics: Where Prometheus metrics go (default: a private registry,
            ``api.metrics.registry``). Share one :class:`Metrics` with your
            :class:`CustomerIO` clients to export them together: request latency lands in
            ``customerio_http_request_duration_seconds{api="app"}``, plus
            ``customerio_app_retries_total``, ``customerio_app_outcome_unknown_total``,
            ``customerio_app_bytes_sent_total`` and ``customerio_app_in_flight_requests``.

    Raises:
        ConfigurationError: Missing key, unknown region, or a bad ``api_url``.
    """

    _usage = "async with APIClient(...) as api:"

    def __init__(
        self,
        key: str | None = None,
        *,
        region: Region | str = Region.US,
        api_url: str | None = None,
        url: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limits: AppRateLimits | None = DEFAULT_APP_RATE_LIMITS,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        pool: PoolLimits = DEFAULT_POOL,
        user_agent: str | None = None,
        http_middleware: Sequence[HTTPMiddleware] = (),
        metrics: Metrics | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        app_key = env_or(key, ENV_APP_API_KEY, "key (the App API key)")
        if app_key != app_key.strip() or any(c in app_key for c in "\r\n\t "):
            raise ConfigurationError("key must not contain whitespace")
        if api_url is not None and url is not None:
            raise ConfigurationError("give api_url or url, not both")
        self._region = resolve_region(region)
        self._origin = resolve_app_origin(self._region, api_url if api_url is not None else url)
        self._transport = AiohttpTransport(
            origin=self._origin,
            authorization=f"Bearer {app_key}",
            timeouts=timeouts,
            pool=pool,
            user_agent=user_agent,
        )
        # The same HTTP path as CustomerIO (see _http), with the App API's rules.
        rules = app_rules(rate_limits)
        self._http = HTTPStack(
            self._transport,
            rules=rules,
            policy=retry,
            gate=(limiter or LocalLimiter()).gate(
                api="app",
                workspace=hashlib.sha256(app_key.encode()).hexdigest()[:16],
                buckets=rules.buckets,
            ),
            middleware=http_middleware,
        )
        self.metrics: Metrics = metrics if metrics is not None else Metrics()
        self._state = State.NEW

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return (
            f"<APIClient region={self._region.value!r} origin={self._origin!r} "
            f"state={self._state.value!r}>"
        )

    @property
    def region(self) -> Region:
        """The configured region."""
        return self._region

    @property
    def origin(self) -> str:
        """The App API origin requests go to."""
        return self._origin

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create the connection pool. ``async with`` calls this.

        Raises:
            ClientStateError: When the client was already opened or closed (a client is
                single-use: create a new one instead of reopening).
        """
        self._begin_open()
        await self._transport.open()
        self._state = State.OPEN
        try:
            self.metrics.attach(self)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent; later calls raise :class:`ClientStateError`."""
        if self._state is State.CLOSED:
            return
        self._state = State.CLOSED
        await self._transport.aclose()

    def _check_open(self) -> None:
        self._check_state()

    def statistics(self) -> AppStatistics:
        """A cheap snapshot of the client's counters (requests, retries, outcome-unknown)."""
        accounting = self._http.accounting
        counters = self._http.counters
        return AppStatistics(
            requests=accounting.requests,
            retries=counters.retries,
            in_flight_requests=accounting.in_flight,
            bytes_sent=accounting.bytes_sent,
            outcome_unknown=counters.outcome_unknown,
            retries_by_cause=MappingProxyType(dict(counters.by_cause)),
            state=self._state.value,
        )

    # ------------------------------------------------------------------ metrics

    @property
    def metrics_label(self) -> str:
        """This client's key in a shared :class:`Metrics` (``"us:app"``/``"eu:app"``), so
        it can share one with the Track client of the same region."""
        return f"{self._region.value}:app"

    def metric_families(self, prefix: str) -> Iterable[Metric]:
        """This client's Prometheus families (see :class:`Metrics`)."""
        region = self._region.value
        accounting = self._http.accounting
        counters = self._http.counters
        latency = [
            ([region, api, endpoint, status], hist)
            for (api, endpoint, _, status), hist in list(accounting.latency.series.items())
        ]
        only = ["region"]
        return [
            histogram_family(
                f"{prefix}http_request_duration_seconds",
                "HTTP request latency per attempt (endpoint templates only).",
                ["region", "api", "endpoint", "status_class"],
                latency,
            ),
            counter(
                f"{prefix}app_retries",
                "App API attempts retried, by cause.",
                ["region", "cause"],
                [([region, cause], n) for cause, n in counters.by_cause.items()],
            ),
            counter(
                f"{prefix}app_outcome_unknown",
                "App API sends/triggers that may have been applied and were not retried.",
                only,
                [([region], counters.outcome_unknown)],
            ),
            counter(
                f"{prefix}app_bytes_sent",
                "App API request body bytes sent.",
                only,
                [([region], accounting.bytes_sent)],
            ),
            gauge(
                f"{prefix}app_in_flight_requests",
                "App API requests on the wire now.",
                only,
                [([region], accounting.in_flight)],
            ),
        ]

    # ------------------------------------------------------------------ transport

    async def _request(
        self, method: str, path: str, body: bytes | None, endpoint: str, bucket: str
    ) -> HTTPResponse:
        """Send with the App API's retry rules (module docstring); a 2xx or raise."""
        self._check_open()
        request = HTTPRequest(
            method, path, body, endpoint, api="app", region=self._region.value, bucket=bucket
        )
        return await self._http.call_ok(request)

    async def _send(self, cls: type[_SendRequest], request: Any) -> SendResult:
        self._check_open()
        body = encode_send(cls, request, time.time())
        response = await self._request("POST", cls._PATH, body, cls._PATH, "transactional")
        doc = _json_object(response)
        delivery_id, queued_at = doc.get("delivery_id"), _int_or_none(doc.get("queued_at"))
        if not isinstance(delivery_id, str) or queued_at is None:
            # 200 means the message was accepted: say so, so nobody "retries" it.
            raise _unexpected(response, cls._PATH, "the message WAS accepted: do not resend it")
        return SendResult(delivery_id, queued_at, _int_or_none(doc.get("send_at")))

    # ------------------------------------------------------------------ sends

    async def send_email(self, request: SendEmailRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional email.

        Args:
            request: A :class:`SendEmailRequest`, or its wire-shaped dict.

        Returns:
            The delivery id and queue time.

        Raises:
            ValidationError: Before any I/O: not exactly one identifier, more than 15
                recipients, ``send_at`` beyond 90 days, attachments not base64...
            LimitExceededError: Attachments of 2,000,000 bytes or more, or a body over
                1,000,000 bytes without them.
            OutcomeUnknownError: The request may have been applied; it was not retried.
            APIStatusError: The API refused it (``BadRequestError``, ``RateLimitError``...).
            TransportError: It provably never arrived, on every attempt.
        """
        return await self._send(SendEmailRequest, request)

    async def send_push(self, request: SendPushRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional push notification (see :meth:`send_email` for errors)."""
        return await self._send(SendPushRequest, request)

    async def send_sms(self, request: SendSMSRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional SMS (see :meth:`send_email` for errors)."""
        return await self._send(SendSMSRequest, request)

    async def send_whatsapp(self, request: SendWhatsAppRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional WhatsApp message (see :meth:`send_email` for errors)."""
        return await self._send(SendWhatsAppRequest, request)

    async def send_inbox_message(
        self, request: SendInboxMessageRequest | Mapping[str, Any]
    ) -> SendResult:
        """Send a transactional inbox message (see :meth:`send_email` for errors)."""
        return await self._send(SendInboxMessageRequest, request)

    async def send_in_app(self, request: SendInAppRequest | Mapping[str, Any]) -> SendResult:
        """Send a transactional in-app message (see :meth:`send_email` for errors)."""
        return await self._send(SendInAppRequest, request)

    # ------------------------------------------------------------------ broadcasts

    async def trigger_broadcast(
        self,
        broadcast_id: int,
        *,
        data: Mapping[str, Any] | None = None,
        recipients: Mapping[str, Any] | None = None,
        emails: Sequence[str] | None = None,
        ids: Sequence[str | int] | None = None,
        per_user_data: Sequence[Mapping[str, Any]] | None = None,
        data_file_url: str | None = None,
        email_add_duplicates: bool | None = None,
        email_ignore_missing: bool | None = None,
        id_ignore_missing: bool | None = None,
    ) -> BroadcastTrigger:
        """Trigger an API-triggered broadcast (``POST /v1/campaigns/{id}/triggers``).

        Give at most one audience: none (the broadcast's own audience), a ``recipients``
        filter (``and``/``or``/``not``/``segment``/``attribute``), ``emails``, ``ids``,
        ``per_user_data`` (``[{"id"|"email": ..., "data": {...}}]``) or ``data_file_url``.
        Customer.io allows one trigger per 10 seconds per workspace; the client waits for
        its turn (see :class:`AppRateLimits`). The people must already exist.

        Args:
            broadcast_id: The broadcast's id (the path says "campaigns"; it is a broadcast).
            data: Liquid data for ``{{trigger.*}}``, at most 50,000 bytes serialised.
            recipients: An audience filter; never empty.
            emails: Up to 10,000 email addresses.
            ids: Up to 10,000 person ids.
            per_user_data: Up to 10,000 per-person entries.
            data_file_url: URL of a JSON-lines file of per-person entries.
            email_add_duplicates: Emails/per-user data/file audiences only.
            email_ignore_missing: Emails/per-user data/file audiences only.
            id_ignore_missing: Ids/per-user data/file audiences only.

        Returns:
            The trigger, whose ``id`` reads its errors with :meth:`get_trigger_errors`.

        Raises:
            ValidationError: Before any I/O, for the shape rules above.
            LimitExceededError: More than 10,000 entries, or ``data`` too large.
            OutcomeUnknownError: The trigger may have fired; it was not retried.
            APIStatusError: The API refused it (404 unknown broadcast, 422, 429...).
            TransportError: It provably never arrived, on every attempt.
        """
        self._check_open()
        bid = _positive_int(broadcast_id, "broadcast_id")
        body = encode_trigger(
            data=data,
            audience={
                "recipients": recipients,
                "emails": emails,
                "ids": ids,
                "per_user_data": per_user_data,
                "data_file_url": data_file_url,
            },
            options={
                "email_add_duplicates": email_add_duplicates,
                "email_ignore_missing": email_ignore_missing,
                "id_ignore_missing": id_ignore_missing,
            },
        )
        endpoint = "/v1/campaigns/{broadcast_id}/triggers"
        response = await self._request(
            "POST",
            f"/v1/campaigns/{bid}/triggers",
            body,
            endpoint,
            "broadcast",
        )
        trigger_id = _int_or_none(_json_object(response).get("id"))
        if trigger_id is None:
            raise _unexpected(response, endpoint, "the broadcast WAS triggered: do not resend it")
        return BroadcastTrigger(trigger_id)

    async def get_trigger_errors(
        self,
        broadcast_id: int,
        trigger_id: int,
        *,
        start: int | None = None,
        limit: int | None = None,
    ) -> TriggerErrors:
        """Read one page of a trigger's per-recipient errors.

        Args:
            broadcast_id: The broadcast's id.
            trigger_id: :attr:`BroadcastTrigger.id`.
            start: The ``next`` cursor of the previous page.
            limit: Errors per page.

        Raises:
            ValidationError: Non-positive ids, or a negative ``start``/``limit``.
            APIStatusError: The API refused it (404 when either id does not exist).
            TransportError: No answer after every attempt (reads are retried).
        """
        self._check_open()
        bid = _positive_int(broadcast_id, "broadcast_id")
        tid = _positive_int(trigger_id, "trigger_id")
        query: dict[str, int] = {}
        for name, value in (("start", start), ("limit", limit)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValidationError(f"{name} must be a non-negative integer", field=name)
                query[name] = value
        path = f"/v1/campaigns/{bid}/triggers/{tid}/errors"
        if query:
            path += "?" + urlencode(query)
        endpoint = "/v1/campaigns/{broadcast_id}/triggers/{trigger_id}/errors"
        response = await self._request("GET", path, None, endpoint, "general")
        doc = _json_object(response)
        errors = doc.get("errors")
        if not isinstance(errors, list):
            raise _unexpected(response, endpoint, "expected an errors list")
        return TriggerErrors([str(e) for e in errors], _int_or_none(doc.get("next")))
