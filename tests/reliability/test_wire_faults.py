"""Scenarios 3, 4 and 5: faults on the wire.

* 3 — a timeout (or a lost answer) after the server applied the request: the retry carries
  byte-identical operations (same ULIDs), and the server stores each event once.
* 4 — a reset on an idle keep-alive socket (the failure users of the official SDK report):
  retried at once on a fresh connection, invisible to the caller.
* 5 — the server closes mid-response, drips the response, answers malformed JSON, a 2xx
  with ``errors[]`` that cannot be mapped, garbage instead of HTTP, or a 3xx to a foreign
  host (whose Authorization must not follow); and DNS failure.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from customerio_async import (
    BatchConfig,
    ConnectError,
    CustomerIO,
    Outcome,
    RetryPolicy,
    Timeouts,
    UnsafeRedirectError,
)
from customerio_async.testing import FakeCustomerIO, Fault

from ._harness import (
    API_KEY,
    SITE_ID,
    batch_event_ids,
    check_invariant,
    make_client,
    record_figures,
)
from ._proxy import PASS, FaultProxy, ProxyFault

ONE_BATCH = BatchConfig(linger=60, max_concurrent_requests=1)
NO_RETRY = RetryPolicy(direct_attempts=1, max_attempts=1)

# ----------------------------------------------------------------------------- scenario 3


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        # The answer is withheld: the client times out (sock_read).
        (ProxyFault("stall_response"), "RequestTimeoutError"),
        # The answer is dripped slower than sock_read allows.
        (Fault(action="drip", delay=1.0, match="/api/v2/batch"), "RequestTimeoutError"),
        # The answer is read from the server, then the client gets an RST instead.
        (ProxyFault("close_after_response"), "connection_lost"),
        # The server closes mid-response (40 bytes of it relayed, then an RST).
        (ProxyFault("cut_response", cut_after=40), "connection_lost"),
    ],
    ids=["timeout", "slow-drip-timeout", "reset-after-apply", "closed-mid-response"],
)
async def test_a_lost_answer_after_apply_is_retried_with_the_same_ulids(
    fake: FakeCustomerIO, proxy: FaultProxy, fault: ProxyFault | Fault, cause: str
) -> None:
    timeouts = Timeouts(total=5.0, sock_read=0.3)
    async with make_client(proxy.url, batch=ONE_BATCH, timeouts=timeouts) as cio:
        receipts = [await cio.track("same-person", "paid", {"n": i}) for i in range(5)]
        if isinstance(fault, Fault):
            fake.add_fault(fault)
        else:
            proxy.script(fault)  # the first attempt only
        result = await cio.flush(timeout=10)
        stats = cio.statistics()
    ids = [str((r.operation.v2 or {})["id"]) for r in receipts]
    assert result.delivered == 5
    assert all(r.outcome == Outcome("delivered") for r in receipts)
    assert stats.retries_by_cause == {cause: 1}
    batches = [r for r in fake.requests if r.path == "/api/v2/batch"]
    assert len(batches) == 2
    # The retry is byte-identical: the same five ULIDs, in the same order.
    assert batches[1].body == batches[0].body
    assert batch_event_ids(batches) == ids + ids
    assert batches[1].headers["x-retry-count"] == "1"
    # Applied by the first attempt, recognised as duplicates on the second: stored once.
    assert fake.event_ids() == ids
    assert fake.duplicate_event_ids == ids


# ----------------------------------------------------------------------------- scenario 4


async def test_a_reset_on_an_idle_keep_alive_socket_is_retried_transparently(
    fake: FakeCustomerIO, proxy: FaultProxy
) -> None:
    # Backoffs of ~10 s: only an immediate retry on a fresh connection can pass this test.
    retry = RetryPolicy(backoff_base=10.0, backoff_cap=10.0, delivery_timeout=60.0)
    async with make_client(proxy.url, retry=retry, batch=BatchConfig(linger=0)) as cio:
        assert (await (await cio.track("1", "first")).wait(5)).delivered
        assert proxy.open_connections == 1  # idle in the pool, kept alive
        proxy.forget_connections()  # the far end dropped it without telling us
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = await (await cio.track("1", "second")).wait(5)
        took = loop.time() - started
        stats = cio.statistics()
    assert outcome.delivered
    assert took < 1.0
    assert stats.retries_by_cause == {"connection_lost": 1}
    assert proxy.stats.faults["stale"] == 1
    assert proxy.stats.connections == 2  # the retry used a fresh connection
    assert [op.body["name"] for op in fake.operations] == ["first", "second"]
    record_figures("idle keep-alive reset", retry_delay_ms=round(1000 * took, 1))


async def test_direct_mode_recovers_from_a_stale_keep_alive_socket(
    fake: FakeCustomerIO, proxy: FaultProxy
) -> None:
    retry = RetryPolicy(backoff_base=0.05, backoff_cap=0.1)  # direct_attempts=3 by default
    async with CustomerIO(
        SITE_ID, API_KEY, track_url=proxy.url, batching=False, retry=retry
    ) as cio:
        await cio.identify("1", a=1)
        proxy.forget_connections()
        receipt = await cio.identify("1", a=2)  # does not raise
    assert receipt.outcome == Outcome("delivered")
    assert fake.people()["id:1"] == {"a": 2}


# ----------------------------------------------------------------------------- scenario 5


async def test_slow_links_and_slow_drips_within_the_timeouts_are_not_failures(
    fake: FakeCustomerIO, proxy: FaultProxy
) -> None:
    proxy.latency = 0.05
    proxy.bandwidth = 200_000  # bytes/s, each direction
    fake.add_fault(Fault(action="drip", delay=0.05, match="/api/v2/batch"))  # "{}" byte by byte
    loop = asyncio.get_running_loop()
    async with make_client(proxy.url, batch=ONE_BATCH, timeouts=Timeouts(sock_read=2.0)) as cio:
        for i in range(40):
            await cio.track("p", "big", {"n": i, "pad": "x" * 2000})
        started = loop.time()
        result = await cio.flush(timeout=10)
        took = loop.time() - started
        stats = cio.statistics()
    body = fake.requests[0].body
    assert result.delivered == 40
    assert stats.retries == 0
    assert len(fake.requests) == 1
    # The cap was real: ~80 KB at 200 KB/s plus two one-way latencies and the drip.
    assert took >= len(body) / 200_000 + 0.1
    record_figures("slow link", body_bytes=len(body), took_s=round(took, 3), retries=stats.retries)


MALFORMED = [
    # (status, body, expected outcome of op 0 / of the others, retry cause or None)
    (200, b"{not json", "delivered", "delivered", None),
    (200, b"", "delivered", "delivered", None),
    (207, b"{not json", "delivered", "delivered", "invalid_response"),
    (207, b"", "delivered", "delivered", "invalid_response"),
    (207, b"{}", "delivered", "delivered", "invalid_response"),
    (207, b'{"errors":"oops"}', "delivered", "delivered", "invalid_response"),
    (207, b'{"errors":[{"batch_index":"0"}]}', "delivered", "delivered", "invalid_response"),
    (207, b'{"errors":[{"batch_index":true}]}', "delivered", "delivered", "invalid_response"),
    (207, b'{"errors":[{"batch_index":-1}]}', "delivered", "delivered", "invalid_response"),
    (200, b'{"errors":[{"reason":"weird"}]}', "delivered", "delivered", "invalid_response"),
    (207, b'{"errors":[{"batch_index":0},{"batch_index":0}]}', "rejected", "delivered", None),
    (207, b'{"errors":[{"batch_index":0,"reason":"bad"}],"x":[1,', "delivered", "delivered",
     "invalid_response"),
    (503, b"\x00\xff not json", "delivered", "delivered", "http_503"),
    (429, b"<html>slow down</html>", "delivered", "delivered", "http_429"),
    (500, b'{"errors":[{"batch_index":0}]}', "delivered", "delivered", "http_500"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "first", "others", "cause"), MALFORMED)
async def test_malformed_and_unmappable_answers_never_misreport_an_outcome(
    fake: FakeCustomerIO, status: int, body: bytes, first: str, others: str, cause: str | None
) -> None:
    fake.add_fault(Fault(status=status, body=body, match="/api/v2/batch"))
    async with make_client(fake.url, batch=ONE_BATCH) as cio:
        receipts = [await cio.track(f"p{i}", "e") for i in range(3)]
        result = await cio.flush(timeout=10)
        stats = cio.statistics()
        check_invariant(cio)
    assert result.pending == 0
    statuses = [r.outcome.status if r.outcome else None for r in receipts]
    assert statuses == [first, others, others]
    assert dict(stats.retries_by_cause) == ({cause: 1} if cause else {})
    if cause is not None:
        # The scripted answer applied nothing; the retry's real answer did. So every
        # operation reported delivered was applied by the server: nothing lost silently.
        delivered = {
            str((r.operation.v2 or {})["id"]) for r in receipts if r.outcome == Outcome("delivered")
        }
        assert delivered == set(fake.event_ids())


async def test_garbage_instead_of_http_is_retried(fake: FakeCustomerIO, proxy: FaultProxy) -> None:
    proxy.script(ProxyFault("garbage", body=b"NOT HTTP AT ALL\r\n\r\n"))
    async with make_client(proxy.url) as cio:
        receipt = await cio.track("1", "e")
        assert (await receipt.wait(5)).delivered
        assert cio.statistics().retries_by_cause == {"connection_lost": 1}


async def test_a_redirect_to_a_foreign_host_carries_nothing_there(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A real listener on another loopback port stands in for the foreign host: it must never
    # see a connection, let alone our Authorization header.
    async with FakeCustomerIO() as foreign:
        targets = [f"{foreign.url}/api/v2/batch", "http://other.invalid/api/v2/batch"]
        for target in targets:
            fake.add_fault(Fault(status=302, headers={"Location": target}))
            async with CustomerIO(
                SITE_ID, API_KEY, track_url=fake.url, batching=False, retry=NO_RETRY
            ) as direct:
                with pytest.raises(UnsafeRedirectError) as info:
                    await direct.identify("1", a=1)
            assert "refused" in str(info.value)
        # Batched: the same redirect would be refused again, so it is not retried: the
        # operations are dropped at once with their own reason.
        fake.add_fault(
            Fault(status=307, headers={"Location": targets[0]}, times=10_000, match="batch")
        )
        retry = RetryPolicy(
            backoff_base=0.01, backoff_cap=0.02, delivery_timeout=0.3, max_attempts=10**4
        )
        async with make_client(fake.url, retry=retry) as cio:
            outcome = await (await cio.identify("1", a=1)).wait(5)
        assert outcome.status == "dropped"
        assert outcome.reason == "unsafe_redirect"
        assert outcome.message is not None
        assert "UnsafeRedirectError" in outcome.message
        assert foreign.requests == []
    assert len(fake.requests) == 3
    assert all(r.status == 302 or r.status == 307 for r in fake.requests)
    assert fake.operations == []
    assert "Basic " not in caplog.text


async def test_dns_failure_is_a_connect_error_and_sends_nothing() -> None:
    # RFC 2606 reserves .invalid: the name never resolves, so no request leaves the host.
    url = "http://cio-reliability-test.invalid"
    async with CustomerIO(SITE_ID, API_KEY, track_url=url, batching=False, retry=NO_RETRY) as cio:
        with pytest.raises(ConnectError) as info:
            await cio.identify("1", a=1)
    assert info.value.request_sent is False
    retry = RetryPolicy(backoff_base=0.1, backoff_cap=0.2, delivery_timeout=5.0, max_attempts=3)
    async with make_client(url, retry=retry) as bcio:
        outcome = await (await bcio.identify("1", a=1)).wait(5)
        check_invariant(bcio)
    assert outcome.status == "dropped"
    assert outcome.reason == "retries_exhausted"  # three lookups, three ConnectErrors
    assert "ConnectError" in (outcome.message or "")


async def test_the_proxy_passes_traffic_unchanged(fake: FakeCustomerIO, proxy: FaultProxy) -> None:
    """Control: through the proxy in pass mode, the exchange is exactly the direct one."""
    proxy.fault = PASS
    async with make_client(proxy.url, batch=ONE_BATCH) as cio:
        for i in range(10):
            await cio.identify(f"p{i}", n=i)
        await cio.flush(timeout=5)
        stats = cio.statistics()
    assert stats.delivered == 10
    assert stats.retries == 0
    assert proxy.stats.relayed == proxy.stats.requests == len(fake.requests) == 1
