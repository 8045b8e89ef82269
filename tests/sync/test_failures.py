"""Failure paths of the sync facade: a loop that dies, blocking calls from the loop thread,
admission errors, a close that cannot admit everything, the process hooks (fork, atexit)
driven in this process, and the loop thread's pieces on their own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time

import anyio
import pytest

from customerio_async import BatchConfig, ClientStateError, Operation, Receipt
from customerio_async.sync import CustomerIO, SyncReceipt, _facade, _runner
from customerio_async.sync._handoff import HandOff

from .conftest import API_KEY, SITE_ID, ThreadedFake
from .test_ordering_and_backpressure import stalled_client, wait_until


class Boom(BaseException):
    """Not an Exception: it escapes every ``except Exception`` and kills the loop."""


async def explode() -> None:
    raise Boom


def test_an_exception_that_kills_the_loop_fails_waiters_and_later_calls(
    server: ThreadedFake, caplog: pytest.LogCaptureFixture
) -> None:
    cio = CustomerIO(SITE_ID, API_KEY, track_url=server.url, batch=BatchConfig(linger=60))
    handoff = cio._start()
    cio._run(cio._client.aclose, 1.0, timeout=5)  # its sockets, before the loop goes
    with caplog.at_level(logging.ERROR, "customerio_async"), pytest.raises(Boom):
        cio._run(explode, timeout=5)
    wait_until(lambda: not handoff.runner.alive)
    assert "background event loop failed" in caplog.text
    with pytest.raises(ClientStateError):
        cio.track("42", "after-death")
    cio.close(timeout=1)


def test_blocking_on_the_client_from_its_own_loop_thread_is_refused(
    server: ThreadedFake,
) -> None:
    errors: list[str] = []
    pending: list[SyncReceipt] = []
    holder: list[CustomerIO] = []

    async def misuse(op: Operation, handler):  # type: ignore[no-untyped-def]
        if b'"misuse"' in op.data:
            for attempt in (lambda: pending[0].wait(1), holder[0].close):
                try:
                    attempt()
                except ClientStateError as exc:
                    errors.append(str(exc))
        return await handler(op)

    cio = CustomerIO(
        SITE_ID,
        API_KEY,
        track_url=server.url,
        batch=BatchConfig(linger=60),
        operation_middleware=[misuse],
    )
    holder.append(cio)
    pending.append(SyncReceipt(None, cio._start()))  # never admitted: a wait would block
    cio.track("42", "misuse").wait(10)
    cio.close()
    assert len(errors) == 2
    assert all("deadlock" in error for error in errors)


def test_an_admission_error_is_the_operations_outcome_not_the_loops(
    server: ThreadedFake,
) -> None:
    async def picky(op: Operation, handler):  # type: ignore[no-untyped-def]
        if b'"bad"' in op.data:
            raise LookupError("refused by my middleware")
        return await handler(op)

    with CustomerIO(
        SITE_ID,
        API_KEY,
        track_url=server.url,
        batch=BatchConfig(linger=0.01),
        operation_middleware=[picky],
    ) as cio:
        bad = cio.track("42", "bad")
        good = cio.track("42", "good")
        outcome = bad.wait(5)
        assert (outcome.status, outcome.reason) == ("dropped", "admission_error")
        with pytest.raises(LookupError):
            cio.track("42", "bad", wait=True)
        assert good.wait(5).delivered
    assert [op.body["name"] for op in server.operations()] == ["good"]


def test_a_close_that_cannot_admit_everything_refuses_the_rest_and_says_so(
    server: ThreadedFake, caplog: pytest.LogCaptureFixture
) -> None:
    hold = threading.Event()
    cio = stalled_client(server, 0.0, hold)
    handoff = cio._handoff
    assert handoff is not None
    held = cio.track("42", "held")
    wait_until(lambda: handoff._stalled)
    behind = cio.track("42", "behind")
    with caplog.at_level(logging.WARNING, "customerio_async"):
        cio.close(timeout=0.3)
    hold.set()
    assert "were not admitted before the client closed" in caplog.text
    outcome = behind.wait(1)
    assert (outcome.status, outcome.reason) == ("dropped", "client_closed")
    assert held.wait(1).status == "dropped"


def test_other_policies_never_make_the_caller_wait(server: ThreadedFake) -> None:
    hold = threading.Event()
    cio = stalled_client(server, 0.0, hold, overflow="drop_newest")
    handoff = cio._handoff
    assert handoff is not None
    cio.track("42", "held")
    wait_until(lambda: handoff._stalled)
    started = time.monotonic()
    queued = cio.track("42", "not-waiting")
    assert time.monotonic() - started < 0.5
    assert not queued._late
    hold.set()
    assert queued.wait(10).status in ("delivered", "dropped")  # drop_newest decides, later
    cio.close()


def test_the_hooks_a_fork_and_the_exit_run_in_this_process(server: ThreadedFake) -> None:
    cio = CustomerIO(SITE_ID, API_KEY, track_url=server.url, batch=BatchConfig(linger=60))
    parent = cio._start()
    parent_client = cio._client
    cio.track("42", "parent-buffered")
    _facade._after_fork_in_child()  # as os.fork() runs it in a child
    assert cio._handoff is None
    cio.track("42", "child-own")  # a fresh loop and async client on first use
    assert cio._client is not parent_client
    _facade._close_all_at_exit()  # as atexit runs it
    assert cio._handoff is None
    with pytest.raises(ClientStateError):
        cio.track("42", "after-exit")
    assert [op.body["name"] for op in server.operations()] == ["child-own"]
    # This process is really the parent: let the orphaned loop deliver and stop.
    parent.runner.call(parent_client.aclose, 5.0, timeout=10)
    parent.runner.stop(5)
    assert sorted(op.body["name"] for op in server.operations()) == [
        "child-own",
        "parent-buffered",
    ]


# ------------------------------------------------------------------------ the pieces alone


def test_the_resolver_pool_runs_jobs_and_reports_their_errors() -> None:
    pool = _runner._ResolverPool("test", workers=1)
    assert pool.submit(sum, [1, 2]).result(5) == 3
    with pytest.raises(ZeroDivisionError):
        pool.submit(divmod, 1, 0).result(5)
    last: concurrent.futures.Future[None] = pool.submit(time.sleep, 0)
    pool.shutdown()
    assert last.result(5) is None


def test_a_loop_thread_that_cannot_start_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_loop(*args: object, **kwargs: object) -> None:
        raise OSError("no event loop today")

    monkeypatch.setattr(anyio, "run", no_loop)
    runner = _runner.LoopThread("broken")
    with pytest.raises(OSError, match="no event loop"):
        runner.start(5)
    assert "alive=False" in repr(runner)
    with pytest.raises(ClientStateError):
        runner.submit(explode)


def test_a_receipt_taken_back_by_the_consumer_is_not_retracted() -> None:
    runner = _runner.LoopThread("handoff-alone")
    runner.start(5)

    class Admits:
        def _admit_now(self, op: object) -> Receipt:
            return Receipt(op)

        _admit_late = _admit_now

        async def _call(self, op: object, wait: bool) -> Receipt:
            return Receipt(op)

    handoff = HandOff(Admits(), runner, BatchConfig(), wait_timeout=5)
    assert "queued=0" in repr(handoff)
    receipt = SyncReceipt("op", handoff)
    handoff._retract(receipt)  # not queued (already admitted): nothing to take back
    consumer = runner.submit(handoff.consume)
    put = handoff.put("op")
    put._wait_admitted(5)
    assert put.admitted
    assert isinstance(put.receipt, Receipt)
    consumer.cancel()
    runner.stop(5)


def test_waiting_for_admission_is_bounded(server: ThreadedFake) -> None:
    hold = threading.Event()
    cio = stalled_client(server, 0.0, hold)
    handoff = cio._handoff
    assert handoff is not None
    held = cio.track("42", "held")
    with pytest.raises(TimeoutError, match="not admitted"):
        held.wait(0.1)
    hold.set()
    cio.close(timeout=10)


def test_the_receipt_of_a_closed_loop_future_becomes_a_state_error() -> None:
    runner = _runner.LoopThread("short-lived")
    runner.start(5)

    async def forever() -> None:
        await asyncio.sleep(60)

    future = runner.submit(forever)
    runner.stop(5)
    with pytest.raises((ClientStateError, concurrent.futures.CancelledError)):
        future.result(5)
    with pytest.raises(ClientStateError):
        runner.call(forever, timeout=1)
