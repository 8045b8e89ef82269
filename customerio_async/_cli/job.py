"""``customerio-async import``: a resumable bulk backfill through the batching pipeline.

Every input line becomes one SDK operation (:mod:`.operations`) and is admitted with
``cio.send()`` under the client-side rate limit. The job is a few collaborating parts:

* :class:`~.feed.Feeder` reads the file in a worker thread and admits each line within a
  bounded window;
* :class:`~.settle.Settler` (the client's ``on_outcome``) records each line's outcome in the
  counts, the :class:`~.checkpoint.LineTracker`, the rejects file and the progress bar;
* :class:`~.stopping.Stopper` turns Ctrl-C/SIGTERM into a bounded stop (a second one stops at
  once); :class:`ImportJob` ties them together, writes the checkpoint (every second, and at
  the end, fsynced in a worker thread) and reports (:mod:`.summary`).

Resumability rests on deterministic event ids, the checkpoint (a line is marked done only
once Customer.io accepted or refused it) and the rejects file; see the README.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import anyio.to_thread

from customerio_async import (
    BatchConfig,
    CustomerIO,
    CustomerIOError,
    PipelinesClient,
    RateLimit,
    RegionInfo,
    RetryPolicy,
)

from .checkpoint import Checkpoint, LineTracker, write_atomically
from .errors import UsageError, failure
from .feed import PENDING_BYTES, Client, Feeder, FeedOptions
from .progress import Console
from .readers import Format, inspect
from .rejects import RejectsFile
from .settle import Counts, Settler
from .stopping import Stopper, first_of
from .summary import RunResult, report

__all__ = ["CHECKPOINT_EVERY", "PROGRESS_EVERY", "ImportJob", "ImportOptions", "UsageError"]

CHECKPOINT_EVERY = 1.0  # seconds between periodic checkpoint writes
PROGRESS_EVERY = 0.2  # seconds between progress redraws
PLAIN_EVERY = 10.0  # seconds between plain progress lines (stderr not a terminal)
# The last, partial batch of the file waits this long for company; short, because the
# feeder admits lines a chunk at a time, so full batches form without lingering.
LINGER = 0.05
SDK_LOGGER = "customerio_async"


@dataclass
class ImportOptions:
    """Everything ``customerio-async import`` was asked to do."""

    path: Path
    format: Format
    checkpoint: Path
    rejects: Path
    site_id: str | None = None
    api_key: str | None = None
    region: str = "us"
    track_url: str | None = None
    api: str = "track"  # or "pipelines": Segment-spec lines to the Data Pipelines API
    write_key: str | None = None
    pipelines_url: str | None = None
    dry_run: bool = False
    rate: float = 100.0  # requests per second; 0: no limit
    batch_size: int = 2000
    window: int = 20_000  # undecided lines before reading pauses
    stop_timeout: float = 5.0  # seconds for requests on the wire to finish after a stop
    progress: bool | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class _ToConsole(logging.Handler):
    """The SDK's warnings as one line each, above the progress bar."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.note(f"customerio-async: {record.getMessage()}")


class ImportJob:
    """One run of ``customerio-async import``."""

    def __init__(
        self, options: ImportOptions, *, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.options = options
        self.console = Console(out, err)
        self.console.use_progress(options.progress)
        self.tracker = LineTracker()
        self.rejects = RejectsFile(options.rejects)
        self.settler = Settler(self.tracker, self.rejects, self.console)
        self.stopper = Stopper(options.stop_timeout, self.console.note)
        self._started = time.monotonic()
        self._log = _ToConsole(self.console)

    @property
    def counts(self) -> Counts:
        """What happened to the lines so far."""
        return self.settler.counts

    @property
    def stopped_by(self) -> str | None:
        """``SIGINT``/``SIGTERM`` (or another reason) once a stop was requested."""
        return self.stopper.reason

    def request_stop(self, why: str = "interrupted") -> None:
        """Stop reading and finish what is on the wire (up to ``stop_timeout``), then write
        the checkpoint; a second request stops at once. Harmless after the run ended."""
        self.stopper.request(why)

    # ------------------------------------------------------------------ setup

    def _client(self) -> Client:
        opts = self.options
        batch = BatchConfig(
            max_batch_ops=opts.batch_size,
            linger=LINGER,
            max_buffer_ops=opts.window * 2,
            max_buffer_bytes=2 * PENDING_BYTES,
            overflow="block",
            enqueue_timeout=opts.retry.delivery_timeout,
            overflow_fallback="raise",
        )
        rate = None
        if opts.rate > 0:  # --rate 0 means no client-side limit
            rate = RateLimit(requests_per_second=opts.rate, burst=max(1, min(20, int(opts.rate))))
        if opts.api == "pipelines":
            return PipelinesClient(
                opts.write_key,
                opts.pipelines_url,
                region=opts.region,
                batch=batch,
                retry=opts.retry,
                rate_limit=rate,
                on_outcome=self.settler.on_outcome,
                http_middleware=[self.stopper.gate],
            )
        return CustomerIO(
            opts.site_id,
            opts.api_key,
            region=opts.region,
            track_url=opts.track_url,
            batch=batch,
            retry=opts.retry,
            rate_limit=rate,
            on_outcome=self.settler.on_outcome,
            http_middleware=[self.stopper.gate],
        )

    async def _load(self) -> tuple[str, int, Checkpoint | None]:
        """Identity, line count and checkpoint of the file (read in a worker thread)."""
        opts = self.options
        identity, total = await anyio.to_thread.run_sync(inspect, opts.path)
        ckpt = await anyio.to_thread.run_sync(
            Checkpoint.load, opts.checkpoint, identity, opts.format
        )
        if ckpt is not None:
            self.console.note(
                f"resuming from {opts.checkpoint}: line {ckpt.line:,} and earlier are done"
                + (f", {len(ckpt.retry):,} dropped lines will be retried" if ckpt.retry else "")
            )
        return identity, total, ckpt

    async def _connect(self, cio: Client) -> RegionInfo | str | None:
        """Open the client and check the credentials; ``None`` when stopped meanwhile."""
        await cio.open()
        try:
            # Fail fast on bad credentials or an unreachable URL, before reading anything.
            info = await first_of(_check(cio), self.stopper.stopped)
        except CustomerIOError as exc:
            await cio.aclose(0)
            raise failure(exc, cio.origin) from exc
        except BaseException:  # cancelled (the caller gave up): close without a drain
            await cio.aclose(0)
            raise
        if info is not None:
            rate = self.options.rate
            where = (
                info
                if isinstance(info, str)
                else f"workspace {info.environment_id} ({info.region.value})"
            )
            self.console.note(
                f"importing {self.options.path} into {where}, "
                + (f"at up to {rate:g} requests/s" if rate > 0 else "no rate limit")
            )
        return info

    # ------------------------------------------------------------------ the run

    async def run(self) -> int:
        """Import the file; returns the exit status (see :mod:`.summary`)."""
        with self._sdk_warnings():
            identity, total, ckpt = await self._load()
            state = ckpt or Checkpoint(identity=identity, format=self.options.format)
            cio = self._client()
            if await self._connect(cio) is None:  # stopped during the credentials check
                await cio.aclose(0)
                return self._report(ckpt, complete=False)
            try:
                await self.rejects.open(ckpt)
            except BaseException:  # e.g. an unwritable directory: no client left open
                await cio.aclose(0)
                raise
            head_start = ckpt.settled_lines(total) if ckpt is not None else 0
            self.console.progress.start(total, head_start)
            complete = await self._feed_all(cio, state, identity, ckpt)
        return self._report(ckpt, complete=complete)

    async def _feed_all(
        self, cio: Client, state: Checkpoint, identity: str, ckpt: Checkpoint | None
    ) -> bool:
        opts = self.options
        feed = FeedOptions(opts.path, opts.format, identity, opts.window, opts.api)
        feeder = Feeder.for_file(feed, self.settler, self.stopper, ckpt)
        ticker = asyncio.ensure_future(self._tick(state))
        complete = False
        try:
            complete = await feeder.run(cio)
            if complete:
                await feeder.wait_settled()
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await self._stop_client(cio)
            await self._close_run(state, complete)
        return complete

    async def _stop_client(self, cio: Client) -> None:
        """Close the client without a drain: whatever is undecided is not settled."""
        if self.stopper.reason is not None:
            await self.stopper.settle_in_flight()
        self.settler.stopping = True
        self._log.setLevel(logging.ERROR)  # the shutdown's drop count is ours to report
        await cio.aclose(0)
        self.settler.abandon_pending()

    async def _close_run(self, state: Checkpoint, complete: bool) -> None:
        finished = complete and self.stopper.reason is None and self.tracker.unsettled == 0
        self.settler.show_counts()
        self.console.progress.close(finished=finished)
        await self.rejects.close()
        await self._write_checkpoint(state, complete=finished)

    async def _write_checkpoint(self, state: Checkpoint, *, complete: bool) -> None:
        # The rejects file first: a line the checkpoint calls done must have its entry.
        await self.rejects.sync()
        data = self.tracker.snapshot(state, complete=complete)
        await anyio.to_thread.run_sync(write_atomically, self.options.checkpoint, data)

    async def _tick(self, state: Checkpoint) -> None:
        """Redraw the progress and write the checkpoint periodically."""
        last_checkpoint = time.monotonic()
        progress = self.console.progress
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            self.settler.show_counts()
            progress.tick(plain_every=PLAIN_EVERY)
            if time.monotonic() - last_checkpoint >= CHECKPOINT_EVERY:
                await self._write_checkpoint(state, complete=False)
                last_checkpoint = time.monotonic()

    @contextmanager
    def _sdk_warnings(self) -> Iterator[None]:
        logger = logging.getLogger(SDK_LOGGER)
        logger.addHandler(self._log)
        try:
            yield
        finally:
            logger.removeHandler(self._log)

    def _report(self, ckpt: Checkpoint | None, *, complete: bool) -> int:
        opts = self.options
        result = RunResult(
            path=opts.path,
            checkpoint=opts.checkpoint,
            rejects=opts.rejects,
            counts=self.counts,
            elapsed=time.monotonic() - self._started,
            watermark=self.tracker.watermark,
            earlier_rejects=self.rejects.earlier,
            complete=complete,
            stopped_by=self.stopper.reason,
            nothing_left_before=ckpt is not None and ckpt.nothing_left,
        )
        return report(self.console, result)


async def _check(cio: Client) -> RegionInfo | str:
    """The credentials check: the Track region lookup, or the Pipelines write-key check
    (an empty strict-mode batch); its description of where the lines go."""
    if isinstance(cio, PipelinesClient):
        await cio.check_credentials()
        return f"the Data Pipelines source ({cio.region.value})"
    return await cio.get_region()
