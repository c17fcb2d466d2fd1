"""The result table of a batch inference: one row per input row, in input order, plus the failures and a summary.

``results.jsonl`` and ``results.parquet`` hold the same rows (``row``, ``id``, ``query``, ``reference`` when the input
had references, ``response``, ``metadata`` when the input had any, ``input_tokens``, ``output_tokens``, ``error``); a
row that got no answer has ``response`` null and its reason in ``error``, and is also in ``failures.jsonl``.
``summary.json`` counts rows, failures, tokens and the cost (docs/batch-inference.md#the-result-table).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from novaflow.inference.rows import BatchRows, RowFailure

RESULTS_FILE = "results.jsonl"
PARQUET_FILE = "results.parquet"
FAILURES_FILE = "failures.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class Answer:
    """What the job answered for one input row (looked up by the row's id)."""

    response: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None


@dataclass
class BatchSummary:
    """Counts of one batch inference, written as ``summary.json`` and published as the run's artifact."""

    platform: str
    model: str
    job: str | None
    rows: int
    answered: int
    failures: int
    input_tokens: int
    output_tokens: int
    tokens_basis: str
    cost: float | None
    currency: str
    cost_basis: str
    outputs: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        cost = f"{self.cost:,.2f} {self.currency} ({self.cost_basis})" if self.cost is not None else self.cost_basis
        return (
            f"{self.rows} rows: {self.answered} answered, {self.failures} failed; tokens in {self.input_tokens:,} / "
            f"out {self.output_tokens:,} ({self.tokens_basis}); cost {cost}"
        )


@dataclass
class BatchTable:
    """The rows of :data:`RESULTS_FILE`, in input order."""

    records: list[dict[str, Any]]
    failures: list[RowFailure]

    @property
    def answered(self) -> int:
        return sum(1 for r in self.records if r["error"] is None)


def build_table(batch: BatchRows, answers: dict[str, Answer]) -> BatchTable:
    """Join the input rows with the job's answers by id; a row the job did not answer becomes a failure."""
    with_reference = any(r.reference is not None for r in batch.rows)
    with_metadata = any(r.metadata is not None for r in batch.rows)
    failures = list(batch.failures)
    by_row: dict[int, dict[str, Any]] = {}
    for row in batch.rows:
        answer = answers.get(row.id) or Answer(None, error="the job returned no answer for this row")
        record: dict[str, Any] = {"row": row.row, "id": row.id, "query": row.query}
        if with_reference:
            record["reference"] = row.reference
        record["response"] = answer.response if answer.error is None else None
        if with_metadata:
            record["metadata"] = row.metadata
        record.update(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens, error=answer.error)
        if answer.error is not None:
            failures.append(RowFailure(row.row, row.id, "response", answer.error))
        by_row[row.row] = record
    for failure in batch.failures:
        record = {"row": failure.row, "id": failure.id, "query": None}
        if with_reference:
            record["reference"] = None
        record["response"] = None
        if with_metadata:
            record["metadata"] = None
        record.update(input_tokens=None, output_tokens=None, error=f"{failure.field}: {failure.reason}")
        by_row[failure.row] = record
    failures.sort(key=lambda f: f.row)
    return BatchTable([by_row[n] for n in sorted(by_row)], failures)


def write_table(table: BatchTable, summary: BatchSummary, out_dir: str | Path) -> dict[str, Path]:
    """Write the results (JSONL and Parquet), the failures and the summary under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "results": out / RESULTS_FILE,
        "parquet": out / PARQUET_FILE,
        "failures": out / FAILURES_FILE,
        "summary": out / SUMMARY_FILE,
    }
    _write_atomic(paths["results"], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in table.records))
    columns = list(table.records[0]) if table.records else ["row", "id", "query", "response", "error"]
    data = {name: [_cell(name, r.get(name)) for r in table.records] for name in columns}
    tmp = paths["parquet"].with_suffix(".parquet.tmp")
    pq.write_table(pa.table(data), tmp)
    tmp.replace(paths["parquet"])
    _write_atomic(
        paths["failures"], "".join(json.dumps(f.as_dict(), ensure_ascii=False) + "\n" for f in table.failures)
    )
    summary.outputs = {k: str(v) for k, v in paths.items()}
    _write_atomic(paths["summary"], json.dumps(asdict(summary), indent=2) + "\n")
    return paths


def _cell(name: str, value: Any) -> Any:
    """Metadata of any shape goes to Parquet as its JSON text (one column type for every row)."""
    if name == "metadata" and value is not None and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
