"""The pipeline's parts, each on its own: the buffer budget, key ordering, batch tallies,
the outcome log and the callbacks' deadline. (End-to-end behaviour: test_pipeline.py.)"""

from __future__ import annotations

import asyncio
import logging

import pytest

from customerio_async import BatchConfig, ClientStateError, Outcome, RetryPolicy
from customerio_async._http.accounting import AccountingLayer
from customerio_async._http.gate import LocalGate
from customerio_async._http.messages import HTTPRequest, HTTPResponse
from customerio_async._http.retry import RetryCounters
from customerio_async._identifiers import OrderingKey
from customerio_async._pipeline.batch import DONE, HELD, OPEN, READY, Batch
from customerio_async._pipeline.buffer import Buffer
from customerio_async._pipeline.ledger import Epoch, Ledger, OutcomeLog
from customerio_async._pipeline.pipeline import Pipeline
from customerio_async._pipeline.protocol import SingleRequest
from customerio_async._track.operations import Operation
from customerio_async._track.protocol import track_format


def key(name: str) -> OrderingKey:
    return OrderingKey("person", "id", name)


def op(name: str | None, *more: str, single: bool = False) -> Operation:
    request = SingleRequest("POST", "/api/v1/events", "/api/v1/events") if single else None
    return Operation(
        "event",
        b'{"x":1}',
        key(name) if name else None,
        more_keys=tuple(key(m) for m in more),
        single=request,
    )


async def never(request: HTTPRequest) -> HTTPResponse:  # pragma: no cover - never sent
    await asyncio.Event().wait()
    raise AssertionError


def pipeline(**config: object) -> Pipeline:
    cfg = BatchConfig(linger=60, **config)  # type: ignore[arg-type]
    retry = RetryPolicy()
    return Pipeline(
        never,
        track_format(cfg.max_batch_ops),
        batch=cfg,
        retry=retry,
        gate=LocalGate({}),
        counters=RetryCounters(retry),
        accounting=AccountingLayer(),
    )


# ------------------------------------------------------------------ buffer


async def test_the_buffer_serves_waiters_first_come_first_served() -> None:
    buffer = Buffer(BatchConfig(max_buffer_ops=2, enqueue_timeout=5))
    loop = asyncio.get_running_loop()
    buffer.take(10)
    buffer.take(10)
    assert not buffer.fits(1)
    queued: list[str] = []
    first = asyncio.ensure_future(buffer.wait_for_space(5, loop, lambda: queued.append("a")))
    second = asyncio.ensure_future(buffer.wait_for_space(5, loop, lambda: queued.append("b")))
    await asyncio.sleep(0)
    assert queued == ["a", "b"]
    buffer.release(1, 10)
    assert await first is True
    assert not second.done()  # only one slot was freed
    buffer.release(1, 10)
    assert await second is True
    assert (buffer.ops, buffer.bytes) == (2, 10)


async def test_a_cancelled_waiter_gives_its_reserved_space_back() -> None:
    buffer = Buffer(BatchConfig(max_buffer_ops=1, enqueue_timeout=5))
    loop = asyncio.get_running_loop()
    buffer.take(1)
    waiter = asyncio.ensure_future(buffer.wait_for_space(1, loop, lambda: None))
    await asyncio.sleep(0)
    buffer.release(1, 1)  # granted: the space is reserved for the waiter
    waiter.cancel()  # ...which is cancelled before it resumes
    try:
        granted = await waiter
    except asyncio.CancelledError:
        granted = False
    # Either the cancellation won (the reservation was given back) or the grant did (asyncio's
    # wait_for may return a result that was already there): never negative, never leaked.
    assert (buffer.ops, buffer.bytes) == ((1, 1) if granted else (0, 0))


async def test_a_waiter_times_out_and_closing_refuses_the_rest() -> None:
    buffer = Buffer(BatchConfig(max_buffer_ops=1, enqueue_timeout=0.01))
    loop = asyncio.get_running_loop()
    buffer.take(1)
    assert await buffer.wait_for_space(1, loop, lambda: None) is False
    slow = Buffer(BatchConfig(max_buffer_ops=1, enqueue_timeout=5))
    slow.take(1)
    waiter = asyncio.ensure_future(slow.wait_for_space(1, loop, lambda: None))
    await asyncio.sleep(0)
    slow.close()
    with pytest.raises(ClientStateError, match="closing"):
        await waiter


# ------------------------------------------------------------------ ordering


async def test_unrelated_operations_share_the_open_batch() -> None:
    p = pipeline()
    p.start()
    receipts = [p.try_admit(op(name)) for name in ("a", "b", "c")]
    batches = {r._batch for r in receipts if r is not None}
    assert len(batches) == 1
    (batch,) = batches
    assert batch is not None
    assert batch.state is OPEN
    assert batch.count == 3
    p._abort()


async def test_an_operation_behind_a_sealed_batch_of_its_key_is_held() -> None:
    p = pipeline(max_batch_ops=2)
    p.start()
    first = p.try_admit(op("a"))
    p.try_admit(op("b"))  # the batch is full: sealed and queued
    held = p.try_admit(op("a"))  # a's last operation is in a sealed batch: wait for it
    free = p.try_admit(op("c"))  # c is free: a new open batch, not behind anything
    assert first is not None
    assert held is not None
    assert free is not None
    assert first._batch is not None
    assert first._batch.state is READY
    assert held._batch is not None
    assert held._batch.state is HELD
    assert held._batch.deps == 1
    assert free._batch is not None
    assert free._batch.state is OPEN
    assert p.try_admit(op("a"))._batch is held._batch  # type: ignore[union-attr]
    p._abort()


async def test_a_merge_waits_for_both_people() -> None:
    p = pipeline(max_batch_ops=1)
    p.start()
    p.try_admit(op("a"))  # each batch holds one operation: sealed at once
    p.try_admit(op("b"))
    merge = p.try_admit(op("a", "b"))
    assert merge is not None
    assert merge._batch is not None
    assert merge._batch.deps == 2
    after = p.try_admit(op("b"))  # b's next waits for the merge
    assert after is not None
    assert after._batch is not None
    assert after._batch.waits_for == [merge._batch]
    p._abort()


async def test_a_single_request_with_nothing_before_it_is_released_at_once() -> None:
    p = pipeline()
    p.start()
    receipt = p.try_admit(op(None, single=True))
    assert receipt is not None
    assert receipt._batch is not None
    assert receipt._batch.state is READY
    assert receipt._batch.single is not None
    p._abort()


async def test_the_key_map_is_forgotten_when_nothing_is_undecided() -> None:
    p = pipeline()
    p.start()
    p.try_admit(op("a"))
    assert p._owner
    p._abort()
    assert p._owner == {}


async def test_admission_from_another_loop_is_refused() -> None:
    p = pipeline()
    p.start()
    p.loop = asyncio.new_event_loop()  # as if opened in another loop
    try:
        with pytest.raises(ClientStateError, match="another event loop"):
            p.try_admit(op("a"))
    finally:
        p.loop.close()


# ------------------------------------------------------------------ tallies and the log


def test_a_batch_tally_covers_every_operation_once() -> None:
    batch = Batch(None, READY, 0, 0.0, Epoch())
    batch.count = 5
    batch.evicted = 1  # counted when evicted
    batch.outcome = Outcome("delivered")
    rejected = Outcome("rejected", "invalid")
    batch.exceptions = {0: Outcome("dropped", "buffer_full"), 3: rejected}
    assert batch.tally() == [(Outcome("delivered"), 3), (rejected, 1)]
    batch.state = DONE


def test_the_outcome_log_names_the_first_then_summarises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = OutcomeLog(first=2, interval=30.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="customerio_async")
    bad = Outcome("rejected", "invalid", "value too long", 207, "attributes.plan")
    for _ in range(5):
        log.record(bad, 1, "track")
    assert len(caplog.records) == 2
    assert "attributes.plan" in caplog.text
    assert "HTTP 207" in caplog.text
    assert "value too long" not in caplog.text  # the API's message may quote a value
    now[0] = 31.0
    log.record(Outcome("dropped", "buffer_full"), 4, "track")
    assert "since the last summary" in caplog.records[-1].getMessage()
    assert "3 rejected (invalid)" in caplog.records[-1].getMessage()


async def test_callbacks_never_extend_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()

    async def slow(receipt: object) -> None:
        started.set()
        await asyncio.sleep(60)

    ledger = Ledger("track", slow, None, asyncio.get_running_loop().time)
    ledger._callbacks([object()])  # type: ignore[list-item]
    await started.wait()
    with caplog.at_level(logging.WARNING, logger="customerio_async"):
        await ledger.finish_callbacks(0.01)
    assert "cancelled 1 outcome callback" in caplog.text
    await asyncio.sleep(0)
    assert all(t.done() for t in ledger.callback_tasks)


async def test_without_ordering_every_operation_joins_the_open_batch() -> None:
    p = pipeline(max_batch_ops=1, ordering="none")
    p.start()
    first = p.try_admit(op("a"))
    second = p.try_admit(op("a"))  # would be held behind the first with ordering
    assert first is not None
    assert second is not None
    assert second._batch is not None
    assert second._batch.state is READY
    assert second._batch.deps == 0
    merge = p.try_admit(op("a", "b"))
    assert merge is not None
    assert merge._batch is not None
    assert merge._batch.deps == 0
    p._abort()
