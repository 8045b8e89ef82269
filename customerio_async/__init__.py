"""customerio-async: the asyncio-native Customer.io SDK.

The public surface is exactly what ``__all__`` lists; everything in ``_``-prefixed modules is
private and may change without notice.

PYTEST_DONT_REWRITE: the package ships a pytest plugin (``customerio_async.pytest_plugin``),
so pytest would otherwise rewrite this module and add its helper names to the namespace.
"""

import contextlib as _contextlib

from . import webhooks as webhooks
from ._app import APIClient as APIClient
from ._app import AppStatistics as AppStatistics
from ._app import BroadcastTrigger as BroadcastTrigger
from ._app import SendEmailRequest as SendEmailRequest
from ._app import SendInAppRequest as SendInAppRequest
from ._app import SendInboxMessageRequest as SendInboxMessageRequest
from ._app import SendPushRequest as SendPushRequest
from ._app import SendResult as SendResult
from ._app import SendSMSRequest as SendSMSRequest
from ._app import SendWhatsAppRequest as SendWhatsAppRequest
from ._app import TriggerErrors as TriggerErrors
from ._cdp import PipelinesCall as PipelinesCall
from ._cdp import PipelinesClient as PipelinesClient
from ._config import AppRateLimits as AppRateLimits
from ._config import BatchConfig as BatchConfig
from ._config import DedupConfig as DedupConfig
from ._config import PoolLimits as PoolLimits
from ._config import RateLimit as RateLimit
from ._config import Region as Region
from ._config import RetryPolicy as RetryPolicy
from ._config import Timeouts as Timeouts
from ._exceptions import APIStatusError as APIStatusError
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import BadRequestError as BadRequestError
from ._exceptions import BufferFullError as BufferFullError
from ._exceptions import ClientStateError as ClientStateError
from ._exceptions import ConfigurationError as ConfigurationError
from ._exceptions import ConnectError as ConnectError
from ._exceptions import ConnectionLostError as ConnectionLostError
from ._exceptions import CustomerIOError as CustomerIOError
from ._exceptions import DeliveryError as DeliveryError
from ._exceptions import LimitExceededError as LimitExceededError
from ._exceptions import NotFoundError as NotFoundError
from ._exceptions import OperationDroppedError as OperationDroppedError
from ._exceptions import OperationRejectedError as OperationRejectedError
from ._exceptions import OutcomeUnknownError as OutcomeUnknownError
from ._exceptions import PermissionDeniedError as PermissionDeniedError
from ._exceptions import RateLimitError as RateLimitError
from ._exceptions import RequestTimeoutError as RequestTimeoutError
from ._exceptions import RequestTooLargeError as RequestTooLargeError
from ._exceptions import ServerError as ServerError
from ._exceptions import TransportError as TransportError
from ._exceptions import UnprocessableEntityError as UnprocessableEntityError
from ._exceptions import UnsafeRedirectError as UnsafeRedirectError
from ._exceptions import ValidationError as ValidationError
from ._exceptions import WebhookVerificationError as WebhookVerificationError
from ._http.errors import ErrorDetail as ErrorDetail
from ._http.messages import HTTPMiddleware as HTTPMiddleware
from ._http.messages import HTTPRequest as HTTPRequest
from ._http.messages import HTTPResponse as HTTPResponse
from ._identifiers import Identifier as Identifier
from ._metrics import Metrics as Metrics
from ._pipeline.receipt import FlushResult as FlushResult
from ._pipeline.receipt import Outcome as Outcome
from ._pipeline.receipt import Receipt as Receipt
from ._pipeline.receipt import Statistics as Statistics
from ._track.admission import AdmissionMiddleware as AdmissionMiddleware
from ._track.admission import OperationHandler as OperationHandler
from ._track.admission import OperationMiddleware as OperationMiddleware
from ._track.builders import Object as Object
from ._track.builders import Person as Person
from ._track.builders import object_relationship as object_relationship
from ._track.client import CustomerIO as CustomerIO
from ._track.delivery import Delivery as Delivery
from ._track.operations import Operation as Operation
from ._track.regional import RegionalCustomerIO as RegionalCustomerIO
from ._track.regional import RegionResolver as RegionResolver
from ._track.results import BatchResult as BatchResult
from ._track.results import RegionInfo as RegionInfo
from ._track.validation import DeliveryMetric as DeliveryMetric
from ._track.validation import PushEvent as PushEvent
from ._version import __version__ as __version__

__all__ = [
    "APIClient",
    "APIStatusError",
    "AdmissionMiddleware",
    "AppRateLimits",
    "AppStatistics",
    "AuthenticationError",
    "BadRequestError",
    "BatchConfig",
    "BatchResult",
    "BroadcastTrigger",
    "BufferFullError",
    "ClientStateError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "CustomerIO",
    "CustomerIOError",
    "DedupConfig",
    "Delivery",
    "DeliveryError",
    "DeliveryMetric",
    "ErrorDetail",
    "FlushResult",
    "HTTPMiddleware",
    "HTTPRequest",
    "HTTPResponse",
    "Identifier",
    "LimitExceededError",
    "Metrics",
    "NotFoundError",
    "Object",
    "Operation",
    "OperationDroppedError",
    "OperationHandler",
    "OperationMiddleware",
    "OperationRejectedError",
    "Outcome",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "Person",
    "PipelinesCall",
    "PipelinesClient",
    "PoolLimits",
    "PushEvent",
    "RateLimit",
    "RateLimitError",
    "Receipt",
    "Region",
    "RegionInfo",
    "RegionResolver",
    "RegionalCustomerIO",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "RetryPolicy",
    "SendEmailRequest",
    "SendInAppRequest",
    "SendInboxMessageRequest",
    "SendPushRequest",
    "SendResult",
    "SendSMSRequest",
    "SendWhatsAppRequest",
    "ServerError",
    "Statistics",
    "Timeouts",
    "TransportError",
    "TriggerErrors",
    "UnprocessableEntityError",
    "UnsafeRedirectError",
    "ValidationError",
    "WebhookVerificationError",
    "__version__",
    "object_relationship",
    "webhooks",
]

# Reprs and tracebacks should name the public path, not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("customerio_async._"):
        with _contextlib.suppress(AttributeError, TypeError):  # immutables keep theirs
            _obj.__module__ = __name__
del _name, _obj, _contextlib
