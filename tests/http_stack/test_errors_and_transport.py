"""HTTP errors, transport failures, redirects and the client lifecycle, over loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from customerio_async import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ClientStateError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    CustomerIO,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    Region,
    RequestTimeoutError,
    RequestTooLargeError,
    RetryPolicy,
    ServerError,
    Timeouts,
    TransportError,
    UnprocessableEntityError,
    UnsafeRedirectError,
)
from customerio_async._http.transport import is_trusted_url
from customerio_async.testing import FakeCustomerIO, Fault

NO_RETRY = RetryPolicy(direct_attempts=1)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (408, APIStatusError),
        (418, APIStatusError),
        (507, ServerError),
        (413, RequestTooLargeError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
async def test_status_maps_to_one_class(
    fake: FakeCustomerIO, cio: CustomerIO, status: int, cls: type[APIStatusError]
) -> None:
    fake.add_fault(Fault(status=status))
    with pytest.raises(cls) as info:
        await cio.identify("1", a=1)
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert "/api/v1/customers/{id}" in str(info.value)


async def test_server_side_400_meta_error(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    fake.add_fault(Fault(status=400, body=b'{"meta":{"error":"name cannot be blank"}}'))
    with pytest.raises(BadRequestError, match="name cannot be blank") as info:
        await cio.identify("1")
    assert info.value.errors[0].message == "name cannot be blank"
    fake.add_fault(Fault(status=400, body=b'{"meta":{"errors":["a","b"]}}'))
    with pytest.raises(BadRequestError, match="a; b"):
        await cio.identify("1")


async def test_fake_400_in_the_meta_errors_envelope_is_parsed() -> None:
    async with (
        FakeCustomerIO(v1_error_envelope="meta.errors") as fake,
        CustomerIO("fake-site", "fake-key", track_url=fake.url, batching=False) as cio,
    ):
        fake.add_fault(Fault(status=400))
        with pytest.raises(BadRequestError) as info:
            await cio.track("1", "x")
    assert info.value.errors
    assert fake.requests[-1].json()["name"] == "x"


async def test_wrong_credentials_are_401(fake: FakeCustomerIO) -> None:
    async with CustomerIO("fake-site", "wrong", track_url=fake.url, batching=False) as cio:
        with pytest.raises(AuthenticationError) as info:
            await cio.identify("1")
    assert "wrong" not in str(info.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [({"Retry-After": "7"}, 7.0), ({"Retry-After": "garbage"}, None), ({}, None)],
)
async def test_429_retry_after(
    fake: FakeCustomerIO, cio: CustomerIO, header: dict[str, str], expected: float | None
) -> None:
    fake.add_fault(Fault(status=429, headers=header))
    with pytest.raises(RateLimitError) as info:
        await cio.identify("1")
    assert info.value.retry_after == expected


async def test_reset_before_body_is_connection_lost(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.identify("1", a=0)  # warm a keep-alive connection
    fake.add_fault(Fault(action="reset_before_body"))
    # POST: aiohttp itself re-sends only idempotent methods after a dropped keep-alive.
    with pytest.raises(ConnectionLostError) as info:
        await cio.track("1", "e")
    assert info.value.request_sent is True
    # The pool recovers: the next call on a fresh connection succeeds.
    assert (await cio.identify("1", a=2)).response == {}


async def test_reset_after_body_applied_but_outcome_unknown(
    fake: FakeCustomerIO, cio: CustomerIO
) -> None:
    fake.add_fault(Fault(action="reset_after_body"))
    with pytest.raises(ConnectionLostError):
        await cio.track("1", "paid", id="01J00000000000000000000000")
    assert fake.event_ids() == ["01J00000000000000000000000"]
    # Re-sending with the same id is accepted and de-duplicated by the server.
    await cio.track("1", "paid", id="01J00000000000000000000000")
    assert fake.event_ids() == ["01J00000000000000000000000"]
    assert fake.duplicate_event_ids == ["01J00000000000000000000000"]


async def test_connect_refused_is_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with CustomerIO("s", "k", track_url=f"http://127.0.0.1:{port}", batching=False) as cio:
        with pytest.raises(ConnectError) as info:
            await cio.identify("1")
    assert info.value.request_sent is False


async def test_timeout(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=2.0))
    async with CustomerIO(
        "fake-site",
        "fake-key",
        track_url=fake.url,
        timeouts=Timeouts(total=0.3, sock_read=0.3),
        batching=False,
        retry=NO_RETRY,
    ) as cio:
        with pytest.raises(RequestTimeoutError) as info:
            await cio.identify("1")
    assert isinstance(info.value, TimeoutError)
    assert info.value.request_sent is True


async def test_redirect_to_untrusted_host_is_refused(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    fake.add_fault(
        Fault(status=307, headers={"Location": "http://evil.example/api/v1/customers/1"})
    )
    with pytest.raises(UnsafeRedirectError, match=r"evil\.example"):
        await cio.identify("1")
    assert len(fake.requests) == 1


async def test_redirect_to_same_origin_is_followed(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    fake.add_fault(Fault(status=308, headers={"Location": f"{fake.url}/api/v1/customers/2"}))
    await cio.identify("1", a=1)
    assert [r.path for r in fake.requests] == ["/api/v1/customers/1", "/api/v1/customers/2"]
    assert fake.requests[1].headers["authorization"].startswith("Basic ")
    assert fake.requests[1].json() == {"a": 1}


async def test_redirect_loop_is_bounded(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    fake.add_fault(Fault(status=302, headers={"Location": "/api/v1/customers/1"}, times=10))
    with pytest.raises(TransportError, match="redirects"):
        await cio.identify("1")
    assert len(fake.requests) == 4


def test_trusted_hosts() -> None:
    origin = "http://127.0.0.1:8080"
    assert is_trusted_url("http://127.0.0.1:8080/x", origin)
    assert not is_trusted_url("http://127.0.0.1:8081/x", origin)
    assert is_trusted_url("https://track-eu.customer.io/api/v1", origin)
    assert not is_trusted_url("http://track-eu.customer.io/api/v1", origin)
    assert not is_trusted_url("https://customer.io.evil.example/", origin)
    assert not is_trusted_url("https://evilcustomer.io/", origin)


# ----------------------------------------------------------------------------- lifecycle


async def test_lifecycle_states(fake: FakeCustomerIO) -> None:
    cio = CustomerIO("fake-site", "fake-key", track_url=fake.url, batching=False)
    with pytest.raises(ClientStateError, match="async with"):
        await cio.identify("1")
    async with cio:
        assert "open" in repr(cio)
        await cio.identify("1")
    with pytest.raises(ClientStateError, match="closed"):
        await cio.identify("1")
    with pytest.raises(ClientStateError, match="opened once"):
        await cio.open()
    await cio.aclose()  # idempotent
    assert "closed" in repr(cio)


def test_repr_hides_credentials() -> None:
    cio = CustomerIO("site-secret", "key-secret", region="eu")
    text = repr(cio)
    assert "secret" not in text
    assert cio.region is Region.EU
    assert cio.origin == "https://track-eu.customer.io"


def test_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMERIO_SITE_ID", "env-site")
    monkeypatch.setenv("CUSTOMERIO_API_KEY", "env-key")
    assert CustomerIO().origin == "https://track.customer.io"
    monkeypatch.delenv("CUSTOMERIO_API_KEY")
    with pytest.raises(ConfigurationError, match="CUSTOMERIO_API_KEY"):
        CustomerIO()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"region": "mars"}, "region"),
        ({"region": 3}, "region"),
        ({"track_url": "ftp://x"}, "track_url"),
        ({"track_url": "http://u:p@host"}, "credentials"),
        ({"track_url": "/relative"}, "track_url"),
    ],
)
def test_bad_configuration(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CustomerIO("s", "k", **kwargs)  # type: ignore[arg-type]


def test_track_url_suffix_is_tolerated() -> None:
    assert CustomerIO("s", "k", track_url="http://h:1/api/v1/").origin == "http://h:1"
    assert (
        CustomerIO("s", "k", region=Region.EU, track_url="http://h:1/api/v2").origin == "http://h:1"
    )


def test_config_validation() -> None:
    from customerio_async import PoolLimits

    with pytest.raises(ConfigurationError):
        Timeouts(total=0)
    with pytest.raises(ConfigurationError):
        PoolLimits(max_connections=0)
    with pytest.raises(ConfigurationError):
        PoolLimits(keepalive_timeout=0)


def _sdk_tasks() -> set[asyncio.Task[object]]:
    """Live tasks running SDK code (the fake server's own handler tasks are not ours)."""
    out = set()
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if not task.done() and "customerio_async" in filename and "testing" not in filename:
            out.add(task)
    return out


@pytest.mark.parametrize("batching", [False, True])
async def test_no_leaked_tasks_after_close(fake: FakeCustomerIO, batching: bool) -> None:
    async with CustomerIO("fake-site", "fake-key", track_url=fake.url, batching=batching) as cio:
        await asyncio.gather(*(cio.identify(str(i)) for i in range(20)))
        # No long-lived workers: a task exists only per request on the wire.
        assert len(_sdk_tasks()) <= 4
    assert _sdk_tasks() == set()
