"""What went wrong, in words: the SDK's exceptions as one-line sentences and exit statuses.

A newcomer should read "cannot reach https://track.customer.io: connection refused",
not a class name from aiohttp or from us. The SDK's messages never carry credentials or
payload values, and neither do these sentences.
"""

from __future__ import annotations

import errno
import socket
import ssl

from customerio_async import (
    APIStatusError,
    AuthenticationError,
    ClientStateError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    CustomerIOError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnsafeRedirectError,
)

__all__ = ["CommandError", "UsageError", "describe", "exit_status", "failure"]

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "timed out",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


class UsageError(Exception):
    """Bad input or configuration for the whole run (exit status 2)."""


class CommandError(Exception):
    """A command failed; ``str()`` is the sentence to print, ``status`` the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _connect_reason(exc: BaseException) -> str:
    """Why a connection could not be made, from the OS error the transport chained."""
    for cause in _causes(exc):
        inner = getattr(cause, "os_error", None)  # aiohttp keeps the OS error here
        for err in (inner, cause):
            if isinstance(err, socket.gaierror):
                return "the host name does not resolve (DNS)"
            if isinstance(err, ssl.SSLCertVerificationError):
                return "its TLS certificate is not trusted"
            if isinstance(err, ssl.SSLError):
                return "the TLS handshake failed"
            if isinstance(err, OSError) and err.errno in _ERRNO_WORDS:
                return _ERRNO_WORDS[err.errno]
            if isinstance(err, OSError) and err.strerror:
                return err.strerror.lower()
    return "the connection failed"


def _api_sentence(exc: APIStatusError, where: str) -> str:
    status = exc.status_code
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return f"Customer.io refused these credentials (HTTP {status})"
    if isinstance(exc, NotFoundError):
        return (
            f"{where} answered HTTP {status} (not found): is it a Track API origin, "
            "such as https://track.customer.io?"
        )
    if isinstance(exc, RateLimitError):
        return f"Customer.io is rate limiting these credentials (HTTP {status}); try later"
    if isinstance(exc, ServerError):
        return f"Customer.io had a server error (HTTP {status}); try again later"
    return f"Customer.io refused the request (HTTP {status})"


def describe(exc: BaseException, origin: str | None = None) -> str:
    """One sentence for ``exc``; ``origin`` is the URL the client was talking to."""
    where = origin or "Customer.io"
    if isinstance(exc, (UsageError, ConfigurationError)):
        return str(exc)
    if isinstance(exc, ConnectError):
        return f"cannot reach {where}: {_connect_reason(exc)}"
    if isinstance(exc, RequestTimeoutError):
        return f"cannot reach {where}: no answer in time"
    if isinstance(exc, ConnectionLostError):
        return f"cannot reach {where}: the connection was closed before the answer arrived"
    if isinstance(exc, UnsafeRedirectError):
        return f"{where} redirected to a host the credentials must not be sent to"
    if isinstance(exc, TransportError):
        return f"cannot reach {where}: {_connect_reason(exc)}"
    if isinstance(exc, APIStatusError):
        return _api_sentence(exc, where)
    if isinstance(exc, ClientStateError):
        return "the Customer.io client stopped unexpectedly"
    if isinstance(exc, OSError):  # our own files: the checkpoint, the rejects file
        return f"cannot write {exc.filename or 'a file'}: {(exc.strerror or 'failed').lower()}"
    return "Customer.io could not complete the request"


def exit_status(exc: BaseException) -> int:
    """2 for what the user can fix in the command (usage, credentials, reachability), else 1."""
    if isinstance(exc, (UsageError, ConfigurationError, TransportError, OSError)):
        return 2
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return 2
    assert isinstance(exc, CustomerIOError)
    return 1


def failure(exc: CustomerIOError, origin: str | None) -> CommandError:
    """``exc`` as a sentence naming ``origin`` (the URL the client talked to)."""
    return CommandError(describe(exc, origin), exit_status(exc))
