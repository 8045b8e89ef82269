"""Failures read as sentences with the right exit status; the odd paths of the entry point."""

from __future__ import annotations

import errno
import importlib
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from customerio_async import (
    AuthenticationError,
    BadRequestError,
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
from customerio_async._cli.errors import UsageError, describe, exit_status

from ._helpers import CREDS, mixed, write_jsonl

URL = "https://track.customer.io"
# The module, not the function that customerio_async._cli re-exports under the same name.
main_module = importlib.import_module("customerio_async._cli.main")


def chained(exc: CustomerIOError, cause: BaseException) -> CustomerIOError:
    exc.__cause__ = cause
    return exc


class _WithOSError(Exception):
    """aiohttp's connector errors keep the OS error in ``os_error``."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__("connector")
        self.os_error = os_error


@pytest.mark.parametrize(
    ("exc", "sentence", "status"),
    [
        (
            chained(ConnectError("x"), ConnectionRefusedError(errno.ECONNREFUSED, "refused")),
            f"cannot reach {URL}: connection refused",
            2,
        ),
        (
            chained(ConnectError("x"), _WithOSError(socket.gaierror(-2, "Name unknown"))),
            f"cannot reach {URL}: the host name does not resolve (DNS)",
            2,
        ),
        (
            chained(ConnectError("x"), ssl.SSLCertVerificationError("bad cert")),
            f"cannot reach {URL}: its TLS certificate is not trusted",
            2,
        ),
        (
            chained(ConnectError("x"), ssl.SSLError("handshake")),
            f"cannot reach {URL}: the TLS handshake failed",
            2,
        ),
        (
            chained(ConnectError("x"), OSError(errno.ENOTCONN, "Not Connected")),
            f"cannot reach {URL}: not connected",
            2,
        ),
        (ConnectError("x"), f"cannot reach {URL}: the connection failed", 2),
        (RequestTimeoutError("x"), f"cannot reach {URL}: no answer in time", 2),
        (
            ConnectionLostError("x"),
            f"cannot reach {URL}: the connection was closed before the answer arrived",
            2,
        ),
        (
            UnsafeRedirectError("x"),
            f"{URL} redirected to a host the credentials must not be sent to",
            2,
        ),
        (TransportError("x"), f"cannot reach {URL}: the connection failed", 2),
        (
            AuthenticationError("x", status_code=401),
            "Customer.io refused these credentials (HTTP 401)",
            2,
        ),
        (
            PermissionDeniedError("x", status_code=403),
            "Customer.io refused these credentials (HTTP 403)",
            2,
        ),
        (
            NotFoundError("x", status_code=404),
            f"{URL} answered HTTP 404 (not found): is it a Track API origin, "
            "such as https://track.customer.io?",
            1,
        ),
        (
            RateLimitError("x", status_code=429),
            "Customer.io is rate limiting these credentials (HTTP 429); try later",
            1,
        ),
        (
            ServerError("x", status_code=503),
            "Customer.io had a server error (HTTP 503); try again later",
            1,
        ),
        (BadRequestError("x", status_code=400), "Customer.io refused the request (HTTP 400)", 1),
        (ClientStateError("x"), "the Customer.io client stopped unexpectedly", 1),
        (CustomerIOError("x"), "Customer.io could not complete the request", 1),
        (ConfigurationError("bad track_url"), "bad track_url", 2),
        (UsageError("bad file"), "bad file", 2),
        (
            PermissionError(errno.EACCES, "Permission denied", "/x/y.checkpoint"),
            "cannot write /x/y.checkpoint: permission denied",
            2,
        ),
    ],
)
def test_failures_are_sentences(exc: BaseException, sentence: str, status: int) -> None:
    assert describe(exc, URL) == sentence
    assert exit_status(exc) == status


def test_ctrl_c_before_the_import_handles_it_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(coro: Any) -> int:
        coro.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(main_module.asyncio, "run", interrupted)
    assert main_module.main(["demo", "--people", "1"]) == 130


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--batch-size", "many"], "not an integer: 'many'"),
        (["--rate", "-1"], "must be a finite number >= 0"),
        (["--stop-timeout", "inf"], "must be a finite number >= 0"),
    ],
)
async def test_bad_numbers_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    from customerio_async import _cli

    path = write_jsonl(tmp_path / "a.jsonl", mixed(1))
    assert await _cli.run(["import", str(path), *CREDS, *option]) == 2
    assert message in capsys.readouterr().err
