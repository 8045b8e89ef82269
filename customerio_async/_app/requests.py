"""The ``Send*Request`` classes: the official ``customerio`` SDK's shapes, one per channel.

Attributes are plain and mutable, like the official classes; ``None`` means "not sent". The
official classes' parameter order is kept, so positional calls migrate unchanged.
Validation happens when the request is sent (see :mod:`.validation`), so it sees the final
values.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from .._exceptions import ValidationError
from . import validation
from .validation import SendShape, attachment_size, check_attachment_total

__all__ = [
    "SendEmailRequest",
    "SendIdentifiers",
    "SendInAppRequest",
    "SendInboxMessageRequest",
    "SendPushRequest",
    "SendRequest",
    "SendSMSRequest",
    "SendWhatsAppRequest",
    "wire_payload",
]

SendIdentifiers: TypeAlias = "str | int | Mapping[str, str | int]"
"""``{"id": ...}``, ``{"email": ...}`` or ``{"cio_id": ...}`` (ids may be ints, as in the
official SDK); a bare value is read like a Track identifier (``cio_…``, an email, else id)."""


class SendRequest:
    """Behaviour shared by the ``Send*Request`` classes: wire payload and a safe repr."""

    __slots__ = ()
    _PATH: ClassVar[str]  # the endpoint
    _SHAPE: ClassVar[SendShape]  # its wire rules
    # attribute name -> wire name; unlisted attributes keep their own name
    _RENAMES: ClassVar[Mapping[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload this request sends (wire names; unset fields left out).

        Example::

            SendSMSRequest(7, "+15551234567", {"id": "42"}).to_dict()
            # {'transactional_message_id': 7, 'to': '+15551234567', 'identifiers': {'id': '42'}}
        """
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


def wire_payload(cls: type[SendRequest], request: Any) -> dict[str, Any]:
    """A fresh wire payload from an instance of ``cls`` or a wire-shaped mapping (the
    official SDK takes both).

    Raises:
        ValidationError: ``request`` is neither.
    """
    if isinstance(request, cls):
        return request.to_dict()
    if isinstance(request, Mapping):
        return dict(request)
    raise ValidationError(f"request must be a {cls.__name__} or a mapping", field="request")


@dataclass(repr=False, eq=False, slots=True)
class SendEmailRequest(SendRequest):
    """A transactional email (``POST /v1/send/email``), as in the official SDK.

    Give either ``transactional_message_id`` (a template id or trigger name) or ``body``,
    ``subject`` and ``_from``. ``to`` holds one or more comma-separated addresses; ``to``,
    ``cc`` and ``bcc`` together may name at most 15 recipients. ``headers`` is a mapping
    (what every SDK sends) or a JSON string. Add files with :meth:`attach`.

    Example::

        request = SendEmailRequest(
            transactional_message_id=44,
            to="Ada <ada@example.com>",
            identifiers={"id": "42"},
            message_data={"order": 1017},
        )
        request.attach("receipt.pdf", pdf_bytes)
        result = await api.send_email(request)
    """

    _PATH = "/v1/send/email"
    _SHAPE = validation.EMAIL
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

        Example::

            request.attach("receipt.pdf", pdf_bytes)
            request.attach("notes.txt", "Thank you!")
            request.attach("logo.png", logo_base64, encode=False)   # already base64

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
            size = attachment_size(name, text)
        total = size + sum(attachment_size(n, v) for n, v in current.items())
        check_attachment_total(total)
        current[name] = text
        self.attachments = current


@dataclass(repr=False, eq=False, slots=True)
class SendPushRequest(SendRequest):
    """A transactional push (``POST /v1/send/push``), as in the official SDK.

    ``to`` is ``"all"`` (default), ``"last_used"`` or a device token; ``device`` is sent as
    ``custom_device``.

    Example::

        request = SendPushRequest(
            transactional_message_id="order-shipped",
            identifiers={"email": "ada@example.com"},
            title="On its way",
            message="Your order has shipped.",
            link="myapp://orders/1017",
        )
        result = await api.send_push(request)
    """

    _PATH = "/v1/send/push"
    _SHAPE = validation.PUSH
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
class SendSMSRequest(SendRequest):
    """A transactional SMS (``POST /v1/send/sms``), as in the official SDK.

    ``to`` is an E.164 number or Liquid such as ``{{customer.phone}}``.

    Example::

        request = SendSMSRequest(7, "+15551234567", {"id": "42"}, message_data={"code": "481"})
        result = await api.send_sms(request)
    """

    _PATH = "/v1/send/sms"
    _SHAPE = validation.SMS

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
class SendWhatsAppRequest(SendRequest):
    """A transactional WhatsApp message (``POST /v1/send/whatsapp``), as in the official SDK.

    Example::

        request = SendWhatsAppRequest(7, "+15551234567", {"id": "42"}, tracked=False)
        result = await api.send_whatsapp(request)
    """

    _PATH = "/v1/send/whatsapp"
    _SHAPE = validation.WHATSAPP

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
class SendInboxMessageRequest(SendRequest):
    """A transactional inbox message (``POST /v1/send/inbox_message``), as in the official SDK.

    Example::

        request = SendInboxMessageRequest(7, {"id": "42"}, message_data={"plan": "pro"})
        result = await api.send_inbox_message(request)
    """

    _PATH = "/v1/send/inbox_message"
    _SHAPE = validation.INBOX_MESSAGE

    transactional_message_id: int | str | None = None
    identifiers: SendIdentifiers | None = None
    disable_message_retention: bool | None = None
    queue_draft: bool | None = None
    message_data: Mapping[str, Any] | None = None
    send_at: int | _dt.datetime | None = None
    language: str | None = None


@dataclass(repr=False, eq=False, slots=True)
class SendInAppRequest(SendRequest):
    """A transactional in-app message (``POST /v1/send/in_app``), as in the official SDK.

    The workspace must have in-app messaging enabled (otherwise the API answers 403).

    Example::

        request = SendInAppRequest(7, {"id": "42"}, language="fr")
        result = await api.send_in_app(request)
    """

    _PATH = "/v1/send/in_app"
    _SHAPE = validation.IN_APP

    transactional_message_id: int | str | None = None
    identifiers: SendIdentifiers | None = None
    disable_message_retention: bool | None = None
    queue_draft: bool | None = None
    message_data: Mapping[str, Any] | None = None
    send_at: int | _dt.datetime | None = None
    language: str | None = None
