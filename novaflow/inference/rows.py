"""The rows a batch inference answers: read from CSV / JSONL / JSON / Parquet (local or ``s3://``) with the same
loaders and column maps as data preparation, each row keeping its input position and id.

Every input row is accounted for: a row without a usable query, or with an id an earlier row already used, is a
:class:`RowFailure` with its row number and reason, never silently dropped, so the result table can hold one row
per input row in input order.

Example:
    >>> source = DatasetSource(path="questions.csv", columns=ColumnMap(query="Body", id="Id"))
    >>> batch = read_batch_rows(source)                         # doctest: +SKIP
    >>> batch.rows[0].id, batch.failures                        # doctest: +SKIP
    ('q-1', [])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novaflow.data.loaders import iter_chunks
from novaflow.data.source import DatasetSource, template_parts
from novaflow.errors import DataError
from novaflow.settings import NovaflowSettings
from novaflow.storage import local_copy


@dataclass(frozen=True)
class BatchRow:
    """One input row to answer. ``row`` is its 1-based position in the file (for JSONL: the line number)."""

    row: int
    id: str
    query: str
    system: str | None = None
    reference: str | None = None
    metadata: Any = None


@dataclass(frozen=True)
class RowFailure:
    """An input row that got no answer, and why (found while reading, or reported by the job)."""

    row: int
    id: str | None
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "id": self.id, "field": self.field, "reason": self.reason}


@dataclass
class BatchRows:
    """The rows of one input file: those to answer and those refused, both in input order."""

    source: str
    rows: list[BatchRow] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.failures)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _render(spec: str, record: dict[str, Any], columns: list[str]) -> str | None:
    """A mapped field of one record: a column, a ``{Col}`` template or ``A+B`` (as data preparation reads them)."""
    pieces: list[str] = []
    for is_column, text in template_parts(spec, columns):
        if not is_column:
            pieces.append(text)
            continue
        value = _text(record.get(text))
        if value is None:
            return None
        pieces.append(value)
    return "".join(pieces)


def read_batch_rows(source: DatasetSource, settings: NovaflowSettings) -> BatchRows:
    """Every row of ``source`` as a :class:`BatchRow` or a :class:`RowFailure`, in input order.

    The column map is the one of ``novaflow data prepare``: ``query`` (required), ``system`` (or the source's
    constant system prompt), ``response`` / ``reference_answer`` as the reference, ``id`` (default: the row
    number) and ``metadata`` columns (kept as an object, or the ``metadata`` column as is).
    """
    out = BatchRows(source=source.path)
    seen: dict[str, int] = {}
    with local_copy(source.path, settings=settings, error=DataError) as path:
        for chunk in iter_chunks(source, Path(path)):
            for rejection in chunk.rejected:
                out.failures.append(RowFailure(rejection.row or 0, None, rejection.field, rejection.reason))
            records = chunk.table.to_pylist() if chunk.table is not None else list(chunk.records or [])
            columns = chunk.columns
            mapping = source.columns.resolved(columns)
            if "query" not in mapping:
                raise DataError(
                    f"{source.name}: no query column (columns: {', '.join(columns[:12])}); "
                    "map one with --map query=COLUMN"
                )
            for number, record in zip(chunk.rows, records, strict=True):
                _add(out, seen, source, mapping, columns, number, record)
    out.failures.sort(key=lambda f: f.row)
    return out


def _add(
    out: BatchRows,
    seen: dict[str, int],
    source: DatasetSource,
    mapping: dict[str, str | tuple[str, ...]],
    columns: list[str],
    number: int,
    record: dict[str, Any],
) -> None:
    def mapped(key: str) -> str | None:
        spec = mapping.get(key)
        return _render(spec, record, columns) if isinstance(spec, str) else None

    row_id = mapped("id")
    if row_id is None or not row_id.strip():
        row_id = str(number) if "id" not in mapping else None
    if row_id is None:
        out.failures.append(RowFailure(number, None, "id", f"empty id in column {mapping['id']!r}"))
        return
    if row_id in seen:
        out.failures.append(
            RowFailure(number, row_id, "id", f"duplicate id {row_id!r} (first used at row {seen[row_id]})")
        )
        return
    query = mapped("query")
    if query is None or not query.strip():
        out.failures.append(RowFailure(number, row_id, "query", f"empty query in column {mapping['query']!r}"))
        return
    seen[row_id] = number
    reference = mapped("response") if "response" in mapping else mapped("reference_answer")
    metadata_columns = mapping.get("metadata")
    metadata: Any = None
    if isinstance(metadata_columns, tuple) and metadata_columns:
        metadata = {name: record.get(name) for name in metadata_columns}
    elif "metadata" in columns:
        metadata = record.get("metadata")
    out.rows.append(
        BatchRow(
            row=number,
            id=row_id,
            query=query,
            system=mapped("system") or source.system_prompt,
            reference=reference if reference and reference.strip() else None,
            metadata=metadata,
        )
    )
