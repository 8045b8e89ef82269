"""The fake's form, unsubscribe, metrics and push-event routes, over real loopback HTTP.

Contract §1.2 (which routes take no credentials), §1.7 (forms answer 204 with no body) and
§2 rows 13-16. Requests are sent with plain aiohttp (no SDK call exists for them yet).
Every body the fake accepts is also validated against the vendor Track document (the tests
marked ``vendor_document``: skipped when it is absent, failed under ``CI=true``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from _openapi import (
    SPEC_PATH,
    TRACK_EXTRA_SPEC_PATCHES,
    BodyValidator,
    SpecViolation,
    build_contract,
    load_track_extra_contract,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from customerio_async.testing import (
    AppliedFormSubmission,
    AppliedMetric,
    AppliedOperation,
    AppliedPushEvent,
    AppliedUnsubscribe,
    FakeCustomerIO,
    Fault,
)
from customerio_async.testing import _rules_track_extra as extra_rules
from customerio_async.testing._rules import RuleViolation

from ._client import Raw, basic

AUTH = basic("fake-site", "fake-key")
FORM = "/api/v1/forms/signup%20form/submit"
METRICS = "/api/v1/metrics"
PUSH = "/api/v1/push/events"
UNSUBSCRIBE = "/unsubscribe/RPILAgUBcRhIBqSfeiIwdIYJKxTY"
TS = 1_700_000_000

VALID_FORMS: list[dict[str, Any]] = [
    {"data": {"email": "ada@example.com", "first_name": "Ada"}},
    {"data": {"id": "42", "plan": "pro", "form_name": "ignored by Customer.io"}},
    {"data": {"email": "ada@example.com"}, "extra": "top-level keys are allowed"},
]
VALID_METRICS: list[dict[str, Any]] = [
    {"delivery_id": "d1", "metric": "opened"},
    {"delivery_id": "d1", "metric": "clicked", "href": "https://example.com", "timestamp": TS},
    {"delivery_id": "d1", "metric": "bounced", "recipient": "a@b.co", "reason": "mailbox full"},
    {"delivery_id": "d1", "metric": "delivered", "recipient": 15555550100},  # SMS: an int
    {"delivery_id": "d1", "metric": "deferred", "reason": "greylisted"},
    {"delivery_id": "d1", "metric": "spammed"},
]
VALID_PUSH: list[dict[str, Any]] = [
    {"delivery_id": "d1", "device_id": "tok", "event": "opened"},
    {"delivery_id": "d1", "device_id": "tok", "event": "delivered", "timestamp": TS},
]


def v1_error(body: Any) -> str:
    """The ``meta.error`` text of a v1 error body."""
    assert set(body) == {"meta"}
    message = body["meta"]["error"]
    assert isinstance(message, str)
    return message


# --------------------------------------------------------------------------- forms


async def test_a_form_submission_answers_204_with_no_body(raw: Raw, fake: FakeCustomerIO) -> None:
    reply = await raw.post(FORM, VALID_FORMS[0], auth=AUTH)
    assert reply.status == 204
    assert reply.raw == b""
    assert "Content-Type" not in reply.headers
    data = VALID_FORMS[0]["data"]
    assert fake.form_submissions == [
        AppliedFormSubmission("signup form", {"email": "ada@example.com"}, data, 0)
    ]
    assert fake.operations == [
        AppliedOperation(
            "v1", "person", "form_submit", {"email": "ada@example.com"}, VALID_FORMS[0], 0
        )
    ]
    assert fake.people() == {"email:ada@example.com": data}
    assert fake.requests[0].status == 204


async def test_form_fields_become_attributes_without_the_reserved_keys(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    assert (await raw.post(FORM, VALID_FORMS[1], auth=AUTH)).status == 204
    assert fake.people() == {"id:42": {"id": "42", "plan": "pro"}}


@pytest.mark.parametrize("auth", [None, basic("fake-site", "wrong"), "Bearer fake-app-key"])
async def test_forms_need_track_credentials(
    raw: Raw, fake: FakeCustomerIO, auth: str | None
) -> None:
    reply = await raw.post(FORM, VALID_FORMS[0], auth=auth)
    assert (reply.status, reply.raw) == (401, b"")
    assert fake.form_submissions == []
    assert fake.operations == []


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (FORM, {}, "data must be an object of form fields"),
        (FORM, {"data": ["a@b.co"]}, "data must be an object of form fields"),
        (FORM, {"data": {"name": "Ada"}}, "data must carry exactly one of email or id"),
        (
            FORM,
            {"data": {"email": "a@b.co", "id": "1"}},
            "data must carry exactly one of email or id",
        ),
        (FORM, {"data": {"email": "a@b.co", "age": 36}}, "form field values must be strings"),
        (FORM, {"data": {"id": None}}, "form field values must be strings"),
        (FORM, {"data": {"id": " "}}, "data.id must not be blank"),
        (FORM, {"data": {"id": "x" * 151}}, "data.id cannot be longer than 150 bytes"),
        ("/api/v1/forms/%20/submit", VALID_FORMS[0], "form_id must not be blank"),
    ],
)
async def test_form_rejections(
    raw: Raw, fake: FakeCustomerIO, path: str, body: dict[str, Any], message: str
) -> None:
    reply = await raw.post(path, body, auth=AUTH)
    assert reply.status == 400
    assert v1_error(reply.json()) == message
    assert fake.form_submissions == []


async def test_form_errors_follow_the_v1_envelope_switch() -> None:
    async with (
        FakeCustomerIO(v1_error_envelope="meta.errors") as fake,
        aiohttp.ClientSession() as session,
    ):
        reply = await Raw(fake, session).post(FORM, {"data": {}}, auth=AUTH)
    assert reply.json() == {"meta": {"errors": ["data must carry exactly one of email or id"]}}


# --------------------------------------------------------------------------- unsubscribe


async def test_unsubscribe_at_the_host_root_needs_no_credentials(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    reply = await raw.post(UNSUBSCRIBE, {"unsubscribe": True})
    assert (reply.status, reply.json()) == (200, {})
    reply = await raw.post("/unsubscribe/d%2F2", {"unsubscribe": False})
    assert reply.status == 200
    assert fake.unsubscribes == [
        AppliedUnsubscribe("RPILAgUBcRhIBqSfeiIwdIYJKxTY", True, False, 0),
        AppliedUnsubscribe("d/2", False, False, 1),
    ]
    assert [op.action for op in fake.operations] == ["unsubscribe", "unsubscribe"]
    assert fake.authorization_leaks == []


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        (None, {"unsubscribe": True}, "Content-Type: application/json is required"),
        ("text/plain", {"unsubscribe": True}, "Content-Type: application/json is required"),
        ("application/json", {}, "unsubscribe must be true or false"),
        ("application/json", {"unsubscribe": "true"}, "unsubscribe must be true or false"),
        ("application/json", {"unsubscribe": 1}, "unsubscribe must be true or false"),
    ],
)
async def test_unsubscribe_rejections(
    raw: Raw, fake: FakeCustomerIO, content_type: str | None, body: Any, message: str
) -> None:
    reply = await raw.post(UNSUBSCRIBE, body, content_type=content_type)
    assert reply.status == 400
    assert v1_error(reply.json()) == message
    assert fake.unsubscribes == []


async def test_unsubscribe_accepts_json_with_parameters(raw: Raw, fake: FakeCustomerIO) -> None:
    reply = await raw.post(
        UNSUBSCRIBE, {"unsubscribe": True}, content_type="Application/JSON; charset=utf-8"
    )
    assert reply.status == 200
    assert (await raw.post("/unsubscribe/%20", {"unsubscribe": True})).status == 400
    assert len(fake.unsubscribes) == 1


# --------------------------------------------------------------------------- metrics


async def test_metrics_are_recorded_with_the_channels_they_fit(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    for body in VALID_METRICS:
        assert (await raw.post(METRICS, body)).status == 200
    first, clicked, bounced, sms, deferred, _ = fake.delivery_metrics
    assert first == AppliedMetric(
        "d1",
        "opened",
        ("email", "in_app", "push", "slack", "sms", "webhook"),
        None,
        None,
        None,
        None,
        VALID_METRICS[0],
        False,
        0,
    )
    assert (clicked.href, clicked.timestamp, clicked.channels) == (
        "https://example.com",
        TS,
        ("email", "in_app", "slack", "sms", "webhook"),
    )
    assert (bounced.recipient, bounced.reason, bounced.channels) == (
        "a@b.co",
        "mailbox full",
        ("email",),
    )
    assert (sms.recipient, sms.channels) == (15555550100, ("sms",))
    assert deferred.channels == ("email", "webhook")
    assert [op.action for op in fake.operations] == ["metric"] * len(VALID_METRICS)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metric": "opened"}, "delivery_id"),
        ({"delivery_id": "", "metric": "opened"}, "delivery_id"),
        ({"delivery_id": 7, "metric": "opened"}, "delivery_id"),
        ({"delivery_id": "d"}, "metric"),
        ({"delivery_id": "d", "metric": "liked"}, "metric"),
        ({"delivery_id": "d", "metric": "opened", "timestamp": TS * 1000}, "timestamp"),
        ({"delivery_id": "d", "metric": "opened", "timestamp": "1700000000"}, "timestamp"),
        # SMS is the only channel with an integer recipient, and it has no "converted".
        ({"delivery_id": "d", "metric": "converted", "recipient": 15555550100}, "recipient"),
        # No channel declares a recipient for "deferred" except email, as a string.
        ({"delivery_id": "d", "metric": "deferred", "recipient": True}, "recipient"),
        # Push declares no href, and no channel with href has "dropped" and a bool href.
        ({"delivery_id": "d", "metric": "dropped", "href": False}, "href"),
    ],
)
def test_metric_rules(body: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleViolation) as raised:
        extra_rules.check_metric(body)
    assert raised.value.field == field


async def test_metric_rejections_answer_400(raw: Raw, fake: FakeCustomerIO) -> None:
    reply = await raw.post(METRICS, {"delivery_id": "d", "metric": "liked"})
    assert reply.status == 400
    assert v1_error(reply.json()).startswith("metric must be one of bounced, clicked")
    assert (await raw.post(METRICS, raw=b"not json")).status == 400
    assert fake.delivery_metrics == []


# --------------------------------------------------------------------------- push events


async def test_push_events_are_recorded(raw: Raw, fake: FakeCustomerIO) -> None:
    for body in VALID_PUSH:
        assert (await raw.post(PUSH, body)).status == 200
    assert fake.push_events == [
        AppliedPushEvent("d1", "tok", "opened", None, False, 0),
        AppliedPushEvent("d1", "tok", "delivered", TS, False, 1),
    ]
    assert [op.identifiers for op in fake.operations] == [{"id": "d1"}, {"id": "d1"}]


EVENT_ENUM = "event must be one of opened, converted, delivered"
SECONDS = "timestamp must be an integer unix timestamp in seconds"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"device_id": "t", "event": "opened"}, "delivery_id is required"),
        ({"delivery_id": "d", "event": "opened"}, "device_id is required"),
        ({"delivery_id": "d", "device_id": "t"}, EVENT_ENUM),
        ({"delivery_id": "d", "device_id": "t", "event": "clicked"}, EVENT_ENUM),
        ({"delivery_id": "d", "device_id": "t", "event": "opened", "timestamp": 1.5}, SECONDS),
    ],
)
async def test_push_event_rejections(raw: Raw, body: dict[str, Any], message: str) -> None:
    reply = await raw.post(PUSH, body)
    assert reply.status == 400
    assert v1_error(reply.json()) == message


# --------------------------------------------------------------------------- auth handling


async def test_credentials_on_unauthenticated_routes_are_accepted_but_recorded(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    await raw.post(UNSUBSCRIBE, {"unsubscribe": True}, auth=AUTH)
    await raw.post(METRICS, VALID_METRICS[0], auth="Bearer whatever")
    await raw.post(PUSH, VALID_PUSH[0], auth=basic("nobody", "nothing"))
    await raw.post(METRICS, VALID_METRICS[1])  # clean
    await raw.post(FORM, VALID_FORMS[0], auth=AUTH)  # forms need them: not a leak
    assert [r.status for r in fake.requests] == [200, 200, 200, 200, 204]
    assert [r.path for r in fake.authorization_leaks] == [UNSUBSCRIBE, METRICS, PUSH]
    assert fake.authorization_leaks[0].headers["authorization"] == AUTH
    assert [u.authorization_sent for u in fake.unsubscribes] == [True]
    assert [m.authorization_sent for m in fake.delivery_metrics] == [True, False]
    assert [p.authorization_sent for p in fake.push_events] == [True]


async def test_a_rejected_request_with_credentials_is_still_a_leak(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    assert (await raw.post(METRICS, {}, auth=AUTH)).status == 400
    assert len(fake.authorization_leaks) == 1


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("path", "body", "auth"),
    [
        (FORM, VALID_FORMS[0], AUTH),
        (UNSUBSCRIBE, {"unsubscribe": True}, None),
        (METRICS, VALID_METRICS[0], None),
        (PUSH, VALID_PUSH[0], None),
    ],
)
async def test_faults_apply_to_these_routes(
    raw: Raw, fake: FakeCustomerIO, path: str, body: dict[str, Any], auth: str | None
) -> None:
    fake.add_fault(Fault(status=429, headers={"Retry-After": "3"}, match=path.split("/")[-2]))
    limited = await raw.post(path, body, auth=auth)
    assert (limited.status, limited.headers["Retry-After"]) == (429, "3")
    assert fake.operations == []
    fake.add_fault(Fault(status=503))
    assert (await raw.post(path, body, auth=auth)).status == 503
    ok = await raw.post(path, body, auth=auth)
    assert ok.status in (200, 204)
    assert len(fake.operations) == 1
    assert fake.pending_faults() == []


async def test_a_reset_after_body_still_applies(raw: Raw, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(action="reset_after_body", match="/metrics"))
    with pytest.raises(aiohttp.ClientError):
        await raw.post(METRICS, VALID_METRICS[0])
    await fake.wait_for_operations(1)
    assert len(fake.delivery_metrics) == 1


async def test_clear_forgets_every_record(raw: Raw, fake: FakeCustomerIO) -> None:
    await raw.post(FORM, VALID_FORMS[0], auth=AUTH)
    await raw.post(UNSUBSCRIBE, {"unsubscribe": True}, auth=AUTH)
    await raw.post(METRICS, VALID_METRICS[0])
    await raw.post(PUSH, VALID_PUSH[0])
    fake.clear()
    assert fake.form_submissions == []
    assert fake.unsubscribes == []
    assert fake.delivery_metrics == []
    assert fake.push_events == []
    assert fake.authorization_leaks == []
    assert fake.people() == {}


# --------------------------------------------------------------------------- vendor document

ACCEPTED: list[tuple[str, str, dict[str, Any]]] = [
    *(("POST", FORM, body) for body in VALID_FORMS),
    ("POST", UNSUBSCRIBE, {"unsubscribe": True}),
    ("POST", UNSUBSCRIBE, {"unsubscribe": False}),
    *(("POST", METRICS, body) for body in VALID_METRICS),
    *(("POST", PUSH, body) for body in VALID_PUSH),
]


@pytest.fixture(scope="module")
def contract() -> BodyValidator:
    """The Track document with the patches these routes need."""
    return load_track_extra_contract()


@pytest.mark.vendor_document(SPEC_PATH)
async def test_every_body_the_fake_accepts_is_spec_valid(
    raw: Raw, fake: FakeCustomerIO, contract: BodyValidator
) -> None:
    for _, path, body in ACCEPTED:
        auth = AUTH if "/forms/" in path else None
        assert (await raw.post(path, body, auth=auth)).status in (200, 204)
    assert len(fake.requests) == len(ACCEPTED)
    for req in fake.requests:
        op = contract.match(req.method, req.path)
        assert op.body_pointer is not None
        contract.check(op.body_pointer, req.json(), f"{req.method} {req.path}")


@pytest.mark.vendor_document(SPEC_PATH)
def test_the_metrics_patch_is_needed() -> None:
    assert [p.__name__ for p in TRACK_EXTRA_SPEC_PATCHES] == ["patch_metrics_channel_one_of"]
    without = build_contract(())
    pointer = without.match("POST", METRICS).body_pointer
    assert pointer is not None
    with pytest.raises(SpecViolation, match="is valid under each of"):
        without.check(pointer, VALID_METRICS[0], "unpatched")


@pytest.mark.vendor_document(SPEC_PATH)
@settings(max_examples=300, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {"delivery_id": st.sampled_from(["d1", "RPILAgUBcRhIBqSfeiIwdIYJKxTY"])},
        optional={
            "metric": st.sampled_from([*sorted(extra_rules.DELIVERY_METRICS), "liked"]),
            "timestamp": st.integers(0, 99_999_999_999) | st.text(max_size=3),
            "recipient": st.text(max_size=5) | st.integers() | st.booleans(),
            "reason": st.text(max_size=5) | st.integers(),
            "href": st.text(max_size=5) | st.none(),
        },
    )
)
def test_the_metric_rules_accept_only_spec_valid_bodies(
    contract: BodyValidator, body: dict[str, Any]
) -> None:
    """The per-channel encoding against the (anyOf-patched) document itself: whatever the
    fake's rule accepts, some channel branch of the vendor schema accepts too."""
    try:
        extra_rules.check_metric(body)
    except RuleViolation:
        return
    pointer = contract.match("POST", METRICS).body_pointer
    assert pointer is not None
    contract.check(pointer, body, "accepted metric")


_values = st.sampled_from(["a", "ada@example.com", "42", ""]) | st.integers(0, 9) | st.none()
forms = st.fixed_dictionaries(
    {},
    optional={
        "data": st.dictionaries(
            st.sampled_from(["email", "id", "first_name", "form_name"]), _values, max_size=3
        )
        | st.sampled_from([[], "data"])
    },
)
pushes = st.fixed_dictionaries(
    {},
    optional={
        "delivery_id": _values,
        "device_id": _values,
        "event": st.sampled_from([*extra_rules.PUSH_EVENTS, "clicked"]),
        "timestamp": st.integers(0, 10**12) | st.sampled_from(["1", 1.5]),
    },
)


@pytest.mark.vendor_document(SPEC_PATH)
@settings(max_examples=300, deadline=None)
@given(form=forms, push=pushes, flag=st.booleans() | st.none())
def test_the_form_push_and_unsubscribe_rules_accept_only_spec_valid_bodies(
    contract: BodyValidator, form: dict[str, Any], push: dict[str, Any], flag: bool | None
) -> None:
    """Like the metric property above, for the other three routes' rules."""
    checks: list[tuple[str, dict[str, Any], Callable[[], object]]] = [
        (FORM, form, lambda: extra_rules.check_form_submission(form)),
        (PUSH, push, lambda: extra_rules.check_push_event(push)),
        (
            UNSUBSCRIBE,
            {"unsubscribe": flag},
            lambda: extra_rules.check_unsubscribe("d", {"unsubscribe": flag}),
        ),
    ]
    for path, body, check in checks:
        try:
            check()
        except RuleViolation:
            continue
        pointer = contract.match("POST", path).body_pointer
        assert pointer is not None
        contract.check(pointer, body, f"accepted {path}")
