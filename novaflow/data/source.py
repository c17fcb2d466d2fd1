"""Where rows come from and which column feeds which part of a Nova record.

A :class:`DatasetSource` names a file (local or ``s3://``), how to read it, and a :class:`ColumnMap`. Mappings
default to identity when the columns already carry the canonical names (the Forge SDK insists on a mapping
even then), and the system prompt may be one constant string for all rows so a 600-character
prompt need not be repeated on every CSV row.

Example:
    >>> src = DatasetSource(path="questions.csv", columns=ColumnMap(query="Body", response="Y"),
    ...                     system_prompt="Answer with the label only.")
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from novaflow.errors import DataError

Format = Literal["csv", "jsonl", "json", "parquet"]
MAP_KEYS = (
    "query",
    "response",
    "system",
    "reference_answer",
    "id",
    "reasoning",
    "metadata",
    "text",
    "chosen",
    "rejected",
)
CANONICAL: dict[str, tuple[str, ...]] = {
    "query": ("query", "question"),
    "response": ("response", "answer"),
    "system": ("system",),
    "reference_answer": ("reference_answer",),
    "id": ("id",),
    "reasoning": ("reasoning", "reasoning_text"),
    "metadata": ("metadata",),
    "text": ("text",),
    "chosen": ("chosen",),
    "rejected": ("rejected",),
}
_FIELD_RE = re.compile(r"\{([^{}]+)\}")


class ColumnMap(BaseModel):
    """Mapping key -> source column, a ``{Col}`` template, or ``A+B`` (columns joined by a blank line).

    ``metadata`` lists extra columns: for RFT they become top-level keys named after the column; for gen_qa they
    become the ``metadata`` string (the column value, or a JSON object when several columns are listed). For gen_qa a
    column named ``metadata`` is carried without a mapping, since the evaluation echoes it in its per-row output.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str | None = None
    response: str | None = None
    system: str | None = None
    reference_answer: str | None = None
    id: str | None = None
    reasoning: str | None = None
    metadata: tuple[str, ...] = ()
    text: str | None = None
    chosen: str | None = None
    """DPO: the preferred answer of a preference pair."""
    rejected: str | None = None
    """DPO: the non-preferred answer of a preference pair."""

    @classmethod
    def parse(cls, pairs: Iterable[str]) -> ColumnMap:
        """``["query=Body", "response=Y", "metadata=Tags,CreationDate"]`` -> ColumnMap (the CLI ``--map``)."""
        values: dict[str, object] = {}
        for pair in pairs:
            key, sep, column = pair.partition("=")
            key = key.strip()
            if not sep or not column:
                raise DataError(f"--map {pair!r}: expected KEY=COLUMN, e.g. query=Body")
            if key not in MAP_KEYS:
                raise DataError(f"--map {pair!r}: unknown key {key!r}; keys are {', '.join(MAP_KEYS)}")
            if key == "metadata":
                values[key] = tuple(c.strip() for c in column.split(",") if c.strip())
            else:
                values[key] = column
        return cls.model_validate(values)

    def resolved(self, columns: Sequence[str]) -> dict[str, str | tuple[str, ...]]:
        """Explicit mappings plus identity defaults for canonical column names present in ``columns``."""
        out: dict[str, str | tuple[str, ...]] = {}
        for key in MAP_KEYS:
            value = getattr(self, key)
            if value:
                out[key] = value
                continue
            if key == "metadata":
                continue
            for name in CANONICAL[key]:
                if name in columns:
                    out[key] = name
                    break
        return out


def template_parts(spec: str, columns: Sequence[str]) -> list[tuple[bool, str]]:
    """Split a mapping value into (is_column, text) parts.

    An existing column name wins; then ``{Col}`` templates; then ``A+B`` when every part is a column.
    """
    if spec in columns:
        return [(True, spec)]
    if _FIELD_RE.search(spec):
        parts: list[tuple[bool, str]] = []
        pos = 0
        for match in _FIELD_RE.finditer(spec):
            if match.start() > pos:
                parts.append((False, spec[pos : match.start()]))
            parts.append((True, match.group(1)))
            pos = match.end()
        if pos < len(spec):
            parts.append((False, spec[pos:]))
        return parts
    pieces = spec.split("+")
    if len(pieces) > 1 and all(p in columns for p in pieces):
        joined: list[tuple[bool, str]] = []
        for i, piece in enumerate(pieces):
            if i:
                joined.append((False, "\n\n"))
            joined.append((True, piece))
        return joined
    return [(True, spec)]


def referenced_columns(spec: str, columns: Sequence[str]) -> list[str]:
    return [text for is_col, text in template_parts(spec, columns) if is_col]


class DatasetSource(BaseModel):
    """A file to read and how to map it; ``format`` is taken from the extension when not given."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Local path or s3:// URI of a CSV/TSV, JSONL, JSON or Parquet file.")
    format: Format | None = None
    columns: ColumnMap = Field(default_factory=ColumnMap)
    system_prompt: str | None = Field(None, description="One constant system prompt for every row.")
    delimiter: str = ","
    encoding: str = "utf-8"
    chunk_rows: int = Field(20_000, ge=1, description="Rows per chunk, so memory stays bounded on large files.")

    @model_validator(mode="after")
    def _check(self) -> DatasetSource:
        if self.system_prompt is not None and self.columns.system:
            raise DataError(
                "give the system prompt either as a column (--map system=...) or as --system TEXT, not both"
            )
        if len(self.delimiter) != 1:
            raise DataError(f"delimiter must be one character, got {self.delimiter!r}")
        return self

    @property
    def name(self) -> str:
        """The file name used in rejections and reports."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def resolved_format(self) -> Format:
        if self.format:
            return self.format
        suffixes = [s.lower() for s in Path(self.path.split("?")[0]).suffixes]
        for suffix in reversed(suffixes):
            if suffix in (".csv", ".tsv", ".txt"):
                return "csv"
            if suffix in (".jsonl", ".ndjson"):
                return "jsonl"
            if suffix == ".json":
                return "json"
            if suffix in (".parquet", ".pq"):
                return "parquet"
        raise DataError(f"{self.path}: cannot tell the format from the file name; pass --format csv|jsonl|json|parquet")
