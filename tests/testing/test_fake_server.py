"""Tests of the fake Customer.io server itself, over real loopback HTTP.

These talk raw HTTP to ``FakeCustomerIO`` with ``aiohttp.ClientSession`` (paths sent
pre-encoded, so ``%2F``/``%40`` reach the server untouched) and check it against the
shared contract: auth, routing, limits at their boundaries, v2 batch semantics, event
de-duplication, scripted faults, waiting helpers and the ``python -m`` entry point.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yarl

from customerio_async.testing import (
    AppliedOperation,
    FakeCustomerIO,
    Fault,
    RecordedRequest,
)
from customerio_async.testing import __main__ as cli
from customerio_async.testing._rules import MAX_BATCH_BYTES, MAX_ENTITY_BYTES, MAX_OP_BYTES

ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
ULID_2 = "01BX5ZZKBKACTAV9WEVGEMMVRZ"
REPO_ROOT = Path(__file__).resolve().parents[1]


def basic(user: str, password: str, *, urlsafe: bool = False) -> str:
    """Build a Basic auth header value, in the standard or URL-safe base64 alphabet."""
    raw = f"{user}:{password}".encode()
    encoded = base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)
    return f"Basic {encoded.decode()}"


AUTH = basic("fake-site", "fake-key")
_NO_BODY = object()


@dataclass(frozen=True)
class Reply:
    """A response as the test client saw it."""

    status: int
    headers: Mapping[str, str]
    raw: bytes

    def json(self) -> Any:
        """Decode the body; None when empty."""
        return json.loads(self.raw) if self.raw else None


class Api:
    """A tiny raw-HTTP client for the fake: sends pre-encoded paths, returns ``Reply``."""

    def __init__(self, fake: FakeCustomerIO, session: aiohttp.ClientSession) -> None:
        """Bind to a started fake and an open session."""
        self.fake = fake
        self.session = session

    async def send(
        self,
        method: str,
        path: str,
        payload: object = _NO_BODY,
        *,
        raw: bytes | None = None,
        auth: str | None = AUTH,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request; ``payload`` is JSON-encoded, ``raw`` is sent as is."""
        data = raw
        if payload is not _NO_BODY:
            data = json.dumps(payload).encode()
        all_headers = dict(headers or {})
        if auth is not None:
            all_headers["Authorization"] = auth
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        url = yarl.URL(self.fake.url + path, encoded=True)
        async with self.session.request(method, url, data=data, headers=all_headers) as resp:
            return Reply(resp.status, resp.headers, await resp.read())


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeCustomerIO]:
    """A started fake with default settings."""
    async with FakeCustomerIO() as server:
        yield server


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session (no default headers)."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest_asyncio.fixture
async def api(fake: FakeCustomerIO, session: aiohttp.ClientSession) -> Api:
    """A raw client bound to the default fake."""
    return Api(fake, session)


def v1_error(reply: Reply) -> str:
    """The ``meta.error`` message of a v1 error reply."""
    body = reply.json()
    assert set(body) == {"meta"}
    message = body["meta"]["error"]
    assert isinstance(message, str)
    return message


def v2_errors(reply: Reply) -> list[dict[str, Any]]:
    """The ``errors`` list of a v2 error reply."""
    errors = reply.json()["errors"]
    assert isinstance(errors, list)
    return errors


def person(action: str, pid: str = "42", **fields: Any) -> dict[str, Any]:
    """A v2 person operation addressed by id."""
    return {"type": "person", "action": action, "identifiers": {"id": pid}, **fields}


def compact_size(value: Any) -> int:
    """Compact JSON size in UTF-8 bytes, the way the fake measures."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def padded(payload: Any, size: int) -> bytes:
    """``payload`` as JSON, padded with trailing whitespace to exactly ``size`` bytes."""
    raw = json.dumps(payload).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def event_op_of_size(size: int, pid: str = "42") -> dict[str, Any]:
    """A v2 event operation whose compact JSON is exactly ``size`` bytes."""
    op = person("event", pid, name="padded", attributes={"pad": ""})
    op["attributes"]["pad"] = "x" * (size - compact_size(op))
    assert compact_size(op) == size
    return op


# --------------------------------------------------------------------------- lifecycle


async def test_url_and_port_describe_the_bound_socket(fake: FakeCustomerIO) -> None:
    assert fake.port > 0
    assert fake.url == f"http://127.0.0.1:{fake.port}"
    assert (fake.site_id, fake.api_key, fake.app_api_key) == (
        "fake-site",
        "fake-key",
        "fake-app-key",
    )
    assert fake.region == "us"


async def test_port_before_start_raises() -> None:
    server = FakeCustomerIO()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url
    await server.close()


async def test_start_is_idempotent_and_close_is_final() -> None:
    server = FakeCustomerIO()
    await server.start()
    port = server.port
    await server.start()
    assert server.port == port
    await server.close()
    await server.close()
    with pytest.raises(RuntimeError, match="closed"):
        await server.start()


async def test_start_cleans_up_when_the_port_is_taken(fake: FakeCustomerIO) -> None:
    clash = FakeCustomerIO(port=fake.port)
    with pytest.raises(OSError, match="address already in use"):
        await clash.start()
    await clash.close()


async def test_ipv6_url_has_brackets() -> None:
    server = FakeCustomerIO(host="::1")
    try:
        await server.start()
    except OSError:
        await server.close()
        pytest.skip("no IPv6 loopback here")
    async with server:
        assert server.url == f"http://[::1]:{server.port}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"region": "apac"}, "region"),
        ({"v1_error_envelope": "errors"}, "v1_error_envelope"),
        ({"latency": -1.0}, "latency"),
    ],
)
def test_constructor_rejects_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FakeCustomerIO(**kwargs)


# --------------------------------------------------------------------------- auth


async def test_auth_standard_alphabet(api: Api) -> None:
    reply = await api.send("GET", "/api/v1/accounts/region")
    assert reply.status == 200


async def test_auth_url_safe_alphabet(session: aiohttp.ClientSession) -> None:
    # "???" encodes to "Pz8/" in the standard alphabet and "Pz8_" in the URL-safe one.
    user, password = "site???", "key>>>?"
    assert "/" in basic(user, password) or "+" in basic(user, password)
    async with FakeCustomerIO(site_id=user, api_key=password) as server:
        api = Api(server, session)
        reply = await api.send(
            "GET", "/api/v1/accounts/region", auth=basic(user, password, urlsafe=True)
        )
        assert reply.status == 200
        reply = await api.send("GET", "/api/v1/accounts/region", auth=basic(user, password))
        assert reply.status == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        basic("fake-site", "wrong"),
        basic("other-site", "fake-key"),
        "Bearer fake-key",
        "Basic",
        "Basic !!!notbase64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    ],
)
async def test_auth_rejections_are_401_with_empty_body(
    api: Api, fake: FakeCustomerIO, header: str | None
) -> None:
    reply = await api.send("PUT", "/api/v1/customers/42", {"a": 1}, auth=header)
    assert reply.status == 401
    assert reply.raw == b""
    assert fake.operations == []
    assert fake.requests[0].status == 401


async def test_region_requires_auth(api: Api) -> None:
    assert (await api.send("GET", "/api/v1/accounts/region", auth=None)).status == 401


@pytest.mark.parametrize(
    ("region", "url"),
    [("us", "https://track.customer.io"), ("eu", "https://track-eu.customer.io")],
)
async def test_region_endpoint(session: aiohttp.ClientSession, region: Any, url: str) -> None:
    async with FakeCustomerIO(region=region, environment_id=77) as server:
        reply = await Api(server, session).send("GET", "/api/v1/accounts/region")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() == {"url": url, "region": region, "environment_id": 77}


# --------------------------------------------------------------------------- routing


async def test_unknown_paths_are_404_in_the_matching_envelope(api: Api) -> None:
    reply = await api.send("GET", "/api/v1/nope")
    assert reply.status == 404
    assert v1_error(reply) == "no such endpoint"
    reply = await api.send("POST", "/api/v2/nope", {})
    assert reply.status == 404
    assert v2_errors(reply)[0]["reason"] == "not_found"


async def test_wrong_method_is_405_with_allow(api: Api) -> None:
    reply = await api.send("GET", "/api/v1/customers/42")
    assert reply.status == 405
    assert reply.headers["Allow"] == "DELETE, PUT"


async def test_segments_are_split_then_decoded(api: Api, fake: FakeCustomerIO) -> None:
    assert (await api.send("PUT", "/api/v1/customers/a%2Fb", {"x": 1})).status == 200
    record = fake.requests[0]
    assert record.path == "/api/v1/customers/a%2Fb"
    assert record.segments == ("api", "v1", "customers", "a/b")
    assert fake.operations[0].identifiers == {"id": "a/b"}
    assert "id:a/b" in fake.people()


async def test_at_sign_and_percent_40_are_the_same_email(api: Api, fake: FakeCustomerIO) -> None:
    await api.send("PUT", "/api/v1/customers/ann@example.com", {"a": 1})
    await api.send("PUT", "/api/v1/customers/ann%40example.com", {"b": 2})
    assert fake.requests[0].segments == fake.requests[1].segments
    assert [op.identifiers for op in fake.operations] == [{"email": "ann@example.com"}] * 2
    assert fake.people() == {"email:ann@example.com": {"a": 1, "b": 2}}


async def test_cio_prefix_and_unicode_identifiers(api: Api, fake: FakeCustomerIO) -> None:
    await api.send("PUT", "/api/v1/customers/cio_a3000001", {})
    await api.send("PUT", "/api/v1/customers/%E2%9C%93%20x", {})
    assert [op.identifiers for op in fake.operations] == [{"cio_id": "a3000001"}, {"id": "✓ x"}]
    reply = await api.send("PUT", "/api/v1/customers/cio_", {})
    assert reply.status == 400
    assert v1_error(reply) == "cio_id must not be blank"


async def test_request_record_fields(api: Api, fake: FakeCustomerIO) -> None:
    await api.send("GET", "/api/v1/accounts/region?x=1&y=%20z", headers={"X-Custom": "v"})
    await api.send("PUT", "/api/v1/customers/1", {"a": 1})
    first, second = fake.requests
    assert first.method == "GET"
    assert first.query == {"x": "1", "y": " z"}
    assert first.headers["x-custom"] == "v"
    assert first.headers["authorization"] == AUTH
    assert first.body == b""
    assert first.json() is None
    assert second.json() == {"a": 1}
    assert first.received_at <= second.received_at
    assert "fake-key" not in repr(first)
    assert AUTH not in repr(first)
    assert repr(second) == "RecordedRequest(PUT /api/v1/customers/1 -> 200, 8 body bytes)"


# --------------------------------------------------------------------------- v1 identify


async def test_identify_merges_attributes(api: Api, fake: FakeCustomerIO) -> None:
    assert (await api.send("PUT", "/api/v1/customers/42", {"a": 1, "b": 1})).json() == {}
    await api.send("PUT", "/api/v1/customers/42", {"b": 2, "_timestamp": 1_700_000_000})
    assert fake.people() == {"id:42": {"a": 1, "b": 2, "_timestamp": 1_700_000_000}}
    assert fake.operations[0] == AppliedOperation(
        "v1", "person", "identify", {"id": "42"}, {"a": 1, "b": 1}, 0
    )
    snapshot = fake.people()
    snapshot["id:42"]["a"] = "mutated"
    assert fake.people()["id:42"]["a"] == 1


@pytest.mark.parametrize(("count", "status"), [(300, 200), (301, 400)])
async def test_identify_attribute_count_limit(api: Api, count: int, status: int) -> None:
    reply = await api.send("PUT", "/api/v1/customers/42", {f"a{i}": i for i in range(count)})
    assert reply.status == status
    if status == 400:
        assert v1_error(reply) == "cannot identify more than 300 attributes in one request"


@pytest.mark.parametrize(
    ("name", "status"),
    [("n" * 150, 200), ("n" * 151, 400), ("é" * 75, 200), ("é" * 75 + "x", 400)],
)
async def test_identify_attribute_name_limit(api: Api, name: str, status: int) -> None:
    reply = await api.send("PUT", "/api/v1/customers/42", {name: 1})
    assert reply.status == status
    if status == 400:
        assert v1_error(reply) == "attribute name cannot be longer than 150 bytes"


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("x" * 998, 200),  # 1000 bytes with its quotes
        ("x" * 999, 400),
        ("é" * 499, 200),  # measured as UTF-8, not as \\u escapes
        ({"k": "x" * 992}, 200),  # {"k":"…"} is n + 8 = 1000 bytes compact
        ({"k": "x" * 993}, 400),
    ],
)
async def test_identify_attribute_value_limit(api: Api, value: Any, status: int) -> None:
    reply = await api.send("PUT", "/api/v1/customers/42", {"v": value})
    assert reply.status == status
    if status == 400:
        assert v1_error(reply) == "value for attribute 'v' cannot be longer than 1000 bytes"


async def test_structural_attributes_are_exempt_from_the_value_limit(api: Api) -> None:
    big = {"topics": {f"topic_{i}": True for i in range(200)}}
    assert compact_size(big) > 1000
    reply = await api.send("PUT", "/api/v1/customers/42", {"cio_subscription_preferences": big})
    assert reply.status == 200


@pytest.mark.parametrize(
    ("identifier", "status"),
    [("a" * 150, 200), ("a" * 151, 400), ("%C3%A9" * 75, 200), ("%C3%A9" * 75 + "a", 400)],
)
async def test_identifier_byte_limit(api: Api, identifier: str, status: int) -> None:
    reply = await api.send("PUT", f"/api/v1/customers/{identifier}", {})
    assert reply.status == status
    if status == 400:
        assert v1_error(reply) == "id cannot be longer than 150 bytes"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "request body must be a JSON object"),
        (b"not json", "request body is not valid JSON"),
        (b'{"a": NaN}', "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object"),
        (b'{"": 1}', "attribute name must not be blank"),
        (b'{"id": 42}', "id attribute must be a string value"),
        (b'{"created_at": 1700000000000}', "created_at looks like milliseconds; send seconds"),
        (b'{"created_at": true}', "created_at must be an integer unix timestamp in seconds"),
        (
            b'{"_timestamp": "1700000000"}',
            "_timestamp must be an integer unix timestamp in seconds",
        ),
    ],
)
async def test_identify_rejections(api: Api, body: bytes | None, message: str) -> None:
    reply = await api.send("PUT", "/api/v1/customers/42", raw=body)
    assert reply.status == 400
    assert v1_error(reply) == message


async def test_blank_path_identifier_is_400(api: Api) -> None:
    reply = await api.send("PUT", "/api/v1/customers/", {})
    assert reply.status == 400
    assert v1_error(reply) == "id must not be blank"


async def test_v1_errors_envelope_variant(session: aiohttp.ClientSession) -> None:
    async with FakeCustomerIO(v1_error_envelope="meta.errors") as server:
        reply = await Api(server, session).send("PUT", "/api/v1/customers/42", raw=b"[]")
    assert reply.status == 400
    assert reply.json() == {"meta": {"errors": ["request body must be a JSON object"]}}


# --------------------------------------------------------------------------- v1 bodyless calls


@pytest.mark.parametrize("body", [None, b"{}"])
async def test_delete_accepts_no_body_or_empty_object(
    api: Api, fake: FakeCustomerIO, body: bytes | None
) -> None:
    await api.send("PUT", "/api/v1/customers/42", {"a": 1})
    reply = await api.send("DELETE", "/api/v1/customers/42", raw=body)
    assert (reply.status, reply.json()) == (200, {})
    assert fake.people() == {}
    assert fake.operations[-1].action == "delete"
    assert fake.operations[-1].body == {}


async def test_bodyless_call_rejects_a_non_object_body(api: Api) -> None:
    reply = await api.send("POST", "/api/v1/customers/42/suppress", raw=b"[]")
    assert reply.status == 400


async def test_suppress_removes_and_unsuppress_records(api: Api, fake: FakeCustomerIO) -> None:
    await api.send("PUT", "/api/v1/customers/a@b.co", {"a": 1})
    assert (await api.send("POST", "/api/v1/customers/a@b.co/suppress")).status == 200
    assert fake.people() == {}
    assert (await api.send("POST", "/api/v1/customers/a@b.co/unsuppress", {})).status == 200
    assert [op.action for op in fake.operations] == ["identify", "suppress", "unsuppress"]
    assert fake.operations[2].identifiers == {"email": "a@b.co"}


# --------------------------------------------------------------------------- v1 events


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ({"name": "purchase", "data": {"price": 1}}, "event"),
        ({"name": "purchase", "type": "event"}, "event"),
        ({"name": "https://x.test/a", "type": "page"}, "page"),
        ({"name": "Home", "type": "screen", "data": {}}, "screen"),  # no anonymous_id (U5)
    ],
)
async def test_customer_event_variants(
    api: Api, fake: FakeCustomerIO, body: dict[str, Any], action: str
) -> None:
    reply = await api.send("POST", "/api/v1/customers/42/events", body)
    assert (reply.status, reply.json()) == (200, {})
    assert fake.operations == [AppliedOperation("v1", "person", action, {"id": "42"}, body, 0)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "event name must not be blank"),
        ({"name": "   "}, "event name must not be blank"),
        ({"name": 5}, "event name must not be blank"),
        ({"name": "n" * 101}, "event name cannot be longer than 100 bytes"),
        ({"name": "e", "type": "track"}, "type must be one of event, page, screen"),
        ({"name": "e", "data": []}, "event data must be a hash"),
        ({"name": "e", "data": None}, "event data must be a hash"),
        (
            {"name": "e", "data": {"k": "x" * 99_993}},
            "event data cannot be longer than 100000 bytes",
        ),
        ({"name": "e", "id": "not-a-ulid"}, "event id must be a ULID"),
        ({"name": "e", "id": ""}, "event id must be a non-empty string"),
        ({"name": "e", "id": None}, "event id must be a non-empty string"),
        ({"name": "e", "anonymous_id": 5}, "anonymous_id must be a string"),
    ],
)
async def test_customer_event_rejections(api: Api, body: dict[str, Any], message: str) -> None:
    reply = await api.send("POST", "/api/v1/customers/42/events", body)
    assert reply.status == 400
    assert v1_error(reply) == message


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n" * 100},
        {"name": "  " + "n" * 100 + "  "},  # trimmed before measuring
        {"name": "e", "data": {"k": "x" * 99_992}},  # exactly 100,000 bytes
        {"name": "e", "id": ULID},
        {"name": "e", "id": ULID.lower()},
    ],
)
async def test_customer_event_boundaries_accepted(api: Api, body: dict[str, Any]) -> None:
    assert (await api.send("POST", "/api/v1/customers/42/events", body)).status == 200


@pytest.mark.parametrize(
    ("timestamp", "status"),
    [
        (1_700_000_000, 200),
        (99_999_999_999, 200),
        (100_000_000_000, 400),
        (1_700_000_000_000, 400),
        (True, 400),
        (1.7e9, 400),
        ("1700000000", 400),
        (None, 400),
    ],
)
async def test_event_timestamp_rules(api: Api, timestamp: Any, status: int) -> None:
    body = {"name": "e", "timestamp": timestamp}
    assert (await api.send("POST", "/api/v1/customers/42/events", body)).status == status


@pytest.mark.parametrize(
    "event_id", ["81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU", ULID[:-1]]
)
async def test_non_ulids_are_rejected_when_strict(api: Api, event_id: str) -> None:
    body = {"name": "e", "id": event_id}
    assert (await api.send("POST", "/api/v1/customers/42/events", body)).status == 400


async def test_any_id_is_accepted_when_not_strict(session: aiohttp.ClientSession) -> None:
    async with FakeCustomerIO(strict_ulid=False) as server:
        api = Api(server, session)
        for event_id in ("abc", "ABC", "abc"):
            body = {"name": "e", "id": event_id}
            assert (await api.send("POST", "/api/v1/customers/42/events", body)).status == 200
        # Non-ULID ids compare exactly: "ABC" is a different id from "abc".
        assert server.event_ids() == ["abc", "ABC"]
        assert server.duplicate_event_ids == ["abc"]


async def test_anonymous_events(api: Api, fake: FakeCustomerIO) -> None:
    bodies: list[dict[str, Any]] = [
        {"name": "viewed", "anonymous_id": "anon-1", "data": {}},
        {"name": "invite", "data": {"recipient": "a@b.co"}},  # invite: no anonymous_id
        {"name": "invite", "anonymous_id": "", "data": {"recipient": "a@b.co"}},  # Node SDK
        {"name": "/home", "type": "page", "anonymous_id": "anon-1"},
    ]
    for body in bodies:
        assert (await api.send("POST", "/api/v1/events", body)).status == 200
    assert [op.action for op in fake.operations] == ["anonymous_event"] * 4
    assert [op.identifiers for op in fake.operations] == [
        {"anonymous_id": "anon-1"},
        {},
        {},
        {"anonymous_id": "anon-1"},
    ]
    assert fake.people() == {}
    reply = await api.send("POST", "/api/v1/events", {"data": {}})
    assert v1_error(reply) == "event name must not be blank"


# --------------------------------------------------------------------------- event dedup


async def test_v1_event_id_dedup(api: Api, fake: FakeCustomerIO) -> None:
    body = {"name": "e", "id": ULID}
    for _ in range(2):
        reply = await api.send("POST", "/api/v1/customers/42/events", body)
        assert (reply.status, reply.json()) == (200, {})
    lower = {"name": "e", "id": ULID.lower()}
    assert (await api.send("POST", "/api/v1/events", lower)).status == 200
    assert len(fake.operations) == 1
    assert fake.event_ids() == [ULID]
    assert fake.duplicate_event_ids == [ULID, ULID.lower()]


async def test_event_id_dedup_spans_v1_v2_and_batches(api: Api, fake: FakeCustomerIO) -> None:
    await api.send("POST", "/api/v2/entity", person("page", name="/a", id=ULID))
    batch = [
        person("screen", name="s", id=ULID),  # already applied through /entity
        person("event", name="e", id=ULID_2),
        person("event", name="e", id=ULID_2),  # repeated inside the same batch
    ]
    reply = await api.send("POST", "/api/v2/batch", {"batch": batch})
    assert (reply.status, reply.json()) == (200, {})
    await api.send("POST", "/api/v1/customers/42/events", {"name": "e", "id": ULID_2})
    assert [op.action for op in fake.operations] == ["page", "event"]
    assert fake.event_ids() == [ULID, ULID_2]
    assert fake.duplicate_event_ids == [ULID, ULID_2, ULID_2]


# --------------------------------------------------------------------------- v1 devices


async def test_device_add_and_delete(api: Api, fake: FakeCustomerIO) -> None:
    device = {"device": {"id": "tok", "platform": "ios", "last_used": 1_700_000_000}}
    assert (await api.send("PUT", "/api/v1/customers/42/devices", device)).status == 200
    assert (await api.send("DELETE", "/api/v1/customers/42/devices/tok%2F1")).status == 200
    assert [op.action for op in fake.operations] == ["add_device", "delete_device"]
    assert fake.requests[1].segments[-1] == "tok/1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "device is required"),
        ({"device": {"platform": "ios"}}, "device.id is required"),
        ({"device": {"id": "tok"}}, "device.platform is required"),
        (
            {"device": {"id": "tok", "platform": "ios", "last_used": 1.5}},
            "device.last_used must be an integer unix timestamp in seconds",
        ),
        (
            {"device": {"id": "tok", "platform": "ios", "attributes": []}},
            "device.attributes must be an object",
        ),
    ],
)
async def test_device_rejections(api: Api, body: dict[str, Any], message: str) -> None:
    reply = await api.send("PUT", "/api/v1/customers/42/devices", body)
    assert reply.status == 400
    assert v1_error(reply) == message


async def test_blank_device_id_is_400(api: Api) -> None:
    reply = await api.send("DELETE", "/api/v1/customers/42/devices/")
    assert v1_error(reply) == "device_id must not be blank"


# --------------------------------------------------------------------------- v1 merge


async def test_merge_folds_secondary_into_existing_primary(api: Api, fake: FakeCustomerIO) -> None:
    await api.send("PUT", "/api/v1/customers/1", {"a": 1, "x": "primary"})
    await api.send("PUT", "/api/v1/customers/b@x.co", {"b": 2, "x": "secondary"})
    body = {"primary": {"id": "1"}, "secondary": {"email": "b@x.co"}}
    assert (await api.send("POST", "/api/v1/merge_customers", body)).json() == {}
    assert fake.people() == {"id:1": {"a": 1, "b": 2, "x": "primary"}}
    assert fake.operations[-1] == AppliedOperation("v1", "person", "merge", {}, body, 2)


async def test_merge_without_primary_or_onto_itself_changes_nothing(
    api: Api, fake: FakeCustomerIO
) -> None:
    await api.send("PUT", "/api/v1/customers/2", {"b": 2})
    for primary in ("1", "2"):
        body = {"primary": {"id": primary}, "secondary": {"id": "2"}}
        assert (await api.send("POST", "/api/v1/merge_customers", body)).status == 200
    assert fake.people() == {"id:2": {"b": 2}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"primary": {"id": "1", "email": "a@b.co"}, "secondary": {"id": "2"}},
            "You cannot have multiple identifiers",
        ),
        (
            {"primary": {"id": "1"}, "secondary": {"cio_id": "x", "id": "2"}},
            "You cannot have multiple identifiers",
        ),
        ({"secondary": {"id": "2"}}, "primary is required"),
        ({"primary": {}, "secondary": {"id": "2"}}, "primary is required"),
        (
            {"primary": {"phone": "+15555550100"}, "secondary": {"id": "2"}},
            "primary must be one of id, email, cio_id",
        ),
        ({"primary": {"id": "1"}, "secondary": {"id": 2}}, "secondary.id must be a string"),
    ],
)
async def test_merge_rejections(api: Api, body: dict[str, Any], message: str) -> None:
    reply = await api.send("POST", "/api/v1/merge_customers", body)
    assert reply.status == 400
    assert v1_error(reply) == message


# --------------------------------------------------------------------------- v1 segments


async def test_segment_add_and_remove(api: Api, fake: FakeCustomerIO) -> None:
    ids = {"ids": [str(i) for i in range(1000)]}
    assert (await api.send("POST", "/api/v1/segments/7/add_customers", ids)).status == 200
    emails = {"ids": ["a@b.co"]}
    path = "/api/v1/segments/7/remove_customers?id_type=email"
    assert (await api.send("POST", path, emails)).status == 200
    assert [(op.action, op.identifiers) for op in fake.operations] == [
        ("add_to_segment", {"segment_id": "7", "id_type": "id"}),
        ("remove_from_segment", {"segment_id": "7", "id_type": "email"}),
    ]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/api/v1/segments/7/add_customers",
            {"ids": ["x"] * 1001},
            "ids cannot hold more than 1000 entries",
        ),
        ("/api/v1/segments/7/add_customers", {"ids": []}, "ids must be a non-empty list"),
        ("/api/v1/segments/7/add_customers", {}, "ids must be a non-empty list"),
        ("/api/v1/segments/7/add_customers", {"ids": [1]}, "ids must be strings"),
        (
            "/api/v1/segments/7/add_customers?id_type=phone",
            {"ids": ["x"]},
            "id_type must be one of id, email, cio_id",
        ),
        (
            "/api/v1/segments/abc/add_customers",
            {"ids": ["x"]},
            "segment_id must be a positive integer",
        ),
        (
            "/api/v1/segments/0/remove_customers",
            {"ids": ["x"]},
            "segment_id must be a positive integer",
        ),
    ],
)
async def test_segment_rejections(api: Api, path: str, body: dict[str, Any], message: str) -> None:
    reply = await api.send("POST", path, body)
    assert reply.status == 400
    assert v1_error(reply) == message


# --------------------------------------------------------------------------- v1 metrics


async def test_metrics_need_no_auth(api: Api, fake: FakeCustomerIO) -> None:
    body = {"delivery_id": "d1", "metric": "clicked", "timestamp": 1_700_000_000}
    assert (await api.send("POST", "/api/v1/metrics", body, auth=None)).status == 200
    assert fake.operations == [AppliedOperation("v1", "delivery", "metric", {"id": "d1"}, body, 0)]
    assert (
        await api.send("POST", "/api/v1/metrics", {"delivery_id": "d2", "metric": "opened"})
    ).status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"metric": "clicked"},
        {"delivery_id": "d1", "metric": "liked"},
        {"delivery_id": "d1", "metric": "opened", "timestamp": 1_700_000_000_000},
    ],
)
async def test_metric_rejections(api: Api, body: dict[str, Any]) -> None:
    assert (await api.send("POST", "/api/v1/metrics", body, auth=None)).status == 400


# --------------------------------------------------------------------------- v2 entity

VALID_V2_OPS: list[dict[str, Any]] = [
    person("identify", attributes={"plan": "pro", "created_at": 1_700_000_000}, timestamp=1),
    {"type": "person", "action": "identify", "identifiers": {"email": "a@b.co"}},
    {"type": "person", "action": "identify", "identifiers": {"phone": "+15555550100"}},
    {"type": "person", "action": "identify", "identifiers": {"cio_id": "a3000001"}},
    person(
        "identify",
        cio_relationships=[{"identifiers": {"object_type_id": "1", "object_id": "acme"}}],
    ),
    person("delete"),
    person("suppress"),
    person("unsuppress"),
    person("event", name="purchase", id=ULID, attributes={"price": 1}, timestamp=1_700_000_000),
    person("page", name="https://x.test/a", attributes={"path": "/a"}),
    person("screen", name="Home"),
    person(
        "add_device", device={"token": "t", "platform": "ios", "last_used": 1, "attributes": {}}
    ),
    person("delete_device", device={"token": "t"}),
    person("add_relationships", cio_relationships=[{"identifiers": {"cio_object_id": "o1"}}]),
    person("delete_relationships", cio_relationships=[{"identifiers": {"cio_object_id": "o1"}}]),
    {"type": "person", "action": "merge", "primary": {"id": "1"}, "secondary": {"cio_id": "c"}},
    {
        "type": "object",
        "action": "identify",
        "identifiers": {"object_type_id": "1", "object_id": "acme"},
        "attributes": {"name": "Acme", "gone": None},
    },
    {"type": "object", "action": "identify", "identifiers": {"cio_object_id": "o1"}},
    {
        "type": "object",
        "action": "identify_anonymous",
        "identifiers": {"object_type_id": "2", "object_id": "t1"},
        "cio_relationships": [{"identifiers": {"anonymous_id": "anon"}}],
    },
    {"type": "object", "action": "delete", "identifiers": {"cio_object_id": "o1"}},
    {
        "type": "object",
        "action": "add_relationships",
        "identifiers": {"cio_object_id": "o1"},
        "cio_relationships": [{"identifiers": {"id": "42"}}],
    },
    {
        "type": "delivery",
        "action": "event",
        "identifiers": {"id": "dlv1"},
        "name": "opened",
        "attributes": {"device_token": "t"},
    },
]


@pytest.mark.parametrize("op", VALID_V2_OPS, ids=lambda op: f"{op['type']}-{op['action']}")
async def test_entity_accepts_valid_operations(
    api: Api, fake: FakeCustomerIO, op: dict[str, Any]
) -> None:
    reply = await api.send("POST", "/api/v2/entity", op)
    assert (reply.status, reply.json()) == (200, {})
    (applied,) = fake.operations
    assert (applied.source, applied.type, applied.action) == ("v2", op["type"], op["action"])
    assert applied.identifiers == op.get("identifiers", {})
    assert applied.body == op


INVALID_V2_OPS: list[tuple[dict[str, Any], str]] = [
    ({"action": "identify", "identifiers": {"id": "1"}}, "type"),
    ({"type": "account", "action": "identify", "identifiers": {"id": "1"}}, "type"),
    (person("bogus"), "action"),
    ({"type": "object", "action": "event", "identifiers": {"cio_object_id": "o"}}, "action"),
    ({"type": "delivery", "action": "identify", "identifiers": {"id": "d"}}, "action"),
    (person("identify", timestamp=1.5), "timestamp"),
    (person("merge", primary={"id": "1"}, secondary={"id": "2"}), "identifiers"),
    ({"type": "person", "action": "merge", "secondary": {"id": "2"}}, "primary"),
    (
        {
            "type": "person",
            "action": "merge",
            "primary": {"id": "1", "email": "e@x.co"},
            "secondary": {"id": "2"},
        },
        "primary",
    ),
    (
        {"type": "person", "action": "merge", "primary": {"id": "1"}, "secondary": {"phone": "+1"}},
        "secondary",
    ),
    (
        {
            "type": "person",
            "action": "merge",
            "primary": {"id": "1" * 151},
            "secondary": {"id": "2"},
        },
        "primary.id",
    ),
    ({"type": "person", "action": "identify"}, "identifiers"),
    (
        {"type": "person", "action": "identify", "identifiers": {"id": "1", "email": "e@x.co"}},
        "identifiers",
    ),
    ({"type": "person", "action": "identify", "identifiers": {"anonymous_id": "a"}}, "identifiers"),
    ({"type": "person", "action": "identify", "identifiers": {"id": 42}}, "identifiers.id"),
    ({"type": "person", "action": "identify", "identifiers": {"id": ""}}, "identifiers.id"),
    ({"type": "object", "action": "delete", "identifiers": {"object_id": "1"}}, "identifiers"),
    (
        {
            "type": "object",
            "action": "delete",
            "identifiers": {"object_type_id": "0", "object_id": "1"},
        },
        "identifiers.object_type_id",
    ),
    (
        {
            "type": "object",
            "action": "delete",
            "identifiers": {"object_type_id": 1, "object_id": "1"},
        },
        "identifiers.object_type_id",
    ),
    ({"type": "delivery", "action": "event", "identifiers": {"delivery_id": "d"}}, "identifiers"),
    (person("identify", attributes=[]), "attributes"),
    (person("identify", attributes={"id": 5}), "attributes.id"),
    (person("identify", attributes={"created_at": 1_700_000_000_000}), "attributes.created_at"),
    (person("identify", attributes={"v": "x" * 999}), "attributes.v"),
    (
        {
            "type": "object",
            "action": "identify",
            "identifiers": {"cio_object_id": "o"},
            "attributes": {f"a{i}": i for i in range(301)},
        },
        "attributes",
    ),
    (person("identify", cio_relationships={}), "cio_relationships"),
    (person("add_relationships"), "cio_relationships"),
    (
        person("add_relationships", cio_relationships=[{"relationship_attributes": {}}]),
        "cio_relationships",
    ),
    (
        {
            "type": "object",
            "action": "identify_anonymous",
            "identifiers": {"cio_object_id": "o"},
            "cio_relationships": [],
        },
        "cio_relationships",
    ),
    (
        {
            "type": "delivery",
            "action": "event",
            "identifiers": {"id": "d"},
            "name": "clicked",
            "attributes": {"device_token": "t"},
        },
        "name",
    ),
    (
        {"type": "delivery", "action": "event", "identifiers": {"id": "d"}, "name": "opened"},
        "attributes",
    ),
    (
        {
            "type": "delivery",
            "action": "event",
            "identifiers": {"id": "d"},
            "name": "opened",
            "attributes": {},
        },
        "attributes.device_token",
    ),
    (person("event"), "name"),
    (person("event", name="e", attributes="x"), "attributes"),
    (person("page", name="/a", id="not-a-ulid"), "id"),
    (person("screen", name="n" * 101), "name"),
    (person("add_device"), "device"),
    (person("add_device", device={"token": "t"}), "device.platform"),
    (person("add_device", device={"id": "t", "platform": "ios"}), "device.token"),
    (
        person("add_device", device={"token": "t", "platform": "ios", "last_used": "now"}),
        "device.last_used",
    ),
    (
        person("add_device", device={"token": "t", "platform": "ios", "attributes": []}),
        "device.attributes",
    ),
    (person("delete_device", device={}), "device.token"),
]


@pytest.mark.parametrize(("op", "field"), INVALID_V2_OPS)
async def test_entity_rejects_invalid_operations(
    api: Api, fake: FakeCustomerIO, op: dict[str, Any], field: str
) -> None:
    reply = await api.send("POST", "/api/v2/entity", op)
    assert reply.status == 400
    (error,) = v2_errors(reply)
    assert set(error) == {"reason", "field", "message"}
    assert error["field"] == field
    assert fake.operations == []


async def test_entity_whole_body_errors(api: Api) -> None:
    reply = await api.send("POST", "/api/v2/entity", raw=b"{nope")
    assert reply.status == 400
    assert v2_errors(reply) == [
        {"reason": "invalid", "field": "", "message": "request body is not valid JSON"}
    ]
    reply = await api.send("POST", "/api/v2/entity", raw=b"[]")
    assert v2_errors(reply)[0]["message"] == "request body must be a JSON object"


@pytest.mark.parametrize(("size", "status"), [(MAX_ENTITY_BYTES, 200), (MAX_ENTITY_BYTES + 1, 413)])
async def test_entity_body_size_limit(api: Api, size: int, status: int) -> None:
    reply = await api.send("POST", "/api/v2/entity", raw=padded(person("delete"), size))
    assert reply.status == status
    if status == 413:
        assert v2_errors(reply)[0]["reason"] == "too_large"


# --------------------------------------------------------------------------- v2 batch


async def test_batch_all_valid(api: Api, fake: FakeCustomerIO) -> None:
    reply = await api.send("POST", "/api/v2/batch", {"batch": VALID_V2_OPS})
    assert (reply.status, reply.json()) == (200, {})
    assert [op.body for op in fake.operations] == VALID_V2_OPS
    assert {op.request_index for op in fake.operations} == {0}


async def test_batch_partial_failure_is_207_and_applies_the_rest(
    api: Api, fake: FakeCustomerIO
) -> None:
    batch: list[Any] = [
        person("identify", "1", attributes={"a": 1}),
        person("bogus"),
        person("identify", "2", attributes={"b": 2}),
        "not an object",
        {"type": "person", "action": "identify", "identifiers": {"id": "1", "email": "e@x.co"}},
    ]
    reply = await api.send("POST", "/api/v2/batch", {"batch": batch})
    assert reply.status == 207
    errors = v2_errors(reply)
    assert [error["batch_index"] for error in errors] == [1, 3, 4]
    assert [error["field"] for error in errors] == ["action", "", "identifiers"]
    assert all(set(error) == {"batch_index", "reason", "field", "message"} for error in errors)
    assert fake.people() == {"id:1": {"a": 1}, "id:2": {"b": 2}}
    assert fake.requests[0].status == 207


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (b"not json", "", "request body is not valid JSON"),
        (b"{}", "batch", "batch must be a list of operations"),
        (b'{"batch": {}}', "batch", "batch must be a list of operations"),
        (b'{"batch": []}', "batch", "batch must hold at least one operation"),
    ],
)
async def test_batch_whole_body_errors_are_400(
    api: Api, fake: FakeCustomerIO, raw: bytes, field: str, message: str
) -> None:
    reply = await api.send("POST", "/api/v2/batch", raw=raw)
    assert reply.status == 400
    (error,) = v2_errors(reply)
    assert (error["field"], error["message"]) == (field, message)
    assert "batch_index" not in error


@pytest.mark.parametrize(("size", "status"), [(MAX_BATCH_BYTES, 200), (MAX_BATCH_BYTES + 1, 413)])
async def test_batch_body_size_limit(
    api: Api, fake: FakeCustomerIO, size: int, status: int
) -> None:
    reply = await api.send("POST", "/api/v2/batch", raw=padded({"batch": [person("delete")]}, size))
    assert reply.status == status
    assert len(fake.requests[0].body) == size
    if status == 413:
        assert v2_errors(reply)[0]["reason"] == "too_large"
        assert fake.operations == []


async def test_batch_operation_size_limit(api: Api, fake: FakeCustomerIO) -> None:
    batch = [event_op_of_size(MAX_OP_BYTES, "1"), event_op_of_size(MAX_OP_BYTES + 1, "2")]
    reply = await api.send("POST", "/api/v2/batch", {"batch": batch})
    assert reply.status == 207
    (error,) = v2_errors(reply)
    assert (error["batch_index"], error["reason"]) == (1, "too_large")
    assert [op.identifiers for op in fake.operations] == [{"id": "1"}]


async def test_people_follow_v2_operations(api: Api, fake: FakeCustomerIO) -> None:
    batch = [
        person("identify", "1", attributes={"a": 1}),
        {
            "type": "person",
            "action": "identify",
            "identifiers": {"email": "e@x.co"},
            "attributes": {"b": 2},
        },
        person("identify", "3"),
        person("delete", "3"),
        {
            "type": "person",
            "action": "merge",
            "primary": {"id": "1"},
            "secondary": {"email": "e@x.co"},
        },
    ]
    assert (await api.send("POST", "/api/v2/batch", {"batch": batch})).status == 200
    assert fake.people() == {"id:1": {"a": 1, "b": 2}}


# --------------------------------------------------------------------------- faults


async def test_429_with_retry_after_seconds(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=429, headers={"Retry-After": "2"}))
    reply = await api.send("PUT", "/api/v1/customers/42", {"a": 1})
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "2"
    assert v1_error(reply) == "Too Many Requests"
    assert fake.operations == []
    assert fake.requests[0].status == 429
    assert fake.requests[0].json() == {"a": 1}  # faulted requests still record their body
    assert (await api.send("PUT", "/api/v1/customers/42", {"a": 1})).status == 200


async def test_429_with_http_date_retry_after(api: Api, fake: FakeCustomerIO) -> None:
    when = email.utils.format_datetime(
        datetime.now(timezone.utc) + timedelta(seconds=5), usegmt=True
    )
    fake.add_fault(Fault(status=429, headers={"Retry-After": when}))
    reply = await api.send("POST", "/api/v2/batch", {"batch": [person("delete")]})
    assert reply.status == 429
    assert reply.headers["Retry-After"] == when
    assert v2_errors(reply) == [
        {"reason": "too_many_requests", "field": "", "message": "Too Many Requests"}
    ]


async def test_429_without_retry_after(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=429))
    reply = await api.send("GET", "/api/v1/accounts/region")
    assert reply.status == 429
    assert "Retry-After" not in reply.headers


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (408, "Request Timeout"),
        (413, "Request Entity Too Large"),
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
        (522, "HTTP 522"),
    ],
)
async def test_error_status_faults(
    api: Api, fake: FakeCustomerIO, status: int, message: str
) -> None:
    fake.add_fault(Fault(status=status))
    reply = await api.send("PUT", "/api/v1/customers/42", {})
    assert (reply.status, v1_error(reply)) == (status, message)
    assert fake.operations == []


async def test_401_fault_has_empty_body_and_custom_bodies_pass_through(
    api: Api, fake: FakeCustomerIO
) -> None:
    fake.add_fault(Fault(status=401))
    fake.add_fault(Fault(status=200, body=b"{not json"))
    fake.add_fault(Fault(status=202))
    first = await api.send("PUT", "/api/v1/customers/42", {})
    second = await api.send("PUT", "/api/v1/customers/42", {})
    third = await api.send("PUT", "/api/v1/customers/42", {})
    assert (first.status, first.raw) == (401, b"")
    assert (second.status, second.raw) == (200, b"{not json")
    assert (third.status, third.raw) == (202, b"")
    assert fake.operations == []  # a scripted reply never applies the request


async def test_reset_before_body_applies_nothing(api: Api, fake: FakeCustomerIO) -> None:
    # POST, because aiohttp's ClientSession silently resends GET/PUT/DELETE once after a
    # dropped connection, which would hide the reset from this test.
    fake.add_fault(Fault(action="reset_before_body"))
    with pytest.raises(aiohttp.ClientError):
        await api.send("POST", "/api/v1/customers/42/events", {"name": "e"})
    await fake.wait_for_requests(1)
    assert fake.requests[0].status is None
    assert fake.requests[0].body == b""
    assert fake.operations == []


async def test_reset_after_body_applies_then_cuts(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(action="reset_after_body"))
    op = person("event", name="e", id=ULID)
    with pytest.raises(aiohttp.ClientError):
        await api.send("POST", "/api/v2/entity", op)
    await fake.wait_for_requests(1)
    assert fake.requests[0].status is None
    assert fake.requests[0].json() == op
    assert [applied.body for applied in fake.operations] == [op]
    # The client's retry is then a duplicate, exactly like the real service.
    assert (await api.send("POST", "/api/v2/entity", op)).status == 200
    assert fake.duplicate_event_ids == [ULID]
    assert len(fake.operations) == 1


async def test_reject_indexes(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(action="reject_indexes", indexes=(0, 2, 99)))
    # A reject_indexes fault is only consumed by /api/v2/batch.
    assert (await api.send("POST", "/api/v2/entity", person("delete"))).status == 200
    assert len(fake.pending_faults()) == 1
    batch = [person("identify", str(i)) for i in range(3)] + [person("bogus")]
    reply = await api.send("POST", "/api/v2/batch", {"batch": batch})
    assert reply.status == 207
    errors = v2_errors(reply)
    assert [(e["batch_index"], e["reason"]) for e in errors] == [
        (0, "invalid"),
        (2, "invalid"),
        (3, "invalid"),
    ]
    assert [op.identifiers for op in fake.operations] == [{"id": "42"}, {"id": "1"}]
    assert fake.pending_faults() == []


async def test_drip_sends_the_normal_response_slowly(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(action="drip", delay=0.05))
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await api.send("DELETE", "/api/v1/customers/42")
    assert loop.time() - started >= 0.1  # two body bytes, one pause before each
    assert (reply.status, reply.json()) == (200, {})
    assert [op.action for op in fake.operations] == ["delete"]
    await fake.wait_for_requests(1)
    assert fake.requests[0].status == 200


async def test_drip_to_a_client_that_gave_up(
    fake: FakeCustomerIO, session: aiohttp.ClientSession
) -> None:
    fake.add_fault(Fault(action="drip", delay=0.05))
    timeout = aiohttp.ClientTimeout(sock_read=0.01)
    url = fake.url + "/api/v1/accounts/region"
    with pytest.raises(asyncio.TimeoutError):
        async with session.get(url, headers={"Authorization": AUTH}, timeout=timeout) as resp:
            await resp.read()
    await fake.wait_for_requests(1)
    assert fake.requests[0].status is None


async def test_delay_fault_stalls_then_handles_normally(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.1, headers={"X-Fake": "stalled", "content-type": "text/x"}))
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await api.send("PUT", "/api/v1/customers/42", {"a": 1})
    assert loop.time() - started >= 0.1
    assert (reply.status, reply.raw) == (200, b"{}")
    assert reply.headers["X-Fake"] == "stalled"
    assert reply.headers["Content-Type"] == "text/x"
    assert fake.people() == {"id:42": {"a": 1}}


async def test_latency_delays_every_response(session: aiohttp.ClientSession) -> None:
    async with FakeCustomerIO(latency=0.1) as server:
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply = await Api(server, session).send("GET", "/api/v1/accounts/region", auth=None)
        assert reply.status == 401
        assert loop.time() - started >= 0.1


async def test_match_times_and_fifo(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=500, match="/api/v2/batch", times=2))
    fake.add_fault(Fault(status=502))
    statuses = [
        (await api.send("GET", "/api/v1/accounts/region")).status,  # skips the batch fault
        (await api.send("POST", "/api/v2/batch", {"batch": [person("delete")]})).status,
        (await api.send("GET", "/api/v1/accounts/region")).status,
        (await api.send("POST", "/api/v2/batch", {"batch": [person("delete")]})).status,
        (await api.send("POST", "/api/v2/batch", {"batch": [person("delete")]})).status,
    ]
    assert statuses == [502, 500, 200, 500, 200]
    assert fake.pending_faults() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "explode"}, "action"),
        ({"status": 199}, "status"),
        ({"status": 600}, "status"),
        ({"delay": -1.0}, "delay"),
        ({"times": 0}, "times"),
    ],
)
def test_fault_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(**kwargs)


# --------------------------------------------------------------------------- connection edge cases


async def test_close_cuts_a_stalled_request(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=60))
    pending = asyncio.create_task(api.send("POST", "/api/v1/events", {"name": "e"}))
    await fake.wait_for_arrivals(1)
    await fake.close()
    with pytest.raises(aiohttp.ClientError):
        await pending
    assert fake.requests[0].status is None


async def test_close_cuts_a_dripping_response(
    fake: FakeCustomerIO, session: aiohttp.ClientSession
) -> None:
    fake.add_fault(Fault(action="drip", delay=60))
    url = fake.url + "/api/v1/accounts/region"
    async with session.get(url, headers={"Authorization": AUTH}) as resp:
        assert resp.status == 200
        await fake.close()
        with pytest.raises(aiohttp.ClientError):
            await resp.read()
    assert fake.requests[0].status is None


async def test_client_leaving_mid_body_is_recorded_as_cut(fake: FakeCustomerIO) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    writer.write(
        b"PUT /api/v1/customers/42 HTTP/1.1\r\nHost: fake\r\n"
        + f"Authorization: {AUTH}\r\n".encode()
        + b'Content-Length: 100\r\n\r\n{"a"'
    )
    await writer.drain()
    await fake.wait_for_arrivals(1)
    writer.close()
    await writer.wait_closed()
    await fake.wait_for_requests(1)
    assert fake.requests[0].status is None
    assert fake.operations == []
    assert await reader.read() == b""


# --------------------------------------------------------------------------- waiting and clearing


async def test_wait_for_operations(api: Api, fake: FakeCustomerIO) -> None:
    waiter = asyncio.create_task(fake.wait_for_operations(2))
    await api.send("PUT", "/api/v1/customers/1", {})
    assert not waiter.done()
    await api.send("PUT", "/api/v1/customers/2", {})
    await asyncio.wait_for(waiter, timeout=5)
    await fake.wait_for_operations(0)


async def test_waits_time_out_with_builtin_timeout_error(fake: FakeCustomerIO) -> None:
    with pytest.raises(TimeoutError, match=r"1 operations \(have 0\)"):
        await fake.wait_for_operations(1, timeout=0.01)
    with pytest.raises(TimeoutError, match="finished requests"):
        await fake.wait_for_requests(1, timeout=0.01)
    with pytest.raises(TimeoutError, match="arrivals"):
        await fake.wait_for_arrivals(1, timeout=0.01)


async def test_wait_for_requests_waits_for_final_records(api: Api, fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(delay=0.05))
    pending = asyncio.create_task(api.send("PUT", "/api/v1/customers/1", {"a": 1}))
    await fake.wait_for_arrivals(1)
    in_flight = fake.requests[0]
    assert in_flight.status is None  # still stalled inside the fake
    assert in_flight.body == b""
    await fake.wait_for_requests(1)
    final = fake.requests[0]
    assert final.status == 200
    assert final.json() == {"a": 1}
    assert (await pending).status == 200


async def test_clear_forgets_everything(api: Api, fake: FakeCustomerIO) -> None:
    await api.send("PUT", "/api/v1/customers/1", {"a": 1})
    await api.send("POST", "/api/v1/customers/1/events", {"name": "e", "id": ULID})
    await api.send("POST", "/api/v1/customers/1/events", {"name": "e", "id": ULID})
    fake.add_fault(Fault(status=500))
    fake.clear()
    assert fake.requests == []
    assert fake.operations == []
    assert fake.duplicate_event_ids == []
    assert fake.people() == {}
    assert fake.event_ids() == []
    assert fake.pending_faults() == []
    # The id is forgotten too, so the same event applies again.
    await api.send("POST", "/api/v1/customers/1/events", {"name": "e", "id": ULID})
    assert fake.event_ids() == [ULID]
    assert fake.operations[0].request_index == 0


async def test_request_straddling_clear_stays_out_of_the_new_history(
    api: Api, fake: FakeCustomerIO
) -> None:
    fake.add_fault(Fault(delay=0.1))
    pending = asyncio.create_task(api.send("PUT", "/api/v1/customers/1", {"a": 1}))
    await fake.wait_for_arrivals(1)
    fake.clear()
    assert (await pending).status == 200
    assert fake.requests == []
    assert fake.operations == []
    assert fake.people() == {}


# --------------------------------------------------------------------------- public surface


def test_public_surface_is_sorted_and_complete() -> None:
    import customerio_async.testing as testing

    assert testing.__all__ == sorted(testing.__all__)
    assert all(hasattr(testing, name) for name in testing.__all__)
    assert isinstance(RecordedRequest.__doc__, str)


# --------------------------------------------------------------------------- python -m


async def test_cli_subprocess_serves_until_terminated() -> None:
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "customerio_async.testing",
        "--port",
        "0",
        "--site-id",
        "cli-site",
        "--api-key",
        "cli-key",
        "--region",
        "eu",
        "--latency",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": python_path},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        match = re.search(r"url=(\S+) site_id=cli-site api_key=cli-key region=eu", line)
        assert match, line
        async with (
            aiohttp.ClientSession() as client,
            client.get(
                match.group(1) + "/api/v1/accounts/region",
                headers={"Authorization": basic("cli-site", "cli-key")},
            ) as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["region"] == "eu"
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, stderr.decode()


def test_cli_main_in_process_stops_on_sigterm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = cli.announce

    def announce_then_terminate(server: FakeCustomerIO) -> None:
        original(server)
        # The loop's SIGTERM handler is installed by now; this checks it stops cleanly.
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(cli, "announce", announce_then_terminate)
    assert cli.main(["--port", "0", "--site-id", "s", "--api-key", "k", "--latency", "0.5"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        r"FakeCustomerIO listening url=http://127\.0\.0\.1:\d+ site_id=s api_key=k region=us\n",
        out,
    )


@pytest.mark.parametrize(
    "argv", [[], ["--port", "70000"], ["--port", "0", "--latency", "-1"], ["--port", "x"]]
)
def test_cli_rejects_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(argv)
    assert "usage:" in capsys.readouterr().err
