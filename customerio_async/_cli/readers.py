"""Reading an import file: JSONL and CSV records, with physical line numbers.

A record is numbered by its last physical line (what the checkpoint and the rejects file
refer to) and knows how many physical lines it spans (what the progress bar counts), so a
CSV record with a quoted newline or the header row still adds up to the file's line count.

The readers are plain generators; :class:`ChunkReader` runs them in a worker thread
(``anyio.to_thread.run_sync``) a chunk at a time, so reading and parsing a large file never
blocks the event loop that delivers the operations (and hears Ctrl-C).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, Literal, TextIO, TypeVar

import anyio.to_thread

from .errors import UsageError

try:  # orjson is a runtime dependency; the stdlib is the fallback, as in the SDK
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - orjson is always installed with the package

    def _loads(data: bytes) -> Any:
        return json.loads(data)


__all__ = [
    "CSV_FIELDS",
    "PIPELINES_CSV",
    "TRACK_CSV",
    "ChunkReader",
    "CsvColumns",
    "Format",
    "Line",
    "count_lines",
    "csv_columns",
    "detect_format",
    "file_identity",
    "inspect",
    "iter_csv",
    "iter_jsonl",
    "open_lines",
]

Format = Literal["jsonl", "csv"]
IDENTITY_BYTES = 64 * 1024
CHUNK_LINES = 1000  # records per trip to the reading thread


@dataclass(frozen=True, slots=True)
class CsvColumns:
    """The CSV columns of one API's import lines.

    Attributes:
        fields: Plain column names (operations.py checks which line type takes which).
        prefixes: ``<object>.`` prefixes: ``<object>.<name>`` cells go into ``<object>``.
        required: Columns the header must have.
    """

    fields: frozenset[str]
    prefixes: tuple[str, ...]
    required: tuple[str, ...]


CSV_FIELDS = frozenset(
    {"type", "id", "name", "timestamp", "event_id", "device_id", "platform", "last_used"}
)
TRACK_CSV = CsvColumns(CSV_FIELDS, ("attributes.", "data."), ("type", "id"))
# Segment-spec messages (--api pipelines): one level of traits/properties/context.
PIPELINES_CSV = CsvColumns(
    frozenset(
        {"type", "userId", "anonymousId", "event", "name", "category", "groupId", "previousId"}
        | {"timestamp", "messageId"}
    ),
    ("traits.", "properties.", "context."),
    ("type",),
)

T = TypeVar("T")


@dataclass(slots=True)
class Line:
    """One input record.

    Attributes:
        number: Its last physical line (1-based).
        raw: Its bytes (CSV: the cells joined by US), for event ids and the rejects file.
        record: What it parsed to, or ``None`` (blank, or ``error``).
        error: Why it could not be parsed (never contains values).
        span: Physical lines it covers (a CSV header counts towards the first record).
    """

    number: int
    raw: bytes
    record: dict[str, Any] | None = None
    error: str | None = None
    span: int = 1

    @property
    def blank(self) -> bool:
        """Whether the line is empty or whitespace (skipped, but still counted)."""
        return self.record is None and self.error is None


def detect_format(path: Path, given: str | None) -> Format:
    """``--format`` when given, else ``csv`` for ``*.csv`` files and ``jsonl`` otherwise."""
    if given is not None:
        return "csv" if given == "csv" else "jsonl"
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def file_identity(path: Path) -> str:
    """SHA-256 (hex) of the file's first 64 KiB: stable across renames and appends."""
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(IDENTITY_BYTES)).hexdigest()


def count_lines(path: Path) -> int:
    """Physical lines in the file (the progress bar's total)."""
    lines = 0
    last = b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def inspect(path: Path) -> tuple[str, int]:
    """The file's identity and physical line count.

    Raises:
        UsageError: The file does not exist or cannot be read.
    """
    if not path.is_file():
        raise UsageError(f"cannot read {path}: no such file")
    try:
        return file_identity(path), count_lines(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


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


def csv_columns(header: list[str], allowed: CsvColumns = TRACK_CSV) -> list[str]:
    """Validate a CSV header row against ``allowed``.

    Raises:
        UsageError: Unknown or duplicate columns, or a required column missing.
    """
    columns = [name.strip() for name in header]
    for name in columns:
        if name not in allowed.fields and not (
            name.startswith(allowed.prefixes) and name.partition(".")[2]
        ):
            raise UsageError(
                f"unknown CSV column {name!r}: use {', '.join(sorted(allowed.fields))}, "
                + " or ".join(f"{prefix}<name>" for prefix in allowed.prefixes)
            )
    if len(set(columns)) != len(columns):
        raise UsageError("the CSV header names a column twice")
    missing = [name for name in allowed.required if name not in columns]
    if missing:
        names = " and ".join(
            ("an " if name[0] in "aeiou" else "a ") + repr(name) for name in allowed.required
        )
        raise UsageError(f"the CSV header needs {names} column")
    return columns


def iter_csv(fh: TextIO, allowed: CsvColumns = TRACK_CSV) -> Iterator[Line]:
    """Yield each CSV record after the header; empty cells are left out of the record."""
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UsageError(f"cannot read the CSV header: {exc}") from None
    columns = csv_columns(header, allowed)
    previous = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = Line(reader.line_num, b"", error=f"malformed CSV: {exc}")
        else:
            line = _csv_line(reader.line_num, row, columns)
        line.span = line.number - previous
        previous = line.number
        yield line


def _csv_line(number: int, row: list[str], columns: list[str]) -> Line:
    raw = "\x1f".join(row).encode()
    if not any(cell.strip() for cell in row):
        return Line(number, raw)
    if len(row) > len(columns):
        return Line(
            number, raw, error=f"the row has {len(row)} cells but the header has {len(columns)}"
        )
    record: dict[str, Any] = {}
    for name, cell in zip(columns, row, strict=False):
        if cell == "":
            continue
        prefix, _, key = name.partition(".")
        if key:
            record.setdefault(prefix, {})[key] = cell
        else:
            record[name] = cell
    return Line(number, raw, record)


def open_lines(path: Path, fmt: Format, allowed: CsvColumns = TRACK_CSV) -> Iterator[Line]:
    """Every record of the file at ``path``; the file stays open until exhausted or closed.

    Raises:
        UsageError: The file is not UTF-8 text, or its CSV header is unusable.
    """
    try:
        if fmt == "csv":
            with path.open(encoding="utf-8-sig", newline="") as text:
                yield from iter_csv(text, allowed)
        else:
            with path.open("rb") as fh:
                yield from iter_jsonl(fh)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None


class ChunkReader(Generic[T]):
    """Takes records off a generator a chunk at a time, in a worker thread.

    ``prepare`` runs on each record in the thread too, so the CPU work of parsing and
    validating stays off the event loop as well.
    """

    def __init__(
        self, lines: Iterator[Line], prepare: Callable[[Line], T], chunk: int = CHUNK_LINES
    ) -> None:
        self._lines = lines
        self._prepare = prepare
        self._chunk = chunk

    def _take(self) -> list[T]:
        return [self._prepare(line) for line in itertools.islice(self._lines, self._chunk)]

    async def next_chunk(self) -> list[T]:
        """The next records (an empty list at the end of the file)."""
        # Not abandoned on cancellation: the thread finishes its chunk (milliseconds), so
        # the generator is never advanced by two threads at once.
        return await anyio.to_thread.run_sync(self._take)

    def close(self) -> None:
        """Close the file (the generator's ``with`` block)."""
        close = getattr(self._lines, "close", None)
        if close is not None:
            close()
