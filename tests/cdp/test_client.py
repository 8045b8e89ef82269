"""``PipelinesClient`` against the fake over real HTTP: the wire (auth, strict mode, gzip,
``/v1/batch`` and ``/v1/alias``), every request valid in the vendor document, and the send
pipeline's guarantees (order per person, retries with the same ``messageId``, a bad message
isolated by the 400 split, nothing lost at close)."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from typing import Any

import pytest
from _openapi import PIPELINES_SPEC_PATH, BodyValidator
from _pipelines_openapi import batch_item_pointer, load_pipelines_contract

from customerio_async import (
    BatchConfig,
    ClientStateError,
    ConfigurationError,
    CustomerIO,
    Metrics,
    OperationDroppedError,
    OperationRejectedError,
    PipelinesCall,
    PipelinesClient,
    Region,
    RetryPolicy,
    ValidationError,
)
from customerio_async._cdp.wire import encode
from customerio_async.testing import FakeCustomerIO, Fault, RecordedRequest

from .conftest import fast

WHEN = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)


async def every_call(client: PipelinesClient) -> None:
    """Each call, plain and with every optional argument."""
    extra: dict[str, Any] = {
        "context": {"ip": "8.8.8.8", "locale": "en-US", "page": {"url": "https://x"}},
        "timestamp": WHEN,
        "integrations": {"All": True, "Salesforce": False},
        "message_id": "m-fixed-1",
    }
    await client.identify("42", {"email": "ada@example.com", "createdAt": WHEN})
    await client.identify(anonymous_id="anon-1", traits={"plan": "free"})
    await client.identify("", {"email": "by-email@example.com"})
    await client.track("42", "Order Completed", {"total": 42.5, "at": WHEN}, **extra)
    await client.track(anonymous_id="anon-1", event="Viewed", timestamp="2024-05-01T12:30:00Z")
    await client.track(event="Renewed", group_id="acme")
    await client.track("42", "User Deleted")
    await client.track(
        "42", "Device Created or Updated", context={"device": {"token": "tok", "type": "ios"}}
    )
    await client.track(
        event="Report Delivery Event", properties={"deliveryId": "d", "metric": "opened"}
    )
    await client.page("42", "Docs", "Home", {"url": "https://example.com", "title": "Home"})
    await client.page(anonymous_id="anon-1")
    await client.screen("42", name="Feed", properties={"tab": "new"}, anonymous_id="anon-1")
    await client.group("42", "acme", {"name": "Acme", "object_type_id": "1"})
    await client.alias("anon-1", "42", message_id="m-alias")
    await client.send({"type": "track", "userId": 7, "event": "From a dict"})


@pytest.mark.vendor_document(PIPELINES_SPEC_PATH)
async def test_every_request_is_valid_in_the_vendor_document(
    fake: FakeCustomerIO, pipelines: PipelinesClient
) -> None:
    await every_call(pipelines)
    result = await pipelines.flush()
    assert (result.delivered, result.rejected, result.dropped) == (15, 0, 0)
    assert fake.pipelines_drops == []
    contract: BodyValidator = load_pipelines_contract()
    paths = set()
    for req in fake.requests:
        paths.add(req.path)
        op = contract.match(req.method, req.path)
        assert op.body_pointer is not None
        body = req.json()
        contract.check(op.body_pointer, body, f"{req.method} {req.path}")
        for i, item in enumerate(body.get("batch", [])):
            contract.check(batch_item_pointer(), item, f"{req.path} batch[{i}]")
    assert paths == {"/v1/batch", "/v1/alias"}
    assert len(fake.pipelines_messages) == 15


async def test_the_wire_auth_strict_mode_and_message_shape(
    fake: FakeCustomerIO, pipelines: PipelinesClient
) -> None:
    await pipelines.track(42, "Signed Up", {"plan": "pro"}, anonymous_id="a-1", wait=True)
    await pipelines.alias("a-1", "42", wait=True)
    batch, alias = fake.requests
    for req in (batch, alias):
        token = base64.b64encode(b"fake-write-key:").decode()
        assert req.headers["authorization"] == f"Basic {token}"
        assert req.headers["x-strict-mode"] == "1"
        assert req.headers["content-type"] == "application/json"
    assert (batch.path, alias.path) == ("/v1/batch", "/v1/alias")
    [message] = batch.json()["batch"]
    assert message["type"] == "track"
    assert (message["userId"], message["anonymousId"]) == ("42", "a-1")  # ints become strings
    assert message["context"] == {
        "library": {"name": "customerio-async", "version": message["context"]["library"]["version"]}
    }
    assert message["integrations"] == {}
    assert message["timestamp"].endswith("Z")
    assert len(message["timestamp"]) == 24
    assert len(message["messageId"]) == 26  # a ULID
    assert alias.json()["type"] == "alias"
    assert [m.type for m in fake.pipelines_messages] == ["track", "alias"]


async def test_gzip_bodies_of_a_kilobyte_and_more(fake: FakeCustomerIO) -> None:
    async with PipelinesClient(fake.pipelines_write_key, fake.url, **fast()) as client:
        assert client.gzip is True
        await client.track("1", "small", wait=True)
        for i in range(200):
            await client.track("1", "bigger", {"i": i, "note": "the same words again " * 4})
        await client.flush()
        stats = client.statistics()
    small, big = fake.requests
    assert "content-encoding" not in small.headers
    assert big.headers["content-encoding"] == "gzip"
    plain = gzip.decompress(big.body)
    assert len(big.body) * 5 < len(plain)
    assert stats.bytes_sent == len(small.body) + len(big.body)
    assert len(fake.pipelines_messages) == 201


async def test_gzip_can_be_turned_off(fake: FakeCustomerIO) -> None:
    async with PipelinesClient(fake.pipelines_write_key, fake.url, gzip=False, **fast()) as client:
        for i in range(100):
            await client.track("1", "bigger", {"i": i, "note": "words " * 20})
    assert all("content-encoding" not in req.headers for req in fake.requests)
    assert len(fake.pipelines_messages) == 100


async def test_a_retry_resends_the_same_message_ids(
    fake: FakeCustomerIO, pipelines: PipelinesClient
) -> None:
    fake.add_fault(Fault(status=503, match="/v1/batch"))
    fake.add_fault(Fault(status=429, match="/v1/batch"))
    receipts = [await pipelines.track("42", "e", {"i": i}) for i in range(3)]
    await pipelines.flush()
    assert [r.outcome and r.outcome.status for r in receipts] == ["delivered"] * 3
    first, second, third = fake.requests
    assert [first.status, second.status, third.status] == [503, 429, 200]
    assert first.json() == second.json() == third.json()
    ids = [m.message_id for m in fake.pipelines_messages]
    assert ids == [r.event_id for r in receipts]
    assert len(set(ids)) == 3
    assert pipelines.statistics().retries == 2


async def test_the_400_split_isolates_a_bad_message(
    fake: FakeCustomerIO, pipelines: PipelinesClient
) -> None:
    # A message our checks would refuse, smuggled past them: no person.
    bad = PipelinesCall("track", encode({"type": "track", "event": "x"}, "track"), None, "bad")
    good = [await pipelines.track(str(i), "e") for i in range(5)]
    receipt = await pipelines.send(bad)
    good += [await pipelines.track(str(i), "e") for i in range(5, 10)]
    await pipelines.flush()
    assert all(r.outcome is not None and r.outcome.delivered for r in good)
    outcome = await receipt.wait()
    assert (outcome.status, outcome.reason, outcome.http_status) == ("rejected", "http_400", 400)
    assert outcome.message
    assert "userId or anonymousId is required" in outcome.message
    assert len(fake.pipelines_messages) == 10
    assert fake.pipelines_drops == []
    with pytest.raises(OperationRejectedError, match="track rejected"):
        await pipelines.send(bad, wait=True)


async def test_one_persons_messages_keep_their_order(fake: FakeCustomerIO) -> None:
    batch = BatchConfig(linger=0.001, max_batch_ops=7, max_concurrent_requests=4)
    async with PipelinesClient(fake.pipelines_write_key, fake.url, **fast(batch=batch)) as c:
        fake.add_fault(Fault(status=503, match="/v1/batch", times=3))
        for i in range(60):
            await c.track(f"u{i % 3}", "step", {"n": i})
            if i % 10 == 0:
                await c.identify(anonymous_id=f"anon-{i % 3}", traits={"n": i})
        await c.alias("anon-0", "u0")
        await c.flush()
    for user in ("u0", "u1", "u2"):
        seen = [
            m.properties["n"]
            for m in fake.pipelines_messages
            if m.user_id == user and m.type == "track"
        ]
        assert seen == sorted(seen)
        assert len(seen) == 20
    # The alias follows every message of both ids it joins (others may pass it).
    types = [m.type for m in fake.pipelines_messages]
    alias = types.index("alias")
    joined = [
        i
        for i, m in enumerate(fake.pipelines_messages)
        if m.type != "alias" and (m.user_id == "u0" or m.anonymous_id == "anon-0")
    ]
    assert len(joined) == 22
    assert max(joined) < alias


async def test_nothing_is_lost_when_the_block_ends_right_after_sending(
    fake: FakeCustomerIO,
) -> None:
    async with PipelinesClient(fake.pipelines_write_key, fake.url, **fast()) as client:
        for i in range(500):
            await client.track(f"u{i % 50}", "e", {"i": i})
    assert len(fake.pipelines_messages) == 500
    assert client.statistics().delivered == 500


async def test_a_wrong_key_is_dropped_as_auth_failed_never_silently(fake: FakeCustomerIO) -> None:
    retry = RetryPolicy(backoff_base=0.01, backoff_cap=0.02, auth_pause=0.1, delivery_timeout=0.3)
    async with PipelinesClient("wrong", fake.url, **fast(retry=retry)) as client:
        receipt = await client.track("42", "e")
        outcome = await receipt.wait()
        with pytest.raises(OperationDroppedError, match="track dropped: auth_failed"):
            await client.track("42", "e", wait=True)
        with pytest.raises(Exception, match="401"):
            await client.check_credentials()
    assert (outcome.status, outcome.reason) == ("dropped", "auth_failed")
    assert fake.pipelines_messages == []
    assert fake.pipelines_drops == []
    assert {req.status for req in fake.requests} == {401}


async def test_check_credentials_accepts_the_right_key(
    fake: FakeCustomerIO, pipelines: PipelinesClient
) -> None:
    await pipelines.check_credentials()
    assert fake.pipelines_messages == []
    fake.add_fault(Fault(status=500, match="/v1/batch", times=5))
    with pytest.raises(Exception, match="500"):
        await pipelines.check_credentials()


def test_regions_hosts_and_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PipelinesClient("k").origin == "https://cdp.customer.io"
    eu = PipelinesClient("k", region="eu")
    assert eu.origin == "https://cdp-eu.customer.io"
    assert eu.region is Region.EU
    assert PipelinesClient("k", "http://127.0.0.1:9/v1/").origin == "http://127.0.0.1:9"
    assert PipelinesClient(" key\n").metrics_label == "us:pipelines"  # a trailing newline
    monkeypatch.setenv("CUSTOMERIO_PIPELINES_WRITE_KEY", "from-env")
    client = PipelinesClient()
    assert "from-env" not in repr(client)
    assert "gzip=True" in repr(client)
    monkeypatch.delenv("CUSTOMERIO_PIPELINES_WRITE_KEY")
    with pytest.raises(ConfigurationError, match="write_key is required"):
        PipelinesClient()
    with pytest.raises(ConfigurationError, match="without whitespace"):
        PipelinesClient("a b")
    with pytest.raises(ConfigurationError, match="region"):
        PipelinesClient("k", region="ap")
    with pytest.raises(ConfigurationError, match="host"):
        PipelinesClient("k", "ftp://x")


async def test_the_client_is_single_use(fake: FakeCustomerIO) -> None:
    client = PipelinesClient(fake.pipelines_write_key, fake.url, **fast())
    with pytest.raises(ClientStateError, match="not open"):
        await client.track("1", "e")
    async with client:
        with pytest.raises(ValidationError, match="wait"):
            await client.track("1", "e", wait="yes")  # type: ignore[arg-type]
    with pytest.raises(ClientStateError, match="closed"):
        await client.flush()
    with pytest.raises(ClientStateError):
        await client.open()
    await client.aclose()  # idempotent


async def test_a_forked_child_is_refused(
    fake: FakeCustomerIO, pipelines: PipelinesClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import customerio_async._cdp.client as module

    monkeypatch.setattr(module, "fork_count", lambda: 99)
    with pytest.raises(ClientStateError, match="another process"):
        await pipelines.track("1", "e")


async def test_metrics_share_a_registry_with_a_track_client(fake: FakeCustomerIO) -> None:
    from prometheus_client import generate_latest

    shared = Metrics()
    track = CustomerIO(fake.site_id, fake.api_key, track_url=fake.url, metrics=shared)
    client = PipelinesClient(fake.pipelines_write_key, fake.url, metrics=shared, **fast())
    async with track, client:
        await client.track("1", "e", wait=True)
        await track.track("1", "e", wait=True)
        text = generate_latest(shared.registry).decode()
    assert (
        'customerio_pipelines_operations_total{outcome="delivered",reason="",region="us"} 1.0'
        in text
    )
    assert 'api="pipelines"' in text
    assert 'api="track"' in text
    assert "customerio_pipelines_batch_bytes_bucket" in text
    assert "customerio_pipelines_buffered_operations" in text


def _decoded(req: RecordedRequest) -> Any:
    return (
        json.loads(gzip.decompress(req.body)) if req.headers.get("content-encoding") else req.json()
    )


async def test_a_message_at_the_limit_is_sent_and_one_over_is_refused(
    fake: FakeCustomerIO, pipelines: PipelinesClient
) -> None:
    call = await pipelines.track("1", "e", {"pad": ""})
    base = len(call.operation.data)
    await pipelines.track("1", "e", {"pad": "x" * (32_000 - base)}, wait=True)
    with pytest.raises(ValidationError, match="at most 32000"):
        await pipelines.track("1", "e", {"pad": "x" * (32_001 - base)})
    await pipelines.flush()
    assert all(
        len(item_bytes) <= 32_000
        for item_bytes in (
            json.dumps(m.body, separators=(",", ":")).encode() for m in fake.pipelines_messages
        )
    )
    assert fake.pipelines_drops == []
    assert _decoded(fake.requests[-1])["batch"]


def test_message_ids_come_from_os_randomness() -> None:
    import random

    from customerio_async._cdp import messages

    random.seed(1)
    first = messages.track("1", "e").message_id
    random.seed(1)
    assert messages.track("1", "e").message_id != first  # os.urandom, never `random`


async def test_a_full_buffer_applies_the_overflow_policy(fake: FakeCustomerIO) -> None:
    batch = BatchConfig(
        linger=5, max_buffer_ops=1, overflow="drop_newest", max_concurrent_requests=32
    )
    async with PipelinesClient(fake.pipelines_write_key, fake.url, **fast(batch=batch)) as client:
        assert client._transport._pool.max_connections_per_host == 32  # a connection a slot
        await client.track("1", "kept")
        dropped = await client.track("1", "no room")
        assert dropped.outcome is not None
        assert (dropped.outcome.status, dropped.outcome.reason) == ("dropped", "buffer_full")
    assert [m.event for m in fake.pipelines_messages] == ["kept"]


async def test_one_metrics_per_region_label(fake: FakeCustomerIO) -> None:
    shared = Metrics()
    async with PipelinesClient(fake.pipelines_write_key, fake.url, metrics=shared, **fast()):
        second = PipelinesClient(fake.pipelines_write_key, fake.url, metrics=shared, **fast())
        with pytest.raises(ConfigurationError, match="already attached"):
            await second.open()
        with pytest.raises(ClientStateError, match="closed"):
            await second.track("1", "e")


async def test_a_forked_child_does_not_drain_the_parents_buffer(
    fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    import customerio_async._cdp.client as module

    client = PipelinesClient(
        fake.pipelines_write_key, fake.url, **fast(batch=BatchConfig(linger=5))
    )
    await client.open()
    await client.track("1", "buffered")
    monkeypatch.setattr(module, "fork_count", lambda: 99)
    await client.aclose()  # returns at once: nothing sent, nothing closed
    assert fake.requests == []
    await client._transport.aclose()  # what the parent would have done
