"""What App API calls return, and how those values are read from a 2xx response.

A 2xx with an unreadable body raises :class:`ServerError` that says whether the request was
nevertheless applied, so nobody "retries" a message that was sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._exceptions import ServerError
from .._http.messages import HTTPResponse

__all__ = [
    "AppStatistics",
    "BroadcastTrigger",
    "SendResult",
    "TriggerErrors",
    "read_send_result",
    "read_trigger",
    "read_trigger_errors",
]


@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer to a transactional send (``200`` from ``/v1/send/*``).

    Example::

        result = await api.send_email(request)
        await orders.record_delivery(order_id, result.delivery_id)

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

    Example::

        trigger = await api.trigger_broadcast(9, ids=["42", "43"])
        page = await api.get_trigger_errors(9, trigger.id)

    Attributes:
        id: The trigger id; pass it to :meth:`APIClient.get_trigger_errors`.
    """

    id: int


@dataclass(frozen=True, slots=True)
class TriggerErrors:
    """One page of a broadcast trigger's per-recipient errors.

    Example::

        page = await api.get_trigger_errors(9, trigger.id, limit=100)
        while True:
            for line in page.errors:
                print(line)                 # "line 3: no person with id '43'"
            if page.next is None:
                break
            page = await api.get_trigger_errors(9, trigger.id, start=page.next, limit=100)

    Attributes:
        errors: Error lines as Customer.io reports them (``"line 3: ..."``).
        next: Cursor for the next page (pass it as ``start``), or ``None`` on the last page.
    """

    errors: list[str]
    next: int | None = None


@dataclass(frozen=True, slots=True)
class AppStatistics:
    """A cheap snapshot of an :class:`APIClient`'s counters.

    Example::

        stats = api.statistics()
        if stats.outcome_unknown:
            logger.warning("%d sends may or may not have happened", stats.outcome_unknown)

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


def _json_object(response: HTTPResponse) -> dict[str, Any]:
    try:
        doc = json.loads(response.body) if response.body else None
    except (ValueError, UnicodeDecodeError):
        doc = None
    return doc if isinstance(doc, dict) else {}


def _int_or_none(value: Any) -> int | None:
    # Numbers sent as digit strings are read as numbers.
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


def read_send_result(response: HTTPResponse, endpoint: str) -> SendResult:
    """The :class:`SendResult` in a send's 2xx answer.

    Raises:
        ServerError: The body lacks ``delivery_id`` or ``queued_at``; the message says
            that the message was accepted all the same.
    """
    doc = _json_object(response)
    delivery_id, queued_at = doc.get("delivery_id"), _int_or_none(doc.get("queued_at"))
    if not isinstance(delivery_id, str) or queued_at is None:
        # 200 means the message was accepted: say so, so nobody "retries" it.
        raise _unexpected(response, endpoint, "the message WAS accepted: do not resend it")
    return SendResult(delivery_id, queued_at, _int_or_none(doc.get("send_at")))


def read_trigger(response: HTTPResponse, endpoint: str) -> BroadcastTrigger:
    """The :class:`BroadcastTrigger` in a trigger's 2xx answer.

    Raises:
        ServerError: The body lacks an integer ``id``; the message says that the broadcast
            was triggered all the same.
    """
    trigger_id = _int_or_none(_json_object(response).get("id"))
    if trigger_id is None:
        raise _unexpected(response, endpoint, "the broadcast WAS triggered: do not resend it")
    return BroadcastTrigger(trigger_id)


def read_trigger_errors(response: HTTPResponse, endpoint: str) -> TriggerErrors:
    """The :class:`TriggerErrors` page in a 2xx answer.

    Raises:
        ServerError: The body has no ``errors`` list.
    """
    doc = _json_object(response)
    errors = doc.get("errors")
    if not isinstance(errors, list):
        raise _unexpected(response, endpoint, "expected an errors list")
    return TriggerErrors([str(e) for e in errors], _int_or_none(doc.get("next")))
