"""Middleware: de-duplication, region routing, metrics and user layers, over loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from customerio_async import (
    BatchConfig,
    ConfigurationError,
    CustomerIO,
    DedupConfig,
    HTTPRequest,
    HTTPResponse,
    Identifier,
    Metrics,
    Operation,
    Outcome,
    Person,
    Receipt,
    Region,
    RegionalCustomerIO,
)
from customerio_async.testing import FakeCustomerIO, Fault

DEDUPLICATED = Outcome("deduplicated", "duplicate")


def client(fake: FakeCustomerIO, **kwargs: Any) -> CustomerIO:
    kwargs.setdefault("batch", BatchConfig(linger=0.005))
    kwargs.setdefault("rate_limit", None)
    return CustomerIO(fake.site_id, fake.api_key, track_url=fake.url, **kwargs)


# ----------------------------------------------------------------------------- dedup


async def test_identify_dedup_keeps_the_last_state_not_every_state(fake: FakeCustomerIO) -> None:
    async with client(fake) as cio:
        r1 = await cio.identify("42", plan="pro")
        r2 = await cio.identify("42", plan="free")
        r3 = await cio.identify("42", plan="pro")  # differs from the LAST one: must be sent
        r4 = await cio.identify("42", plan="pro")  # identical to the last: skipped
        await cio.flush(timeout=5)
        stats = cio.statistics()
    assert [r.outcome for r in (r1, r2, r3)] == [Outcome("delivered")] * 3
    assert r4.outcome == DEDUPLICATED
    assert fake.people()["id:42"]["plan"] == "pro"
    assert [op.body["attributes"]["plan"] for op in fake.operations] == ["pro", "free", "pro"]
    assert (stats.accepted, stats.deduplicated) == (3, 1)


async def test_forgetting_actions_reset_the_fingerprint(fake: FakeCustomerIO) -> None:
    async with client(fake) as cio:
        await cio.identify("1", plan="pro")
        await cio.delete("1")
        again = await cio.identify("1", plan="pro")
        await cio.identify("2", plan="x")
        await cio.merge_customers("id", "9", "id", "2")
        after_merge = await cio.identify("2", plan="x")
        await cio.identify("3", plan="y")
        await cio.suppress("3")
        after_suppress = await cio.identify("3", plan="y")
        await cio.flush(timeout=5)
    for receipt in (again, after_merge, after_suppress):
        assert receipt.outcome == Outcome("delivered")


async def test_a_failed_identify_never_hides_the_next(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=422))
    async with client(fake) as cio:
        first = await cio.identify("1", plan="pro")
        assert (await first.wait(timeout=5)).status == "rejected"
        second = await cio.identify("1", plan="pro")
        assert (await second.wait(timeout=5)).delivered


async def test_identify_ttl_and_size(fake: FakeCustomerIO) -> None:
    cfg = DedupConfig(identify_ttl=0.05, identify_size=2)
    async with client(fake, dedup=cfg) as cio:
        await cio.identify("1", a=1)
        # Its twin is still pending: the duplicate resolves with the twin's verdict.
        assert await (await cio.identify("1", a=1)).wait(timeout=5) == DEDUPLICATED
        assert (await cio.identify("1", a=1)).outcome == DEDUPLICATED  # twin delivered
        await asyncio.sleep(0.06)  # let the 50 ms TTL expire: that is what is under test
        assert (await cio.identify("1", a=1)).outcome != DEDUPLICATED
        await cio.identify("2", a=1)
        await cio.identify("3", a=1)  # evicts person 1 (size 2)
        assert (await cio.identify("1", a=1)).outcome != DEDUPLICATED
        await cio.flush(timeout=5)


async def test_event_dedup_by_caller_id(fake: FakeCustomerIO) -> None:
    async with client(fake) as cio:
        first = await cio.track("1", "paid", id="01J00000000000000000000000")
        dup = await cio.track("1", "paid", id="01J00000000000000000000000")
        anon = await cio.track_anonymous("a", "x", id="01J00000000000000000000001")
        anon_dup = await cio.track_anonymous("a", "x", id="01J00000000000000000000001")
        generated = [await cio.track("1", "same-name") for _ in range(3)]
        await cio.flush(timeout=5)
        stats = cio.statistics()
        families = {m.name: m for m in cio.metrics.registry.collect()}
    assert first.outcome == Outcome("delivered")
    assert dup.outcome == DEDUPLICATED
    assert anon.outcome == Outcome("delivered")
    assert anon_dup.outcome == DEDUPLICATED
    assert all(r.outcome == Outcome("delivered") for r in generated)
    assert stats.deduplicated == 2
    hits = {s.labels["kind"]: s.value for s in families["customerio_dedup_hits"].samples}
    assert hits == {"event": 2.0}


async def test_dedup_can_be_turned_off(fake: FakeCustomerIO) -> None:
    async with client(fake, dedup=None) as cio:
        for _ in range(3):
            await cio.identify("1", a=1)
        await cio.flush(timeout=5)
    assert len(fake.operations) == 3


async def test_dedup_applies_in_direct_mode(fake: FakeCustomerIO) -> None:
    async with client(fake, batching=False) as cio:
        await cio.identify("1", a=1)
        assert (await cio.identify("1", a=1)).outcome == DEDUPLICATED
    assert len(fake.requests) == 1


def test_dedup_config_validation() -> None:
    with pytest.raises(ConfigurationError):
        DedupConfig(identify_size=0)
    with pytest.raises(ConfigurationError):
        DedupConfig(event_ttl=0)


# ----------------------------------------------------------------------------- user layers


async def test_user_operation_middleware_can_observe_and_short_circuit(
    fake: FakeCustomerIO,
) -> None:
    seen: list[str] = []

    async def audit(op: Operation, call_next: Callable[[Operation], Awaitable[Receipt]]) -> Receipt:
        seen.append(op.action)
        return await call_next(op)

    async def block_tests(
        op: Operation, call_next: Callable[[Operation], Awaitable[Receipt]]
    ) -> Receipt:
        if op.key is not None and op.key.value == "test-user":
            return Receipt(op, outcome=Outcome("rejected", "blocked_by_policy"))
        return await call_next(op)

    async with client(fake, operation_middleware=[audit, block_tests]) as cio:
        await cio.identify("real", a=1)
        blocked = await cio.track("test-user", "x")
        await cio.flush(timeout=5)
    assert seen == ["identify", "event"]
    assert blocked.outcome == Outcome("rejected", "blocked_by_policy")
    assert [op.identifiers for op in fake.operations] == [{"id": "real"}]


async def test_user_http_middleware_sees_every_attempt(fake: FakeCustomerIO) -> None:
    attempts: list[int] = []

    async def tracing(
        request: HTTPRequest, call_next: Callable[[HTTPRequest], Awaitable[HTTPResponse]]
    ) -> HTTPResponse:
        attempts.append(request.attempt)
        request.headers["X-Trace"] = f"attempt-{request.attempt}"
        return await call_next(request)

    fake.add_fault(Fault(status=503))
    async with client(fake, http_middleware=[tracing]) as cio:
        await (await cio.identify("1", a=1)).wait(timeout=5)
    assert attempts == [1, 2]
    assert [r.headers.get("x-trace") for r in fake.requests] == ["attempt-1", "attempt-2"]


# ----------------------------------------------------------------------------- routing


@pytest.fixture
def creds() -> dict[str, tuple[str, str]]:
    return {"us": ("us-site", "us-key"), "eu": ("eu-site", "eu-key")}


async def test_routing_by_resolver_with_caching_and_isolation(
    creds: dict[str, tuple[str, str]],
) -> None:
    calls: list[str] = []

    async def resolver(person: Identifier) -> str | None:
        assert person.type == "id"
        calls.append(person.value)
        await asyncio.sleep(0)  # a database lookup
        return {"ana": "eu", "bob": "us"}.get(person.value)

    async with (
        FakeCustomerIO(site_id="us-site", api_key="us-key", region="us") as us,
        FakeCustomerIO(site_id="eu-site", api_key="eu-key", region="eu") as eu,
    ):
        clients = [
            client(us, region="us", dedup=None),
            client(eu, region="eu", dedup=None),
        ]
        async with RegionalCustomerIO(clients, resolver=resolver) as cio:
            for _ in range(3):
                await cio.identify("ana", plan="x")
                await cio.track("bob", "login")
            await cio.identify("carl", plan="unknown person: default region")
            await cio.using("eu").track("bob", "explicitly in the EU")
            await cio.send(Person.delete("ana"))
            await cio.add_to_segment(3, ["x"])  # no person: default region
            results = await cio.flush(timeout=5)
            assert set(results) == {Region.US, Region.EU}
            assert set(cio.statistics()) == {Region.US, Region.EU}
            assert "regions=eu,us" in repr(cio)
    assert sorted(calls) == ["ana", "bob", "carl"]  # once per person within the TTL
    eu_people = {tuple(op.identifiers.items()) for op in eu.operations}
    us_people = {tuple(op.identifiers.items()) for op in us.operations}
    assert eu_people == {(("id", "ana"),), (("id", "bob"),)}
    assert (("id", "ana"),) not in us_people
    us_auth = "Basic " + base64.b64encode(b"us-site:us-key").decode()
    eu_auth = "Basic " + base64.b64encode(b"eu-site:eu-key").decode()
    assert {r.headers["authorization"] for r in us.requests} == {us_auth}
    assert {r.headers["authorization"] for r in eu.requests} == {eu_auth}


async def test_routing_errors(creds: dict[str, tuple[str, str]]) -> None:
    async def bad_resolver(person: Identifier) -> str:
        return "mars"

    async with FakeCustomerIO() as us:
        with pytest.raises(ConfigurationError, match="at least one"):
            RegionalCustomerIO([])
        regional = RegionalCustomerIO([client(us)], resolver=bad_resolver)
        with pytest.raises(Exception, match="async with"):
            regional.using("us")
        async with regional as cio:
            with pytest.raises(ConfigurationError, match="mars"):
                await cio.identify("x", a=1)
            with pytest.raises(ConfigurationError, match="no client"):
                cio.using("eu")
        with pytest.raises(ConfigurationError, match="two clients"):
            async with RegionalCustomerIO([client(us), client(us)]):
                pass  # pragma: no cover


async def test_region_auto_discovers_the_workspace_region() -> None:
    async with FakeCustomerIO(region="eu") as eu:
        async with client(eu, region="auto") as cio:
            assert cio.region is Region.EU
            assert cio.origin == eu.url  # an explicit track_url is kept
            await (await cio.identify("1", a=1)).wait(timeout=5)
            labels = {
                s.labels.get("region") for m in cio.metrics.registry.collect() for s in m.samples
            }
        assert labels == {"eu"}
    assert eu.requests[0].path == "/api/v1/accounts/region"


async def test_region_auto_with_bad_credentials_fails_open(fake: FakeCustomerIO) -> None:
    from customerio_async import AuthenticationError

    cio = CustomerIO("fake-site", "nope", track_url=fake.url, region="auto", batching=False)
    with pytest.raises(AuthenticationError):
        await cio.open()
    assert "closed" in repr(cio)


# ----------------------------------------------------------------------------- metrics


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_metrics_read_back_from_the_registry(fake: FakeCustomerIO) -> None:
    fake.add_fault(Fault(status=503))
    fake.add_fault(Fault(action="reject_indexes", indexes=(0,)))
    async with client(fake, batch=BatchConfig(linger=10, max_concurrent_requests=1)) as cio:
        for i in range(5):
            await cio.identify(str(i), a=i)
        await cio.identify("4", a=4)  # deduplicated
        await cio.flush(timeout=5)
        reg = cio.metrics.registry
        assert sample(reg, "customerio_operations_accepted_total", region="us") == 5
        assert (
            sample(reg, "customerio_operations_total", region="us", outcome="delivered", reason="")
            == 4
        )
        assert (
            sample(
                reg,
                "customerio_operations_total",
                region="us",
                outcome="rejected",
                reason="invalid",
            )
            == 1
        )
        assert (
            sample(
                reg, "customerio_operations_total", region="us", outcome="deduplicated", reason=""
            )
            == 1
        )
        assert sample(reg, "customerio_retries_total", region="us", cause="http_503") == 1
        assert sample(reg, "customerio_dedup_hits_total", region="us", kind="identify") == 1
        labels = {"region": "us", "api": "track", "endpoint": "/api/v2/batch"}
        assert (
            sample(
                reg, "customerio_http_request_duration_seconds_count", **labels, status_class="5xx"
            )
            == 1
        )
        assert (
            sample(
                reg, "customerio_http_request_duration_seconds_count", **labels, status_class="2xx"
            )
            == 1
        )
        # One batch of five, sent twice (503, then 207): retries are not new batches.
        assert sample(reg, "customerio_batch_operations_count", region="us") == 1
        assert sample(reg, "customerio_batch_operations_sum", region="us") == 5
        assert sample(reg, "customerio_operation_duration_seconds_count", region="us") == 5
        assert sample(reg, "customerio_admission_wait_seconds_count", region="us") == 5
        assert sample(reg, "customerio_bytes_sent_total", region="us") == sum(
            len(r.body) for r in fake.requests
        )
        assert (sample(reg, "customerio_pool_connections_created_total", region="us") or 0) >= 1
        assert sample(reg, "customerio_pool_connections_in_use", region="us") == 0
        assert sample(reg, "customerio_buffered_operations", region="us") == 0
        assert sample(reg, "customerio_in_flight_requests", region="us") == 0
        text = generate_latest(reg).decode()
    bucket_lines = [
        line
        for line in text.splitlines()
        if line.startswith("customerio_http_request_duration_seconds_bucket")
    ]
    assert any('le="0.0005"' in line for line in bucket_lines)
    assert any('le="+Inf"' in line and 'status_class="2xx"' in line for line in bucket_lines)
    assert "customerio_batch_bytes_bucket" in text


async def test_one_registry_for_two_regions_and_private_by_default() -> None:
    shared = Metrics(registry=CollectorRegistry(), prefix="app_cio_")
    async with (
        FakeCustomerIO(region="us") as us,
        FakeCustomerIO(region="eu") as eu,
        client(us, region="us", metrics=shared) as cus,
        client(eu, region="eu", metrics=shared) as ceu,
        client(us) as private_a,
        client(us) as private_b,
    ):
        await cus.identify("1", a=1)
        await ceu.identify("2", a=1)
        await cus.flush(timeout=5)
        await ceu.flush(timeout=5)
        reg = shared.registry
        assert sample(reg, "app_cio_operations_accepted_total", region="us") == 1
        assert sample(reg, "app_cio_operations_accepted_total", region="eu") == 1
        assert private_a.metrics.registry is not private_b.metrics.registry
        with pytest.raises(ConfigurationError, match="already attached"):
            shared.attach(private_a)
    shared.detach(cus)
    assert sample(shared.registry, "app_cio_operations_accepted_total", region="us") is None
