"""The exception tree, error-envelope parsing, Retry-After, and the public surface."""

from __future__ import annotations

import datetime as dt
import inspect
import pathlib
import typing

import pytest

import customerio_async
from customerio_async import (
    APIStatusError,
    ClientStateError,
    ConfigurationError,
    CustomerIOError,
    ErrorDetail,
    LimitExceededError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    ValidationError,
)
from customerio_async._http.errors import make_status_error, parse_error_body
from customerio_async._http.retry import parse_retry_after


def test_tree_and_builtin_bases() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(LimitExceededError, ValidationError)
    assert issubclass(ClientStateError, RuntimeError)
    assert issubclass(RequestTimeoutError, TimeoutError)
    assert issubclass(RequestTimeoutError, TransportError)
    for name in customerio_async.__all__:
        obj = getattr(customerio_async, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert issubclass(obj, CustomerIOError)
            assert obj.__doc__
            # The tree in the module docstring names every class.
            assert name in (customerio_async._exceptions.__doc__ or "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"meta":{"error":"bad"}}', [ErrorDetail("bad")]),
        (b'{"meta":{"errors":["a","b"]}}', [ErrorDetail("a"), ErrorDetail("b")]),
        (
            b'{"errors":[{"batch_index":2,"reason":"invalid","field":"identifiers",'
            b'"message":"too many"}]}',
            [ErrorDetail("too many", "invalid", "identifiers", 2)],
        ),
        (b'{"errors":[{"reason":"r"}]}', [ErrorDetail("r", "r")]),
        (
            b'{"errors":[{"detail":"d","status":"422","source":{"pointer":"/data"}}]}',
            [ErrorDetail("d", None, "/data")],
        ),
        (b'{"errors":["line 1: x"]}', [ErrorDetail("line 1: x")]),
        (b'{"errors":[{"batch_index":true}]}', [ErrorDetail("unspecified error")]),
        (b"<html>oops</html>", []),
        (b"", []),
        (b"[1]", []),
        (b"\xff", []),
    ],
)
def test_parse_error_body(body: bytes, expected: list[ErrorDetail]) -> None:
    assert parse_error_body(body) == expected


def test_make_status_error() -> None:
    err = make_status_error(429, b"", {"retry-after": "3"}, endpoint="/x", retry_after=3.0)
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 3.0
    assert err.headers == {"retry-after": "3"}
    odd = make_status_error(418, b"", {}, endpoint="/x")
    assert type(odd) is APIStatusError  # an unlisted 4xx is not a server error
    assert type(make_status_error(408, b"", {}, endpoint="/x")) is APIStatusError
    assert type(make_status_error(599, b"", {}, endpoint="/x")) is ServerError
    assert isinstance(odd, APIStatusError)
    assert str(odd) == "/x answered HTTP 418"


def test_parse_retry_after() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0
    # "-0000" parses as a naive datetime: it must still be read as UTC.
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 -0000", now=now) == 60.0
    assert parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT") == 0.0  # in the past by now


def test_public_surface() -> None:
    names = customerio_async.__all__
    assert names == sorted(names)
    public = {n for n in dir(customerio_async) if not n.startswith("_")} | {"__version__"}
    # Submodules imported by someone (testing, pytest_plugin…) appear as attributes; the
    # surface is what __all__ names, and every public non-module attribute must be in it.
    non_module = {n for n in public if not inspect.ismodule(getattr(customerio_async, n))}
    assert non_module <= set(names)
    assert set(names) <= public
    for name in names:
        obj = getattr(customerio_async, name)
        # Type aliases (Callable[...] is a "class" to inspect on 3.10) are not ours to document.
        alias = typing.get_origin(obj) is not None
        if (inspect.isclass(obj) and not alias) or inspect.isfunction(obj):
            assert obj.__module__ == "customerio_async", name
            assert obj.__doc__, name
    pkg = pathlib.Path(customerio_async.__file__).parent
    assert (pkg / "py.typed").exists()


def test_public_methods_have_docstrings() -> None:
    for cls in (customerio_async.CustomerIO, customerio_async.Person, customerio_async.Object):
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"
