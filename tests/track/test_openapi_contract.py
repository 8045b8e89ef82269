"""Every Track request the SDK sends, validated against the vendor's OpenAPI document.

Each case drives real ``CustomerIO`` calls through a real :class:`FakeCustomerIO` over
loopback; then every recorded request is matched to its ``paths`` operation in the vendor
spec (``shared/openapi/customer-io-track-api-openapi.json``, kept outside the repo) and its
JSON body is validated with jsonschema Draft 2020-12, with format checking on so event ids
are proven ULIDs and timestamps integer Unix seconds (contract §8).

Only the spec defects contract §8 lists AND our traffic hits are patched, in memory, by the
named functions in ``tests/_openapi.py``. Anything else the spec rejects is a finding:
those cases are strict xfails whose reasons name the body shape and the spec location. One
exception: the ``POST /api/v1/metrics`` ``oneOf`` (same defect class as §8 item 1, at a
location §8 does not list yet) rejects EVERY possible body, so it is patched as the fake's
own validation patches it (``patch_metrics_channel_one_of``); an xfail could never turn green.

The form, unsubscribe, metrics and push routes are also checked on the wire: the three that
take no credentials never receive an ``Authorization`` header (``authorization_leaks``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from _openapi import (
    SPEC_PATCHES,
    SPEC_PATH,
    BodyValidator,
    Spec,
    SpecOperation,
    SpecViolation,
    batch_item_pointer,
    build_contract,
    load_contract,
)
from hypothesis import HealthCheck, given, settings
from reliability.test_fuzz_input import Case as FuzzCase
from reliability.test_fuzz_input import cases as fuzz_cases
from reliability.test_fuzz_input import run_case as run_fuzz_case

from customerio_async import (
    APIStatusError,
    CustomerIO,
    Delivery,
    Object,
    Operation,
    Person,
    object_relationship,
)
from customerio_async.testing import FakeCustomerIO

# Skipped when the document is absent, failed instead under CI=true (tests/conftest.py).
pytestmark = pytest.mark.vendor_document(SPEC_PATH)

SITE_ID = "fake-site"
API_KEY = "fake-key"

# Spec operation keys ("METHOD template") the SDK uses.
IDENTIFY = "PUT /api/v1/customers/{identifier}"
DELETE = "DELETE /api/v1/customers/{identifier}"
EVENTS = "POST /api/v1/customers/{identifier}/events"
ANONYMOUS = "POST /api/v1/events"
DEVICES = "PUT /api/v1/customers/{identifier}/devices"
DELETE_DEVICE = "DELETE /api/v1/customers/{identifier}/devices/{device_id}"
SUPPRESS = "POST /api/v1/customers/{identifier}/suppress"
UNSUPPRESS = "POST /api/v1/customers/{identifier}/unsuppress"
MERGE = "POST /api/v1/merge_customers"
SEGMENT_ADD = "POST /api/v1/segments/{segment_id}/add_customers"
SEGMENT_REMOVE = "POST /api/v1/segments/{segment_id}/remove_customers"
REGION = "GET /api/v1/accounts/region"
FORMS = "POST /api/v1/forms/{form_id}/submit"
UNSUBSCRIBE = "POST /unsubscribe/{delivery_id}"
METRICS = "POST /api/v1/metrics"
PUSH_EVENTS = "POST /api/v1/push/events"
ENTITY = "POST /api/v2/entity"
BATCH = "POST /api/v2/batch"

SDK_OPERATIONS = frozenset(
    {
        IDENTIFY,
        DELETE,
        EVENTS,
        ANONYMOUS,
        DEVICES,
        DELETE_DEVICE,
        SUPPRESS,
        UNSUPPRESS,
        MERGE,
        SEGMENT_ADD,
        SEGMENT_REMOVE,
        REGION,
        FORMS,
        UNSUBSCRIBE,
        METRICS,
        PUSH_EVENTS,
        ENTITY,
        BATCH,
    }
)
# Track operations in the spec that this SDK deliberately does not implement.
NOT_IMPLEMENTED: frozenset[str] = frozenset()
# Every Track success is 200 except a form submission: 204 with no body (contract §1.7).
SUCCESS_STATUS = {FORMS: 204}

ULID_A = "01HZY0A7Q4J6M8N9P0R1S2T3V4"
ULID_B = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"  # the largest ULID
WHEN = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
WHEN_NAIVE = dt.datetime(2024, 5, 1, 12, 30)  # read as UTC
WHEN_PLUS2 = dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
WHEN_SECONDS = 1_714_566_600
PHONE = {"phone": "+14155552671"}


class Recorded(Protocol):
    """The parts of ``customerio_async.testing.RecordedRequest`` these tests read."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def status(self) -> int | None: ...


@dataclass
class Report:
    """What validating one case's traffic covered."""

    operations: list[str] = field(default_factory=list)
    bodies: int = 0  # JSON bodies validated (a batch counts once plus once per element)


@pytest.fixture(scope="module")
def contract() -> BodyValidator:
    """The patched vendor spec with one registry and format checker, built once."""
    return load_contract()


@dataclass
class Traffic:
    """What one case sent, and the API error the client raised, if any."""

    requests: list[Recorded]
    error: APIStatusError | None


async def record(run: Callable[[CustomerIO], Awaitable[None]]) -> Traffic:
    """Run ``run`` against a fresh FakeCustomerIO and return what the fake received.

    An API error the fake answers with is held back, so the body that provoked it is
    checked against the spec first (that is the more precise diagnosis)."""
    error: APIStatusError | None = None
    async with FakeCustomerIO() as fake:
        async with CustomerIO(SITE_ID, API_KEY, track_url=fake.url, batching=False) as cio:
            try:
                await run(cio)
            except APIStatusError as exc:
                error = exc
        requests: list[Recorded] = list(fake.requests)
        leaks = [f"{r.method} {r.path}" for r in fake.authorization_leaks]
    assert requests, "the case sent nothing"
    assert not leaks, f"credentials sent to routes that take none: {leaks}"
    return Traffic(requests, error)


def parse_body(req: Recorded) -> Any:
    return json.loads(req.body) if req.body else None


def validate_traffic(contract: BodyValidator, traffic: Traffic) -> Report:
    """Match every request to its spec operation and validate query and JSON body; then
    require that the fake accepted everything."""
    report = Report()
    expected: list[int] = []
    for index, req in enumerate(traffic.requests):
        what = f"request #{index} {req.method} {req.path}"
        op = contract.match(req.method, req.path)
        report.operations.append(op.key)
        expected.append(SUCCESS_STATUS.get(op.key, 200))
        contract.check_query(op, req.query, what)
        report.bodies += validate_body(contract, op, parse_body(req), what)
    if traffic.error is not None:
        raise traffic.error
    statuses = [req.status for req in traffic.requests]
    assert statuses == expected, f"the fake answered {statuses}"
    return report


def validate_body(contract: BodyValidator, op: SpecOperation, body: Any, what: str) -> int:
    if op.body_pointer is None:
        # Bodyless in the spec: we may send nothing or "{}" (contract §1.3), never content.
        assert body in (None, {}), f"{what}: the spec declares no body, we sent {body!r}"
        return 0
    assert body is not None, f"{what}: the spec declares a JSON body and we sent none"
    contract.check(op.body_pointer, body, what)
    count = 1
    if op.key == BATCH:
        # The whole body passed; now each element on its own, against the batch item
        # schema and against /api/v2/entity (each element is "any individual entity
        # payload"), so a failure names the operation that broke.
        entity = contract.match("POST", "/api/v2/entity").body_pointer
        assert entity is not None
        for i, item in enumerate(body["batch"]):
            contract.check(batch_item_pointer(), item, f"{what} batch[{i}]")
            contract.check(entity, item, f"{what} batch[{i}] as /api/v2/entity")
            count += 1
    return count


# --------------------------------------------------------------------------- the cases
# Each case is a plain coroutine over an open client; `expect` is the exact set of spec
# operations its requests must hit.


async def identify_minimal(cio: CustomerIO) -> None:
    await cio.identify("42")
    await cio.identify(42, plan="free")


async def identify_reserved_attributes(cio: CustomerIO) -> None:
    await cio.identify(
        "ada@example.com",
        email="ada@example.com",
        anonymous_id="anon-1",
        created_at=WHEN,
        _timestamp=WHEN_SECONDS,
        _update=True,
        unsubscribed=False,
        cio_subscription_preferences={"topics": {"topic_1": True, "topic_2": False}},
        cio_relationships={
            "action": "add_relationships",
            "relationships": [object_relationship(1, "acme", {"role": "admin"})],
        },
        plan="pro",
        seats=5,
        trial=True,
    )
    await cio.identify(
        "cio_03000001",
        cio_relationships={
            "action": "delete_relationships",
            "relationships": [{"identifiers": {"cio_object_id": "obb7fd050101"}}],
        },
    )


async def identify_json_values(cio: CustomerIO) -> None:
    # Floats, null, arrays, objects and datetimes as attribute values (contract §10 U4).
    await cio.identify(
        "42",
        score=9.5,
        tags=["a", "b"],
        address={"city": "Paris", "zip": "75001"},
        nickname=None,
        signed_up=WHEN,
    )


async def identify_explicit_identifiers(cio: CustomerIO) -> None:
    await cio.identify({"email": "ada@example.com"}, plan="pro")
    await cio.identify({"cio_id": "03000001"}, email="new@example.com")
    await cio.identify({"cio_id": "cio_03000002"}, plan="pro")
    await cio.identify({"id": "42"}, plan="pro")
    await cio.identify("a/b c+d", plan="pro")  # one percent-encoded segment
    # v1 would misread these, so they travel through /api/v2/entity.
    await cio.identify({"id": "ada@example.com"}, plan="pro")
    await cio.identify(PHONE, plan="pro", score=1.5)


async def delete_people(cio: CustomerIO) -> None:
    await cio.delete("42")
    await cio.delete("ada@example.com")
    await cio.delete("cio_03000001")
    await cio.delete({"id": "ada@example.com"})
    await cio.delete(PHONE)


async def suppress_unsuppress(cio: CustomerIO) -> None:
    await cio.suppress("42")
    await cio.unsuppress("42")
    await cio.suppress({"email": "ada@example.com"})
    await cio.unsuppress("cio_03000001")
    await cio.suppress(PHONE)
    await cio.unsuppress({"id": "ada@example.com"})


async def track_minimal(cio: CustomerIO) -> None:
    await cio.track("42", "purchase")


async def track_all_optional(cio: CustomerIO) -> None:
    data = {
        "price": 23.45,
        "items": [{"sku": "sock", "qty": 2}],
        "recipient": "ada@example.com",
        "from_address": "shop@example.com",
        "reply_to": "help@example.com",
    }
    await cio.track("42", "purchase", data, id=ULID_A, timestamp=WHEN)
    await cio.track("ada@example.com", "purchase", {}, id=ULID_B, timestamp=WHEN_NAIVE)
    await cio.track("cio_03000001", "renewed", None, timestamp=WHEN_SECONDS)
    await cio.track(42, "  padded name  ", {"n": 1}, timestamp=WHEN_PLUS2)


async def track_explicit_identifiers(cio: CustomerIO) -> None:
    await cio.track({"email": "ada@example.com"}, "purchase", {"price": 1})
    await cio.track({"id": "ada@example.com"}, "purchase", {"price": 1}, ULID_A, WHEN)
    await cio.track(PHONE, "purchase", timestamp=WHEN_NAIVE)


async def pageviews(cio: CustomerIO) -> None:
    await cio.pageview("42", "https://example.com/pricing")
    await cio.pageview("42", "https://example.com/pricing", referrer="https://a.example", n=1)
    await cio.pageview(PHONE, "https://example.com/", title="Home")


async def screens(cio: CustomerIO) -> None:
    await cio.screen("42", "Home")
    await cio.screen("ada@example.com", "Checkout", step=2, from_push=True)
    await cio.screen({"id": "ada@example.com"}, "Home", step=1)


async def backfills(cio: CustomerIO) -> None:
    await cio.backfill("42", "signed_up", WHEN, plan="pro")
    await cio.backfill("42", "signed_up", 1_514_764_800)
    await cio.backfill(PHONE, "signed_up", WHEN_NAIVE, source="import")


async def anonymous_events(cio: CustomerIO) -> None:
    await cio.track_anonymous("anon-1", "watched_video")
    await cio.track_anonymous("anon-1", "watched_video", {"video": "intro"}, ULID_A, WHEN)


async def invite_events(cio: CustomerIO) -> None:
    await cio.track_anonymous(None, "invite", {"recipient": "friend@example.com"})
    await cio.track_anonymous(
        "", "invite", {"recipient": "friend@example.com", "n": 2}, timestamp=WHEN_NAIVE
    )


async def add_device_minimal(cio: CustomerIO) -> None:
    await cio.add_device("42", "tok-1", "ios")
    await cio.add_device("ada@example.com", "tok-2", "android")


async def add_device_full(cio: CustomerIO) -> None:
    await cio.add_device(
        "42",
        "tok-1",
        "ios",
        last_used=WHEN,
        device_os="iOS 17.4",
        device_model="iPhone15,2",
        app_version="1.2.3",
        cio_sdk_version="3.0.0",
        device_locale="en-US",
        push_enabled="true",
    )
    # Custom device attributes that are not strings (contract §2.4, §8 item 5).
    await cio.add_device(
        "42",
        "tok-2",
        "android",
        last_used=WHEN_SECONDS,
        attributes={"push_enabled": "false", "build_number": 1234, "beta_tester": True},
    )
    await cio.add_device(PHONE, "tok-3", "ios", last_used=WHEN_NAIVE, app_version="1.0", build=7)


async def delete_devices(cio: CustomerIO) -> None:
    await cio.delete_device("42", "tok-1")
    await cio.delete_device("ada@example.com", "tok/with slash")
    await cio.delete_device({"id": "ada@example.com"}, "tok-1")


async def merges(cio: CustomerIO) -> None:
    await cio.merge_customers("email", "ada@example.com", "id", "42")
    await cio.merge_customers("id", "42", "email", "old@example.com")
    await cio.merge_customers("cio_id", "cio_03000001", "cio_id", "03000002")
    await cio.merge_customers("id", "1", "id", "2")


async def segments(cio: CustomerIO) -> None:
    await cio.add_to_segment(7, ["42", "43"])
    await cio.add_to_segment(7, ["ada@example.com"], id_type="email")
    await cio.remove_from_segment(7, ["03000001"], id_type="cio_id")
    await cio.remove_from_segment(7, [42, "43"], id_type="id")


async def region(cio: CustomerIO) -> None:
    await cio.get_region()


async def forms(cio: CustomerIO) -> None:
    await cio.submit_form("newsletter", {"email": "ada@example.com"})
    await cio.submit_form(
        "sign up/2024",  # one encoded segment
        {"id": "42", "first_name": "Ada", "plan": "pro", "form_name": "reserved, ignored"},
    )
    await cio.submit_form(7, {"email": "ada@example.com", "consent": "true", "empty": ""})


async def unsubscribes(cio: CustomerIO) -> None:
    await cio.unsubscribe("RPILAgUBcRhIBqSfeiIwdIYJKxTY")
    await cio.unsubscribe("dGVzdA==/+", False)


async def delivery_metrics(cio: CustomerIO) -> None:
    delivery = "RPILAgUBcRhIBqSfeiIwdIYJKxTY"
    # Every metric of the union of the six per-channel enums, bare.
    for metric in ("bounced", "clicked", "converted", "deferred", "delivered", "dropped",
                   "opened", "spammed"):  # fmt: skip
        await cio.report_metric(delivery, metric)
    await cio.report_metric(delivery, "clicked", href="https://example.com/a", timestamp=WHEN)
    await cio.report_metric(
        delivery, "bounced", recipient="ada@example.com", reason="550 mailbox full"
    )
    await cio.report_metric(delivery, "opened", recipient="device-token", timestamp=WHEN_NAIVE)
    await cio.report_metric(delivery, "delivered", recipient=15555550100)  # SMS: an integer
    await cio.report_metric(delivery, "clicked", recipient=15555550100, href="https://x.io")
    await cio.report_metric(delivery, "dropped", reason="suppressed", timestamp=WHEN_SECONDS)


async def push_events(cio: CustomerIO) -> None:
    await cio.report_push_metric("RPILAgUBcRhIBqSfeiIwdIYJKxTY", "fcm-token", "opened")
    await cio.report_push_metric(
        "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "apns/token", "converted", timestamp=WHEN
    )
    await cio.report_push_metric(
        "RPILAgUBcRhIBqSfeiIwdIYJKxTY", "fcm-token", "delivered", timestamp=WHEN_SECONDS
    )


def person_operations() -> list[Operation]:
    return [
        Person.identify(
            "42",
            {"plan": "pro", "score": 9.5, "_update": True, "nickname": None},
            timestamp=WHEN,
            cio_relationships=[
                object_relationship(1, "acme", {"role": "admin"}),
                {"identifiers": {"cio_object_id": "obb7fd050101"}},
            ],
        ),
        Person.identify(PHONE, {"cio_subscription_preferences": {"topics": {"topic_1": True}}}),
        Person.identify({"cio_id": "cio_03000001"}),
        Person.event("42", "purchase", {"price": 1.5, "recipient": "ada@example.com"}),
        Person.event("ada@example.com", "purchase", id=ULID_A, timestamp=WHEN),
        Person.page("42", "https://example.com/", {"title": "Home", "keywords": ["a"]}),
        Person.page({"id": "ada@example.com"}, "/pricing", timestamp=WHEN_SECONDS),
        Person.screen("cio_03000001", "Home", timestamp=WHEN_NAIVE),
        Person.screen(PHONE, "Checkout", {"step": 2}, id=ULID_B),
        Person.delete("42"),
        Person.suppress({"email": "ada@example.com"}),
        Person.unsuppress({"email": "ada@example.com"}),
        Person.add_device("42", "tok-1", "ios"),
        Person.add_device(
            "42",
            "tok-2",
            "android",
            last_used=WHEN,
            attributes={"app_version": "1.2", "push_enabled": "true", "build_number": 7},
        ),
        Person.delete_device("42", "tok-1"),
        Person.add_relationships("42", [object_relationship(1, "acme", {"role": "admin"})]),
        Person.delete_relationships(PHONE, [object_relationship("2", "team-9")]),
        Person.merge({"email": "ada@example.com"}, {"id": "42"}),
        Person.merge({"cio_id": "cio_03000001"}, {"cio_id": "03000002"}),
    ]


def object_operations() -> list[Operation]:
    return [
        Object.identify(1, "acme", {"name": "Acme", "seats": 50, "legacy": None, "old": ""}),
        Object.identify("2", "team-9"),
        Object.identify(cio_object_id="obb7fd050101", attributes={"plan": "enterprise"}),
        Object.identify_anonymous(1, "acme", ["anon-1", "anon-2"], {"name": "Acme"}),
        Object.identify_anonymous(1, "acme", ["anon-3"]),
        Object.delete(1, "acme"),
        Object.delete(cio_object_id="obb7fd050101"),
    ]


def delivery_operations() -> list[Operation]:
    return [
        Delivery.event("RPIyMTM6OjEyMzQ=", "opened", device_token="tok-1"),
        Delivery.event("RPIyMTM6OjEyMzQ=", "converted", device_token="tok-1", timestamp=WHEN),
        Delivery.event("RPIyMTM6OjEyMzQ=", "delivered", device_token="tok-1"),
    ]


async def send_person(cio: CustomerIO) -> None:
    for op in person_operations():
        await cio.send(op)


async def send_object(cio: CustomerIO) -> None:
    for op in object_operations():
        await cio.send(op)


async def send_delivery(cio: CustomerIO) -> None:
    for op in delivery_operations():
        await cio.send(op)


async def batches(cio: CustomerIO) -> None:
    mixed: list[Operation | Mapping[str, Any]] = [
        *person_operations(),
        *object_operations(),
        *delivery_operations(),
        # A caller-built dict, the official SDK's batch() input.
        {
            "type": "person",
            "action": "identify",
            "identifiers": {"id": "43"},
            "attributes": {"plan": "free"},
        },
    ]
    await cio.batch(mixed)
    await cio.batch([Person.event("42", "single")])


# Findings (see the module docstring): the spec rejects these bodies and contract §8 does
# not list the cause, so they stay red until the owner decides (strict xfail).

V2_CIO_RELATIONSHIPS = (
    "UNLISTED SPEC DEFECT (same class as contract §8 item 1, location not listed there): "
    "components.schemas.v2_cio_relationships.items.properties.identifiers is a oneOf of "
    "id/email/cio_id branches with no `required`, so every person identifier object, e.g. "
    '{"identifiers": {"id": "42"}} (the spec\'s own example), matches all three branches '
    "and fails. Hit by v2 object operations that relate people: {type: object, action: %s, "
    'identifiers: {object_type_id, object_id}, cio_relationships: [{identifiers: {"id": '
    '"42"}, ...}]}. Not patched: contract §8 must list this location first.'
)

V2_CIO_RELATIONSHIPS_PROBLEM = (
    r"\$\.cio_relationships\[\d+\]\.identifiers: .* is valid under each of"
)


async def object_identify_with_people(cio: CustomerIO) -> None:
    await cio.send(
        Object.identify(
            1,
            "acme",
            {"name": "Acme"},
            cio_relationships=[
                {"identifiers": {"id": "42"}, "relationship_attributes": {"role": "admin"}}
            ],
        )
    )


async def object_add_relationships(cio: CustomerIO) -> None:
    await cio.send(
        Object.add_relationships(
            1, "acme", ["42", "ada@example.com"], relationship_attributes={"role": "admin"}
        )
    )


async def object_delete_relationships(cio: CustomerIO) -> None:
    await cio.send(Object.delete_relationships(1, "acme", ["42"]))


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[CustomerIO], Awaitable[None]]
    expect: frozenset[str]
    finding: str | None = None  # strict-xfail reason: a mismatch we report, not patch
    finding_match: str = ""  # regex every schema problem of a finding case must match


def case(
    run: Callable[[CustomerIO], Awaitable[None]],
    *expect: str,
    finding: str | None = None,
    match: str = "",
) -> Case:
    return Case(run.__name__.replace("_", "-"), run, frozenset(expect), finding, match)


CASES = (
    case(identify_minimal, IDENTIFY),
    case(identify_reserved_attributes, IDENTIFY),
    case(identify_json_values, IDENTIFY),
    case(identify_explicit_identifiers, IDENTIFY, ENTITY),
    case(delete_people, DELETE, ENTITY),
    case(suppress_unsuppress, SUPPRESS, UNSUPPRESS, ENTITY),
    case(track_minimal, EVENTS),
    case(track_all_optional, EVENTS),
    case(track_explicit_identifiers, EVENTS, ENTITY),
    case(pageviews, EVENTS, ENTITY),
    case(screens, EVENTS, ENTITY),
    case(backfills, EVENTS, ENTITY),
    case(anonymous_events, ANONYMOUS),
    case(invite_events, ANONYMOUS),
    case(add_device_minimal, DEVICES),
    case(add_device_full, DEVICES, ENTITY),
    case(delete_devices, DELETE_DEVICE, ENTITY),
    case(merges, MERGE),
    case(segments, SEGMENT_ADD, SEGMENT_REMOVE),
    case(region, REGION),
    case(forms, FORMS),
    case(unsubscribes, UNSUBSCRIBE),
    case(delivery_metrics, METRICS),
    case(push_events, PUSH_EVENTS),
    case(send_person, ENTITY),
    case(send_object, ENTITY),
    case(send_delivery, ENTITY),
    case(batches, BATCH),
    case(object_identify_with_people, ENTITY, finding=V2_CIO_RELATIONSHIPS % "identify"),
    case(object_add_relationships, ENTITY, finding=V2_CIO_RELATIONSHIPS % "add_relationships"),
    case(
        object_delete_relationships,
        ENTITY,
        finding=V2_CIO_RELATIONSHIPS % "delete_relationships",
    ),
)


def _params() -> list[Any]:
    return [
        pytest.param(
            c,
            id=c.id,
            marks=[pytest.mark.xfail(strict=True, raises=SpecViolation, reason=c.finding)]
            if c.finding
            else [],
        )
        for c in CASES
    ]


def _require_explained(case_: Case, exc: SpecViolation) -> None:
    """In a finding case only the reported problem may fail; anything else would be a new
    regression hiding behind the xfail, so it fails the test for real."""
    if case_.finding is None:
        return
    unexplained = [p for p in exc.problems if not re.match(case_.finding_match, p)]
    assert exc.problems, exc
    assert not unexplained, f"{exc}\nnot explained by the finding: {unexplained}"


@pytest.mark.parametrize("case_", _params())
async def test_sdk_requests_conform_to_the_vendor_spec(
    contract: BodyValidator, case_: Case
) -> None:
    traffic = await record(case_.run)
    try:
        report = validate_traffic(contract, traffic)
    except SpecViolation as exc:
        _require_explained(case_, exc)
        raise
    assert set(report.operations) == case_.expect


def test_cases_cover_every_sdk_endpoint(contract: BodyValidator) -> None:
    in_spec = {op.key for op in contract.operations}
    assert in_spec >= SDK_OPERATIONS
    assert set().union(*(c.expect for c in CASES)) == SDK_OPERATIONS
    # Every spec operation is either exercised here or knowingly out of the SDK's scope.
    assert in_spec - SDK_OPERATIONS == NOT_IMPLEMENTED
    # Every body-bearing SDK operation is validated by at least one finding-free case.
    clean = set().union(*(c.expect for c in CASES if c.finding is None))
    assert clean == SDK_OPERATIONS


# ----------------------------------------------------------------- fuzzed calls


@settings(
    max_examples=int(os.environ.get("CIO_FUZZ_SPEC_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=fuzz_cases())
def test_fuzzed_calls_send_only_spec_valid_requests(
    contract: BodyValidator, case: FuzzCase
) -> None:
    """The fuzzed calls of ``tests/reliability/test_fuzz_input.py`` (which judges them by our
    own rules only, so it runs without the document) validated against the vendor's
    document too: whatever the SDK admits reaches the wire spec-valid."""
    _, requests = asyncio.run(run_fuzz_case(case))
    validate_traffic(contract, Traffic(list(requests), None))


# ----------------------------------------------------------------- formats are enforced


def _event_ids(contract: BodyValidator, req: Recorded) -> list[tuple[str, str, Any]]:
    """(schema pointer, id, body) for every event id in a request."""
    op = contract.match(req.method, req.path)
    body = parse_body(req)
    assert op.body_pointer is not None
    if op.key == BATCH:
        return [(batch_item_pointer(), item["id"], item) for item in body["batch"] if "id" in item]
    return [(op.body_pointer, body["id"], body)] if "id" in body else []


async def test_generated_event_ids_are_proven_ulids(contract: BodyValidator) -> None:
    async def run(cio: CustomerIO) -> None:
        await cio.track("42", "purchase")
        await cio.pageview("42", "https://example.com/")
        await cio.screen("42", "Home")
        await cio.track_anonymous("anon-1", "watched")
        await cio.track_anonymous(None, "invite", {"recipient": "friend@example.com"})
        await cio.send(Person.event("42", "purchase"))
        await cio.batch([Person.page("42", "/"), Person.screen("42", "Home")])

    traffic = await record(run)
    validate_traffic(contract, traffic)  # format_checker ran over every id
    found = [entry for req in traffic.requests for entry in _event_ids(contract, req)]
    assert len(found) == 8
    assert len({event_id for _, event_id, _ in found}) == 8, "event ids must be unique"
    for pointer, event_id, body in found:
        assert contract.format_checker.conforms(event_id, "ulid")
        # The same body with a non-ULID id fails at the same schema: the check is live.
        for bad in (event_id.lower(), "8" + event_id[1:], event_id[:-1] + "U", "order-1"):
            with pytest.raises(SpecViolation, match=r"is not a '(ulid|ULID)'"):
                contract.check(pointer, {**body, "id": bad}, "mutated id")


async def test_datetime_timestamps_are_unix_seconds(contract: BodyValidator) -> None:
    async def run(cio: CustomerIO) -> None:
        await cio.track("42", "a", timestamp=WHEN)
        await cio.track("42", "b", timestamp=WHEN_NAIVE)
        await cio.track("42", "c", timestamp=WHEN_PLUS2)
        await cio.backfill("42", "d", WHEN)
        await cio.track_anonymous("anon-1", "e", timestamp=WHEN)

    traffic = await record(run)
    validate_traffic(contract, traffic)
    pointer = contract.match("POST", "/api/v1/customers/42/events").body_pointer
    assert pointer is not None
    for req in traffic.requests:
        body = parse_body(req)
        assert body["timestamp"] == WHEN_SECONDS
        assert type(body["timestamp"]) is int
    body = parse_body(traffic.requests[0])
    for bad in (WHEN_SECONDS * 1000, -1):
        with pytest.raises(SpecViolation, match="is not a 'unix timestamp'"):
            contract.check(pointer, {**body, "timestamp": bad}, "mutated timestamp")


# ------------------------------------------------------------------- negative controls


TWO_IDENTIFIERS: dict[str, Any] = {
    "type": "person",
    "action": "identify",
    "identifiers": {"id": "42", "email": "ada@example.com"},
    "attributes": {"plan": "pro"},
}


TWO_KEYS_FAILURE = r"\$(\.batch\[0\])?\.identifiers: .* is valid under each of"


def test_negative_control_two_identifier_keys_fail(contract: BodyValidator) -> None:
    entity = contract.match("POST", "/api/v2/entity").body_pointer
    batch = contract.match("POST", "/api/v2/batch").body_pointer
    assert entity is not None
    assert batch is not None
    for pointer, body in (
        (entity, TWO_IDENTIFIERS),
        (batch_item_pointer(), TWO_IDENTIFIERS),
        (batch, {"batch": [TWO_IDENTIFIERS]}),
    ):
        with pytest.raises(
            SpecViolation, match=r"\$(\.batch\[0\])?\.identifiers: .* is valid under each of"
        ):
            contract.check(pointer, body, "two identifier keys")
    # The same operation with one identifier passes, so the failure is the identifiers.
    contract.check(entity, {**TWO_IDENTIFIERS, "identifiers": {"id": "42"}}, "one identifier")


def test_negative_control_merge_objects_still_need_one_key(contract: BodyValidator) -> None:
    # The merge oneOf -> anyOf patch keeps each branch's maxProperties: 1.
    pointer = contract.match("POST", "/api/v1/merge_customers").body_pointer
    assert pointer is not None
    body = {"primary": {"id": "1", "email": "ada@example.com"}, "secondary": {"id": "2"}}
    with pytest.raises(SpecViolation, match=r"\$\.primary"):
        contract.check(pointer, body, "merge with two primary keys")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"data": {}}, id="missing-name"),
        pytest.param({"name": "x", "data": []}, id="data-not-object"),
        pytest.param({"name": "x", "timestamp": "1714566600"}, id="string-timestamp"),
        pytest.param({"name": "x", "type": "track"}, id="unknown-type"),
    ],
)
def test_negative_control_bad_v1_events_fail(contract: BodyValidator, body: dict[str, Any]) -> None:
    pointer = contract.match("POST", "/api/v1/customers/42/events").body_pointer
    assert pointer is not None
    with pytest.raises(SpecViolation):
        contract.check(pointer, body, "bad event")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            "/api/v1/forms/f/submit",
            {"data": {"email": "ada@example.com", "id": "42"}},
            id="form-two-identifiers",
        ),
        pytest.param("/api/v1/forms/f/submit", {"data": {"plan": "pro"}}, id="form-no-identifier"),
        pytest.param(
            "/api/v1/forms/f/submit", {"data": {"id": "42", "age": 36}}, id="form-int-value"
        ),
        pytest.param("/unsubscribe/d1", {"unsubscribe": "true"}, id="unsubscribe-string"),
        pytest.param("/api/v1/metrics", {"delivery_id": "d1", "metric": "sent"}, id="metric-enum"),
        pytest.param("/api/v1/metrics", {"metric": "opened"}, id="metric-no-delivery"),
        pytest.param(
            "/api/v1/metrics",
            {"delivery_id": "d1", "metric": "opened", "timestamp": 1_714_566_600_000},
            id="metric-milliseconds",
        ),
        pytest.param(
            "/api/v1/push/events",
            {"delivery_id": "d1", "device_id": "t", "event": "clicked"},
            id="push-event-enum",
        ),
    ],
)
def test_negative_control_bad_form_and_report_bodies_fail(
    contract: BodyValidator, path: str, body: dict[str, Any]
) -> None:
    # The validation of the four routes has teeth, the relaxed metrics oneOf included.
    pointer = contract.match("POST", path).body_pointer
    assert pointer is not None
    with pytest.raises(SpecViolation):
        contract.check(pointer, body, "bad body")


def test_unmatched_requests_are_rejected(contract: BodyValidator) -> None:
    with pytest.raises(SpecViolation, match="expected one spec operation"):
        contract.match("POST", "/api/v1/customers/42/evnts")
    with pytest.raises(SpecViolation, match="expected one spec operation"):
        contract.match("PATCH", "/api/v1/customers/42")
    op = contract.match("POST", "/api/v1/segments/7/add_customers?id_type=email")
    with pytest.raises(SpecViolation, match="not declared"):
        contract.check_query(op, {"idtype": "email"}, "typo")
    with pytest.raises(SpecViolation, match="is not one of"):
        contract.check_query(op, {"id_type": "phone"}, "phone is not a segment id_type")


# ------------------------------------------------------- the patches are minimal and used


def test_v2_identifiers_one_of_is_not_relaxed(contract: BodyValidator) -> None:
    schemas: Spec = contract.spec["components"]["schemas"]
    identifiers = schemas["person_common"]["properties"]["identifiers"]
    assert "oneOf" in identifiers
    assert "anyOf" not in identifiers


async def _merge(cio: CustomerIO) -> None:
    await cio.merge_customers("email", "ada@example.com", "id", "42")


async def _identify_float(cio: CustomerIO) -> None:
    await cio.identify("42", score=9.5)


async def _screen(cio: CustomerIO) -> None:
    await cio.screen("42", "Home")


async def _device_int_attribute(cio: CustomerIO) -> None:
    await cio.add_device("42", "tok-1", "ios", attributes={"build_number": 1234})


async def _metric(cio: CustomerIO) -> None:
    await cio.report_metric("RPILAgUBcRhIBqSfeiIwdIYJKxTY", "opened")


PATCH_TRIGGERS: dict[str, tuple[Callable[[CustomerIO], Awaitable[None]], str]] = {
    "patch_merge_identifier_one_of": (_merge, r"\$\.primary: .* is valid under each of"),
    "patch_identify_attribute_types": (
        _identify_float,
        r"\$\.score: 9\.5 is not of type 'integer'",
    ),
    "patch_screen_anonymous_id": (_screen, "'anonymous_id' is a required property"),
    "patch_device_custom_attribute_types": (
        _device_int_attribute,
        r"\$\.device\.attributes\.build_number: 1234 is not of type 'string'",
    ),
    "patch_metrics_channel_one_of": (_metric, r"\$: .* is valid under each of"),
}


def test_every_patch_has_a_trigger() -> None:
    assert sorted(PATCH_TRIGGERS) == sorted(p.__name__ for p in SPEC_PATCHES)


@pytest.mark.parametrize("patch", SPEC_PATCHES, ids=lambda p: p.__name__)
async def test_each_patch_is_needed_by_our_traffic(
    contract: BodyValidator, patch: Callable[[Spec], None]
) -> None:
    run, failure = PATCH_TRIGGERS[patch.__name__]
    traffic = await record(run)
    validate_traffic(contract, traffic)  # passes with every patch
    without = build_contract(p for p in SPEC_PATCHES if p is not patch)
    with pytest.raises(SpecViolation, match=failure):
        validate_traffic(without, traffic)


async def test_segment_id_type_query_is_validated(contract: BodyValidator) -> None:
    traffic = await record(segments)
    validate_traffic(contract, traffic)
    assert [req.query.get("id_type") for req in traffic.requests] == [
        "id",
        "email",
        "cio_id",
        "id",
    ]
    for req in traffic.requests:
        op = contract.match(req.method, req.path)
        assert set(op.query_params) == {"id_type"}
        with pytest.raises(SpecViolation, match="is not one of"):
            contract.check_query(op, {**req.query, "id_type": "phone"}, "mutated id_type")
