"""Call-site validation: each documented limit at its boundary and one past it."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest

from customerio_async import (
    CustomerIO,
    Delivery,
    LimitExceededError,
    Object,
    Person,
    ValidationError,
)
from customerio_async._common.ulid import new_ulid
from customerio_async._common.wire import dumps, to_timestamp
from customerio_async.testing import FakeCustomerIO

pytestmark = pytest.mark.usefixtures("fake")


async def test_identifier_limits(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.identify("x" * 150)
    await cio.identify("é" * 75)  # 150 bytes
    with pytest.raises(LimitExceededError) as info:
        await cio.identify("x" * 151)
    assert (info.value.size, info.value.limit) == (151, 150)
    with pytest.raises(LimitExceededError):
        await cio.identify("é" * 75 + "x")
    for bad in ("", None, 1.5, True, b"bytes", ["x"]):
        with pytest.raises(ValidationError):
            await cio.identify(bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="surrogate"):
        await cio.identify("\ud800")
    with pytest.raises(ValidationError, match="after the prefix"):
        await cio.identify("cio_")
    assert len(fake.requests) == 2


async def test_explicit_identifier_objects(cio: CustomerIO) -> None:
    for bad in ({}, {"id": "1", "email": "a@b.c"}, {"anonymous_id": "x"}, {"cio_id": "cio_"}):
        with pytest.raises(ValidationError, match=r"identifier|cio_id"):
            await cio.identify(bad)


async def test_attribute_limits(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.identify("1", **{f"a{i}": i for i in range(300)})
    with pytest.raises(LimitExceededError, match="300"):
        await cio.identify("1", **{f"a{i}": i for i in range(301)})
    await cio.identify("1", **{"n" * 150: 1})
    with pytest.raises(LimitExceededError, match="attribute name"):
        await cio.identify("1", **{"n" * 151: 1})
    # 998 characters + 2 quotes = 1000 bytes serialised.
    await cio.identify("1", v="x" * 998)
    with pytest.raises(LimitExceededError, match="1000") as info:
        await cio.identify("1", v="x" * 999)
    assert info.value.field == "attributes.v"
    await cio.identify("1", v=["é" * 10] * 10)
    with pytest.raises(LimitExceededError):
        await cio.identify("1", v={"k": "x" * 1000})
    # Structural keys are instructions, not stored values: no 1000-byte cap.
    prefs = {"topics": {f"topic_{i}": True for i in range(100)}}
    await cio.identify("1", cio_subscription_preferences=prefs)
    with pytest.raises(ValidationError):
        await cio.identify("1", **{"": 1})
    assert all(r.status == 200 for r in fake.requests)


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, {"x": math.nan}, b"raw", {1, 2}, object(), {"k": {(1, 2): 1}}],
)
async def test_unserialisable_values_raise_at_call_site(
    fake: FakeCustomerIO, cio: CustomerIO, value: Any
) -> None:
    with pytest.raises(ValidationError) as info:
        await cio.identify("1", v=value)
    assert repr(value) not in str(info.value) or isinstance(value, float)
    with pytest.raises(ValidationError):
        await cio.track("1", "e", {"v": value})
    assert fake.requests == []


async def test_event_limits(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.track("1", "n" * 100)
    await cio.track("1", "  " + "n" * 100 + "  ")  # trimmed first
    with pytest.raises(LimitExceededError, match="100"):
        await cio.track("1", "n" * 101)
    for blank in ("", "   "):
        with pytest.raises(ValidationError, match="blank"):
            await cio.track("1", blank)
    with pytest.raises(ValidationError, match="string"):
        await cio.track("1", 5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="mapping"):
        await cio.track("1", "e", ["not", "a", "map"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="keys"):
        await cio.track("1", "e", {1: "x"})  # type: ignore[dict-item]
    for bad_id in ("", "order-1", "81HZZZZZZZZZZZZZZZZZZZZZZZ", "01HZZZZZZZZZZZZZZZZZZZZZZU", 5):
        with pytest.raises(ValidationError, match="ULID"):
            await cio.track("1", "e", id=bad_id)  # type: ignore[arg-type]
    # Crockford base32 is case-insensitive; we send the canonical upper case.
    await cio.track("1", "e", id="01hzzzzzzzzzzzzzzzzzzzzzzz")
    assert fake.requests[-1].json()["id"] == "01HZZZZZZZZZZZZZZZZZZZZZZZ"


async def test_event_data_limit_is_exact(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    # {"k":"…"} is 8 bytes of framing: 99,992 characters make exactly 100,000 bytes.
    fits = {"k": "x" * 99_992}
    assert len(dumps(fits)) == 100_000
    await cio.track("1", "big", fits)
    with pytest.raises(LimitExceededError) as info:
        await cio.track("1", "big", {"k": "x" * 99_993})
    assert (info.value.size, info.value.limit) == (100_001, 100_000)
    with pytest.raises(LimitExceededError):
        await cio.track_anonymous("a", "big", {"k": "x" * 99_993})
    assert len(fake.requests) == 1


async def test_v2_operation_and_entity_limits(cio: CustomerIO) -> None:
    # Pure v2 operations are capped at 32,000 bytes each.
    with pytest.raises(LimitExceededError, match="32000"):
        await cio.send(Person.event("1", "big", {"k": "x" * 40_000}))
    # An official-style event that v1 can carry has no such cap (contract U1) ...
    await cio.track("1", "big", {"k": "x" * 40_000})
    # ... unless its identifier forces it onto v2.
    with pytest.raises(LimitExceededError):
        await cio.track({"id": "a@b.c"}, "big", {"k": "x" * 40_000})


def test_timestamps() -> None:
    assert to_timestamp(dt.datetime(1970, 1, 1, 0, 0, 1)) == 1
    assert to_timestamp(1714514400.9) == 1714514400
    assert to_timestamp(" 1714514400 ") == 1714514400
    assert to_timestamp(99_999_999_999) == 99_999_999_999
    with pytest.raises(ValidationError, match="milliseconds"):
        to_timestamp(100_000_000_000)
    with pytest.raises(ValidationError, match="milliseconds"):
        to_timestamp(1714514400000)
    for bad in (True, -1, "soon", math.nan, None, dt.date(2024, 1, 1)):
        with pytest.raises(ValidationError):
            to_timestamp(bad)


async def test_bad_timestamps_raise_at_call_site(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    with pytest.raises(ValidationError, match="milliseconds"):
        await cio.track("1", "e", timestamp=1714514400000)
    with pytest.raises(ValidationError, match="last_used"):
        await cio.add_device("1", "t", "ios", last_used="yesterday")
    assert fake.requests == []


def test_ulids_are_unique_sortable_and_well_formed() -> None:
    ids = [new_ulid() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert new_ulid(0.0).startswith("0000000000")
    assert new_ulid(1.0)[:10] == "00000000Z8"  # 1000 ms
    assert new_ulid(2**48 / 1000 - 0.001)[:10] == "7ZZZZZZZZZ"
    assert new_ulid(1.0) < new_ulid(2.0)


def test_dumps_details() -> None:
    assert dumps({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'.encode()
    assert dumps({"d": dt.date(2024, 1, 2)}) == b'{"d":"2024-01-02"}'
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValidationError):
        dumps(loop)


def test_builder_validation() -> None:
    with pytest.raises(ValidationError, match="object_type_id"):
        Object.identify("abc", "1")
    with pytest.raises(ValidationError, match="object_type_id"):
        Object.identify(0, "1")
    with pytest.raises(ValidationError, match="either"):
        Object.identify(1, "1", cio_object_id="x")
    with pytest.raises(ValidationError, match="anonymous_ids"):
        Object.identify_anonymous(1, "1", [])
    with pytest.raises(ValidationError, match="people"):
        Object.add_relationships(1, "1", [])
    with pytest.raises(ValidationError, match="people"):
        Object.add_relationships(1, "1", "abc")
    with pytest.raises(ValidationError, match="relationships"):
        Person.add_relationships("1", [])
    with pytest.raises(ValidationError, match="identifiers"):
        Person.add_relationships("1", [{"x": 1}])
    with pytest.raises(ValidationError, match="metric"):
        Delivery.event("d", "clicked", device_token="t")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="exactly one"):
        Person.merge({"id": "1", "email": "a@b.c"}, {"id": "2"})
    with pytest.raises(ValidationError, match="platform"):
        Person.add_device("1", "tok", "")
    from customerio_async._track.calls import add_device

    with pytest.raises(ValidationError, match="platform"):
        add_device("1", "tok", "", {})
    assert repr(Person.delete("secret-person")) == "<Operation delete>"


def test_dumps_is_the_same_with_and_without_the_fast_path() -> None:
    import dataclasses
    import enum
    import uuid

    from customerio_async._common.wire import _stdlib_dumps

    class Plan(enum.Enum):
        PRO = "pro"

    @dataclasses.dataclass
    class Point:
        x: int

    when = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    values: list[Any] = [
        {"a": None, "b": [1, 2.5, "é"], "when": when, "day": dt.date(2024, 1, 2)},
        {"id": uuid.UUID(int=1), "plan": Plan.PRO, "big": 2**70, "k": {1: "int key"}},
    ]
    for value in values:
        assert json.loads(dumps(value)) == json.loads(_stdlib_dumps(value, "x"))
    for bad in ({"p": Point(1)}, {"n": None, "nan": math.nan}, {"t": dt.time(1, 2)}):
        with pytest.raises(ValidationError):
            dumps(bad)
