"""The App API: transactional sends and API-triggered broadcasts.

The request path, one module a step: :mod:`.requests` (the ``Send*Request`` classes, the
official SDK's shapes) → :mod:`.validation` (every documented rule, checked in the caller's
task, and the JSON body) → :mod:`.client` (:class:`APIClient`: lifecycle, calls, metrics)
→ the shared HTTP stack (:mod:`customerio_async._http`, with the rules of :mod:`.rules`) →
:mod:`.results` (what the calls return, read from the answer).

The package imports only ``_http``, ``_common`` and the leaves (``_config``,
``_exceptions``, ``_identifiers``, ``_metrics``): never the Track client or its pipeline.
"""

from .client import APIClient
from .requests import (
    SendEmailRequest,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendSMSRequest,
    SendWhatsAppRequest,
)
from .results import AppStatistics, BroadcastTrigger, SendResult, TriggerErrors

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
