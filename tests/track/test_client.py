"""Every Track operation on the wire, against FakeCustomerIO over loopback."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

import pytest

from customerio_async import (
    BatchResult,
    CustomerIO,
    Delivery,
    Object,
    Person,
    Region,
    RegionInfo,
    ValidationError,
    object_relationship,
)
from customerio_async.testing import FakeCustomerIO, Fault

ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def last(fake: FakeCustomerIO) -> Any:
    return fake.requests[-1]


async def test_identify_wire_format(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    assert (await cio.identify("42", email="ada@example.com", plan="pro")).response == {}
    req = last(fake)
    assert (req.method, req.path) == ("PUT", "/api/v1/customers/42")
    assert req.json() == {"email": "ada@example.com", "plan": "pro"}
    expected = base64.b64encode(b"fake-site:fake-key").decode()
    assert req.headers["authorization"] == f"Basic {expected}"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("customerio-async/")
    assert fake.people()["id:42"] == {"email": "ada@example.com", "plan": "pro"}


@pytest.mark.parametrize(
    ("identifier", "raw", "decoded"),
    [
        ("a/b", "a%2Fb", "a/b"),
        ("1 ", "1%20", "1 "),
        ("x+y", "x%2By", "x+y"),
        ("50%", "50%25", "50%"),
        ("ünï", "%C3%BCn%C3%AF", "ünï"),
        ("a@b.co", "a%40b.co", "a@b.co"),
    ],
)
async def test_identifier_is_one_encoded_segment(
    fake: FakeCustomerIO, cio: CustomerIO, identifier: str, raw: str, decoded: str
) -> None:
    await cio.identify(identifier, plan="free")
    req = last(fake)
    assert req.path == f"/api/v1/customers/{raw}"
    assert req.segments[-1] == decoded
    assert req.status == 200


async def test_identify_datetime_and_int_ids(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)
    await cio.identify(7, created_at=when, seen=naive, nested={"at": when})
    req = last(fake)
    assert req.path == "/api/v1/customers/7"
    assert req.json() == {
        "created_at": 1704164645,
        "seen": 1704164645,
        "nested": {"at": 1704164645},
    }


async def test_explicit_identifier_that_v1_would_misread_goes_through_v2(
    fake: FakeCustomerIO, cio: CustomerIO
) -> None:
    await cio.identify({"id": "a@b.com"}, plan="pro")
    req = last(fake)
    assert req.path == "/api/v2/entity"
    assert req.json() == {
        "type": "person",
        "action": "identify",
        "identifiers": {"id": "a@b.com"},
        "attributes": {"plan": "pro"},
    }
    await cio.identify({"email": "a@b.com"}, plan="team")
    assert last(fake).path == "/api/v1/customers/a%40b.com"
    await cio.identify({"cio_id": "cio_abc"}, plan="x")
    assert last(fake).path == "/api/v1/customers/cio_abc"
    await cio.identify({"phone": "+15555550100"}, plan="x")
    assert last(fake).json()["identifiers"] == {"phone": "+15555550100"}


async def test_track_generates_a_ulid_and_converts_timestamps(
    fake: FakeCustomerIO, cio: CustomerIO
) -> None:
    when = dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    await cio.track("42", "  purchased ", {"amount": 5}, timestamp=when)
    body = last(fake).json()
    assert last(fake).path == "/api/v1/customers/42/events"
    assert body["name"] == "purchased"
    assert body["data"] == {"amount": 5}
    assert body["timestamp"] == 1714514400
    assert ULID.match(body["id"])
    await cio.track("42", "viewed", id="01HZZZZZZZZZZZZZZZZZZZZZZZ", timestamp=1714514400)
    assert last(fake).json()["id"] == "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    await cio.track("42", "viewed")
    assert last(fake).json()["data"] == {}
    assert fake.event_ids()[0] == body["id"]


async def test_track_anonymous_and_invite(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.track_anonymous("anon-1", "visited", {"page": "/"})
    req = last(fake)
    assert (req.method, req.path) == ("POST", "/api/v1/events")
    assert req.json()["anonymous_id"] == "anon-1"
    await cio.track_anonymous(None, "invite", {"recipient": "friend@example.com"})
    body = last(fake).json()
    assert "anonymous_id" not in body
    assert body["data"] == {"recipient": "friend@example.com"}
    await cio.track_anonymous("", "invite", {"recipient": "x@example.com"})
    assert "anonymous_id" not in last(fake).json()


async def test_pageview_screen_backfill(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.pageview("42", "https://example.com/pricing", referrer="ads")
    body = last(fake).json()
    assert body["type"] == "page"
    assert body["name"] == "https://example.com/pricing"
    assert body["data"] == {"referrer": "ads"}
    await cio.screen("42", "Settings", tab="privacy")
    assert last(fake).json()["type"] == "screen"
    await cio.backfill("42", "signed_up", dt.datetime(2020, 1, 1), source="import")
    body = last(fake).json()
    assert body["timestamp"] == 1577836800
    assert body["data"] == {"source": "import"}
    with pytest.raises(ValidationError, match="timestamp is required"):
        await cio.backfill("42", "signed_up", None)


async def test_devices(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.add_device("42", "tok/1", "ios", last_used=1714514400, app_version="1.0")
    req = last(fake)
    assert req.path == "/api/v1/customers/42/devices"
    assert req.json() == {
        "device": {
            "id": "tok/1",
            "platform": "ios",
            "last_used": 1714514400,
            "attributes": {"app_version": "1.0"},
        }
    }
    await cio.delete_device("42", "tok/1")
    req = last(fake)
    assert (req.method, req.path) == ("DELETE", "/api/v1/customers/42/devices/tok%2F1")
    assert req.segments[-1] == "tok/1"


@pytest.mark.parametrize(
    ("method_name", "http", "suffix"),
    [
        ("delete", "DELETE", ""),
        ("suppress", "POST", "/suppress"),
        ("unsuppress", "POST", "/unsuppress"),
    ],
)
async def test_person_lifecycle_calls(
    fake: FakeCustomerIO, cio: CustomerIO, method_name: str, http: str, suffix: str
) -> None:
    await getattr(cio, method_name)("x/y")
    req = last(fake)
    assert (req.method, req.path) == (http, f"/api/v1/customers/x%2Fy{suffix}")
    assert req.body == b"{}"
    assert req.status == 200


async def test_merge_customers(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.merge_customers("id", "42", "cio_id", "cio_abc")
    req = last(fake)
    assert req.path == "/api/v1/merge_customers"
    # cio_ prefixes belong in v1 paths only; JSON bodies carry the bare value (contract U6).
    assert req.json() == {"primary": {"id": "42"}, "secondary": {"cio_id": "abc"}}
    with pytest.raises(ValidationError, match="primary id type"):
        await cio.merge_customers("phone", "1", "id", "2")


async def test_segments(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    await cio.add_to_segment(7, ["a", 2], id_type="email")
    req = last(fake)
    assert (req.method, req.path) == ("POST", "/api/v1/segments/7/add_customers")
    assert req.query == {"id_type": "email"}
    assert req.json() == {"ids": ["a", "2"]}
    await cio.remove_from_segment(7, ["a"])
    assert last(fake).path == "/api/v1/segments/7/remove_customers"
    assert last(fake).query == {"id_type": "id"}
    with pytest.raises(ValidationError, match="1 to 1000"):
        await cio.add_to_segment(7, [])
    with pytest.raises(ValidationError, match="1 to 1000"):
        await cio.add_to_segment(7, [str(i) for i in range(1001)])
    await cio.add_to_segment(7, [str(i) for i in range(1000)])
    assert last(fake).status == 200
    for bad in (0, True, "7"):
        with pytest.raises(ValidationError, match="segment_id"):
            await cio.add_to_segment(bad, ["a"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="id_type"):
        await cio.add_to_segment(7, ["a"], id_type="phone")
    with pytest.raises(ValidationError, match="list"):
        await cio.add_to_segment(7, "abc")


@pytest.mark.parametrize("region", ["us", "eu"])
async def test_get_region(region: str) -> None:
    async with (
        FakeCustomerIO(region=region, environment_id=99) as fake,  # type: ignore[arg-type]
        CustomerIO("fake-site", "fake-key", track_url=fake.url, batching=False) as cio,
    ):
        info = await cio.get_region()
    assert info == RegionInfo(
        region=Region(region),
        url="https://track.customer.io" if region == "us" else "https://track-eu.customer.io",
        environment_id=99,
    )
    assert fake.requests[-1].path == "/api/v1/accounts/region"


async def test_get_region_with_unexpected_body(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    from customerio_async import ServerError

    fake.add_fault(Fault(status=200, body=b'{"region": "mars"}'))
    with pytest.raises(ServerError, match="unexpected body"):
        await cio.get_region()


async def test_send_v2_entity(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    op = Person.identify("u@example.com", {"plan": "pro"}, timestamp=1714514400)
    assert (await cio.send(op)).response == {}
    req = last(fake)
    assert (req.method, req.path) == ("POST", "/api/v2/entity")
    assert req.json() == {
        "type": "person",
        "action": "identify",
        "identifiers": {"email": "u@example.com"},
        "attributes": {"plan": "pro"},
        "timestamp": 1714514400,
    }
    with pytest.raises(ValidationError, match="Operation"):
        await cio.send({"type": "person"})  # type: ignore[arg-type]


async def test_v2_builders_are_applied_by_the_fake(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    operations = [
        Person.identify("1", {"a": 1}, cio_relationships=[object_relationship(3, "acme")]),
        Person.event("1", "clicked", {"x": 1}, timestamp=dt.datetime(2024, 1, 1)),
        Person.page("1", "/home"),
        Person.screen("1", "Home"),
        Person.add_device("1", "tok", "android", last_used=1714514400, attributes={"k": "v"}),
        Person.delete_device("1", "tok"),
        Person.add_relationships("1", [object_relationship("3", "acme", {"role": "owner"})]),
        Person.delete_relationships("1", [object_relationship(3, "acme")]),
        Person.merge({"id": "1"}, {"email": "old@example.com"}),
        Person.suppress("2"),
        Person.unsuppress("2"),
        Person.delete("3"),
        Object.identify(3, "acme", {"name": "Acme"}),
        Object.identify(cio_object_id="obj_1", attributes={"name": None}),
        Object.identify_anonymous(3, "acme", ["anon-1"], {"plan": "x"}),
        Object.add_relationships(
            3, "acme", ["1", {"email": "b@example.com"}], relationship_attributes={"r": 1}
        ),
        Object.delete_relationships(3, "acme", ["1"]),
        Object.delete(3, "acme"),
        Delivery.event("dlv_1", "opened", device_token="tok", timestamp=1714514400),
    ]
    result = await cio.batch(operations)
    assert result == BatchResult(status=200)
    assert len(fake.operations) == len(operations)
    assert [o.action for o in fake.operations] == [
        op.v2["action"] for op in operations if op.v2 is not None
    ]


async def test_batch_with_dicts_and_partial_failure(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    good = {"type": "person", "action": "identify", "identifiers": {"id": "1"}, "attributes": {}}
    bad = {"type": "person", "action": "identify", "identifiers": {"id": "1", "email": "e@x.io"}}
    result = await cio.batch([good, bad, Person.delete("2")])
    assert result.status == 207
    assert result.rejected_indexes == {1}
    assert result.errors[0].batch_index == 1
    assert [o.action for o in fake.operations] == ["identify", "delete"]


async def test_batch_scripted_207(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    fake.add_fault(Fault(action="reject_indexes", indexes=(0,)))
    result = await cio.batch([Person.delete("1"), Person.delete("2")])
    assert result.status == 207
    assert result.rejected_indexes == {0}


async def test_batch_validation(cio: CustomerIO) -> None:
    from customerio_async import LimitExceededError
    from customerio_async._track.calls import anonymous_event

    with pytest.raises(ValidationError, match="empty"):
        await cio.batch([])
    with pytest.raises(ValidationError, match="no v2 form"):
        await cio.batch([anonymous_event("a", "x", None)])
    with pytest.raises(ValidationError, match=r"operations\[0\].type"):
        await cio.batch([{"action": "identify"}])
    with pytest.raises(ValidationError, match=r"operations\[0\].action"):
        await cio.batch([{"type": "person"}])
    with pytest.raises(ValidationError, match="mapping"):
        await cio.batch(["nope"])  # type: ignore[list-item]
    big = [Person.identify(str(i), {f"k{j}": "v" * 900 for j in range(30)}) for i in range(20)]
    with pytest.raises(LimitExceededError, match="/api/v2/batch body"):
        await cio.batch(big)
    with pytest.raises(LimitExceededError, match="operation"):
        await cio.batch([Person.identify("1", {f"k{j}": "v" * 900 for j in range(40)})])


async def test_v1_only_operation_via_send(fake: FakeCustomerIO, cio: CustomerIO) -> None:
    from customerio_async._track.calls import anonymous_event

    await cio.send(anonymous_event(None, "invite", {"recipient": "a@b.c"}))
    assert last(fake).path == "/api/v1/events"


async def test_unparseable_success_body_is_still_success(
    fake: FakeCustomerIO, cio: CustomerIO
) -> None:
    fake.add_fault(Fault(status=200, body=b"not json"))
    assert (await cio.delete("1")).response == {}
    fake.add_fault(Fault(status=200, body=b""))
    assert (await cio.delete("1")).response == {}
