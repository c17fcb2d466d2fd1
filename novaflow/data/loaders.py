"""Read CSV/TSV, JSONL, JSON and Parquet in chunks from a local file (an S3 source is first copied to a local
temporary file by :func:`novaflow.storage.local_copy`).

CSV goes through pyarrow's columnar reader (RFC 4180: quoted fields with embedded newlines, CRLF, a UTF-8 BOM),
every column as a string so ids such as ``007`` and text such as ``1e5`` stay byte for byte. A file with ragged
rows falls back to the standard library ``csv`` module from the failing point, because only that reader can
report the exact record number of a broken row. JSONL is parsed line by line with orjson so one bad line is one
rejected row, not a failed file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from novaflow.data.arrow_arrays import string_array
from novaflow.data.rejections import Rejection
from novaflow.data.source import DatasetSource
from novaflow.errors import DataError

CSV_BLOCK_BYTES = 512 << 10
"""Blocks of 512 KB: less per-block work than 256 KB at little more memory (measured loaded, 600,000 rows: 10.0 s of
CPU with 256 KB blocks, 8.6 s with 512 KB, 8.8 s with 1 MB; 60,000 rows peak at 164 MB RSS, 184 MB and 210 MB). A
record longer than a block sends the rest of the file to the stdlib reader."""

JSONL_CHUNK_BYTES = 2 << 20
"""A JSONL chunk ends after this many bytes of lines (or ``chunk_rows`` rows): parsed into Python dicts a line takes
about eight times its size, so 20,000 Converse rows (24 MB) in one chunk peaked at 323 MB; 2 MB chunks keep the
record path flat in rows, and it works row by row anyway, so smaller chunks cost nothing."""


@dataclass
class Chunk:
    """Rows read from one part of a file: a string table (CSV/Parquet) or parsed records (JSON/JSONL)."""

    rows: list[int]
    table: pa.Table | None = None
    records: list[dict[str, Any]] | None = None
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        if self.table is not None:
            return list(self.table.column_names)
        seen: dict[str, None] = {}
        for rec in self.records or []:
            seen.update(dict.fromkeys(rec))
        return list(seen)

    def __len__(self) -> int:
        return len(self.rows)


def iter_chunks(source: DatasetSource, path: Path | None = None) -> Iterator[Chunk]:
    """Chunks of ``source``; ``path`` is a local copy when the source lives on S3."""
    local = Path(path or source.path)
    if not local.exists():
        raise DataError(f"{source.path}: no such file")
    fmt = source.resolved_format()
    if fmt == "csv":
        yield from _csv_chunks(source, local)
    elif fmt == "jsonl":
        yield from _jsonl_chunks(source, local)
    elif fmt == "json":
        yield from _json_chunks(source, local)
    else:
        yield from _parquet_chunks(source, local)


def _delimiter(source: DatasetSource, path: Path) -> str:
    if source.delimiter == "," and path.suffix.lower() == ".tsv":
        return "\t"
    return source.delimiter


def _py_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _csv_header(source: DatasetSource, path: Path, delimiter: str) -> list[str]:
    try:
        with path.open(encoding=_py_encoding(source.encoding), newline="") as fh:
            header = next(csv.reader(fh, delimiter=delimiter), None)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source.name}: not valid {source.encoding} text ({exc.reason} at byte {exc.start}); "
            "pass --encoding (e.g. latin-1)"
        ) from None
    except LookupError:
        raise DataError(f"{source.name}: unknown encoding {source.encoding!r}") from None
    if not header:
        raise DataError(f"{source.name}: empty file (no header row)")
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{source.name}: duplicate column names in the header: {dupes}")
    return header


class _WholeCrlfReader(io.RawIOBase):
    """A binary file whose reads never end in ``\r``: the carriage return waits for the next read.

    Arrow's CSV reader drops the ``\n`` of a ``\r\n`` inside a quoted value when a read ends between the two
    bytes (apache/arrow#51368, open in pyarrow 26): the value comes back one byte short, silently. Keeping every
    ``\r\n`` within one read makes that case impossible; the reader sees the same bytes in the same order.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._held = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._held + self._raw.read(size - len(self._held) if size > 0 else -1)
        self._held = b""
        if len(data) > 1 and data.endswith(b"\r"):
            self._held, data = data[-1:], data[:-1]
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _csv_chunks(source: DatasetSource, path: Path) -> Iterator[Chunk]:
    delimiter = _delimiter(source, path)
    header = _csv_header(source, path, delimiter)
    read = pacsv.ReadOptions(encoding=source.encoding, block_size=CSV_BLOCK_BYTES, use_threads=False)
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    done = 0
    try:
        # a Python file object, not the path: pyarrow memory-maps paths, which adds the whole file to RSS
        with path.open("rb") as fh:
            reader = pacsv.open_csv(
                _WholeCrlfReader(fh), read_options=read, parse_options=parse, convert_options=convert
            )
            for batch in reader:
                if batch.num_rows:
                    yield Chunk(
                        rows=list(range(done + 1, done + 1 + batch.num_rows)), table=pa.Table.from_batches([batch])
                    )
                    done += batch.num_rows
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if ("Expected" in text and "columns" in text) or "straddl" in text:
            yield from _csv_python_chunks(source, path, delimiter, header, skip=done)
            return
        if "UTF8" in text or "decode" in text.lower():
            raise DataError(
                f"{source.name}: not valid {source.encoding} text ({text}); pass --encoding (e.g. latin-1)"
            ) from None
        raise DataError(f"{source.name}: cannot parse as CSV: {text}") from None


def _csv_python_chunks(
    source: DatasetSource, path: Path, delimiter: str, header: list[str], skip: int
) -> Iterator[Chunk]:
    """Slow but exact: the stdlib reader, for files with rows of the wrong width or records longer than a block."""
    width = len(header)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # the stdlib default (128 KB) is smaller than a block
    with path.open(encoding=_py_encoding(source.encoding), newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader)
        rows: list[int] = []
        cols: list[list[str]] = [[] for _ in header]
        rejected: list[Rejection] = []
        for number, record in enumerate(reader, start=1):
            if number <= skip:
                continue
            if len(record) != width:
                rejected.append(
                    Rejection(
                        source.name,
                        number,
                        "",
                        f"wrong number of fields: {len(record)} fields, the header has {width}",
                        record=record,
                    )
                )
            else:
                rows.append(number)
                for col, value in zip(cols, record, strict=True):
                    col.append(value)
            if len(rows) + len(rejected) >= source.chunk_rows:
                yield Chunk(rows=rows, table=_string_table(header, cols), rejected=rejected)
                rows, cols, rejected = [], [[] for _ in header], []
        if rows or rejected:
            yield Chunk(rows=rows, table=_string_table(header, cols), rejected=rejected)


def _string_table(header: list[str], cols: list[list[str]]) -> pa.Table:
    columns = dict(zip(header, cols, strict=True))  # a repeated header name: its last column, as before
    return pa.Table.from_arrays([string_array(col) for col in columns.values()], names=list(columns))


def _record_or_rejection(
    source: DatasetSource, number: int, raw: bytes | Any, parsed: bool = False
) -> dict[str, Any] | Rejection:
    try:
        value = raw if parsed else orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(source.name, number, "", f"invalid JSON: {exc}", record=bytes(raw).decode("utf-8", "replace"))
    if not isinstance(value, dict):
        return Rejection(source.name, number, "", f"not a JSON object: got {type(value).__name__}", record=value)
    return value


def _jsonl_chunks(source: DatasetSource, path: Path) -> Iterator[Chunk]:
    rows: list[int] = []
    records: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    size = 0
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            item = _record_or_rejection(source, number, line)
            size += len(line)
            if isinstance(item, Rejection):
                rejected.append(item)
            else:
                rows.append(number)
                records.append(item)
            if len(rows) + len(rejected) >= source.chunk_rows or size >= JSONL_CHUNK_BYTES:
                yield Chunk(rows=rows, records=records, rejected=rejected)
                rows, records, rejected, size = [], [], [], 0
    if rows or rejected:
        yield Chunk(rows=rows, records=records, rejected=rejected)


def _json_chunks(source: DatasetSource, path: Path) -> Iterator[Chunk]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"{source.name}: not valid JSON ({exc}); for one object per line use a .jsonl file") from None
    if not isinstance(data, list):
        raise DataError(f"{source.name}: expected a JSON array of objects, got {type(data).__name__}")
    for start in range(0, len(data), source.chunk_rows):
        rows: list[int] = []
        records: list[dict[str, Any]] = []
        rejected: list[Rejection] = []
        for number, value in enumerate(data[start : start + source.chunk_rows], start=start + 1):
            item = _record_or_rejection(source, number, value, parsed=True)
            if isinstance(item, Rejection):
                rejected.append(item)
            else:
                rows.append(number)
                records.append(item)
        yield Chunk(rows=rows, records=records, rejected=rejected)


def _parquet_chunks(source: DatasetSource, path: Path) -> Iterator[Chunk]:
    import pyarrow.parquet as pq  # deferred: its file-system layer costs every CSV run start-up time

    try:
        pfile = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{source.name}: not a readable Parquet file ({exc})") from None
    done = 0
    for batch in pfile.iter_batches(batch_size=source.chunk_rows):
        yield Chunk(rows=list(range(done + 1, done + 1 + batch.num_rows)), table=pa.Table.from_batches([batch]))
        done += batch.num_rows


def read_all_records(
    source: DatasetSource, path: Path | None = None
) -> tuple[list[int], list[dict[str, Any]], list[Rejection]]:
    """Every row as a dict (for splitting, where the whole file must be seen to stratify)."""
    rows: list[int] = []
    records: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    for chunk in iter_chunks(source, path):
        rows.extend(chunk.rows)
        rejected.extend(chunk.rejected)
        if chunk.table is not None:
            records.extend(chunk.table.to_pylist())
        else:
            records.extend(chunk.records or [])
    return rows, records, rejected
