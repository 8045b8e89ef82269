"""Correctness at the call site: bad input fails loudly, nothing a user passes is silently
changed (issue "Correctness at the edges", items 1, 4, 5, 6, 7, 9, 10 and 16).

Each test states how the code before the pipeline rebuild (commit 46e3948) failed it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from customerio_async import (
    APIStatusError,
    BatchConfig,
    CustomerIO,
    LimitExceededError,
    Person,
    ServerError,
    ValidationError,
)
from customerio_async.testing import FakeCustomerIO, Fault

from ._edges import API_KEY, SITE_ID, batched, direct

MS = 1_700_000_000_000  # a millisecond timestamp (2023-11-14 in ms)

# ---------------------------------------------------------------- 1. `wait` means one thing

Call = Callable[[CustomerIO], Awaitable[Any]]

WAIT_CALLS: dict[str, Call] = {
    "identify": lambda c: c.identify("42", wait=True, plan="pro"),
    "pageview": lambda c: c.pageview("42", "https://example.com/", wait=True, ref="ad"),
    "screen": lambda c: c.screen("42", "Settings", wait=True, tab="a"),
    "backfill": lambda c: c.backfill("42", "signed_up", 1_700_000_000, wait=True, plan="pro"),
    "add_device": lambda c: c.add_device("42", "tok", "ios", wait=True, app_version="1.2"),
}


def _wire_attributes(op: Any) -> dict[str, Any]:
    body = op.body
    if op.action == "add_device":
        return dict(body["device"].get("attributes", {}))
    return dict(body.get("attributes", {}))


@pytest.mark.parametrize("name", sorted(WAIT_CALLS))
async def test_wait_true_waits_and_is_never_sent_as_an_attribute(
    fake: FakeCustomerIO, name: str
) -> None:
    """Before: ``wait=True`` on a ``**attrs`` call became an attribute named ``wait`` (sent
    to Customer.io, stored on the person) and the call returned without waiting."""
    async with batched(fake, batch=_slow_linger()) as cio:
        receipt = await WAIT_CALLS[name](cio)
        # Waited: the outcome is known when the call returns (linger is 60 s here).
        assert receipt.done()
        assert receipt.outcome is not None
        assert receipt.outcome.delivered
        (op,) = fake.operations
        assert "wait" not in _wire_attributes(op)
        assert "wait" not in fake.people().get("id:42", {})


@pytest.mark.parametrize("value", ["yes", 1, None, 0])
async def test_wait_must_be_a_bool(fake: FakeCustomerIO, value: Any) -> None:
    """Before: ``wait="yes"`` was sent as an attribute; now it is refused at the call."""
    async with batched(fake) as cio:
        with pytest.raises(ValidationError) as info:
            await cio.identify("42", wait=value, plan="pro")
        assert info.value.field == "wait"
        assert "send(Person.identify" in str(info.value)
        assert cio.statistics().accepted == 0


async def test_an_attribute_named_wait_is_sent_through_send(fake: FakeCustomerIO) -> None:
    """The documented way to set an attribute literally named ``wait``."""
    async with batched(fake) as cio:
        await cio.send(Person.identify("42", {"wait": "until friday"}), wait=True)
    assert fake.people()["id:42"] == {"wait": "until friday"}


def _slow_linger() -> BatchConfig:
    return BatchConfig(linger=60.0, drain_timeout=5.0, flush_timeout=5.0)


# ---------------------------------------------------------------- 4. timestamp attributes


@pytest.mark.parametrize("name", ["created_at", "_timestamp"])
async def test_millisecond_timestamp_attributes_fail_at_the_call(
    fake: FakeCustomerIO, name: str
) -> None:
    """Before: ``created_at`` in milliseconds was accepted and sent (``timestamp=`` in
    milliseconds was refused); Customer.io then stored a date in the year 55,000."""
    async with batched(fake) as cio:
        with pytest.raises(ValidationError) as info:
            await cio.identify("42", **{name: MS})
        assert info.value.field == f"attributes.{name}"
        assert "milliseconds" in str(info.value)
        assert str(MS) not in str(info.value)
        with pytest.raises(ValidationError):
            await cio.send(Person.identify("42", {name: MS}))
        assert cio.statistics().accepted == 0


async def test_timestamp_attributes_take_the_timestamp_rule(fake: FakeCustomerIO) -> None:
    """Seconds, datetimes and digit strings pass as they do for ``timestamp=``."""
    when = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
    async with direct(fake) as cio:
        await cio.identify("42", created_at=when, _timestamp=1_700_000_000)
        with pytest.raises(ValidationError, match="before 1970"):
            await cio.identify("42", created_at=-5)
        with pytest.raises(ValidationError, match="not a boolean"):
            await cio.identify("42", created_at=True)
    assert fake.people()["id:42"] == {"created_at": 1704153600, "_timestamp": 1_700_000_000}


# ---------------------------------------------------------------- 5. device platform


@pytest.mark.parametrize("platform", ["windows", "IOS", "Android", "", None, 1])
async def test_device_platform_is_ios_or_android(fake: FakeCustomerIO, platform: Any) -> None:
    """Before: ``add_device(..., "windows")`` was sent; the vendor document's enum is
    ``ios``/``android``. Case is not folded: nothing a user passes is silently changed."""
    async with direct(fake) as cio:
        with pytest.raises(ValidationError) as info:
            await cio.add_device("42", "tok", platform)
        assert info.value.field == "platform"
        with pytest.raises(ValidationError):
            await cio.send(Person.add_device("42", "tok", platform))
    assert fake.requests == []


# ---------------------------------------------------------------- 6. bytes as the server sees them

CONTROL = "\x01"  # 1 character, 6 bytes in JSON (\u0001)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda c: c.identify("42", note=CONTROL * 250), "attributes.note", id="value"),
        pytest.param(lambda c: c.identify("42", **{CONTROL * 30: 1}), "attributes", id="name"),
        pytest.param(lambda c: c.identify(CONTROL * 30, plan="x"), "id", id="identifier"),
        pytest.param(lambda c: c.track("42", CONTROL * 20), "name", id="event-name"),
        pytest.param(lambda c: c.add_device("42", CONTROL * 30, "ios"), "device_id", id="device"),
        pytest.param(
            lambda c: c.add_device("42", "t", "ios", os=CONTROL * 250),
            "device attributes.os",
            id="device-attribute",
        ),
    ],
)
async def test_limits_count_json_escapes(fake: FakeCustomerIO, call: Call, field: str) -> None:
    """Before: limits counted characters (or UTF-8 bytes) before JSON escaping: 250
    control characters serialise to 1,502 bytes and passed the 1,000-byte value limit."""
    async with direct(fake) as cio:
        with pytest.raises(LimitExceededError) as info:
            await call(cio)
        assert info.value.field == field
        assert info.value.size > info.value.limit
    assert fake.requests == []


async def test_event_data_limit_counts_json_escapes(fake: FakeCustomerIO) -> None:
    """17,000 control characters are 102,000 bytes on the wire: over the 100,000 limit."""
    async with batched(fake) as cio:
        with pytest.raises(LimitExceededError) as info:
            await cio.track("42", "big", {"blob": CONTROL * 17_000})
        assert info.value.limit == 100_000
        assert info.value.size > 100_000


async def test_limits_leave_room_for_what_fits(fake: FakeCustomerIO) -> None:
    """The exact limits pass: a 998-character string value is 1,000 bytes with its quotes."""
    async with direct(fake) as cio:
        await cio.identify("i" * 150, name="v" * 998, **{"n" * 150: 1})
        await cio.track("42", "e" * 100)
    assert fake.people()["id:" + "i" * 150]["name"] == "v" * 998


# ---------------------------------------------------------------- 7. non-string keys


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.identify("42", nested={1: "a", "1": "b"}), id="identify"),
        pytest.param(lambda c: c.track("42", "e", {"x": {"y": {2: 0}}}), id="event-deep"),
        pytest.param(lambda c: c.track("42", "e", {1: "a"}), id="event-top"),
        pytest.param(lambda c: c.send(Person.identify("42", {"a": [{None: 1}]})), id="send"),
        pytest.param(lambda c: c.track_anonymous("anon", "e", {"x": {(1, 2): 0}}), id="anon"),
    ],
)
async def test_non_string_keys_are_refused_at_any_depth(fake: FakeCustomerIO, call: Call) -> None:
    """Before: non-string keys in nested objects were converted (``{1: "a", "1": "b"}``
    put two ``"1"`` keys on the wire, and the server kept one of them)."""
    for mode in (direct, batched):
        async with mode(fake) as cio:
            with pytest.raises(ValidationError, match="keys must be strings"):
                await call(cio)
    assert fake.requests == []


# ---------------------------------------------------------------- 9. dot segments


async def test_a_dot_dot_device_id_never_addresses_the_person(fake: FakeCustomerIO) -> None:
    """Before: ``delete_device("ada", "..")`` sent ``DELETE /customers/ada/devices/..``,
    which URL normalisation turns into ``DELETE /customers/ada``: the person was deleted."""
    async with direct(fake) as cio:
        await cio.identify("ada", plan="pro")
        await cio.delete_device("ada", "..")
        await cio.delete_device("ada", ".")
    paths = [r.path for r in fake.requests]
    assert paths[1:] == [
        "/api/v1/customers/ada/devices/%2E%2E",
        "/api/v1/customers/ada/devices/%2E",
    ]
    assert [op.action for op in fake.operations] == ["identify", "delete_device", "delete_device"]
    assert fake.people() == {"id:ada": {"plan": "pro"}}


@pytest.mark.parametrize(("identifier", "raw"), [("..", "%2E%2E"), (".", "%2E")])
async def test_dot_identifiers_are_one_encoded_segment(
    fake: FakeCustomerIO, identifier: str, raw: str
) -> None:
    """Before: identifier ``..`` became ``PUT /api/v1/customers/..`` → ``/api/v1/``."""
    async with direct(fake) as cio:
        await cio.identify(identifier, plan="pro")
        await cio.track(identifier, "e")
        await cio.add_device(identifier, "..", "ios")
    assert [r.path for r in fake.requests] == [
        f"/api/v1/customers/{raw}",
        f"/api/v1/customers/{raw}/events",
        f"/api/v1/customers/{raw}/devices",
    ]
    assert fake.people() == {f"id:{identifier}": {"plan": "pro"}}


# ---------------------------------------------------------------- 10. one reading of a bare id


@pytest.mark.parametrize("identifier", ["a@b@c", "ada lovelace@example.com", "@", "x@"])
async def test_a_bare_identifier_reads_the_same_in_both_modes(
    fake: FakeCustomerIO, identifier: str
) -> None:
    """Before: such values were an ``id`` in batched mode but travelled as an email-shaped
    v1 path in direct mode (which the v1 server could read as an email). Now both modes
    address ``{"id": value}``, through v2 where the v1 path could be misread."""
    async with direct(fake) as cio:
        await cio.identify(identifier, mode="direct")
    assert fake.requests[-1].path == "/api/v2/entity"
    assert fake.operations[-1].identifiers == {"id": identifier}
    async with batched(fake) as cio:
        await cio.identify(identifier, mode="batched", wait=True)
    assert fake.operations[-1].identifiers == {"id": identifier}
    assert fake.people() == {f"id:{identifier}": {"mode": "batched"}}


PERSON_CALLS: dict[str, Call] = {
    "identify": lambda c: c.identify("a@b@c", plan="pro"),
    "track": lambda c: c.track("a@b@c", "e"),
    "pageview": lambda c: c.pageview("a@b@c", "home"),
    "add_device": lambda c: c.add_device("a@b@c", "tok", "ios"),
    "delete_device": lambda c: c.delete_device("a@b@c", "tok"),
    "suppress": lambda c: c.suppress("a@b@c"),
    "unsuppress": lambda c: c.unsuppress("a@b@c"),
    "delete": lambda c: c.delete("a@b@c"),
}


@pytest.mark.parametrize("name", sorted(PERSON_CALLS))
async def test_every_direct_call_addresses_a_misreadable_id_through_v2(
    fake: FakeCustomerIO, name: str
) -> None:
    async with direct(fake) as cio:
        await PERSON_CALLS[name](cio)
    assert [r.path for r in fake.requests] == ["/api/v2/entity"]
    assert fake.operations[0].identifiers == {"id": "a@b@c"}


async def test_an_email_shaped_identifier_keeps_the_v1_path(fake: FakeCustomerIO) -> None:
    async with direct(fake) as cio:
        await cio.identify("ada@example.com", plan="pro")
    assert fake.requests[-1].path == "/api/v1/customers/ada%40example.com"
    assert fake.people() == {"email:ada@example.com": {"plan": "pro"}}


# ---------------------------------------------------------------- 16. smaller, user-visible


async def test_408_is_not_a_server_error(fake: FakeCustomerIO) -> None:
    """Before: a 408 raised ``ServerError``, the 5xx class."""
    fake.add_fault(Fault(status=408))
    async with direct(fake) as cio:
        with pytest.raises(APIStatusError) as info:
            await cio.identify("42", plan="pro")
    assert not isinstance(info.value, ServerError)
    assert info.value.status_code == 408


def test_plain_with_says_use_async_with() -> None:
    """Before: ``with CustomerIO(...)`` raised a bare ``TypeError`` (no ``__enter__``)."""
    client = CustomerIO(SITE_ID, API_KEY, track_url="http://127.0.0.1:9")
    with pytest.raises(TypeError, match="use `async with CustomerIO"), client:
        pass  # pragma: no cover - never entered
