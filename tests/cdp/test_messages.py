"""Call-site validation and serialisation of Pipelines messages (no I/O): every rule of the
vendor document the SDK checks, refused with a precise error that names the field (never the
value), and the bytes that go on the wire."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import re
import uuid
from types import MappingProxyType
from typing import Any

import pytest

from customerio_async import LimitExceededError, PipelinesCall, ValidationError
from customerio_async._cdp import messages as m
from customerio_async._cdp.validation import format_datetime, is_rfc3339, timestamp
from customerio_async._pipeline.receipt import DELIVERED

UTC = dt.timezone.utc
SECRET = "s3cr3t-value"


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def body(call: PipelinesCall) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(call.data)
    return parsed


@pytest.mark.parametrize(
    ("build", "field", "text"),
    [
        (lambda: m.track(True, "e"), "user_id", "a string or an integer"),
        (lambda: m.track(1.5, "e"), "user_id", "a string or an integer"),
        (lambda: m.track(anonymous_id=[SECRET], event="e"), "anonymous_id", "string or an integer"),
        (lambda: m.track(None, "e"), "user_id", "non-blank user_id or anonymous_id"),
        (lambda: m.track("  ", "e", anonymous_id=""), "user_id", "non-blank"),
        (lambda: m.identify("", {"plan": SECRET}), "user_id", "or traits.email"),
        (lambda: m.track("1", None), "event", "a string"),
        (lambda: m.track("1", " "), "event", "must not be blank"),
        (lambda: m.track("1", "e", [SECRET]), "properties", "a mapping"),
        (lambda: m.identify("1", SECRET), "traits", "a mapping"),
        (lambda: m.page("1", name=7), "name", "a string"),
        (lambda: m.page("1", category=7), "category", "a string"),
        (lambda: m.page("1", properties={"url": 7}), "properties.url", "a string"),
        (lambda: m.track("1", "e", context={"ip": 7}), "context.ip", "a string"),
        (lambda: m.track("1", "e", context={"channel": "tv"}), "context.channel", "one of"),
        (
            lambda: m.track("1", "e", context={"device": {"type": "tv"}}),
            "context.device.type",
            "one of",
        ),
        (
            lambda: m.track("1", "e", context={"page": {"keywords": "a"}}),
            "context.page.keywords",
            "a list",
        ),
        (
            lambda: m.track("1", "e", context={"page": {"keywords": ["a", 1]}}),
            "context.page.keywords[1]",
            "a string",
        ),
        (
            lambda: m.track("1", "e", context={"campaign": {"x": 1}}),
            "context.campaign.x",
            "a string",
        ),
        (
            lambda: m.track("1", "e", context={"network": {"wifi": "y"}}),
            "context.network.wifi",
            "a boolean",
        ),
        (lambda: m.track("1", "e", context={"os": SECRET}), "context.os", "a mapping"),
        (lambda: m.track("1", "e", context=SECRET), "context", "a mapping"),
        (lambda: m.track("1", "e", integrations={"All": "yes"}), "integrations.All", "a boolean"),
        (lambda: m.identify("1", {"email": 7}), "traits.email", "a string"),
        (lambda: m.identify("1", {"createdAt": 1_700_000_000}), "traits.createdAt", "RFC 3339"),
        (lambda: m.identify("1", {"createdAt": "2024-05-01"}), "traits.createdAt", "RFC 3339"),
        (lambda: m.identify("1", {"unsubscribed": "no"}), "traits.unsubscribed", "a boolean"),
        (
            lambda: m.identify("1", {"cio_subscription_preferences": {"topics": {"topic_1": 1}}}),
            "traits.cio_subscription_preferences.topics.topic_1",
            "a boolean",
        ),
        (lambda: m.group("1", "g", {"object_type_id": 1}), "traits.object_type_id", "a string"),
        (
            lambda: m.group("1", "g", {"relationshipAttributes": 1}),
            "traits.relationshipAttributes",
            "a mapping",
        ),
        (lambda: m.group("1", None), "group_id", "non-blank group_id"),
        (lambda: m.group("1", " "), "group_id", "non-blank group_id"),
        (lambda: m.group(None, "g"), "user_id", "non-blank"),
        (lambda: m.alias(None, "1"), "previous_id", "non-blank previous_id"),
        (lambda: m.alias("a", " "), "user_id", "non-blank user_id"),
        (lambda: m.track("1", "e", timestamp=1_700_000_000), "timestamp", "RFC 3339"),
        (lambda: m.track("1", "e", timestamp="2024-05-01T12:00:00"), "timestamp", "with an offset"),
        (lambda: m.track("1", "e", message_id=" "), "message_id", "must not be blank"),
        (lambda: m.track(anonymous_id="a", event="User Deleted"), "userId", "needs userId"),
        (
            lambda: m.track("1", "Device Deleted"),
            "context.device.token",
            "needs context.device.token",
        ),
        (
            lambda: m.track("1", "Relationship Deleted", {"objectId": "o", "objectTypeId": "1"}),
            "properties.objectTypeId",
            "an integer",
        ),
        (
            lambda: m.track("1", "Relationship Deleted", {"objectId": " "}),
            "properties.objectId",
            "needs",
        ),
        (
            lambda: m.track("1", "Object Deleted", {"objectId": "o"}),
            "anonymousId",
            "needs anonymousId",
        ),
        (
            lambda: m.track(event="Report Delivery Event", properties={"metric": "bounced"}),
            "properties.metric",
            "one of",
        ),
    ],
)
def test_rules_refuse_with_the_field_named_never_the_value(
    build: Any, field: str, text: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(text)) as caught:
        build()
    assert caught.value.field == field
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("nan"), "NaN"),
        ({1, 2}, "sets have no order"),
        ({1: "a"}, "keys must be strings"),
        (2**70, "64 bits"),
        (decimal.Decimal("NaN"), "NaN and Infinity"),
        (object(), "not JSON-serialisable"),
        ("\ud800", "lone surrogate"),
        (_deep(300), "nests too deeply"),
        ([1.0, {"x": float("inf")}], "NaN or Infinity"),
    ],
)
def test_values_json_cannot_carry_are_refused(value: Any, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as caught:
        m.track("1", "e", {"v": value})
    assert caught.value.field == "track"


class Name(str):
    """A str subclass (sent as a plain string)."""


def test_string_subclasses_are_plain_strings() -> None:
    assert body(m.track(Name("1"), "e"))["userId"] == "1"


class Plan(enum.Enum):
    PRO = "pro"


def test_values_are_serialised_like_the_segment_spec() -> None:
    properties = {
        "at": dt.datetime(2024, 5, 1, 12, 30, 0, 500_000),  # naive: UTC
        "there": dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "day": dt.date(2024, 5, 1),
        "price": decimal.Decimal("9.5"),
        "plan": Plan.PRO,
        "id": uuid.UUID(int=1),
        "pair": (1, 2),
        "nothing": None,
    }
    sent = body(m.track("1", "e", properties))["properties"]
    assert sent == {
        "at": "2024-05-01T12:30:00.500000Z",
        "there": "2024-05-01T14:30:00+02:00",
        "day": "2024-05-01",
        "price": 9.5,
        "plan": "pro",
        "id": "00000000-0000-0000-0000-000000000001",
        "pair": [1, 2],
        "nothing": None,
    }
    for value in (sent["at"], sent["there"]):
        assert is_rfc3339(value)


def test_timestamps_are_rfc_3339() -> None:
    naive = dt.datetime(2024, 5, 1, 12, 30)
    aware = dt.datetime(2024, 5, 1, 14, 30, 0, 123_456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert timestamp(naive) == "2024-05-01T12:30:00.000Z"
    assert timestamp(aware) == "2024-05-01T12:30:00.123Z"
    assert timestamp(aware.astimezone(UTC)) == "2024-05-01T12:30:00.123Z"
    assert timestamp("2024-05-01t12:30:00+02:00") == "2024-05-01t12:30:00+02:00"  # as given
    assert format_datetime(dt.datetime(1, 1, 1)) == "0001-01-01T00:00:00.000Z"
    for bad in ("2016-12-31T23:59:60Z", "2023-02-29T00:00:00Z", "2024-05-01T12:00:00+24:00", 5):
        assert not is_rfc3339(bad)
    sent = body(m.track("1", "e"))["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sent)
    assert abs(
        dt.datetime.fromisoformat(sent[:-1]) - dt.datetime.now(UTC).replace(tzinfo=None)
    ) < dt.timedelta(seconds=5)


def test_a_message_over_32000_bytes_names_the_limit() -> None:
    size = len(m.track("1", "e", {"pad": ""}).data)
    assert len(m.track("1", "e", {"pad": "x" * (32_000 - size)}).data) == 32_000
    with pytest.raises(LimitExceededError) as caught:
        m.track("1", "e", {"pad": "x" * (32_001 - size)})
    error = caught.value
    assert (error.size, error.limit, error.field) == (32_001, 32_000, "track")
    assert "at most 32000" in str(error)
    assert "silently drops" in str(error)


def test_the_common_fields_and_ordering_keys() -> None:
    context = {"ip": "1.2.3.4"}
    call = m.track(7, "e", anonymous_id="a", context=context, message_id=uuid.UUID(int=2))
    sent = body(call)
    assert sent["userId"] == "7"
    assert sent["anonymousId"] == "a"
    assert sent["context"] == {"ip": "1.2.3.4", "library": m.LIBRARY}
    assert context == {"ip": "1.2.3.4"}  # the caller's dict is never changed
    assert sent["messageId"] == str(uuid.UUID(int=2)) == call.message_id == call.event_id
    assert (call.key, call.more_keys, call.single) == (("user", "7"), (("anonymous", "a"),), None)
    own = body(m.track("1", "e", context={"library": {"name": "mine"}}))
    assert own["context"] == {"library": {"name": "mine"}}
    assert m.track(anonymous_id="a", event="e").key == ("anonymous", "a")
    assert m.track(event="e", group_id="g").key == ("group", "g")
    assert m.track(event="Report Delivery Event", properties={}).key is None
    alias = m.alias("anon", 42)
    assert alias.key == ("user", "42")
    assert alias.more_keys == (("user", "anon"), ("anonymous", "anon"))
    assert alias.single is not None
    assert alias.single.path == "/v1/alias"
    assert repr(call) == "<PipelinesCall track>"
    assert "7" not in repr(call)
    assert call.message["event"] == "e"
    assert len({m.track("1", "e").message_id for _ in range(1000)}) == 1000


def test_messages_mirror_analytics_python() -> None:
    assert body(m.identify("1"))["traits"] == {}
    page = body(m.page("1", "Docs", "Home"))
    assert (page["category"], page["name"], page["properties"]) == ("Docs", "Home", {})
    assert "category" not in body(m.screen("1"))
    assert body(m.group("1", 9))["groupId"] == "9"
    props = MappingProxyType({"a": 1})
    assert body(m.track("1", "e", props))["properties"] == {"a": 1}
    assert body(m.identify("", {"email": "a@b.c"}))["userId"] == ""


def test_from_dict_takes_segment_spec_messages() -> None:
    call = PipelinesCall.from_dict(
        {"type": "page", "userId": "1", "name": "Home", "category": "Docs", "messageId": "m"}
    )
    assert (call.action, body(call)["name"], call.message_id) == ("page", "Home", "m")
    assert PipelinesCall.from_dict({"type": "alias", "previousId": "a", "userId": "1"}).single
    group = PipelinesCall.from_dict({"type": "group", "userId": "1", "groupId": "g"})
    assert body(group)["groupId"] == "g"
    with pytest.raises(ValidationError, match="a mapping"):
        PipelinesCall.from_dict([("type", "track")])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="type must be one of") as caught:
        PipelinesCall.from_dict({"type": "delete"})
    assert caught.value.field == "type"
    with pytest.raises(ValidationError, match="unknown field 'sentAt' for track") as caught:
        PipelinesCall.from_dict({"type": "track", "userId": "1", "event": "e", "sentAt": "x"})
    assert caught.value.field == "sentAt"
    with pytest.raises(ValidationError, match="unknown field 'anonymousId' for alias"):
        PipelinesCall.from_dict({"type": "alias", "anonymousId": "a"})


def test_the_batch_format() -> None:
    from customerio_async._cdp.protocol import BATCH_PATH, gzip_body, pipelines_format
    from customerio_async._http.messages import HTTPRequest, HTTPResponse

    fmt = pipelines_format(100, gzip=True)
    assert (fmt.api, fmt.path, fmt.max_batch_bytes) == ("pipelines", BATCH_PATH, 500_000)
    assert fmt.headers == {"X-Strict-Mode": "1"}
    assert fmt.body([b"{}", b"{}"]) == b'{"batch":[{},{}]}'
    ok = HTTPResponse(200, {}, b"{}")
    assert fmt.accept(HTTPRequest("POST", BATCH_PATH, b"", BATCH_PATH), ok)
    assert fmt.settle(ok, 3) == (DELIVERED, None)
    assert gzip_body(b"x" * 1023) == (b"x" * 1023, {})
    assert pipelines_format(1, gzip=False).encode is None


def test_the_fast_track_makes_the_general_paths_message() -> None:
    fast = body(m.track("1", "e", {"a": 1}))
    general = body(m.track("1", "e", {"a": 1}, integrations={}))  # any argument: general
    for sent in (fast, general):
        sent.pop("messageId")
        sent.pop("timestamp")
    assert fast == general
    assert list(fast) == list(general)  # the same key order on the wire
    for user, event in (("", "e"), (" ", "e"), ("1", ""), ("1", " ")):
        with pytest.raises(ValidationError):
            m.track(user, event)
    assert m.track("1", "User Deleted").action == "track"  # semantic: the general checks
