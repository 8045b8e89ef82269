"""The sync Pipelines client against the real fake server: every call reaches ``/v1``, bad
input raises in the caller's thread, ``wait=True`` blocks for the outcome, threads keep
their own order per person, and the calls mirror the async client's."""

from __future__ import annotations

import inspect
import threading

import pytest

from customerio_async import (
    BatchConfig,
    ClientStateError,
    OperationRejectedError,
    PipelinesCall,
    ValidationError,
)
from customerio_async import PipelinesClient as AsyncPipelinesClient
from customerio_async.sync import PipelinesClient, SyncReceipt
from customerio_async.testing import Fault, PipelinesMessage

from .conftest import ThreadedFake

FAST = BatchConfig(linger=0.01)


def client(server: ThreadedFake, **options: object) -> PipelinesClient:
    options.setdefault("batch", FAST)
    key = server.fake.pipelines_write_key
    return PipelinesClient(key, server.url, **options)  # type: ignore[arg-type]


def messages(server: ThreadedFake) -> list[PipelinesMessage]:
    async def read() -> list[PipelinesMessage]:
        return list(server.fake.pipelines_messages)

    return server.run(read())


def test_every_call_arrives_and_receipts_resolve(server: ThreadedFake) -> None:
    with client(server) as analytics:
        receipts = [
            analytics.identify("42", {"email": "ada@example.com"}),
            analytics.track("42", "Order Completed", {"total": 42.5}),
            analytics.page("42", "Docs", "Quickstart", {"url": "https://example.com/qs"}),
            analytics.screen("42", name="Feed"),
            analytics.group("42", "acme", {"name": "Acme"}),
            analytics.send({"type": "track", "userId": "43", "event": "Signed Up"}),
            analytics.alias("anon-7", "42"),
        ]
        assert all(isinstance(r, SyncReceipt) for r in receipts)
        assert analytics.flush(timeout=10).pending == 0
        assert [r.wait(5).status for r in receipts] == ["delivered"] * len(receipts)
    got = messages(server)
    assert sorted(m.type for m in got) == sorted(
        ["identify", "track", "page", "screen", "group", "track", "alias"]
    )
    ids = {m.message_id for m in got}
    assert {r.event_id for r in receipts} == ids  # the messageId each receipt names


def test_bad_input_raises_in_the_callers_thread(server: ThreadedFake) -> None:
    with client(server) as analytics:
        with pytest.raises(ValidationError):
            analytics.track("42", "")  # a blank event name
        with pytest.raises(ValidationError, match="wait"):
            analytics.identify("42", wait="yes")  # type: ignore[arg-type]
        assert analytics.flush(timeout=5).pending == 0
    assert messages(server) == []


def test_wait_true_blocks_until_delivered_or_raises(server: ThreadedFake) -> None:
    with client(server) as analytics:
        receipt = analytics.track("42", "Signed Up", wait=True)
        assert receipt.outcome is not None
        assert receipt.outcome.status == "delivered"
        server.add_fault(Fault(status=400, match="/v1/batch", times=1_000))
        with pytest.raises(OperationRejectedError):
            analytics.track("42", "Refused", wait=True)


def test_threads_keep_their_own_order_per_person(server: ThreadedFake) -> None:
    per_thread = 200
    with client(server) as analytics:

        def work(t: int) -> None:
            for i in range(per_thread):
                analytics.track(f"user-{t}", "step", {"n": i})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert analytics.flush(timeout=20).pending == 0
    got = messages(server)
    assert len(got) == 8 * per_thread
    for t in range(8):
        seen = [m.properties["n"] for m in got if m.user_id == f"user-{t}"]
        assert seen == list(range(per_thread))


def test_prebuilt_calls_credentials_and_close(server: ThreadedFake) -> None:
    analytics = client(server)
    analytics.check_credentials()
    call = PipelinesCall.from_dict({"type": "identify", "userId": "9", "traits": {"a": 1}})
    assert analytics.send(call, wait=True).done()
    assert "write" not in repr(analytics)
    assert "pipelines" in repr(analytics).lower()
    analytics.close()
    with pytest.raises(ClientStateError):
        analytics.track("9", "After Close")


def test_the_calls_mirror_the_async_client_minus_async() -> None:
    for name, method in inspect.getmembers(AsyncPipelinesClient, inspect.iscoroutinefunction):
        if name.startswith("_") or name in {"open", "aclose", "flush"}:
            continue
        ours = getattr(PipelinesClient, name)
        assert not inspect.iscoroutinefunction(ours), name
        assert list(inspect.signature(ours).parameters) == list(
            inspect.signature(method).parameters
        ), name
    constructor = inspect.signature(PipelinesClient.__init__).parameters
    assert list(constructor) == list(inspect.signature(AsyncPipelinesClient.__init__).parameters)
