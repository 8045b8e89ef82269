"""The fake's Data Pipelines routes (``/v1/identify`` ... ``/v1/batch``), over real HTTP.

Contract §5, §7 "Pipelines", §10 U12, and the vendor Pipelines document. Sent with plain
aiohttp. Every body the fake accepts is also validated against the vendor document (tests
marked ``vendor_document``: skipped when it is absent, failed under ``CI=true``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from _openapi import PIPELINES_SPEC_PATH, BodyValidator, Spec, SpecViolation
from _pipelines_openapi import (
    PIPELINES_SPEC_PATCHES,
    batch_item_pointer,
    build_pipelines_contract,
    is_rfc3339,
    load_pipelines_contract,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customerio_async.testing import FakeCustomerIO, Fault, PipelinesDrop, PipelinesMessage
from customerio_async.testing._rules_base import RuleViolation
from customerio_async.testing._rules_pipelines import (
    BATCH_TYPES,
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    MESSAGE_TYPES,
    check_batch_item,
    check_message,
    is_date_time,
)

from ._client import Raw, basic

KEY = basic("fake-write-key", "")
STRICT = {"X-Strict-Mode": "1"}
WHEN = "2024-05-01T12:30:00.000Z"

VALID: dict[str, list[dict[str, Any]]] = {
    "identify": [
        {"userId": "42", "traits": {"email": "ada@example.com", "plan": "pro"}},
        {"anonymousId": "anon-1", "userId": "42", "traits": {"createdAt": WHEN}},
        {"userId": "", "traits": {"email": "by-email@example.com"}},
    ],
    "track": [
        {"userId": "42", "event": "Course Started", "properties": {"title": "Intro"}},
        {"anonymousId": "anon-1", "type": "track", "event": "viewed", "timestamp": WHEN},
        {"groupId": "acme", "event": "renewed"},
        {"userId": "42", "event": "User Deleted"},
        {
            "userId": "42",
            "event": "Device Created or Updated",
            "context": {"device": {"token": "tok", "type": "ios"}},
        },
        {"event": "Report Delivery Event", "properties": {"deliveryId": "d", "metric": "opened"}},
    ],
    "page": [{"userId": "42", "name": "Home", "properties": {"url": "https://example.com"}}],
    "screen": [{"anonymousId": "anon-1", "name": "feed", "context": {"app": {"version": "1"}}}],
    "group": [
        {"userId": "42", "groupId": "acme", "traits": {"object_type_id": "1", "name": "Acme"}}
    ],
    "alias": [{"userId": "42", "previousId": "anon-1"}],
}
COMMON: dict[str, Any] = {
    "messageId": "m-1",
    "timestamp": WHEN,
    "sentAt": "2024-05-01T14:30:00+02:00",
    "context": {"ip": "8.8.8.8", "library": {"name": "x", "version": "1"}, "channel": "server"},
    "integrations": {"All": True, "Mixpanel": False},
}


def sized(size: int, **fields: Any) -> dict[str, Any]:
    """A track message whose compact JSON is exactly ``size`` bytes."""
    base = {"userId": "u", "event": "e", **fields, "properties": {"pad": ""}}
    pad = size - len(json.dumps(base, separators=(",", ":")))
    return {**base, "properties": {"pad": "x" * pad}}


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("kind", sorted(VALID))
async def test_every_route_accepts_and_records_its_messages(
    raw: Raw, fake: FakeCustomerIO, kind: str
) -> None:
    for body in VALID[kind]:
        reply = await raw.post(f"/v1/{kind}", body, auth=KEY, headers=STRICT)
        assert (reply.status, reply.json()) == (200, {})
    assert [m.type for m in fake.pipelines_messages] == [kind] * len(VALID[kind])
    assert [m.body for m in fake.pipelines_messages] == VALID[kind]
    assert fake.pipelines_drops == []
    assert fake.operations == []  # Pipelines messages are not Track operations


async def test_a_message_is_recorded_field_by_field(raw: Raw, fake: FakeCustomerIO) -> None:
    body = {**VALID["track"][0], **COMMON, "anonymousId": "anon-1"}
    assert (await raw.post("/v1/track", body, auth=KEY)).status == 200
    assert fake.pipelines_messages == [
        PipelinesMessage(
            type="track",
            user_id="42",
            anonymous_id="anon-1",
            event="Course Started",
            name=None,
            group_id=None,
            previous_id=None,
            message_id="m-1",
            timestamp=WHEN,
            traits={},
            properties={"title": "Intro"},
            context=COMMON["context"],
            integrations=COMMON["integrations"],
            body=body,
            request_index=0,
            batch_index=None,
        )
    ]


async def test_identify_traits_merge_into_profiles(raw: Raw, fake: FakeCustomerIO) -> None:
    for body in (*VALID["identify"], {"userId": "42", "traits": {"plan": "team"}}):
        await raw.post("/v1/identify", body, auth=KEY)
    await fake.wait_for_pipelines_messages(4)
    assert fake.pipelines_profiles() == {
        "42": {"email": "ada@example.com", "plan": "team", "createdAt": WHEN}
    }


async def test_a_repeated_message_id_is_a_duplicate(raw: Raw, fake: FakeCustomerIO) -> None:
    body = {**VALID["track"][0], "messageId": "m-1"}
    for _ in range(2):
        assert (await raw.post("/v1/track", body, auth=KEY)).status == 200
    batch = {"batch": [{**body, "type": "track"}, {**body, "type": "track", "messageId": "m-2"}]}
    assert (await raw.post("/v1/batch", batch, auth=KEY)).status == 200
    assert [m.message_id for m in fake.pipelines_messages] == ["m-1", "m-2"]
    assert fake.duplicate_message_ids == ["m-1", "m-1"]


# --------------------------------------------------------------------------- batch


async def test_batch_items_are_recorded_one_by_one_with_the_batch_level_merged(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    items = [
        {"type": "identify", "userId": "42", "context": {"ip": "1.1.1.1", "locale": "fr"}},
        {"type": "track", "userId": "42", "event": "e", "integrations": {"Slack": True}},
        {"type": "page", "anonymousId": "a", "name": "Home"},
    ]
    body = {"batch": items, "context": {"ip": "9.9.9.9"}, "integrations": {"All": False}}
    assert (await raw.post("/v1/batch", body, auth=KEY, headers=STRICT)).status == 200
    first, second, third = fake.pipelines_messages
    # The batch level applies to every item; an item's own other keys survive.
    assert first.context == {"ip": "9.9.9.9", "locale": "fr"}
    assert second.context == third.context == {"ip": "9.9.9.9"}
    assert second.integrations == {"Slack": True, "All": False}
    assert [m.batch_index for m in fake.pipelines_messages] == [0, 1, 2]
    assert first.body == items[0]  # as sent, without the batch level


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"userId": "42", "event": "e"}, "batch[1]: type must be one of identify"),
        ({"type": "alias", "userId": "42", "previousId": "a"}, "batch[1]: type must be one of"),
        ({"type": "track", "userId": "42"}, "batch[1]: event is required"),
        ({"type": "group", "userId": "42"}, "batch[1]: groupId is required"),
        ({"type": "page", "name": "Home"}, "batch[1]: userId or anonymousId is required"),
        ("not an object", "batch[1]: a message must be a JSON object"),
    ],
)
async def test_an_invalid_batch_item(
    raw: Raw, fake: FakeCustomerIO, item: Any, message: str
) -> None:
    good = {"type": "track", "userId": "42", "event": "ok"}
    body = {"batch": [good, item, good]}
    strict = await raw.post("/v1/batch", body, auth=KEY, headers=STRICT)
    assert strict.status == 400
    (error,) = strict.json()["meta"]["errors"]
    assert error.startswith(message)
    assert fake.pipelines_messages == []  # strict: all or nothing
    lenient = await raw.post("/v1/batch", body, auth=KEY)
    assert (lenient.status, lenient.json()) == (200, {})
    assert [m.batch_index for m in fake.pipelines_messages] == [0, 2]
    (drop,) = fake.pipelines_drops
    assert (drop.path, drop.batch_index, drop.body, drop.request_index) == ("/v1/batch", 1, item, 1)
    assert drop.message == error


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"batch": []},
        {"batch": {}},
        {"batch": [{}], "context": []},
        {"batch": [{}], "integrations": {"A": 1}},
    ],
)
async def test_a_malformed_batch_is_dropped_whole(
    raw: Raw, fake: FakeCustomerIO, body: dict[str, Any]
) -> None:
    assert (await raw.post("/v1/batch", body, auth=KEY, headers=STRICT)).status == 400
    assert (await raw.post("/v1/batch", body, auth=KEY)).status == 200
    (drop,) = fake.pipelines_drops
    assert (drop.body, drop.batch_index) == (body, None)


# --------------------------------------------------------------------------- strict mode


INVALID: list[tuple[str, Any, str]] = [
    ("/v1/identify", {"traits": {"plan": "pro"}}, "userId or anonymousId is required"),
    ("/v1/identify", {"userId": 42}, "userId must be a string"),
    ("/v1/identify", {"userId": "", "anonymousId": " "}, "userId or anonymousId is required"),
    ("/v1/identify", {"userId": "1", "traits": []}, "traits must be an object"),
    (
        "/v1/identify",
        {"userId": "1", "traits": {"createdAt": 1}},
        "traits.createdAt must be an RFC 3339 date-time string",
    ),
    ("/v1/identify", {"userId": "1", "type": "track"}, "type must be 'identify' here"),
    ("/v1/track", {"userId": "1"}, "event is required"),
    (
        "/v1/track",
        {"userId": "1", "event": "e", "timestamp": "yesterday"},
        "timestamp must be an RFC 3339 date-time string",
    ),
    (
        "/v1/track",
        {"userId": "1", "event": "e", "timestamp": "2024-05-01T12:30:00"},
        "timestamp must be an RFC 3339 date-time string",
    ),
    (
        "/v1/track",
        {"userId": "1", "event": "e", "integrations": {"All": "yes"}},
        "integrations.All must be a boolean",
    ),
    (
        "/v1/track",
        {"userId": "1", "event": "e", "context": {"channel": "tv"}},
        "context.channel must be one of browser, server, mobile",
    ),
    ("/v1/track", {"userId": "1", "event": "Device Deleted"}, "context.device.token is required"),
    ("/v1/track", {"event": "User Suppressed", "anonymousId": "a"}, "userId is required"),
    (
        "/v1/track",
        {
            "userId": "1",
            "event": "Relationship Deleted",
            "properties": {"objectId": "o", "objectTypeId": "1"},
        },
        "properties.objectTypeId must be an integer",
    ),
    (
        "/v1/track",
        {"event": "Report Delivery Event", "properties": {"metric": "bounced"}},
        "properties.metric must be one of delivered, clicked, converted, opened",
    ),
    ("/v1/page", {"userId": "1", "properties": {"url": 5}}, "properties.url must be a string"),
    (
        "/v1/screen",
        {"userId": "1", "context": {"device": {"type": "windows"}}},
        "context.device.type must be one of android, ios",
    ),
    ("/v1/group", {"userId": "1"}, "groupId is required"),
    (
        "/v1/group",
        {"userId": "1", "groupId": "g", "traits": {"object_type_id": 2}},
        "traits.object_type_id must be a string",
    ),
    ("/v1/alias", {"userId": "1"}, "previousId is required"),
    ("/v1/alias", {"previousId": "a"}, "userId is required"),
    ("/v1/track", [1], "request body must be a JSON object"),
]


@pytest.mark.parametrize(("path", "body", "message"), INVALID)
async def test_strict_mode_answers_400_and_otherwise_drops(
    raw: Raw, fake: FakeCustomerIO, path: str, body: Any, message: str
) -> None:
    strict = await raw.post(path, body, auth=KEY, headers=STRICT)
    assert (strict.status, strict.json()) == (400, {"meta": {"errors": [message]}})
    assert fake.pipelines_drops == []  # a refusal is not a silent drop
    for header in ({}, {"X-Strict-Mode": "true"}, {"X-Strict-Mode": "0"}):
        lenient = await raw.post(path, body, auth=KEY, headers=header)
        assert (lenient.status, lenient.json()) == (200, {})
    assert [d.message for d in fake.pipelines_drops] == [message] * 3
    assert fake.pipelines_drops[0] == PipelinesDrop(
        path,
        message,
        fake.pipelines_drops[0].reason,
        fake.pipelines_drops[0].field,
        body if isinstance(body, dict) else None,  # not a JSON object: nothing decoded
        1,
        None,
    )
    assert fake.pipelines_messages == []


@pytest.mark.parametrize(
    "auth",
    [
        None,
        basic("wrong", ""),
        basic("fake-write-key", "secret"),
        "Bearer fake-write-key",
        basic("fake-site", "fake-key"),
    ],
)
async def test_credentials(raw: Raw, fake: FakeCustomerIO, auth: str | None) -> None:
    body = VALID["track"][0]
    strict = await raw.post("/v1/track", body, auth=auth, headers=STRICT)
    assert (strict.status, strict.raw) == (401, b"")
    lenient = await raw.post("/v1/track", body, auth=auth)
    assert lenient.status == 200
    (drop,) = fake.pipelines_drops
    assert (drop.reason, drop.body, drop.request_index) == ("unauthorized", None, 1)
    assert fake.pipelines_messages == []
    assert fake.pipelines_write_key == "fake-write-key"


async def test_a_custom_write_key() -> None:
    async with FakeCustomerIO(pipelines_write_key="wk") as fake, aiohttp.ClientSession() as s:
        ok = await Raw(fake, s).post("/v1/alias", VALID["alias"][0], auth=basic("wk", ""))
        assert ok.status == 200
        assert len(fake.pipelines_messages) == 1


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("gzipped", [False, True])
async def test_a_message_of_exactly_32_kib_passes_and_one_byte_more_does_not(
    raw: Raw, fake: FakeCustomerIO, gzipped: bool
) -> None:
    at, over = sized(MAX_MESSAGE_BYTES), sized(MAX_MESSAGE_BYTES + 1)
    assert MAX_MESSAGE_BYTES == 32_768
    assert (
        await raw.post("/v1/track", at, auth=KEY, headers=STRICT, gzipped=gzipped)
    ).status == 200
    reply = await raw.post("/v1/track", over, auth=KEY, headers=STRICT, gzipped=gzipped)
    assert reply.status == 400
    assert reply.json() == {"meta": {"errors": ["a message cannot be larger than 32768 bytes"]}}
    assert (await raw.post("/v1/track", over, auth=KEY, gzipped=gzipped)).status == 200
    assert [m.body for m in fake.pipelines_messages] == [at]
    (drop,) = fake.pipelines_drops
    assert (drop.reason, drop.request_index) == ("too_large", 2)


async def test_a_batch_of_exactly_500_kib_passes_and_one_byte_more_does_not(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    assert MAX_BATCH_BYTES == 512_000
    item = {**sized(30_000), "type": "track"}
    count = 17

    def batch_of(last_pad: int) -> bytes:
        last = {**item, "properties": {"pad": "x" * last_pad}}
        body = {"batch": [item] * count + [last]}
        return json.dumps(body, separators=(",", ":")).encode()

    encoded = batch_of(0)
    encoded = batch_of(MAX_BATCH_BYTES - len(encoded))
    assert len(encoded) == MAX_BATCH_BYTES
    assert (await raw.post("/v1/batch", raw=encoded, auth=KEY, headers=STRICT)).status == 200
    over = encoded[:-1] + b" }"
    reply = await raw.post("/v1/batch", raw=over, auth=KEY, headers=STRICT)
    assert reply.json() == {"meta": {"errors": ["a batch cannot be larger than 512000 bytes"]}}
    assert len(fake.pipelines_messages) == count + 1


async def test_each_batch_item_is_at_most_32_kib(raw: Raw, fake: FakeCustomerIO) -> None:
    at = {**sized(MAX_MESSAGE_BYTES - len(',"type":"track"')), "type": "track"}
    over = {**sized(MAX_MESSAGE_BYTES + 1 - len(',"type":"track"')), "type": "track"}
    assert len(json.dumps(at, separators=(",", ":"))) == MAX_MESSAGE_BYTES
    assert (await raw.post("/v1/batch", {"batch": [at, over]}, auth=KEY)).status == 200
    assert [m.batch_index for m in fake.pipelines_messages] == [0]
    (drop,) = fake.pipelines_drops
    assert (drop.batch_index, drop.reason) == (1, "too_large")


# --------------------------------------------------------------------------- gzip


async def test_gzip_bodies_are_accepted_and_recorded_as_sent(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    body = {"batch": [{**VALID["track"][0], "type": "track"}]}
    reply = await raw.post("/v1/batch", body, auth=KEY, headers=STRICT, gzipped=True)
    assert reply.status == 200
    (req,) = fake.requests
    assert req.headers["content-encoding"] == "gzip"
    assert gzip.decompress(req.body) == json.dumps(body, separators=(",", ":")).encode()
    assert req.json() == body
    assert len(fake.pipelines_messages) == 1


async def test_a_gzip_bomb_is_refused_on_its_decompressed_size(
    raw: Raw, fake: FakeCustomerIO
) -> None:
    bomb = gzip.compress(b'{"batch":[' + b" " * 5_000_000 + b"]}")
    assert len(bomb) < 10_000
    headers = {**STRICT, "Content-Encoding": "gzip"}
    reply = await raw.post("/v1/batch", raw=bomb, auth=KEY, headers=headers)
    assert reply.json() == {"meta": {"errors": ["a batch cannot be larger than 512000 bytes"]}}


@pytest.mark.parametrize(
    ("data", "encoding", "message"),
    [
        (b"not gzip", "gzip", "request body is not valid gzip"),
        (gzip.compress(b"{}")[:-4], "gzip", "request body is truncated gzip"),
        (b"{}", "br", "Content-Encoding 'br' is not supported"),
    ],
)
async def test_undecodable_bodies(
    raw: Raw, fake: FakeCustomerIO, data: bytes, encoding: str, message: str
) -> None:
    headers = {"Content-Encoding": encoding}
    strict = await raw.post("/v1/track", raw=data, auth=KEY, headers={**headers, **STRICT})
    assert strict.json() == {"meta": {"errors": [message]}}
    assert (await raw.post("/v1/track", raw=data, auth=KEY, headers=headers)).status == 200
    assert [d.message for d in fake.pipelines_drops] == [message]


async def test_track_routes_decode_gzip_too(raw: Raw, fake: FakeCustomerIO) -> None:
    auth = basic("fake-site", "fake-key")
    reply = await raw.post("/api/v1/customers/42/events", {"name": "e"}, auth=auth, gzipped=True)
    assert reply.status == 200
    assert [op.action for op in fake.operations] == ["event"]
    bad = await raw.post(
        "/api/v2/entity", raw=b"xx", auth=auth, headers={"Content-Encoding": "gzip"}
    )
    assert bad.status == 400
    assert bad.json()["errors"][0]["message"] == "request body is not valid gzip"


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("retry_after", [None, "2"])
async def test_faults_apply_to_pipelines_routes(
    raw: Raw, fake: FakeCustomerIO, retry_after: str | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    fake.add_fault(Fault(status=429, headers=headers, match="/v1/batch"))
    body = {"batch": [{**VALID["track"][0], "type": "track"}]}
    reply = await raw.post("/v1/batch", body, auth=KEY)
    assert reply.status == 429
    assert reply.headers.get("Retry-After") == retry_after
    assert reply.json() == {"meta": {"errors": ["Too Many Requests"]}}
    assert fake.pipelines_messages == []
    fake.add_fault(Fault(action="reset_before_body", match="/v1/"))
    with pytest.raises(aiohttp.ClientError):
        await raw.post("/v1/batch", body, auth=KEY)
    assert (await raw.post("/v1/batch", body, auth=KEY)).status == 200
    await fake.wait_for_pipelines_messages(1)


async def test_latency_and_a_stall_fault_still_deliver() -> None:
    async with FakeCustomerIO(latency=0.01) as fake, aiohttp.ClientSession() as s:
        fake.add_fault(Fault(delay=0.05, match="/v1/page"))
        reply = await Raw(fake, s).post("/v1/page", VALID["page"][0], auth=KEY)
        assert reply.status == 200
        assert len(fake.pipelines_messages) == 1


async def test_pipelines_paths_answer_405_and_404_in_their_envelope(raw: Raw) -> None:
    url = raw.fake.url
    async with raw.session.get(f"{url}/v1/track") as resp:
        assert resp.status == 405
        assert await resp.json() == {"meta": {"errors": ["method GET is not allowed here"]}}


async def test_clear_and_waiting(raw: Raw, fake: FakeCustomerIO) -> None:
    await raw.post("/v1/identify", VALID["identify"][0], auth=KEY)
    await raw.post("/v1/identify", {}, auth=KEY)
    fake.clear()
    assert fake.pipelines_messages == []
    assert fake.pipelines_drops == []
    assert fake.pipelines_profiles() == {}
    with pytest.raises(TimeoutError, match="1 Pipelines messages"):
        await fake.wait_for_pipelines_messages(1, timeout=0.05)


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2024-05-01T12:30:00Z", True),
        ("2024-05-01t12:30:00.123456z", True),
        ("2024-05-01T12:30:00-07:30", True),
        ("2024-02-29T00:00:00Z", True),
        ("2023-02-29T00:00:00Z", False),
        ("2024-05-01T24:00:00Z", False),
        ("2016-12-31T23:59:60Z", False),
        ("2024-05-01 12:30:00Z", False),
        ("2024-05-01T12:30:00", False),
        ("2024-05-01", False),
        ("2024-05-01T12:30:00+25:00", False),
        (1_714_566_600, False),
    ],
)
def test_date_times_are_read_as_rfc_3339(text: Any, valid: bool) -> None:
    assert is_date_time(text) is valid
    assert is_rfc3339(text) is valid  # the tests' own, independent reading agrees


# --------------------------------------------------------------------------- vendor document


@pytest.fixture(scope="module")
def contract() -> BodyValidator:
    """The patched Pipelines document, built once."""
    return load_pipelines_contract()


def accepted_bodies() -> list[tuple[str, dict[str, Any]]]:
    """Every single-call body above, plain and with every common field; and batches."""
    bodies = [(f"/v1/{k}", b) for k, group in VALID.items() for b in group]
    bodies += [(path, {**COMMON, **body}) for path, body in bodies]
    items = [{**b, "type": k} for k, group in VALID.items() if k != "alias" for b in group]
    bodies.append(("/v1/batch", {"batch": items}))
    bodies.append(
        (
            "/v1/batch",
            {"batch": items[:2], "context": COMMON["context"], "integrations": {"All": True}},
        )
    )
    return bodies


@pytest.mark.vendor_document(PIPELINES_SPEC_PATH)
async def test_every_body_the_fake_accepts_is_spec_valid(
    raw: Raw, fake: FakeCustomerIO, contract: BodyValidator
) -> None:
    bodies = accepted_bodies()
    for path, body in bodies:
        reply = await raw.post(path, body, auth=KEY, headers=STRICT, gzipped=path == "/v1/batch")
        assert reply.status == 200, (path, body, reply.json())
    assert fake.pipelines_drops == []
    for req in fake.requests:
        op = contract.match(req.method, req.path)
        assert op.body_pointer is not None
        body = req.json()
        contract.check(op.body_pointer, body, f"{req.method} {req.path}")
        for i, item in enumerate(body.get("batch", [])):
            contract.check(batch_item_pointer(), item, f"{req.path} batch[{i}]")


# Which accepted body each patch is needed for (it fails without that one patch).
PATCH_TRIGGERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "patch_pipelines_user_one_of": ("/v1/identify", VALID["identify"][1], "is valid under each of"),
    "patch_pipelines_context_one_of": (
        "/v1/track",
        {**VALID["track"][0], "context": {"ip": "1"}},
        "is valid under each of",
    ),
    "patch_pipelines_track_one_of": ("/v1/track", VALID["track"][3], "is valid under each of"),
    "patch_pipelines_track_type_optional": (
        "/v1/track",
        VALID["track"][0],
        "'type' is a required property",
    ),
    "patch_pipelines_batch_one_of": (
        "/v1/batch",
        {"batch": [{**VALID["track"][0], "type": "track"}]},
        "is valid under each of",
    ),
}


@pytest.mark.vendor_document(PIPELINES_SPEC_PATH)
@pytest.mark.parametrize("patch", PIPELINES_SPEC_PATCHES, ids=lambda p: p.__name__)
def test_each_patch_is_needed(contract: BodyValidator, patch: Callable[[Spec], None]) -> None:
    assert sorted(PATCH_TRIGGERS) == sorted(p.__name__ for p in PIPELINES_SPEC_PATCHES)
    path, body, failure = PATCH_TRIGGERS[patch.__name__]
    pointer = contract.match("POST", path).body_pointer
    assert pointer is not None
    contract.check(pointer, body, "with every patch")
    without = build_pipelines_contract(tuple(p for p in PIPELINES_SPEC_PATCHES if p is not patch))
    with pytest.raises(SpecViolation, match=failure):
        without.check(pointer, body, f"without {patch.__name__}")


@pytest.mark.vendor_document(PIPELINES_SPEC_PATH)
def test_negative_controls_still_fail(contract: BodyValidator) -> None:
    track = contract.match("POST", "/v1/track").body_pointer
    assert track is not None
    for body in ({"userId": "1"}, {"userId": 1, "event": "e"}, {"event": "e"}):
        with pytest.raises(SpecViolation):
            contract.check(track, body, "invalid track")
    with pytest.raises(SpecViolation, match="is not a 'date-time'"):
        contract.check(track, {"userId": "1", "event": "e", "timestamp": "later"}, "bad time")


# Messages drawn from the fields the rules look at: half of them from good values only (so
# accepted ones are well explored), half with bad values mixed in (one bad field is enough to
# refuse a message).


def _message_strategy(spoil: bool) -> st.SearchStrategy[dict[str, Any]]:
    def pick(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(*[good] * 4, bad) if spoil else good

    ids = pick(st.sampled_from(["42", "anon-1"]), st.sampled_from(["", " ", 7, None]))
    times = pick(
        st.sampled_from([WHEN, "2024-05-01T12:30:00+02:00"]),
        st.sampled_from(["2024-05-01T12:30:00", "yesterday", "2023-02-29T00:00:00Z", 5]),
    )
    strings = pick(st.sampled_from(["a", "https://x"]), st.integers(0, 9) | st.none())
    device = st.fixed_dictionaries(
        {},
        optional={
            "token": pick(st.just("tok"), st.just("")),
            "type": pick(st.sampled_from(["ios", "android"]), st.just("tv")),
        },
    )
    context = pick(
        st.fixed_dictionaries(
            {},
            optional={
                "ip": strings,
                "channel": pick(st.sampled_from(["server", "browser"]), st.just("tv")),
                "device": device,
                "page": st.fixed_dictionaries(
                    {}, optional={"keywords": st.lists(strings, max_size=2)}
                ),
                "campaign": st.dictionaries(st.sampled_from(["name", "x"]), strings, max_size=2),
                "library": st.just({"name": "x", "version": "1"}),
            },
        ),
        st.sampled_from([[], "ctx"]),
    )
    traits = pick(
        st.fixed_dictionaries(
            {},
            optional={
                "email": pick(st.just("a@b.co"), st.sampled_from(["", 3])),
                "createdAt": times,
                "unsubscribed": pick(st.booleans(), st.just("yes")),
                "object_type_id": pick(st.just("1"), st.just(1)),
                "plan": st.integers() | st.text(max_size=2),
                "cio_subscription_preferences": pick(
                    st.just({"topics": {"topic_1": True}}), st.just({"topics": {"topic_1": "y"}})
                ),
            },
        ),
        st.sampled_from([[], "t"]),
    )
    properties = pick(
        st.fixed_dictionaries(
            {},
            optional={
                "url": strings,
                "objectId": pick(st.just("o"), st.sampled_from(["", 1])),
                "objectTypeId": pick(st.integers(0, 9), st.just("1")),
                "metric": pick(st.just("opened"), st.just("bounced")),
                "deliveryId": strings,
                "revenue": st.floats(allow_nan=False) | st.none(),
            },
        ),
        st.sampled_from([[], "p"]),
    )
    identity = {
        "userId": ids,
        "groupId": ids,
        "previousId": ids,
        "event": pick(st.sampled_from(EVENTS), st.sampled_from(["", 7])),
    }
    # Good messages always carry what each type requires; spoiled ones may lack anything.
    return st.fixed_dictionaries(
        {} if spoil else identity,
        optional={
            **(identity if spoil else {}),
            "anonymousId": ids,
            "name": strings,
            "traits": traits,
            "properties": properties,
            "context": context,
            "integrations": st.dictionaries(
                st.sampled_from(["All", "X"]), pick(st.booleans(), st.just(1)), max_size=2
            ),
            "timestamp": times,
            "sentAt": times,
            "messageId": pick(st.just("m-1"), st.just(7)),
            "version": pick(st.sampled_from([1, 1.1]), st.just("1")),
        },
    )


EVENTS = [
    "Course Started",
    "User Deleted",
    "Device Deleted",
    "Device Created or Updated",
    "Relationship Deleted",
    "Object Deleted",
    "Report Delivery Event",
    "User Suppressed",
]
messages = _message_strategy(spoil=False) | _message_strategy(spoil=True)


@pytest.mark.vendor_document(PIPELINES_SPEC_PATH)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(MESSAGE_TYPES), message=messages)
def test_the_rules_accept_only_spec_valid_messages(
    contract: BodyValidator, kind: str, message: dict[str, Any]
) -> None:
    """The fake's hand-written rules against the (patched) vendor document itself: a message
    the fake would accept, alone or as a batch item, is valid there too."""
    try:
        check_message(kind, message)
    except RuleViolation:
        pass
    else:
        pointer = contract.match("POST", f"/v1/{kind}").body_pointer
        assert pointer is not None
        contract.check(pointer, message, f"accepted {kind}")
    if kind in BATCH_TYPES:
        item = {**message, "type": kind}
        try:
            check_batch_item(item)
        except RuleViolation:
            return
        contract.check(batch_item_pointer(), item, f"accepted batch {kind}")
