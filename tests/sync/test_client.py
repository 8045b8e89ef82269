"""The sync facade against the real fake server: calls, receipts, wait=True, the admission
path (de-duplication, middleware) in the loop thread, direct requests, lifecycle."""

from __future__ import annotations

import threading
import time

import pytest

from customerio_async import (
    AuthenticationError,
    BatchConfig,
    ClientStateError,
    DedupConfig,
    Operation,
    OperationRejectedError,
    Person,
    Receipt,
    RetryPolicy,
    ValidationError,
)
from customerio_async.sync import CustomerIO, SyncReceipt
from customerio_async.testing import Fault

from .conftest import API_KEY, SITE_ID, ThreadedFake

FAST = BatchConfig(linger=0.01)
NO_RETRY = RetryPolicy(max_attempts=1, direct_attempts=1)


def client(server: ThreadedFake, **options: object) -> CustomerIO:
    options.setdefault("batch", FAST)
    return CustomerIO(SITE_ID, API_KEY, track_url=server.url, **options)  # type: ignore[arg-type]


def test_calls_return_receipts_at_once_and_every_operation_arrives(server: ThreadedFake) -> None:
    with client(server) as cio:
        receipts = [
            cio.identify("42", email="ada@example.com", plan="pro"),
            cio.track("42", "purchased", {"amount": 42}),
            cio.pageview("42", "https://example.com/pricing", referrer="ad"),
            cio.screen("42", "Settings"),
            cio.add_device("42", "token-1", "ios"),
            cio.delete_device("42", "token-1"),
            cio.track_anonymous("visitor-7", "viewed_pricing"),
            cio.send(Person.identify("43", {"plan": "free"})),
            cio.backfill("43", "signed_up", 1_700_000_000),
            cio.suppress("44"),
            cio.unsuppress("44"),
            cio.merge_customers("id", "42", "id", "43"),
            cio.add_to_segment(7, ["42"]),
            cio.remove_from_segment(7, ["42"]),
            cio.delete("45"),
        ]
        assert all(isinstance(r, SyncReceipt) for r in receipts)
        assert cio.flush(timeout=10).pending == 0
        assert [r.wait(5).status for r in receipts] == ["delivered"] * len(receipts)
        assert all(r.done() and r.admitted and isinstance(r.receipt, Receipt) for r in receipts)
    applied = server.operations()
    assert len(applied) == len(receipts)
    identify = next(op for op in applied if op.identifiers == {"id": "42"})
    assert identify.action == "identify"
    assert identify.body["attributes"] == {"email": "ada@example.com", "plan": "pro"}
    assert receipts[1].event_id is not None
    assert receipts[0].event_id is None
    assert receipts[1].action == "event"
    assert "delivered" in repr(receipts[1])


def test_forms_unsubscribes_and_metrics_reach_their_own_paths(server: ThreadedFake) -> None:
    with client(server) as cio:
        receipts = [
            cio.submit_form("newsletter", {"email": "ada@example.com"}),
            cio.unsubscribe("d-1"),
            cio.report_metric("d-2", "clicked", href="https://example.com/sale"),
            cio.report_push_metric("d-3", "token-1", "opened"),
        ]
        assert [r.wait(5).status for r in receipts] == ["delivered"] * 4

    async def requests() -> list[tuple[str, str, bool]]:
        return [(r.path, str(r.status), "authorization" in r.headers) for r in server.fake.requests]

    assert sorted(server.run(requests())) == [
        ("/api/v1/forms/newsletter/submit", "204", True),
        ("/api/v1/metrics", "200", False),
        ("/api/v1/push/events", "200", False),
        ("/unsubscribe/d-1", "200", False),
    ]


def test_bad_input_raises_in_the_callers_thread_before_anything_is_queued(
    server: ThreadedFake,
) -> None:
    with client(server) as cio:
        with pytest.raises(ValidationError) as name:
            cio.track("42", "   ")
        assert name.value.field == "name"
        with pytest.raises(ValidationError):
            cio.identify("42", wait="yes")
        with pytest.raises(ValidationError):
            cio.send({"not": "an operation"})  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            cio.backfill("42", "old", None)
        assert cio.statistics().accepted == 0
    assert server.operations() == []


def test_wait_true_blocks_until_delivered_or_raises(server: ThreadedFake) -> None:
    with client(server, batch=BatchConfig(linger=60), retry=NO_RETRY) as cio:
        started = time.monotonic()
        receipt = cio.track("42", "purchased", wait=True)  # a waiter sends its batch now
        assert time.monotonic() - started < 30
        assert receipt.outcome is not None
        assert receipt.outcome.delivered
        server.add_fault(Fault(status=400, match="/api/v2/batch"))
        with pytest.raises(OperationRejectedError) as rejected:
            cio.identify("42", plan="x", wait=True)
        assert rejected.value.outcome.status == "rejected"


def test_wait_is_bounded_by_its_timeout(server: ThreadedFake) -> None:
    with client(server) as cio:
        server.add_fault(Fault(delay=3.0, match="/api/v2/batch"))
        receipt = cio.track("42", "slow")
        with pytest.raises(TimeoutError):
            receipt.wait(timeout=0.2)
        assert receipt.wait(timeout=20).delivered


def test_dedup_and_middleware_run_in_the_loop_thread_in_call_order(server: ThreadedFake) -> None:
    seen: list[tuple[str, str]] = []

    async def record(op: Operation, handler):  # type: ignore[no-untyped-def]
        seen.append((op.action, threading.current_thread().name))
        return await handler(op)

    cio = client(server, dedup=DedupConfig(), operation_middleware=[record])
    first = cio.identify("42", plan="pro")
    second = cio.identify("42", plan="pro")  # identical while the first is pending
    third = cio.track("42", "after")
    cio.close()
    assert second.wait(5).status == "deduplicated"
    assert first.wait(5).delivered
    assert third.wait(5).delivered
    assert [action for action, _ in seen] == ["identify", "event"]  # dedup skipped one
    assert {name for _, name in seen} == {"customerio-async-sync"}
    assert [op.action for op in server.operations()] == ["identify", "event"]


def test_direct_mode_blocks_per_call_and_raises_api_errors(server: ThreadedFake) -> None:
    with client(server, batching=False, retry=NO_RETRY) as cio:
        assert cio.batching is False
        receipt = cio.identify("42", plan="pro")
        assert receipt.outcome is not None
        assert receipt.outcome.delivered
        server.add_fault(Fault(status=400))
        with pytest.raises(Exception, match="400"):
            cio.track("42", "refused")
    assert [op.action for op in server.operations()] == ["identify"]


def test_direct_requests_batch_region_and_credentials(server: ThreadedFake) -> None:
    with client(server) as cio:
        assert cio.check_credentials().region.value == "us"
        assert cio.get_region().region == cio.region
        result = cio.batch([Person.identify("42", {"plan": "pro"})])
        assert result.status == 200
        assert cio.origin == server.url
        assert "fake-key" not in repr(cio)
        assert "fake-site" not in repr(cio)


def test_wrong_credentials_fail_open_in_the_caller_and_a_later_call_retries(
    server: ThreadedFake,
) -> None:
    cio = CustomerIO(SITE_ID, "wrong", track_url=server.url, verify_credentials=True)
    with pytest.raises(AuthenticationError):
        cio.open()
    with pytest.raises(AuthenticationError):  # a fresh async client, the same answer
        cio.track("42", "x")
    cio.close()
    with pytest.raises(ClientStateError):
        cio.track("42", "x")


def test_close_is_idempotent_and_later_calls_are_refused(server: ThreadedFake) -> None:
    cio = client(server, batch=BatchConfig(linger=60))
    receipt = cio.track("42", "buffered")
    cio.close(timeout=10)
    cio.close()
    assert receipt.outcome is not None
    assert receipt.outcome.delivered
    for call in (lambda: cio.track("42", "late"), cio.open, cio.flush):
        with pytest.raises(ClientStateError):
            call()
    final = cio.statistics()
    assert (final.accepted, final.delivered, final.state) == (1, 1, "closed")
    assert [op.action for op in server.operations()] == ["event"]


def test_a_client_never_used_closes_without_starting_a_thread(server: ThreadedFake) -> None:
    before = threading.active_count()
    cio = client(server)
    cio.close()
    assert threading.active_count() == before
    assert "closed" in repr(cio)


def test_statistics_are_a_snapshot_from_the_loop_thread(server: ThreadedFake) -> None:
    with client(server) as cio:
        for i in range(50):
            cio.track(f"user-{i % 5}", "purchased", {"i": i})
        cio.flush(timeout=10)
        stats = cio.statistics()
    assert stats.accepted == stats.delivered == 50


def test_a_blocking_call_from_the_loop_thread_is_refused_not_deadlocked(
    server: ThreadedFake,
) -> None:
    errors: list[BaseException] = []
    holder: list[CustomerIO] = []

    async def nested(op: Operation, handler):  # type: ignore[no-untyped-def]
        try:
            holder[0].flush(timeout=1)
        except ClientStateError as exc:
            errors.append(exc)
        return await handler(op)

    cio = client(server, operation_middleware=[nested])
    holder.append(cio)
    receipt = cio.track("42", "x")
    assert receipt.wait(10).delivered
    cio.close()
    assert len(errors) == 1
    assert "deadlock" in str(errors[0])
