"""Every exception customerio-async raises, in one place.

The tree (three levels at most)::

    CustomerIOError
    ├── ConfigurationError (+ ValueError)     bad client configuration: credentials, region, URLs
    ├── ValidationError (+ ValueError)        bad input, raised at the call site before any I/O
    │   └── LimitExceededError                a call-site limit (bytes, count) is exceeded:
    │                                         an attribute, identifier, operation or body
    ├── ClientStateError (+ RuntimeError)     client not opened, already closed, or failed
    ├── BufferFullError                       admission refused: send buffer full (overflow="raise")
    ├── DeliveryError                         an admitted operation was not delivered (wait=True)
    │   ├── OperationRejectedError            refused by the API (or the SDK); never retried
    │   └── OperationDroppedError             given up by the SDK: buffer_full, delivery_timeout…
    ├── TransportError                        no HTTP response: connect, timeout, reset, redirect
    │   ├── ConnectError                      never reached the server (safe to retry anything)
    │   ├── RequestTimeoutError (+ TimeoutError)  no complete answer in time (outcome unknown)
    │   ├── ConnectionLostError               connection dropped mid-exchange (outcome unknown)
    │   ├── OutcomeUnknownError               an App API send/trigger may have been applied;
    │   │                                     not retried (no idempotency key); cause chained
    │   └── UnsafeRedirectError               a 3xx to a host our credentials must not reach
    ├── APIStatusError                        the API answered with an error status
    │   ├── BadRequestError                   400
    │   ├── AuthenticationError               401
    │   ├── PermissionDeniedError             403
    │   ├── NotFoundError                     404
    │   ├── RequestTooLargeError              413: the API refused a request body as too large
    │   ├── UnprocessableEntityError          422
    │   ├── RateLimitError                    429 (``retry_after`` when the server sent one)
    │   └── ServerError                       5xx
    ├── WebhookVerificationError (+ ValueError)  a webhook failed verification (``.reason``)
    └── GiveUp                                internal: a batched delivery was abandoned; the
                                              pipeline turns it into dropped(reason) and it
                                              never reaches user code

``LimitExceededError`` (our check, before any I/O: ``.size``, ``.limit``, ``.field``) and
``RequestTooLargeError`` (the API's 413 answer) are deliberately unrelated: the first is a
``ValidationError`` you fix in your call, the second an ``APIStatusError`` from the wire.
An unexpected status that is neither listed nor 5xx (408, an unlisted 4xx) is raised as the
base ``APIStatusError``.

Builtin bases are chosen deliberately: validation and configuration errors are also
``ValueError`` so generic ``except ValueError`` code keeps working; a request timeout is also
the builtin ``TimeoutError`` so ``asyncio``-style handlers catch it; a state error is also a
``RuntimeError`` like ``asyncio`` uses for a closed loop; a webhook that fails verification is
also a ``ValueError`` (bad input from the network), like OpenAI's and Stripe's webhook errors.

Messages never contain credentials or payload values: they name the field, the size and the
limit, or the HTTP status and the API's own error text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._http.errors import ErrorDetail

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BufferFullError",
    "ClientStateError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "CustomerIOError",
    "DeliveryError",
    "GiveUp",
    "LimitExceededError",
    "NotFoundError",
    "OperationDroppedError",
    "OperationRejectedError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "ServerError",
    "TransportError",
    "UnprocessableEntityError",
    "UnsafeRedirectError",
    "ValidationError",
    "WebhookVerificationError",
]


class CustomerIOError(Exception):
    """Base class of every error raised by customerio-async.

    Example::

        try:
            await cio.identify("42", plan="pro")
        except CustomerIOError as exc:      # anything the SDK raises
            logger.warning("customer.io call failed: %s", exc)
    """


class ConfigurationError(CustomerIOError, ValueError):
    """The client was configured wrongly (missing credentials, unknown region, bad URL).

    Example::

        try:
            CustomerIO("site-id", "api-key", region="mars")
        except ConfigurationError as exc:   # also a ValueError
            print(exc)                      # region must be 'us' or 'eu', got 'mars'
    """


class ValidationError(CustomerIOError, ValueError):
    """An argument breaks the API contract; raised at the call site, nothing was sent.

    Example::

        try:
            await cio.track("42", "   ")
        except ValidationError as exc:      # raised before any I/O
            assert exc.field == "name"

    Attributes:
        field: The argument or attribute path at fault (never its value).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LimitExceededError(ValidationError):
    """An operation, attribute or request body exceeds a documented byte limit.

    Example::

        try:
            await cio.identify("42", bio="x" * 2000)
        except LimitExceededError as exc:
            print(exc.field, exc.size, exc.limit)   # attributes.bio 2002 1000

    Attributes:
        size: The measured size in bytes.
        limit: The limit it exceeds.
    """

    def __init__(self, message: str, *, size: int, limit: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.size = size
        self.limit = limit


class ClientStateError(CustomerIOError, RuntimeError):
    """The client cannot take calls now: not opened with ``async with``, closed, or failed.

    Example::

        cio = CustomerIO(site_id, api_key)
        try:
            await cio.track("42", "opened")     # not opened with `async with`
        except ClientStateError:
            ...
    """


class BufferFullError(CustomerIOError):
    """The send buffer is full and the overflow policy is ``"raise"``; nothing was admitted.

    Example::

        cio = CustomerIO(batch=BatchConfig(overflow="raise"))
        try:
            await cio.track("42", "opened")
        except BufferFullError:
            metrics.shed.inc()                  # nothing was admitted
    """


class DeliveryError(CustomerIOError):
    """An admitted operation ended without being delivered.

    Example::

        try:
            await cio.track("42", "order_placed", wait=True)
        except DeliveryError as exc:            # rejected or dropped
            print(exc.outcome.status, exc.outcome.reason)

    Attributes:
        outcome: The terminal :class:`~customerio_async.Outcome` (status, reason, message).
    """

    def __init__(self, message: str, *, outcome: Any) -> None:
        super().__init__(message)
        self.outcome = outcome


class OperationRejectedError(DeliveryError):
    """The API (or the SDK, for an impossible operation) refused the operation; not retried.

    Example::

        try:
            await cio.identify("42", wait=True, plan="pro")
        except OperationRejectedError as exc:   # the API refused it: fix the data
            print(exc.outcome.reason, exc.outcome.field)
    """


class OperationDroppedError(DeliveryError):
    """The SDK gave the operation up (``outcome.reason`` says why: ``buffer_full``,
    ``delivery_timeout``, ``shutdown_timeout``, ``auth_failed``…).

    Example::

        try:
            await cio.track("42", "order_placed", wait=True)
        except OperationDroppedError as exc:    # the SDK gave up: retry later, or alert
            print(exc.outcome.reason)           # e.g. "delivery_timeout"
    """


class TransportError(CustomerIOError):
    """The request got no HTTP response.

    Example::

        try:
            await cio.get_region()
        except TransportError as exc:
            if not exc.request_sent:            # nothing reached the server: safe to retry
                ...

    Attributes:
        request_sent: ``False`` only when the request provably never reached the server
            (the connection was never established), so retrying cannot duplicate it.
    """

    request_sent: bool = True

    def __init__(self, message: str, *, request_sent: bool | None = None) -> None:
        super().__init__(message)
        if request_sent is not None:
            self.request_sent = request_sent


class ConnectError(TransportError):
    """The connection could not be established (DNS, refused, TLS); nothing was sent.

    Example::

        try:
            await cio.get_region()
        except ConnectError:                    # DNS, refused, TLS: request_sent is False
            ...
    """

    request_sent = False


class RequestTimeoutError(TransportError, TimeoutError):
    """No complete response arrived in time; the server may or may not have applied it.

    Example::

        try:
            result = await api.send_email(request)
        except RequestTimeoutError:             # also the builtin TimeoutError
            ...                                 # the send may or may not have happened
    """


class ConnectionLostError(TransportError):
    """The connection dropped mid-exchange; the server may or may not have applied it.

    Example::

        try:
            await cio.get_region()
        except ConnectionLostError:             # dropped mid-exchange: outcome unknown
            ...
    """


class OutcomeUnknownError(TransportError):
    """An App API send or broadcast trigger may have reached the server and been applied.

    App API sends and triggers carry no idempotency key, so a retry could deliver the message
    twice; the SDK therefore does not retry once the request may have been written. The
    original transport error is chained as ``__cause__``. Check the message log (or your
    webhook events) before sending again.

    Example::

        try:
            result = await api.send_email(request)
        except OutcomeUnknownError as exc:
            # Never retried: check the delivery log before sending again.
            logger.error("send may have happened: %r", exc.__cause__)
    """


class UnsafeRedirectError(TransportError):
    """The server redirected to a host that must not receive our credentials or payload.

    Example::

        try:
            await cio.get_region()
        except UnsafeRedirectError:             # a 3xx to a host outside *.customer.io
            ...
    """


class APIStatusError(CustomerIOError):
    """The API answered with a non-success HTTP status.

    Example::

        try:
            await direct_cio.identify("42", plan="pro")     # batching=False
        except APIStatusError as exc:
            print(exc.status_code, [e.message for e in exc.errors])

    Attributes:
        status_code: The HTTP status.
        errors: The errors parsed from any of the API's three error envelopes.
        headers: The response headers (lower-cased names).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        errors: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.errors: tuple[ErrorDetail, ...] = tuple(errors)
        self.headers: dict[str, str] = dict(headers or {})


class BadRequestError(APIStatusError):
    """400: the API rejected the request as malformed or invalid.

    Example::

        try:
            await direct_cio.identify("42", plan="pro")
        except BadRequestError as exc:
            print(exc.errors[0].message)
    """


class AuthenticationError(APIStatusError):
    """401: the credentials are wrong, or belong to another region.

    Example::

        try:
            await cio.check_credentials()
        except AuthenticationError:
            sys.exit("wrong site id / API key, or the wrong region")
    """


class PermissionDeniedError(APIStatusError):
    """403: the credentials may not do this (scope, entitlement, file type).

    Example::

        try:
            await api.send_email(request)
        except PermissionDeniedError as exc:    # e.g. a forbidden attachment type
            print(exc.errors)
    """


class NotFoundError(APIStatusError):
    """404: the addressed resource does not exist.

    Example::

        try:
            await api.get_trigger_errors(9, 12345)
        except NotFoundError:
            ...                                 # no such broadcast or trigger
    """


class RequestTooLargeError(APIStatusError):
    """413: the request body is larger than the API accepts.

    Example::

        try:
            await api.send_email(request)
        except RequestTooLargeError:            # the API's 413, not our LimitExceededError
            ...
    """


class UnprocessableEntityError(APIStatusError):
    """422: the request is well-formed but its content is not acceptable.

    Example::

        try:
            await api.trigger_broadcast(9, ids=["42"])
        except UnprocessableEntityError as exc:
            print(exc.errors)
    """


class RateLimitError(APIStatusError):
    """429: too many requests.

    Example::

        try:
            await api.trigger_broadcast(9, ids=["42"])
        except RateLimitError as exc:
            await asyncio.sleep(exc.retry_after or 10)

    Attributes:
        retry_after: Seconds the server asked us to wait, or ``None`` when it said nothing
            (Customer.io documents no ``Retry-After``; both cases happen).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        errors: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, errors=errors, headers=headers)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the API failed to handle the request.

    Example::

        try:
            await direct_cio.track("42", "opened")
        except ServerError as exc:              # retried already (direct_attempts)
            print(exc.status_code)
    """


class WebhookVerificationError(CustomerIOError, ValueError):
    """A reporting-webhook request failed verification; do not process it.

    Example::

        try:
            verify_signature(raw_body, timestamp, signature, SIGNING_KEY)
        except WebhookVerificationError as exc:
            logger.info("webhook refused: %s", exc.reason)     # never the body
            return 401

    Attributes:
        reason: From verification, ``"missing_header"``, ``"invalid_timestamp"``,
            ``"bad_signature"``, ``"too_old"`` or ``"too_new"`` (each with its own message);
            from parsing, ``"invalid_payload"`` (a verified body that is not an event).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class GiveUp(CustomerIOError):
    """Internal: the retry layer (or the gate) abandons a batched delivery.

    The send pipeline catches it and ends the request's operations as
    ``dropped(reason)``; it never reaches user code.

    Attributes:
        reason: The drop reason (``delivery_timeout``, ``retries_exhausted``,
            ``auth_failed``, ``unsafe_redirect``).
        cause: The last failure (``http_503``, ``ConnectError``…).
        status: The last HTTP status, if any.
    """

    def __init__(self, reason: str, cause: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.status = status
