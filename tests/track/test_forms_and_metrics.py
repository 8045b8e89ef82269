"""Form submissions, custom unsubscribes, delivery metrics and push metrics on the wire.

Contract §1.2 (the three routes that take no credentials), §1.7 (forms answer 204 with no
body) and §2 rows 13-16, against FakeCustomerIO over loopback, in direct and batched mode:
wire format, no ``Authorization`` header where the API takes none (also after a redirect),
receipts and outcomes, retries, ordering with the person's (or delivery's) other operations,
and call-site validation that agrees with the fake's reading of the vendor document.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from customerio_async import (
    BadRequestError,
    BatchConfig,
    CustomerIO,
    Delivery,
    Identifier,
    LimitExceededError,
    OperationRejectedError,
    Outcome,
    Receipt,
    Region,
    RegionalCustomerIO,
    RetryPolicy,
    ValidationError,
)
from customerio_async._track import calls
from customerio_async._track.validation import DELIVERY_METRICS
from customerio_async.testing import (
    AppliedFormSubmission,
    AppliedPushEvent,
    AppliedUnsubscribe,
    FakeCustomerIO,
    Fault,
)
from customerio_async.testing import _rules_track_extra as fake_rules
from customerio_async.testing._rules import RuleViolation

SITE_ID = "fake-site"
API_KEY = "fake-key"
BASIC = "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode()
FAST_RETRY = RetryPolicy(
    backoff_base=0.01, backoff_cap=0.05, delivery_timeout=10.0, direct_attempts=3
)
DELIVERED = Outcome("delivered")
WHEN = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
WHEN_SECONDS = 1_714_566_600
DID = "RPILAgUBcRhIBqSfeiIwdIYJKxTY"

Call = Callable[..., Awaitable[Receipt]]  # (cio, wait=False) -> Receipt


def client(fake: FakeCustomerIO, *, batching: bool, **kwargs: Any) -> CustomerIO:
    """A client for ``fake``: batched with a short linger, or direct."""
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("rate_limit", None)
    if batching:
        kwargs.setdefault("batch", BatchConfig(linger=0.005))
    return CustomerIO(SITE_ID, API_KEY, track_url=fake.url, batching=batching, **kwargs)


@pytest_asyncio.fixture(params=[False, True], ids=["direct", "batched"])
async def any_cio(
    request: pytest.FixtureRequest, fake: FakeCustomerIO
) -> AsyncIterator[CustomerIO]:
    """A direct-mode and a batched client, each with fast retries."""
    async with client(fake, batching=request.param) as cio:
        yield cio


@pytest_asyncio.fixture
async def bcio(fake: FakeCustomerIO) -> AsyncIterator[CustomerIO]:
    async with client(fake, batching=True) as cio:
        yield cio


async def settled(receipt: Receipt) -> Outcome:
    """The receipt's outcome (direct mode: already there; batched: waited for)."""
    return await receipt.wait(timeout=10)


# The four calls, each with the raw path it must hit, whether it carries credentials and
# the fake's success status.


async def form(cio: CustomerIO, wait: bool = False) -> Receipt:
    return await cio.submit_form("signup form", {"email": "ada@example.com"}, wait=wait)


async def unsubscribe(cio: CustomerIO, wait: bool = False) -> Receipt:
    return await cio.unsubscribe(DID, wait=wait)


async def metric(cio: CustomerIO, wait: bool = False) -> Receipt:
    return await cio.report_metric(DID, "clicked", href="https://example.com/a", wait=wait)


async def push(cio: CustomerIO, wait: bool = False) -> Receipt:
    return await cio.report_push_metric(DID, "tok-1", "opened", wait=wait)


CALLS = [
    pytest.param(form, "/api/v1/forms/signup%20form/submit", True, 204, id="submit_form"),
    pytest.param(unsubscribe, f"/unsubscribe/{DID}", False, 200, id="unsubscribe"),
    pytest.param(metric, "/api/v1/metrics", False, 200, id="report_metric"),
    pytest.param(push, "/api/v1/push/events", False, 200, id="report_push_metric"),
]
UNAUTHENTICATED = [p for p in CALLS if p.values[2] is False]


# --------------------------------------------------------------------------- wire format


async def test_submit_form_on_the_wire(fake: FakeCustomerIO, any_cio: CustomerIO) -> None:
    data = {"email": "ada@example.com", "first_name": "Ada", "form_name": "ignored"}
    receipt = await any_cio.submit_form("newsletter", data, wait=True)
    assert receipt.action == "submit_form"
    assert await settled(receipt) == DELIVERED
    (req,) = fake.requests
    assert (req.method, req.path, req.status) == ("POST", "/api/v1/forms/newsletter/submit", 204)
    assert req.json() == {"data": data}
    assert req.headers["authorization"] == BASIC
    assert req.headers["content-type"] == "application/json"
    assert fake.form_submissions == [
        AppliedFormSubmission("newsletter", {"email": "ada@example.com"}, data, 0)
    ]
    assert fake.people() == {
        "email:ada@example.com": {"email": "ada@example.com", "first_name": "Ada"}
    }


async def test_204_with_no_body_is_a_success_in_direct_mode(
    fake: FakeCustomerIO, cio: CustomerIO
) -> None:
    receipt = await cio.submit_form(7, {"id": "42"})
    assert receipt.outcome == DELIVERED
    assert receipt.response == {}  # the empty body, parsed as the success it is
    assert fake.requests[0].path == "/api/v1/forms/7/submit"
    assert fake.requests[0].body == b'{"data":{"id":"42"}}'


@pytest.mark.parametrize(
    ("form_id", "raw", "decoded"),
    [
        ("a/b", "a%2Fb", "a/b"),
        ("..", "%2E%2E", ".."),
        ("sign up?", "sign%20up%3F", "sign up?"),
        (123, "123", "123"),
    ],
)
async def test_form_id_is_one_encoded_segment(
    fake: FakeCustomerIO, cio: CustomerIO, form_id: str | int, raw: str, decoded: str
) -> None:
    await cio.submit_form(form_id, {"id": "42"})
    req = fake.requests[-1]
    assert req.path == f"/api/v1/forms/{raw}/submit"
    assert req.status == 204
    assert fake.form_submissions[-1].form_id == decoded


@pytest.mark.parametrize("flag", [True, False])
async def test_unsubscribe_at_the_host_root_without_credentials(
    fake: FakeCustomerIO, any_cio: CustomerIO, flag: bool
) -> None:
    receipt = await any_cio.unsubscribe("d/1", flag, wait=True)
    assert receipt.action == "unsubscribe"
    (req,) = fake.requests
    assert (req.method, req.path, req.status) == ("POST", "/unsubscribe/d%2F1", 200)
    assert req.json() == {"unsubscribe": flag}
    assert req.headers["content-type"] == "application/json"  # required by the document
    assert "authorization" not in req.headers
    assert fake.unsubscribes == [AppliedUnsubscribe("d/1", flag, False, 0)]
    assert fake.authorization_leaks == []


async def test_report_metric_on_the_wire(fake: FakeCustomerIO, any_cio: CustomerIO) -> None:
    await any_cio.report_metric(DID, "opened", wait=True)
    await any_cio.report_metric(
        DID, "clicked", href="https://example.com/a", timestamp=WHEN, wait=True
    )
    await any_cio.report_metric(
        DID,
        "bounced",
        recipient="ada@example.com",
        reason="mailbox full",
        timestamp=WHEN_SECONDS,
        wait=True,
    )
    await any_cio.report_metric(DID, "delivered", recipient=15555550100, wait=True)  # SMS
    assert [r.json() for r in fake.requests] == [
        {"delivery_id": DID, "metric": "opened"},
        {"delivery_id": DID, "metric": "clicked", "href": "https://example.com/a",
         "timestamp": WHEN_SECONDS},
        {"delivery_id": DID, "metric": "bounced", "recipient": "ada@example.com",
         "reason": "mailbox full", "timestamp": WHEN_SECONDS},
        {"delivery_id": DID, "metric": "delivered", "recipient": 15555550100},
    ]  # fmt: skip
    assert {(r.method, r.path, r.status) for r in fake.requests} == {
        ("POST", "/api/v1/metrics", 200)
    }
    assert all("authorization" not in r.headers for r in fake.requests)
    assert [m.channels for m in fake.delivery_metrics][3] == ("sms",)
    assert fake.authorization_leaks == []


async def test_report_push_metric_on_the_wire(fake: FakeCustomerIO, any_cio: CustomerIO) -> None:
    await any_cio.report_push_metric(DID, "tok/1", "opened", wait=True)
    await any_cio.report_push_metric(DID, "tok/1", "delivered", timestamp=WHEN, wait=True)
    assert [r.json() for r in fake.requests] == [
        {"delivery_id": DID, "device_id": "tok/1", "event": "opened"},
        {"delivery_id": DID, "device_id": "tok/1", "event": "delivered", "timestamp": WHEN_SECONDS},
    ]
    assert {(r.path, r.status) for r in fake.requests} == {("/api/v1/push/events", 200)}
    assert all("authorization" not in r.headers for r in fake.requests)
    assert fake.push_events == [
        AppliedPushEvent(DID, "tok/1", "opened", None, False, 0),
        AppliedPushEvent(DID, "tok/1", "delivered", WHEN_SECONDS, False, 1),
    ]


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize(("call", "path", "authenticated", "status"), UNAUTHENTICATED)
async def test_no_credentials_after_a_redirect(
    fake: FakeCustomerIO,
    any_cio: CustomerIO,
    call: Call,
    path: str,
    authenticated: bool,
    status: int,
) -> None:
    # Customer.io redirects EU workspaces that call the US host; the followed request must
    # stay as bare as the first one.
    fake.add_fault(Fault(status=307, headers={"Location": fake.url + path}, match=path))
    assert await settled(await call(any_cio)) == DELIVERED
    assert [(r.path, r.status) for r in fake.requests] == [(path, 307), (path, status)]
    assert fake.requests[0].body == fake.requests[1].body
    assert all("authorization" not in r.headers for r in fake.requests)
    assert fake.authorization_leaks == []


async def test_a_form_keeps_its_credentials_across_a_redirect(
    fake: FakeCustomerIO, any_cio: CustomerIO
) -> None:
    path = "/api/v1/forms/signup%20form/submit"
    fake.add_fault(Fault(status=308, headers={"Location": path}, match="/forms/"))
    assert await settled(await form(any_cio)) == DELIVERED
    assert [(r.status, r.headers["authorization"]) for r in fake.requests] == [
        (308, BASIC),
        (204, BASIC),
    ]


# --------------------------------------------------------------------------- retries, errors


@pytest.mark.parametrize(("call", "path", "authenticated", "status"), CALLS)
async def test_a_503_is_retried(
    fake: FakeCustomerIO,
    any_cio: CustomerIO,
    call: Call,
    path: str,
    authenticated: bool,
    status: int,
) -> None:
    fake.add_fault(Fault(status=503, match=path))
    assert await settled(await call(any_cio)) == DELIVERED
    assert [(r.path, r.status) for r in fake.requests] == [(path, 503), (path, status)]
    assert all(("authorization" in r.headers) is authenticated for r in fake.requests)
    assert len(fake.operations) == 1  # applied once
    if any_cio.batching:
        assert any_cio.statistics().retries_by_cause == {"http_503": 1}


@pytest.mark.parametrize(("call", "path", "authenticated", "status"), CALLS)
async def test_a_refusal_is_a_rejection(
    fake: FakeCustomerIO,
    bcio: CustomerIO,
    call: Call,
    path: str,
    authenticated: bool,
    status: int,
) -> None:
    fake.add_fault(Fault(status=400, match=path, times=2))
    outcome = await settled(await call(bcio))
    assert (outcome.status, outcome.reason, outcome.http_status) == ("rejected", "http_400", 400)
    with pytest.raises(OperationRejectedError):
        await call(bcio, wait=True)
    assert len(fake.requests) == 2  # a 400 is final: never retried
    assert bcio.statistics().rejected == 2


@pytest.mark.parametrize(("call", "path", "authenticated", "status"), CALLS)
async def test_direct_mode_raises_the_api_error(
    fake: FakeCustomerIO,
    cio: CustomerIO,
    call: Call,
    path: str,
    authenticated: bool,
    status: int,
) -> None:
    fake.add_fault(Fault(status=400, match=path))
    with pytest.raises(BadRequestError):
        await call(cio)


# --------------------------------------------------------------------------- ordering


async def test_a_form_is_ordered_with_its_respondents_operations(
    fake: FakeCustomerIO, bcio: CustomerIO
) -> None:
    # The first identify's batch stalls in the fake; the form about the same person must
    # wait for it, a form about somebody else must not.
    fake.add_fault(Fault(delay=2.0, match="/api/v2/batch"))
    first = await bcio.identify("42", plan="pro")
    await fake.wait_for_arrivals(1)
    form = await bcio.submit_form("upgrade", {"id": "42", "plan": "free"})
    last = await bcio.identify("42", plan="team")
    other = await bcio.submit_form("upgrade", {"email": "bob@example.com", "plan": "x"})
    assert await other.wait(timeout=5) == DELIVERED
    assert not first.done()
    assert not form.done()
    assert [s.identifiers for s in fake.form_submissions] == [{"email": "bob@example.com"}]
    await bcio.flush(timeout=10)
    assert [await r.wait() for r in (first, form, last)] == [DELIVERED] * 3
    person = [op.action for op in fake.operations if op.identifiers == {"id": "42"}]
    assert person == ["identify", "form_submit", "identify"]
    assert fake.people()["id:42"]["plan"] == "team"


async def test_a_form_by_email_is_ordered_with_identify_by_email(
    fake: FakeCustomerIO, bcio: CustomerIO
) -> None:
    fake.add_fault(Fault(delay=0.5, match="/api/v2/batch"))
    await bcio.identify("ada@example.com", plan="pro")
    await bcio.submit_form("f", {"email": "ada@example.com", "plan": "free"})
    await bcio.flush(timeout=10)
    assert [op.action for op in fake.operations] == ["identify", "form_submit"]
    assert fake.people()["email:ada@example.com"]["plan"] == "free"


async def test_reports_on_one_delivery_keep_their_order(
    fake: FakeCustomerIO, bcio: CustomerIO
) -> None:
    fake.add_fault(Fault(delay=2.0, match=f"/unsubscribe/{DID}"))
    first = await bcio.unsubscribe(DID, True)
    await fake.wait_for_arrivals(1)
    second = await bcio.unsubscribe(DID, False)
    push = await bcio.send(Delivery.event(DID, "opened", device_token="tok"))  # v2, same key
    metric = await bcio.report_metric(DID, "converted")
    elsewhere = await bcio.report_metric("another-delivery", "opened")
    assert await elsewhere.wait(timeout=5) == DELIVERED
    assert not any(r.done() for r in (first, second, push, metric))
    await bcio.flush(timeout=10)
    ours = [op.action for op in fake.operations if op.identifiers == {"id": DID}]
    assert ours == ["unsubscribe", "unsubscribe", "event", "metric"]
    assert [u.unsubscribe for u in fake.unsubscribes] == [True, False]


# --------------------------------------------------------------------------- de-duplication


async def test_a_form_resets_identify_dedup_for_its_respondent(
    fake: FakeCustomerIO, bcio: CustomerIO
) -> None:
    await bcio.identify("42", plan="pro")
    await bcio.submit_form("f", {"id": "42", "plan": "free"})
    again = await bcio.identify("42", plan="pro")  # must not be skipped as a duplicate
    await bcio.flush(timeout=10)
    assert again.outcome == DELIVERED
    assert fake.people()["id:42"]["plan"] == "pro"


async def test_an_unsubscribe_resets_identify_dedup(fake: FakeCustomerIO, bcio: CustomerIO) -> None:
    # The delivery's person is unknown to the SDK: every remembered identify is forgotten.
    await bcio.identify("42", unsubscribed=False)
    await bcio.unsubscribe(DID)
    again = await bcio.identify("42", unsubscribed=False)
    await bcio.flush(timeout=10)
    assert again.outcome == DELIVERED
    assert bcio.statistics().deduplicated == 0


# --------------------------------------------------------------------------- regions


async def test_regional_routing() -> None:
    async def resolver(person: Identifier) -> str | None:
        return "eu" if person.value == "ana@example.com" else None

    async with (
        FakeCustomerIO(site_id="us-site", api_key="us-key", region="us") as us,
        FakeCustomerIO(site_id="eu-site", api_key="eu-key", region="eu") as eu,
    ):
        clients = [
            CustomerIO("us-site", "us-key", track_url=us.url, region="us", batching=False),
            CustomerIO("eu-site", "eu-key", track_url=eu.url, region="eu", batching=False),
        ]
        async with RegionalCustomerIO(clients, resolver=resolver) as cio:
            await cio.submit_form("f", {"email": "ana@example.com"})  # the resolver decides
            await cio.report_metric(DID, "opened")  # no person: the default region
            await cio.using(Region.EU).unsubscribe(DID)
    assert [r.path for r in eu.requests] == ["/api/v1/forms/f/submit", f"/unsubscribe/{DID}"]
    assert [r.path for r in us.requests] == ["/api/v1/metrics"]
    assert eu.authorization_leaks == us.authorization_leaks == []


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.submit_form("", {"id": "1"}), "form_id"),
        (lambda c: c.submit_form("  ", {"id": "1"}), "form_id"),
        (lambda c: c.submit_form(None, {"id": "1"}), "form_id"),
        (lambda c: c.submit_form(True, {"id": "1"}), "form_id"),
        (lambda c: c.submit_form(10**200, {"id": "1"}), "form_id"),
        (lambda c: c.submit_form("f", [("id", "1")]), "data"),
        (lambda c: c.submit_form("f", {"first_name": "Ada"}), "data"),
        (lambda c: c.submit_form("f", {"id": "1", "email": "a@b.co"}), "data"),
        (lambda c: c.submit_form("f", {"id": "1", "age": 36}), "data.age"),
        (lambda c: c.submit_form("f", {"id": "1", "opt_in": True}), "data.opt_in"),
        (lambda c: c.submit_form("f", {"id": 1}), "data.id"),
        (lambda c: c.submit_form("f", {"id": "1", "": "x"}), "data"),
        (lambda c: c.submit_form("f", {"id": "1", 2: "x"}), "data"),
        (lambda c: c.submit_form("f", {"id": " "}), "data.id"),
        (lambda c: c.unsubscribe("", True), "delivery_id"),
        (lambda c: c.unsubscribe(DID, 1), "unsubscribe"),
        (lambda c: c.unsubscribe(DID, "true"), "unsubscribe"),
        (lambda c: c.report_metric(None, "opened"), "delivery_id"),
        (lambda c: c.report_metric(DID, "sent"), "metric"),
        (lambda c: c.report_metric(DID, "OPENED"), "metric"),
        (lambda c: c.report_metric(DID, "opened", timestamp=WHEN_SECONDS * 1000), "timestamp"),
        (lambda c: c.report_metric(DID, "opened", recipient=True), "recipient"),
        (lambda c: c.report_metric(DID, "opened", recipient=1.5), "recipient"),
        (lambda c: c.report_metric(DID, "converted", recipient=15555550100), "recipient"),
        (lambda c: c.report_metric(DID, "clicked", href=["https://x"]), "href"),
        (lambda c: c.report_metric(DID, "bounced", reason=550), "reason"),
        (lambda c: c.report_push_metric(DID, "", "opened"), "device_id"),
        (lambda c: c.report_push_metric(DID, "tok", "clicked"), "event"),
        (lambda c: c.report_push_metric(DID, "tok", "opened", timestamp="soon"), "timestamp"),
        (lambda c: c.report_push_metric(" ", "tok", "opened"), "delivery_id"),
    ],
)
async def test_bad_input_is_refused_at_the_call_site(
    fake: FakeCustomerIO, any_cio: CustomerIO, call: Callable[[Any], Awaitable[Any]], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await call(any_cio)
    assert info.value.field == field
    assert fake.requests == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.submit_form("f", {"id": "x" * 151}),
        lambda c: c.submit_form("f", {"email": "é" * 75 + "@b.co"}),
        lambda c: c.unsubscribe("d" * 151),
        lambda c: c.report_metric("d" * 151, "opened"),
        lambda c: c.report_push_metric(DID, "t" * 151, "opened"),
    ],
)
async def test_identifiers_over_150_bytes_are_refused(
    fake: FakeCustomerIO, cio: CustomerIO, call: Callable[[Any], Awaitable[Any]]
) -> None:
    with pytest.raises(LimitExceededError):
        await call(cio)
    assert fake.requests == []


def test_errors_name_the_field_never_the_value() -> None:
    bad: dict[str, Any] = {"id": "secret-person", "card": 4111111111111111}
    with pytest.raises(ValidationError) as info:
        calls.submit_form("f", bad)
    assert "4111" not in str(info.value)
    assert "secret-person" not in str(info.value)
    with pytest.raises(ValidationError) as info:
        calls.submit_form("f", {"email": "ada@example.com", "id": "secret-person"})
    assert "secret" not in str(info.value)
    assert "ada@" not in str(info.value)


# --------------------------------------------------------------------------- the fake agrees

_FIELD_VALUES = st.one_of(
    st.none(), st.text(max_size=5), st.integers(), st.booleans(), st.floats(allow_nan=False)
)


@settings(max_examples=300, deadline=None)
@given(
    metric=st.sampled_from([*DELIVERY_METRICS, "sent", "Opened", ""]),
    recipient=_FIELD_VALUES,
    reason=_FIELD_VALUES,
    href=_FIELD_VALUES,
)
def test_metric_validation_agrees_with_the_fake(
    metric: str, recipient: Any, reason: Any, href: Any
) -> None:
    """The SDK accepts a metric body exactly when the fake (its own reading of the six
    per-channel branches of the vendor document) does."""
    given_fields = {
        name: value
        for name, value in (("recipient", recipient), ("reason", reason), ("href", href))
        if value is not None
    }
    body: dict[str, Any] = {"delivery_id": DID, "metric": metric, **given_fields}
    try:
        fake_rules.check_metric(body)
        fake_accepts = True
    except RuleViolation:
        fake_accepts = False
    try:
        op = calls.delivery_metric(DID, metric, recipient=recipient, reason=reason, href=href)
    except ValidationError:
        assert not fake_accepts, f"the SDK refuses what the fake accepts: {body}"
        return
    assert fake_accepts, f"the SDK sends what the fake refuses: {body}"
    assert op.v1 is not None
    assert op.v1.body == body


@settings(max_examples=200, deadline=None)
@given(
    data=st.dictionaries(
        st.sampled_from(["email", "id", "first_name", "plan", "form_name"]),
        st.one_of(st.text(max_size=8), st.integers(), st.none()),
    )
)
def test_every_form_the_sdk_accepts_the_fake_accepts(data: dict[str, Any]) -> None:
    try:
        op = calls.submit_form("f", data)
    except ValidationError:
        return
    assert op.v1 is not None
    assert op.v1.body is not None
    # The fake raises RuleViolation for a body it refuses; the respondent it reads is the
    # person the operation is ordered by.
    key = fake_rules.check_form_submission(op.v1.body)
    assert op.key is not None
    assert {op.key.id_type: op.key.value} == key
