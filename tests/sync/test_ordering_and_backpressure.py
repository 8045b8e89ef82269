"""Many threads at once: nothing lost, each thread's order per person kept on the wire;
backpressure when the pipeline is full (the caller blocks, then the fallback); a loop
thread that dies leaves nobody blocked."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable

import pytest

from customerio_async import (
    BatchConfig,
    BufferFullError,
    ClientStateError,
    Operation,
    Person,
    RetryPolicy,
)
from customerio_async.sync import CustomerIO
from customerio_async.testing import Fault

from .conftest import API_KEY, SITE_ID, ThreadedFake

THREADS = 8
PEOPLE = 5
PER_THREAD = 300


def test_eight_threads_lose_nothing_and_keep_each_threads_order_per_person(
    server: ThreadedFake,
) -> None:
    # Small batches and several requests in flight: the pipeline's per-person ordering is
    # what keeps the order across batches; the hand-off must not scramble it before that.
    batch = BatchConfig(linger=0.005, max_batch_ops=40, max_concurrent_requests=4)
    cio = CustomerIO(SITE_ID, API_KEY, track_url=server.url, batch=batch)
    start = threading.Barrier(THREADS)

    def sender(thread: int) -> None:
        start.wait()
        for seq in range(PER_THREAD):
            person = f"person-{seq % PEOPLE}"
            if seq % 10 == 0:
                cio.identify(person, last_thread=thread, last_seq=seq)
            cio.track(person, "step", {"thread": thread, "seq": seq})

    threads = [threading.Thread(target=sender, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cio.close(timeout=30)
    total = THREADS * PER_THREAD * 11 // 10
    applied = server.wait_for_operations(total, timeout=30)
    assert len(applied) == total
    seen: dict[tuple[str, int], list[int]] = collections.defaultdict(list)
    for op in applied:
        body = op.body
        if op.action == "event":
            key = (op.identifiers["id"], body["attributes"]["thread"])
            seen[key].append(body["attributes"]["seq"])
        else:
            key = (op.identifiers["id"], body["attributes"]["last_thread"])
            seen[key].append(body["attributes"]["last_seq"])
    assert len(seen) == THREADS * PEOPLE
    for key, seqs in seen.items():
        assert seqs == sorted(seqs), key  # this thread's order for this person, on the wire


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition another thread makes true (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


def stalled_client(
    server: ThreadedFake, stall: float, hold: threading.Event | None = None, **batch: object
) -> CustomerIO:
    """A client whose one-operation buffer is full (its first request stalls ``stall`` s).
    With ``hold``, an admission middleware keeps the operation named "held" waiting in the
    loop thread until ``hold`` is set: the loop is stalled for as long as the test says."""

    async def holding(op: Operation, handler):  # type: ignore[no-untyped-def]
        if hold is not None and b'"held"' in op.data:
            await asyncio.to_thread(hold.wait, 20)
        return await handler(op)

    server.add_fault(Fault(delay=stall, match="/api/v2/batch"))
    config = BatchConfig(linger=0.0, max_buffer_ops=1, **batch)  # type: ignore[arg-type]
    cio = CustomerIO(
        SITE_ID, API_KEY, track_url=server.url, batch=config, operation_middleware=[holding]
    )
    first = cio.track("42", "fills-the-buffer")
    wait_until(lambda: first.admitted)
    return cio


def test_a_full_buffer_blocks_the_caller_up_to_enqueue_timeout_then_drops_counted(
    server: ThreadedFake,
) -> None:
    hold = threading.Event()
    cio = stalled_client(server, 2.5, hold, enqueue_timeout=0.3)
    handoff = cio._handoff
    assert handoff is not None
    second = cio.track("42", "held")
    wait_until(lambda: handoff._stalled)
    started = time.monotonic()
    third = cio.track("42", "caller-waits")  # the caller waits, then goes in late
    waited = time.monotonic() - started
    hold.set()
    assert 0.25 <= waited < 2.0
    assert third._late
    cio.close(timeout=20)
    outcome = third.wait(5)
    assert (outcome.status, outcome.reason) == ("dropped", "buffer_full")  # at once, counted
    assert second.wait(5).reason == "buffer_full"  # it waited its own enqueue_timeout
    assert [op.body["name"] for op in server.operations()] == ["fills-the-buffer"]


def test_a_blocked_caller_proceeds_as_soon_as_the_loop_has_room(server: ThreadedFake) -> None:
    cio = stalled_client(server, 0.5, enqueue_timeout=5.0)
    handoff = cio._handoff
    assert handoff is not None
    second = cio.track("42", "waits-in-the-loop")
    wait_until(lambda: handoff._stalled)
    third = cio.track("42", "caller-waits")  # returns once the stall is over, not late
    assert not third._late
    cio.close(timeout=20)
    assert second.wait(5).delivered
    assert third.wait(5).delivered
    assert [op.body["name"] for op in server.operations()] == [
        "fills-the-buffer",
        "waits-in-the-loop",
        "caller-waits",
    ]


def test_overflow_raise_reports_buffer_full_on_the_receipt(server: ThreadedFake) -> None:
    hold = threading.Event()
    cio = stalled_client(server, 3.0, hold, overflow="raise")
    handoff = cio._handoff
    assert handoff is not None
    second = cio.track("42", "refused")
    with pytest.raises(BufferFullError):
        second._confirm(5)
    outcome = second.wait(5)
    assert (outcome.status, outcome.reason) == ("dropped", "buffer_full")
    # The loop thread's admission of "held" waits in a middleware, so nothing drains the
    # queue meanwhile: it holds max_buffer_ops (1) at most, and the next call is refused.
    cio.track("42", "held")
    wait_until(lambda: handoff._stalled)
    cio.track("42", "queued")
    with pytest.raises(BufferFullError):
        cio.track("42", "refused-at-the-call")
    hold.set()
    cio.close(timeout=10)


def test_the_fallback_raise_raises_in_the_callers_thread(server: ThreadedFake) -> None:
    hold = threading.Event()
    cio = stalled_client(server, 2.0, hold, enqueue_timeout=0.2, overflow_fallback="raise")
    handoff = cio._handoff
    assert handoff is not None
    cio.track("42", "held")
    wait_until(lambda: handoff._stalled)
    with pytest.raises(BufferFullError):
        cio.track("42", "caller-refused")
    hold.set()
    cio.close(timeout=10)


def test_a_consumer_that_stops_leaves_nobody_blocked(server: ThreadedFake) -> None:
    cio = CustomerIO(SITE_ID, API_KEY, track_url=server.url, batch=BatchConfig(linger=60))
    handoff = cio._start()
    assert handoff.consumer is not None
    handoff.consumer.cancel()  # the consumer dies (as on an unexpected BaseException)
    wait_until(lambda: handoff.closing)
    with pytest.raises(ClientStateError):
        cio.track("42", "after-death")
    cio.close(timeout=5)


def test_a_loop_thread_that_dies_leaves_nobody_blocked(server: ThreadedFake) -> None:
    cio = CustomerIO(SITE_ID, API_KEY, track_url=server.url, batch=BatchConfig(linger=60))
    handoff = cio._start()
    cio._run(cio._client.aclose, 1.0, timeout=5)  # its sockets, before the loop goes
    handoff.runner.stop(5)  # the loop thread goes away under the client
    with pytest.raises(ClientStateError):
        cio.track("42", "after-death")
    with pytest.raises(ClientStateError):
        cio.statistics()
    with pytest.raises(ClientStateError):
        cio.flush(timeout=1)
    cio.close(timeout=1)  # bounded, and quiet about the loop being gone


def test_a_caller_appending_while_the_client_closes_is_told(server: ThreadedFake) -> None:
    retry = RetryPolicy(max_attempts=1)
    cio = CustomerIO(
        SITE_ID, API_KEY, track_url=server.url, batch=BatchConfig(linger=0.0), retry=retry
    )
    handoff = cio._start()
    handoff.closing = True  # as close() sets it, racing with this call
    with pytest.raises(ClientStateError):
        handoff.put(Person.event("42", "x"))
    handoff.closing = False
    cio.close()
