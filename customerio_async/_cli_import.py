"""``customerio-async import``: bulk backfill from JSONL or CSV through the batching pipeline.

Every input line becomes one SDK operation (``identify``, ``track`` with a historical
timestamp, ``add_device``), built by the same code as ``cio.identify()``/``cio.track()``/
``cio.add_device()`` (so a bad line fails with the SDK's own :class:`ValidationError` message)
and sent with ``cio.send()`` through the batcher, under the client-side rate limit.

Resumability rests on three pieces:

* **Deterministic event ids.** An event line without ``event_id`` gets a ULID derived from the
  file's identity (SHA-256 of its first 64 KiB), the line number and the line's bytes, with the
  event timestamp as the ULID's time part. A re-run after a crash resends the *same* ids, so
  Customer.io discards events that did arrive the first time.
* **A checkpoint** (``FILE.checkpoint``, written atomically every second and at the end): the
  highest line ``N`` such that every line ``<= N`` has reached a terminal outcome (outcomes
  arrive in order per person, not globally, so this is the lowest unfinished line minus one),
  the lines above ``N`` that are already settled, and the lines that were *dropped* (the SDK
  gave up: timeouts, network, an interrupted drain) and must be sent again. A re-run skips
  every settled line and retries the dropped ones.
* **A rejects file** (``FILE.rejects.jsonl``): one JSON object per failed line with the line
  number, the stage (``parse``, ``validation``, ``api``, ``dropped``), the reason and message,
  and the record, so it can be fixed and re-imported. Console output never shows payload
  values: line numbers, SDK messages (which name fields and limits, never values) and counts.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import csv
import datetime as _dt
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TextIO

from ._common.wire import to_timestamp
from ._config import BatchConfig, RateLimit, RetryPolicy
from ._exceptions import ValidationError
from ._identifiers import person_ref
from ._pipeline.receipt import Receipt
from ._track import calls as ops
from ._track.client import CustomerIO
from ._track.operations import Operation

try:  # orjson is a runtime dependency; the stdlib is the fallback, as in _wire
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - orjson is always installed with the package

    def _loads(data: bytes) -> Any:
        return json.loads(data)


__all__ = [
    "Checkpoint",
    "ImportJob",
    "ImportOptions",
    "LineError",
    "LineTracker",
    "UsageError",
    "build_operation",
    "derive_event_id",
    "file_identity",
]

Format = Literal["jsonl", "csv"]
IDENTITY_BYTES = 64 * 1024
CHECKPOINT_VERSION = 1
CHECKPOINT_EVERY = 1.0  # seconds between periodic checkpoint writes
PROGRESS_EVERY = 0.2  # seconds between progress-bar redraws
PENDING_BYTES = 32 * 1024 * 1024  # admitted, undecided operation bytes before reading pauses
SHOWN_ERRORS = 10  # validation errors printed to the console (all go to the rejects file)

_FIELDS: Mapping[str, frozenset[str]] = {
    "identify": frozenset({"type", "id", "attributes"}),
    "event": frozenset({"type", "id", "name", "data", "timestamp", "event_id"}),
    "device": frozenset({"type", "id", "device_id", "platform", "last_used", "attributes"}),
}
_CSV_SCALARS = frozenset().union(*_FIELDS.values()) - {"attributes", "data"}
_CSV_PREFIXES = ("attributes.", "data.")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class LineError(ValueError):
    """A line that cannot become an operation (its message never contains values)."""


class UsageError(Exception):
    """Bad input or configuration for the whole run (exit status 2)."""


# ----------------------------------------------------------------------------- identity, ids


def file_identity(path: Path) -> str:
    """SHA-256 (hex) of the file's first 64 KiB: stable across renames and appends."""
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(IDENTITY_BYTES)).hexdigest()


def derive_event_id(identity: str, line: int, raw: bytes, timestamp: int | None) -> str:
    """A deterministic ULID for an event line without ``event_id``.

    The 80 "random" bits are the first 10 bytes of SHA-256(identity, line number, line bytes);
    the 48-bit time part is the event timestamp in milliseconds (0 without one). The result
    is a valid ULID (26 Crockford base32 characters, the first one 0-7), identical on every
    run over the same file, so Customer.io de-duplicates re-sent events.
    """
    digest = hashlib.sha256(
        identity.encode() + b"\x00" + line.to_bytes(8, "big") + b"\x00" + raw
    ).digest()
    value = ((timestamp or 0) * 1000) << 80 | int.from_bytes(digest[:10], "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


# ----------------------------------------------------------------------------- lines


@dataclass(slots=True)
class Line:
    """One input record: its (last physical) line number, its bytes, and what it parsed to."""

    number: int
    raw: bytes
    record: dict[str, Any] | None = None
    error: str | None = None

    @property
    def blank(self) -> bool:
        return self.record is None and self.error is None


def detect_format(path: Path, given: str | None) -> Format:
    """``--format`` when given, else ``csv`` for ``*.csv`` files and ``jsonl`` otherwise."""
    if given is not None:
        return "csv" if given == "csv" else "jsonl"
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def iter_jsonl(fh: IO[bytes]) -> Iterator[Line]:
    """Yield each line of a JSONL stream (blank lines too, so numbering stays physical)."""
    for number, data in enumerate(fh, 1):
        raw = data.rstrip(b"\r\n")
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
            raw = raw[3:]
        if not raw.strip():
            yield Line(number, raw)
            continue
        try:
            record = _loads(raw)
        except ValueError as exc:  # message: position only, never the text
            yield Line(number, raw, error=f"not valid JSON: {_json_error(exc)}")
            continue
        if not isinstance(record, dict):
            yield Line(number, raw, error="each line must be a JSON object")
            continue
        yield Line(number, raw, record)


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):  # orjson's error is a subclass
        return f"{exc.msg} at column {exc.colno}"
    return "cannot decode"  # pragma: no cover - both parsers raise JSONDecodeError


def csv_columns(header: list[str]) -> list[str]:
    """Validate a CSV header row.

    Raises:
        UsageError: Unknown or duplicate columns, or no ``type``/``id`` column.
    """
    columns = [name.strip() for name in header]
    for name in columns:
        if name not in _CSV_SCALARS and not (
            name.startswith(_CSV_PREFIXES) and name.partition(".")[2]
        ):
            raise UsageError(
                f"unknown CSV column {name!r}: use {', '.join(sorted(_CSV_SCALARS))}, "
                "attributes.<name> or data.<name>"
            )
    if len(set(columns)) != len(columns):
        raise UsageError("the CSV header names a column twice")
    if "type" not in columns or "id" not in columns:
        raise UsageError("the CSV header needs a 'type' and an 'id' column")
    return columns


def iter_csv(fh: TextIO) -> Iterator[Line]:
    """Yield each CSV record after the header; empty cells are left out of the record."""
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UsageError(f"cannot read the CSV header: {exc}") from None
    columns = csv_columns(header)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Line(reader.line_num, b"", error=f"malformed CSV: {exc}")
            continue
        raw = "\x1f".join(row).encode()
        if not any(cell.strip() for cell in row):
            yield Line(reader.line_num, raw)
            continue
        if len(row) > len(columns):
            yield Line(
                reader.line_num,
                raw,
                error=f"the row has {len(row)} cells but the header has {len(columns)}",
            )
            continue
        record: dict[str, Any] = {}
        for name, cell in zip(columns, row, strict=False):
            if cell == "":
                continue
            prefix, _, key = name.partition(".")
            if key:
                record.setdefault(prefix, {})[key] = cell
            else:
                record[name] = cell
        yield Line(reader.line_num, raw, record)


def count_lines(path: Path) -> int:
    """Physical lines in the file (for the progress bar's percentage and ETA)."""
    lines = 0
    last = b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


# ----------------------------------------------------------------------------- operations


def _timestamp(value: Any) -> int | None:
    """Unix seconds from seconds, a digit string or an ISO 8601 date-time (UTC if naive)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and not value.strip().isdigit():
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise LineError("timestamp must be Unix seconds or an ISO 8601 date-time") from None
        return to_timestamp(parsed)
    return to_timestamp(value)


def _mapping(record: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LineError(f"{key} must be an object")
    return value


def build_operation(line: Line, identity: str) -> Operation:
    """Turn a parsed line into a validated, serialised operation.

    Raises:
        LineError: Unknown type or fields, missing required fields.
        ValidationError: The SDK refused the values (its own message).
    """
    record = line.record
    assert record is not None
    kind = record.get("type")
    allowed = _FIELDS.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise LineError("type must be 'identify', 'event' or 'device'")
    unknown = sorted(set(record) - allowed)
    if unknown:
        hint = ' (attributes go inside "attributes")' if kind != "event" else ""
        raise LineError(
            f"unknown field{'s' if len(unknown) > 1 else ''} for {kind}: "
            + ", ".join(repr(k)[:60] for k in unknown)
            + hint
        )
    if "id" not in record:
        raise LineError("id is required")
    person = record["id"]
    person_ref(person, "id")  # the SDK's check, reported under this format's field name
    op: Operation
    if kind == "identify":
        op = ops.identify(person, _mapping(record, "attributes"))
    elif kind == "event":
        if "name" not in record:
            raise LineError("name is required for events")
        timestamp = _timestamp(record.get("timestamp"))
        event_id = record.get("event_id") or derive_event_id(
            identity, line.number, line.raw, timestamp
        )
        data = _mapping(record, "data")
        op = ops.event(person, record["name"], data, id=event_id, timestamp=timestamp)
    else:
        for key in ("device_id", "platform"):
            if key not in record:
                raise LineError(f"{key} is required for devices")
        extra: dict[str, Any] = {}
        if "last_used" in record:
            extra["last_used"] = _timestamp(record["last_used"])
        attributes = _mapping(record, "attributes")
        if attributes:
            extra["attributes"] = attributes
        op = ops.add_device(person, record["device_id"], record["platform"], extra)
    op.v2_bytes()  # serialise and size-check now, exactly as admission would
    return op


# ----------------------------------------------------------------------------- checkpoint


def _ranges(lines: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for n in lines:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


@dataclass
class Checkpoint:
    """What a previous run settled: skip those lines, resend the dropped ones.

    Attributes:
        line: Every line ``<= line`` reached a terminal outcome.
        retry: Lines that were dropped (never confirmed); a re-run sends them again.
        done_above: Lines ``> line`` that are settled, as inclusive ``[first, last]`` ranges.
        complete: The previous run read the whole file.
    """

    identity: str
    format: Format
    line: int = 0
    retry: frozenset[int] = frozenset()
    done_above: list[list[int]] = field(default_factory=list)
    complete: bool = False

    def __post_init__(self) -> None:
        self.done_above.sort()
        self._firsts = [first for first, _ in self.done_above]

    def settled(self, line: int) -> bool:
        """Whether a re-run skips ``line``."""
        if line in self.retry:
            return False
        if line <= self.line:
            return True
        i = bisect.bisect_right(self._firsts, line) - 1
        return i >= 0 and line <= self.done_above[i][1]

    @classmethod
    def load(cls, path: Path, identity: str, fmt: Format) -> Checkpoint | None:
        """Read ``path``; ``None`` when it does not exist.

        Raises:
            UsageError: Unreadable, or written for a different file.
        """
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the checkpoint {path}: {exc}") from None
        try:
            if doc["version"] != CHECKPOINT_VERSION:
                raise UsageError(f"the checkpoint {path} has an unknown version")
            if doc["identity"] != identity:
                raise UsageError(
                    f"the checkpoint {path} was written for a different file; "
                    "delete it to start over, or pass --checkpoint"
                )
            return cls(
                identity=identity,
                format=fmt,
                line=int(doc["line"]),
                retry=frozenset(int(n) for n in doc["retry"]),
                done_above=[[int(a), int(b)] for a, b in doc["done_above"]],
                complete=bool(doc["complete"]),
            )
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"the checkpoint {path} is malformed") from None


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class LineTracker:
    """Which lines have settled, and the watermark below which all have.

    Lines are begun in increasing order and settle in any order; the watermark is the
    highest line with every line up to it settled (the lowest unsettled line minus one).
    """

    def __init__(self) -> None:
        self.watermark = 0
        self._open: collections.deque[int] = collections.deque()
        self._settled: set[int] = set()
        self.retry: set[int] = set()

    def begin(self, line: int) -> None:
        """Line ``line`` has been read (lines are begun in increasing order)."""
        self._open.append(line)

    def settle(self, line: int, *, retry: bool = False) -> None:
        """Line ``line`` reached a terminal outcome (``retry``: dropped, send it again)."""
        if retry:
            self.retry.add(line)
        open_ = self._open
        if open_ and open_[0] == line:  # the common case: in order
            open_.popleft()
            self.watermark = line
            settled = self._settled
            while open_ and open_[0] in settled:
                self.watermark = open_.popleft()
                settled.discard(self.watermark)
        else:
            self._settled.add(line)

    @property
    def unsettled(self) -> int:
        """Lines begun and not settled."""
        return len(self._open) - len(self._settled)

    def snapshot(self, ckpt: Checkpoint, *, complete: bool) -> bytes:
        """The checkpoint document for the current state."""
        done = sorted(n for n in self._settled if n not in self.retry)
        doc = {
            "version": CHECKPOINT_VERSION,
            "identity": ckpt.identity,
            "format": ckpt.format,
            "line": self.watermark,
            "retry": sorted(self.retry),
            "done_above": _ranges(done),
            "complete": complete,
            "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


# ----------------------------------------------------------------------------- the job


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
    dry_run: bool = False
    rate: float = 100.0
    batch_size: int = 2000
    window: int = 20_000
    drain_timeout: float = 10.0
    progress: bool | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass
class _Counts:
    read: int = 0
    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    rejected: int = 0
    invalid: int = 0
    dropped: int = 0
    unsent: int = 0
    skipped: int = 0
    blank: int = 0
    earlier_rejects: int = 0
    by_type: collections.Counter[str] = field(default_factory=collections.Counter)
    dropped_by: collections.Counter[str] = field(default_factory=collections.Counter)


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ImportJob:
    """One run of ``customerio-async import`` (or ``--dry-run``)."""

    def __init__(
        self,
        options: ImportOptions,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.options = options
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        progress = options.progress
        self.progress = self.err.isatty() if progress is None else progress
        self.counts = _Counts()
        self.tracker = LineTracker()
        self.stopped_by: str | None = None
        self._stop = asyncio.Event()
        self._abort = False
        self._drain: asyncio.Task[None] | None = None
        self._aborting: asyncio.Future[None] | None = None
        self._pending: dict[Receipt, Line] = {}
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._rejects: IO[bytes] | None = None
        self._shown = 0
        self._started = time.monotonic()
        self._progress_len = 0
        self._total = 0
        self._position = 0
        self._stopping = False

    # ------------------------------------------------------------------ control

    def request_stop(self, why: str = "interrupted") -> None:
        """Stop reading, drain what is in flight (up to ``drain_timeout``), checkpoint.

        A second request aborts the drain: what is still in flight is dropped and resent by
        the next run.
        """
        if self.stopped_by is None:
            self.stopped_by = why
            self._stop.set()
            self._wake.set()
            self._note(
                f"{why}: finishing requests in flight (up to {self.options.drain_timeout:g} s) "
                "and writing the checkpoint; interrupt again to stop now"
            )
        elif not self._abort:
            self._abort = True
            if self._drain is not None and not self._drain.done():
                self._aborting = asyncio.ensure_future(self._abort_drain(self._drain))

    @staticmethod
    async def _abort_drain(task: asyncio.Task[None]) -> None:
        # CustomerIO.aclose survives one cancellation (the drain goes on); the second one
        # aborts it and drops whatever is left.
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()

    # ------------------------------------------------------------------ console

    def _note(self, text: str) -> None:
        self._clear_progress()
        self.err.write(text + "\n")
        self.err.flush()

    def _clear_progress(self) -> None:
        if self._progress_len:
            self.err.write("\r" + " " * self._progress_len + "\r")
            self._progress_len = 0

    def _draw_progress(self, *, final: bool = False) -> None:
        if not self.progress:
            return
        c = self.counts
        elapsed = max(time.monotonic() - self._started, 1e-9)
        done = c.delivered + c.duplicates + c.rejected + c.dropped + c.invalid
        rate = done / elapsed
        total = max(self._total, 1)
        settled = max(self._position - self.tracker.unsettled, 0)  # lines with a final outcome
        fraction = min(settled / total, 1.0)
        eta = max(total - settled, 0) / rate if rate > 0 else math.inf
        width = 20
        filled = int(fraction * width)
        bar = "#" * filled + "-" * (width - filled)
        text = (
            f"[{bar}] {fraction * 100:5.1f}%  {settled:,}/{self._total:,} lines  "
            f"{rate:,.0f} ops/s  ETA {_fmt_duration(0 if final else eta)}  "
            f"delivered {c.delivered + c.duplicates:,}  rejected {c.rejected + c.invalid:,}  "
            f"dropped {c.dropped:,}"
        )
        pad = max(self._progress_len - len(text), 0)
        self.err.write("\r" + text + " " * pad)
        self._progress_len = len(text)
        if final:
            self.err.write("\n")
            self._progress_len = 0
        self.err.flush()

    # ------------------------------------------------------------------ rejects

    def _reject(self, line: Line, stage: str, reason: str, message: str | None) -> None:
        entry: dict[str, Any] = {"line": line.number, "stage": stage, "reason": reason}
        if message:
            entry["message"] = message
        if line.record is not None:
            entry["record"] = line.record
        else:
            entry["raw"] = line.raw.decode("utf-8", "replace")
        if self._rejects is not None:
            self._rejects.write(json.dumps(entry, ensure_ascii=False, default=str).encode())
            self._rejects.write(b"\n")
        if stage in ("parse", "validation") and self._shown < SHOWN_ERRORS:
            self._shown += 1
            self._note(f"line {line.number}: {message}")

    def _open_rejects(self, ckpt: Checkpoint | None) -> None:
        path = self.options.rejects
        kept: list[bytes] = []
        if ckpt is not None and path.exists():
            # Keep the entries of lines this run skips; the others are redone (and re-added).
            for data in path.read_bytes().splitlines():
                try:
                    number = int(json.loads(data)["line"])
                except (ValueError, KeyError, TypeError):
                    continue
                if ckpt.settled(number):
                    kept.append(data + b"\n")
        self.counts.earlier_rejects = len(kept)
        write_atomically(path, b"".join(kept))
        self._rejects = path.open("ab")

    def _flush_rejects(self) -> None:
        if self._rejects is not None:
            self._rejects.flush()
            os.fsync(self._rejects.fileno())

    # ------------------------------------------------------------------ outcomes

    def _on_outcome(self, receipt: Receipt) -> None:
        line = self._pending.pop(receipt, None)
        if line is not None:
            self._pending_bytes -= len(receipt.operation.data)
            self._settle(line, receipt)
            self._wake.set()

    def _settle(self, line: Line, receipt: Receipt) -> None:
        outcome = receipt.outcome
        assert outcome is not None
        c = self.counts
        if outcome.status == "delivered":
            c.delivered += 1
            self.tracker.settle(line.number)
        elif outcome.status == "deduplicated":
            c.duplicates += 1
            self.tracker.settle(line.number)
        elif outcome.status == "rejected":
            c.rejected += 1
            self._reject(line, "api", outcome.reason or "invalid", outcome.message)
            self.tracker.settle(line.number)
        elif self._stopping:
            # Still in flight when the run ended: not settled, so the checkpoint stays below
            # it and the next run sends it again (with the same event id).
            c.unsent += 1
        else:
            c.dropped += 1
            c.dropped_by[outcome.reason or "dropped"] += 1
            self._reject(line, "dropped", outcome.reason or "dropped", outcome.message)
            self.tracker.settle(line.number, retry=True)

    # ------------------------------------------------------------------ reading

    def _lines(self) -> Iterator[Line]:
        opts = self.options
        if opts.format == "csv":
            with opts.path.open(encoding="utf-8-sig", newline="") as text:
                yield from iter_csv(text)
        else:
            with opts.path.open("rb") as fh:
                yield from iter_jsonl(fh)

    def _check_input(self) -> str:
        path = self.options.path
        if not path.is_file():
            raise UsageError(f"cannot read {path}: no such file")
        try:
            identity = file_identity(path)
            self._total = count_lines(path)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        return identity

    # ------------------------------------------------------------------ dry run

    def dry_run(self) -> int:
        """Validate every line offline; print a summary. Exit status 0 or 1."""
        identity = self._check_input()
        c = self.counts
        bad: list[tuple[int, str]] = []
        try:
            for line in self._lines():
                c.read += 1
                if line.blank:
                    c.blank += 1
                    continue
                error = line.error
                if error is None:
                    try:
                        op = build_operation(line, identity)
                    except (LineError, ValidationError) as exc:
                        error = str(exc)
                    else:
                        c.by_type[op.action] += 1
                        continue
                c.invalid += 1
                bad.append((line.number, error))
        except UnicodeDecodeError:
            raise UsageError(f"{self.options.path} is not UTF-8 text") from None
        for number, message in bad[:20]:
            self.err.write(f"line {number}: {message}\n")
        if len(bad) > 20:
            self.err.write(f"... and {len(bad) - 20} more invalid lines\n")
        valid = sum(c.by_type.values())
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(c.by_type.items()))
        self.out.write(
            f"dry run of {self.options.path}: {c.read:,} lines, {valid:,} valid"
            + (f" ({kinds})" if kinds else "")
            + f", {c.invalid:,} invalid, {c.blank:,} blank; nothing was sent\n"
        )
        return 1 if c.invalid else 0

    # ------------------------------------------------------------------ import

    async def run(self) -> int:
        """Import the file. Exit status: 0 all delivered, 1 some rejected or dropped,
        130/143 interrupted (checkpoint written)."""
        opts = self.options
        identity = self._check_input()
        ckpt = Checkpoint.load(opts.checkpoint, identity, opts.format)
        if ckpt is not None:
            self._note(
                f"resuming from {opts.checkpoint}: line {ckpt.line:,} and earlier are done"
                + (f", {len(ckpt.retry):,} dropped lines will be retried" if ckpt.retry else "")
            )
        state = ckpt or Checkpoint(identity=identity, format=opts.format)
        rate = RateLimit(requests_per_second=opts.rate, burst=max(1, min(20, int(opts.rate))))
        batch = BatchConfig(
            max_batch_ops=opts.batch_size,
            max_buffer_ops=opts.window * 2,
            max_buffer_bytes=2 * PENDING_BYTES,
            overflow="block",
            enqueue_timeout=opts.retry.delivery_timeout,
            overflow_fallback="raise",
            drain_timeout=opts.drain_timeout,
        )
        cio = CustomerIO(
            opts.site_id,
            opts.api_key,
            region=opts.region,
            track_url=opts.track_url,
            batch=batch,
            retry=opts.retry,
            rate_limit=rate if opts.rate > 0 else None,
            on_outcome=self._on_outcome,
        )
        await cio.open()
        try:
            info = await cio.get_region()  # fail fast on bad credentials or an unreachable URL
        except BaseException:
            await cio.aclose(0)
            raise
        self._note(
            f"importing {opts.path} into workspace {info.environment_id} "
            f"({info.region.value}) at up to {opts.rate:g} requests/s"
            if opts.rate > 0
            else f"importing {opts.path} into workspace {info.environment_id} "
            f"({info.region.value}), no rate limit"
        )
        self._open_rejects(ckpt)
        complete = False
        ticker = asyncio.ensure_future(self._tick(state))
        try:
            complete = await self._feed(cio, state, identity)
            if complete and not self._stop.is_set():
                await self._until_stopped(
                    cio.flush(opts.retry.delivery_timeout + opts.drain_timeout)
                )
        finally:
            ticker.cancel()
            # From here on a drop means "not sent yet": the next run sends those lines again.
            self._stopping = True
            self._drain = asyncio.ensure_future(
                cio.aclose(0 if self._abort else opts.drain_timeout)
            )
            try:
                await asyncio.wait({self._drain})  # never raises for the drain's own cancel
            finally:
                self._close_run(state, complete)
        return self._summary(complete)

    def _close_run(self, state: Checkpoint, complete: bool) -> None:
        self._draw_progress(final=True)
        self._flush_rejects()
        if self._rejects is not None:
            self._rejects.close()
        done = complete and self.stopped_by is None and self.tracker.unsettled == 0
        write_atomically(self.options.checkpoint, self.tracker.snapshot(state, complete=done))

    async def _until_stopped(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` until it finishes or a stop is requested (then cancel it)."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, stop):
                t.cancel()
            await asyncio.gather(task, stop, return_exceptions=True)

    async def _tick(self, ckpt: Checkpoint) -> None:
        """Redraw the progress bar and write the checkpoint periodically."""
        last_checkpoint = time.monotonic()
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            self._draw_progress()
            now = time.monotonic()
            if now - last_checkpoint >= CHECKPOINT_EVERY:
                self._flush_rejects()
                snapshot = self.tracker.snapshot(ckpt, complete=False)
                write_atomically(self.options.checkpoint, snapshot)
                last_checkpoint = now

    async def _feed(self, cio: CustomerIO, ckpt: Checkpoint, identity: str) -> bool:
        """Read, build and admit every line; returns whether the whole file was read."""
        window = self.options.window
        c = self.counts
        tracker = self.tracker
        pending = self._pending
        stop = self._stop
        try:
            for line in self._lines():
                if stop.is_set():
                    return False
                number = line.number
                self._position = number
                c.read += 1
                tracker.begin(number)
                if ckpt.settled(number):
                    c.skipped += 1
                    tracker.settle(number)
                    continue
                if line.blank:
                    c.blank += 1
                    tracker.settle(number)
                    continue
                if line.error is not None:
                    c.invalid += 1
                    self._reject(line, "parse", "invalid", line.error)
                    tracker.settle(number)
                    continue
                try:
                    op = build_operation(line, identity)
                except (LineError, ValidationError) as exc:
                    c.invalid += 1
                    self._reject(line, "validation", "invalid", str(exc))
                    tracker.settle(number)
                    continue
                # Bounded by count and bytes, so admission never has to wait for buffer space.
                while (
                    len(pending) >= window or self._pending_bytes >= PENDING_BYTES
                ) and not stop.is_set():
                    self._wake.clear()
                    await self._wake.wait()
                if stop.is_set():
                    return False  # this line stays unsettled: the next run reads it again
                receipt = await cio.send(op)
                c.sent += 1
                c.by_type[op.action] += 1
                if receipt.outcome is not None:  # decided at admission (deduplicated)
                    self._settle(line, receipt)
                else:
                    pending[receipt] = line
                    self._pending_bytes += len(receipt.operation.data)
                if c.sent % 256 == 0:
                    await asyncio.sleep(0)  # let the workers send while we read
        except UnicodeDecodeError:
            raise UsageError(f"{self.options.path} is not UTF-8 text") from None
        self._position = self._total
        return True

    def _summary(self, complete: bool) -> int:
        c = self.counts
        opts = self.options
        elapsed = time.monotonic() - self._started
        settled = c.delivered + c.duplicates + c.rejected + c.dropped
        w = self.out.write
        status = "imported" if complete and not self.stopped_by else "stopped"
        w(f"{status} {opts.path}: {c.read:,} lines read in {elapsed:.2f} s")
        w(f" ({settled / elapsed if elapsed > 0 else 0:,.0f} ops/s)\n")
        w(f"  sent        {c.sent:,}")
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(c.by_type.items()))
        w(f" ({kinds})\n" if kinds else "\n")
        w(f"  delivered   {c.delivered:,}")
        w(f" (+{c.duplicates:,} duplicates skipped)\n" if c.duplicates else "\n")
        failed = c.rejected + c.invalid + c.earlier_rejects
        w(f"  rejected    {c.rejected + c.invalid:,}")
        if c.earlier_rejects:
            w(f" (+{c.earlier_rejects:,} from earlier runs)")
        w(f" -> {opts.rejects}\n" if failed else "\n")
        if c.dropped:
            why = ", ".join(f"{r} {n:,}" for r, n in sorted(c.dropped_by.items()))
            w(f"  dropped     {c.dropped:,} ({why}): re-run the same command to send them again\n")
        if c.unsent:
            w(f"  unconfirmed {c.unsent:,} (in flight at the end: the next run resends them)\n")
        if c.skipped:
            w(f"  skipped     {c.skipped:,} (settled in an earlier run)\n")
        w(f"  checkpoint  line {self.tracker.watermark:,} -> {opts.checkpoint}\n")
        if self.stopped_by is not None:
            w(f"{self.stopped_by}: re-run the same command to resume\n")
            return 143 if self.stopped_by == "SIGTERM" else 130
        return 1 if failed or c.dropped or c.unsent else 0
