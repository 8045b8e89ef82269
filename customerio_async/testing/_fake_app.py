"""The App API half of the fake server, and a signed reporting-webhook emitter.

:class:`FakeAppAPI` holds the App API state of :class:`~customerio_async.testing.FakeCustomerIO`
and judges each request by the shared contract: transactional sends (§4.1), API-triggered
broadcasts and their errors (§4.2), the App error envelopes (§4.3) and the fake-server rules
of §9 rule 7. It does no I/O: each handler takes the request body and returns a status and a
JSON payload, which ``_fake.py`` puts on the wire.

:func:`emit_webhook` POSTs one reporting-webhook event the way Customer.io does (§6, §9 rule
9): ``X-CIO-Timestamp`` plus ``X-CIO-Signature``, the lowercase hex HMAC-SHA256 of
``v0:{timestamp}:{raw body}`` keyed with the webhook's signing key.

Like the rest of the fake, nothing here is imported from the client side of the package.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

# --------------------------------------------------------------------------- limits (§4, §7)
MAX_RECIPIENTS: Final = 15  # to + cc + bcc
# "< 2 MB" of attachments: the fake reads MB as MiB and measures decoded bytes, so a
# client that stays under 2,000,000 decoded bytes is never refused.
MAX_ATTACHMENT_BYTES: Final = 2 * 1024 * 1024
MAX_SEND_BYTES: Final = 1024 * 1024  # one send body, attachments excluded
SEND_AT_HORIZON: Final = 90 * 86_400
MAX_BROADCAST_RECIPIENTS: Final = 10_000
MAX_BROADCAST_DATA_BYTES: Final = 50_000
# File types Customer.io refuses as attachments (403); a representative subset.
FORBIDDEN_EXTENSIONS: Final = frozenset(
    {"exe", "bat", "cmd", "com", "cpl", "js", "jar", "msi", "scr", "vbs"}
)
SEND_CHANNELS: Final = frozenset({"email", "push", "sms", "whatsapp", "inbox_message", "in_app"})
_AUDIENCES: Final = ("recipients", "emails", "ids", "per_user_data", "data_file_url")
_OPTIONS: Final[Mapping[str, frozenset[str]]] = {
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
_ALL_OPTIONS: Final = frozenset().union(*_OPTIONS.values())
ERRORS_PAGE_SIZE: Final = 100

Payload = dict[str, Any]
AppReply = tuple[int, Payload]
PersonExists = Callable[[str, str], bool]


@dataclass(frozen=True)
class AppliedSend:
    """One transactional message the fake accepted.

    Example::

        result = await api.send_email(request)
        assert fake.sends[0].delivery_id == result.delivery_id

    Attributes:
        channel: ``email``, ``push``, ``sms``, ``whatsapp``, ``inbox_message`` or ``in_app``.
        delivery_id: The id the fake answered with.
        identifiers: The person (exactly one of ``id``, ``email``, ``cio_id``).
        body: The decoded request body.
        queued_at: Unix seconds when it was accepted.
        send_at: The scheduled time, when it was in the future.
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
    """

    channel: str
    delivery_id: str
    identifiers: dict[str, str]
    body: dict[str, Any]
    queued_at: int
    send_at: int | None
    request_index: int


@dataclass(frozen=True)
class AppliedTrigger:
    """One broadcast trigger the fake accepted.

    Example::

        trigger = await api.trigger_broadcast(9, ids=["42"])
        assert fake.triggers[0].trigger_id == trigger.id

    Attributes:
        broadcast_id: The broadcast (the path's "campaign" id).
        trigger_id: The id the fake answered with.
        audience: ``default``, ``recipients``, ``emails``, ``ids``, ``per_user_data`` or
            ``data_file_url``.
        body: The decoded request body.
        errors: Per-recipient error lines (people the fake's Track store does not know,
            unless the matching ``*_ignore_missing`` option was set).
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
    """

    broadcast_id: int
    trigger_id: int
    audience: str
    body: dict[str, Any]
    errors: list[str] = field(default_factory=list)
    request_index: int = -1


class AppViolation(Exception):
    """A request breaks an App API rule; carries the exact reply."""

    def __init__(self, status: int, payload: Payload) -> None:
        """Create the violation with its HTTP status and JSON body."""
        super().__init__(status)
        self.status = status
        self.payload = payload


def _meta(status: int, message: str) -> AppViolation:
    # Transactional sends answer {"meta": {"error": ...}} (§4.1).
    return AppViolation(status, {"meta": {"error": message}})


def _jsonapi(status: int, detail: str, pointer: str | None = None) -> AppViolation:
    # Broadcast triggers answer JSON:API errors with a *string* status (§4.2, §4.3).
    error: Payload = {"detail": detail, "status": str(status)}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return AppViolation(status, {"errors": [error]})


UNAUTHORIZED: Final[AppReply] = (401, {"errors": [{"detail": "unauthorized", "status": "401"}]})


def bearer_matches(header: str | None, key: str) -> bool:
    """Whether ``header`` is ``Bearer <key>`` (constant-time comparison of the key)."""
    if header is None:
        return False
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), key.encode())


def _json_len(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _parse_object(body: bytes, fail: Callable[[str], AppViolation], *, empty_ok: bool) -> Payload:
    if not body.strip():
        if empty_ok:
            return {}
        raise fail("request body must be a JSON object")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise fail("request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise fail("request body must be a JSON object")
    return value


def _person(value: Any) -> dict[str, str]:
    if (
        not isinstance(value, dict)
        or len(value) != 1
        or next(iter(value)) not in ("id", "email", "cio_id")
    ):
        raise _meta(400, "identifiers must contain exactly one of id, email or cio_id")
    ((key, raw),) = value.items()
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or not str(raw).strip():
        raise _meta(400, f"identifiers.{key} must be a non-blank string")
    return {key: str(raw)}


def _check_attachments(value: Any) -> None:
    if not isinstance(value, dict):
        raise _meta(400, "attachments must be an object of file names to base64 content")
    total = 0
    for name, content in value.items():
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension in FORBIDDEN_EXTENSIONS:
            raise _meta(403, f"Forbidden file type {extension} for attachment {name}.")
        try:
            if not isinstance(content, str):
                raise ValueError(name)
            total += len(base64.b64decode(content, validate=True))
        except (binascii.Error, ValueError):
            raise _meta(400, f'Attachment must be base64 encoded: "{name}"') from None
    if total >= MAX_ATTACHMENT_BYTES:
        raise _meta(413, "Total attachment size exceeds the limit")


class FakeAppAPI:
    """App API state and rules; one per fake server (one workspace)."""

    def __init__(
        self,
        *,
        broadcast_interval: float,
        in_app_enabled: bool,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the rules.

        Args:
            broadcast_interval: Seconds between accepted triggers per workspace (10 in
                production; tests shorten it).
            in_app_enabled: When False, ``/v1/send/in_app`` answers 403.
            clock: Monotonic clock for the trigger rate limit.
            wall_clock: Unix time for ``queued_at`` and ``send_at``.
        """
        if broadcast_interval < 0:
            raise ValueError("broadcast_interval must not be negative")
        self.broadcast_interval = broadcast_interval
        self.in_app_enabled = in_app_enabled
        self._clock = clock
        self._wall = wall_clock
        self.sends: list[AppliedSend] = []
        self.triggers: list[AppliedTrigger] = []
        self._last_trigger: float | None = None
        self._next_trigger_id = 1

    def clear(self) -> None:
        """Forget sends, triggers and the trigger rate-limit window."""
        self.sends.clear()
        self.triggers.clear()
        self._last_trigger = None

    # ----------------------------------------------------------------------- sends

    def send(self, channel: str, body: bytes, request_index: int, record: bool) -> AppReply:
        """Judge and (when ``record``) apply ``POST /v1/send/{channel}``."""
        if channel not in SEND_CHANNELS:
            raise _meta(404, f"unknown send channel {channel}")

        def bad(message: str) -> AppViolation:
            return _meta(400, message)

        payload = _parse_object(body, bad, empty_ok=False)
        if channel == "in_app" and not self.in_app_enabled:
            raise _meta(403, "in-app messaging is not enabled for this workspace")
        template = payload.get("transactional_message_id")
        if template is None:
            if channel != "email" or not all(
                isinstance(payload.get(k), str) and payload[k] for k in ("body", "subject", "from")
            ):
                raise bad("transactional_message_id is required")
        elif isinstance(template, bool) or not isinstance(template, (int, str)) or template == "":
            raise bad("transactional_message_id must be an integer or a trigger name")
        identifiers = _person(payload.get("identifiers"))
        to = payload.get("to")
        if channel in ("email", "sms", "whatsapp") and (not isinstance(to, str) or not to.strip()):
            raise bad("to is required")
        if "message_data" in payload and not isinstance(payload["message_data"], dict):
            raise bad("message_data must be an object")
        now = int(self._wall())
        send_at = payload.get("send_at")
        if send_at is not None:
            if isinstance(send_at, bool) or not isinstance(send_at, int):
                raise bad("send_at must be an integer unix timestamp")
            if send_at > now + SEND_AT_HORIZON:
                raise bad("send_at cannot be more than 90 days in the future")
        if channel == "email":
            self._check_email(payload)
        rest = {k: v for k, v in payload.items() if k != "attachments"}
        if _json_len(rest) > MAX_SEND_BYTES:
            raise _meta(413, "Request body is too large")
        delivery_id = base64.urlsafe_b64encode(os.urandom(18)).decode().rstrip("=")
        reply: Payload = {"delivery_id": delivery_id, "queued_at": now}
        scheduled = send_at if send_at is not None and send_at > now else None
        if scheduled is not None:
            reply["send_at"] = scheduled
        if record:
            self.sends.append(
                AppliedSend(
                    channel, delivery_id, identifiers, payload, now, scheduled, request_index
                )
            )
        return 200, reply

    @staticmethod
    def _check_email(payload: Payload) -> None:
        parts = [payload.get(k) for k in ("to", "cc", "bcc")]
        if any(p is not None and not isinstance(p, str) for p in parts):
            raise _meta(400, "to, cc and bcc must be strings")
        count = sum(
            1 for name, addr in email.utils.getaddresses([p for p in parts if p]) if name or addr
        )
        if count > MAX_RECIPIENTS:
            raise _meta(400, f"too many recipients: {count}; the limit is {MAX_RECIPIENTS}")
        headers = payload.get("headers")
        # Declared a JSON string, sent as an object by every SDK: accept both (§10 U3).
        if not (
            headers is None
            or isinstance(headers, str)
            or (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values()))
        ):
            raise _meta(400, "headers must be an object of strings or a JSON string")
        if "attachments" in payload:
            _check_attachments(payload["attachments"])

    # ----------------------------------------------------------------------- broadcasts

    def trigger(
        self,
        broadcast_segment: str,
        body: bytes,
        request_index: int,
        record: bool,
        person_exists: PersonExists,
    ) -> AppReply:
        """Judge and (when ``record``) apply ``POST /v1/campaigns/{id}/triggers``."""
        broadcast_id = _broadcast_id(broadcast_segment)
        now = self._clock()
        if self._last_trigger is not None and now - self._last_trigger < self.broadcast_interval:
            raise _jsonapi(429, "Your request is over the 1-per-10-seconds broadcast limit.")
        self._last_trigger = now

        def unprocessable(message: str) -> AppViolation:
            return _jsonapi(422, message, "/data")

        payload = _parse_object(body, unprocessable, empty_ok=True)
        given = [k for k in _AUDIENCES if k in payload]
        if len(given) > 1:
            raise unprocessable(f"only one audience may be given, got {', '.join(given)}")
        audience = given[0] if given else "default"
        pointer = f"/data/attributes/{audience}"
        for option in _ALL_OPTIONS & set(payload):
            if option not in _OPTIONS[audience]:
                raise _jsonapi(422, f"{option} is not valid for this audience", pointer)
            if not isinstance(payload[option], bool):
                raise _jsonapi(422, f"{option} must be a boolean", f"/data/attributes/{option}")
        data = payload.get("data")
        if data is not None:
            if not isinstance(data, dict):
                raise _jsonapi(422, "data must be an object", "/data/attributes/data")
            if _json_len(data) > MAX_BROADCAST_DATA_BYTES:
                raise _jsonapi(
                    422,
                    f"data cannot be larger than {MAX_BROADCAST_DATA_BYTES} bytes",
                    "/data/attributes/data",
                )
        errors = self._check_audience(audience, payload, pointer, person_exists)
        trigger_id = self._next_trigger_id
        self._next_trigger_id += 1
        if record:
            self.triggers.append(
                AppliedTrigger(broadcast_id, trigger_id, audience, payload, errors, request_index)
            )
        return 200, {"id": trigger_id}

    @staticmethod
    def _check_audience(
        audience: str, payload: Payload, pointer: str, person_exists: PersonExists
    ) -> list[str]:
        value = payload.get(audience)
        if audience == "recipients":
            if not isinstance(value, dict) or not value:
                # The vendor's wording (NODE CHANGELOG 5.0.1).
                raise _jsonapi(422, "empty recipients filter is not valid", pointer)
            return []
        if audience == "data_file_url":
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                raise _jsonapi(422, "data_file_url must be a URL", pointer)
            return []
        if audience == "default":
            return []
        if not isinstance(value, list) or not value:
            raise _jsonapi(422, f"{audience} must be a non-empty array", pointer)
        if len(value) > MAX_BROADCAST_RECIPIENTS:
            raise _jsonapi(
                422,
                f"{audience} cannot have more than {MAX_BROADCAST_RECIPIENTS} entries",
                pointer,
            )
        errors: list[str] = []
        for line, entry in enumerate(value, start=1):
            if audience == "per_user_data":
                if not isinstance(entry, dict):
                    raise _jsonapi(422, f"{audience} entries must be objects", pointer)
                keys = [k for k in ("id", "email") if k in entry]
                if len(keys) != 1 or not isinstance(entry[keys[0]], str):
                    raise _jsonapi(422, "each entry needs exactly one of id or email", pointer)
                if "data" in entry and not isinstance(entry["data"], dict):
                    raise _jsonapi(422, "per-user data must be an object", pointer)
                kind, ident = keys[0], entry[keys[0]]
            else:
                if not isinstance(entry, str) or not entry:
                    raise _jsonapi(422, f"{audience} entries must be non-empty strings", pointer)
                kind, ident = ("id" if audience == "ids" else "email"), entry
            ignore = payload.get(f"{kind}_ignore_missing") is True
            if not ignore and not person_exists(kind, ident):
                errors.append(f"line {line}: no person with {kind} {ident!r}")
        return errors

    def trigger_errors(
        self, broadcast_segment: str, trigger_segment: str, query: Mapping[str, str]
    ) -> AppReply:
        """``GET /v1/campaigns/{id}/triggers/{trigger_id}/errors``, paginated by
        ``start`` (an offset cursor) and ``limit``."""
        broadcast_id = _broadcast_id(broadcast_segment)
        found = next(
            (
                t
                for t in self.triggers
                if str(t.trigger_id) == trigger_segment and t.broadcast_id == broadcast_id
            ),
            None,
        )
        if found is None:
            raise _jsonapi(404, "the campaign ID or trigger ID do not exist")
        try:
            start = int(query.get("start", "0"))
            limit = int(query.get("limit", str(ERRORS_PAGE_SIZE)))
        except ValueError:
            raise _jsonapi(400, "start and limit must be integers") from None
        if start < 0 or limit < 1:
            raise _jsonapi(400, "start must be >= 0 and limit >= 1")
        page = found.errors[start : start + limit]
        reply: Payload = {"errors": page}
        if start + limit < len(found.errors):
            reply["next"] = start + limit
        return 200, reply


def _broadcast_id(segment: str) -> int:
    if not segment.isdigit() or int(segment) < 1:
        raise _jsonapi(404, "The broadcast_id does not exist.")
    return int(segment)


# --------------------------------------------------------------------------- webhooks


def sign_webhook(body: bytes, signing_key: str, timestamp: int | str) -> str:
    """The ``X-CIO-Signature`` for ``body``: hex HMAC-SHA256 of ``v0:{ts}:{body}`` (§6)."""
    message = b"v0:" + str(timestamp).encode() + b":" + body
    return hmac.new(signing_key.encode(), message, hashlib.sha256).hexdigest()


async def emit_webhook(
    url: str,
    event: Mapping[str, Any] | bytes,
    signing_key: str,
    *,
    timestamp: int | None = None,
    timeout: float = 4.0,
) -> int:
    """POST one signed reporting-webhook event to ``url``, like Customer.io does.

    Args:
        url: The receiver's URL.
        event: The event object (serialised compactly) or the exact raw body to send.
        signing_key: The webhook's signing key.
        timestamp: ``X-CIO-Timestamp``; defaults to now.
        timeout: Customer.io gives up after 4 seconds.

    Returns:
        The receiver's HTTP status.
    """
    body = (
        event
        if isinstance(event, bytes)
        else json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    )
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Customer.io Reporting Webhooks (customerio-async fake)",
        "X-CIO-Timestamp": str(ts),
        "X-CIO-Signature": sign_webhook(body, signing_key, ts),
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        await response.read()
        return response.status
