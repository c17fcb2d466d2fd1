"""The data-quality report: what went in, what came out, what was rejected and why, and what the text looks like.

Returned as data (a pydantic model with ``table_rows()``) so flows can turn it into a Prefect table artifact and
the CLI can print it; nothing here logs or prints.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from novaflow.data.formats import estimate_tokens
from novaflow.data.rejections import Rejection

FILTER_EXAMPLES = 3
"""Removed rows the report shows per filter (all of them are in rejected.jsonl)."""
_QUOTED = re.compile(r"\s*'[^']*'")
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The comparison form for duplicates and leakage: case-folded, whitespace collapsed."""
    return _SPACE.sub(" ", text.casefold()).strip()


def rejection_kind(reason: str) -> str:
    """``"reserved keyword 'User:' in query"`` -> ``"reserved keyword in query"`` (row detail removed)."""
    return _QUOTED.sub("", reason).split(":", 1)[0].strip()


class LengthStats(BaseModel):
    """Distribution of one length measure over the output rows."""

    min: int = 0
    mean: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    max: int = 0

    @classmethod
    def of(cls, values: Sequence[int] | npt.NDArray[np.int64]) -> LengthStats:
        if not len(values):
            return cls()
        arr = np.sort(np.asarray(values, dtype=np.int64))
        return cls(
            min=int(arr[0]),
            mean=round(float(arr.mean()), 2),
            p50=round(_percentile(arr, 50), 2),
            p95=round(_percentile(arr, 95), 2),
            max=int(arr[-1]),
        )


def _percentile(ordered: npt.NDArray[np.int64], q: float) -> float:
    """``np.percentile(ordered, q)`` (linear interpolation) of sorted values: numpy's own imports ``numpy.ma`` on
    first use, a tenth of the fixed cost a small ``data prepare`` has over ``import pyarrow``."""
    position = (q / 100) * (len(ordered) - 1)  # numpy's operations, in its order: the same float
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    a, b, t = float(ordered[low]), float(ordered[high]), position - low
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


class DataReport(BaseModel):
    """Rows in and out, rejections by reason, labels, text lengths, duplicates, leakage, rows over max_length."""

    source: str
    method: str
    model: str
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    rejections_by_reason: dict[str, int] = Field(default_factory=dict)
    labels: dict[str, dict[str, int]] = Field(default_factory=dict)
    prompt_chars: LengthStats = Field(default_factory=LengthStats)
    total_chars: LengthStats = Field(default_factory=LengthStats)
    est_tokens: LengthStats = Field(default_factory=LengthStats)
    duplicates: int = 0
    leakage: int = 0
    max_length: int | None = None
    over_max_length: int = 0
    filtered: dict[str, int] = Field(default_factory=dict)
    """Rows each curation filter removed (dedup, near-dedup, language, quality), counted among the rejected."""
    filter_examples: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    """The first few removed rows of each filter: row, reason, score and (duplicates) the row they repeat."""
    notes: list[str] = Field(default_factory=list)

    def table_rows(self) -> list[dict[str, Any]]:
        """One ``{"section", "item", "value"}`` row per fact, for ``create_table_artifact`` or a terminal table."""
        rows: list[dict[str, Any]] = [
            {"section": "rows", "item": "in", "value": self.rows_in},
            {"section": "rows", "item": "out", "value": self.rows_out},
            {"section": "rows", "item": "rejected", "value": self.rows_rejected},
        ]
        rows += [{"section": "rejected", "item": k, "value": v} for k, v in self.rejections_by_reason.items()]
        for split, counts in self.labels.items():
            rows += [{"section": f"labels[{split}]", "item": k, "value": v} for k, v in counts.items()]
        for name in ("prompt_chars", "total_chars", "est_tokens"):
            stats: LengthStats = getattr(self, name)
            rows += [{"section": name, "item": k, "value": v} for k, v in stats.model_dump().items()]
        rows += [
            {"section": "quality", "item": "duplicates", "value": self.duplicates},
            {"section": "quality", "item": "leakage", "value": self.leakage},
            {"section": "quality", "item": f"over max_length ({self.max_length})", "value": self.over_max_length},
        ]
        rows += [{"section": "filtered", "item": k, "value": v} for k, v in self.filtered.items()]
        for name, examples in self.filter_examples.items():
            rows += [
                {"section": f"filtered[{name}]", "item": f"row {e['row']}", "value": e["reason"]} for e in examples
            ]
        rows += [{"section": "notes", "item": str(i + 1), "value": n} for i, n in enumerate(self.notes)]
        return rows


class ReportBuilder:
    """Accumulates chunk by chunk so the report never needs the whole dataset in memory."""

    def __init__(self, source: str, method: str, model: str, max_length: int | None, split: str) -> None:
        self.report = DataReport(source=source, method=method, model=model, max_length=max_length)
        self.split = split
        self._labels: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()
        self._prompt = array("q")
        self._total = array("q")
        self._keys = array("q")
        self._filtered: Counter[str] = Counter()
        self._examples: dict[str, list[dict[str, Any]]] = {}

    def _count_filters(self, rejected: Sequence[Rejection]) -> None:
        for r in rejected:
            if r.filter is None:
                continue
            self._filtered[r.filter] += 1
            examples = self._examples.setdefault(r.filter, [])
            if len(examples) < FILTER_EXAMPLES:
                example: dict[str, Any] = {"row": r.row, "reason": r.reason, "score": r.score}
                if r.duplicate_of is not None:
                    example["duplicate_of"] = r.duplicate_of
                examples.append(example)

    def add(
        self,
        *,
        rows_out: int,
        rejected: Iterable[Rejection],
        labels: Iterable[str | None] | Mapping[str, int],
        prompt_chars: Sequence[int],
        total_chars: Sequence[int],
        keys: Iterable[int],
    ) -> None:
        """``labels``: one per row (None: no label) or already counted. ``keys`` are hashes of the prompt texts:
        duplicates are exact repeats (the split guard normalizes)."""
        rejected = list(rejected)
        self._count_filters(rejected)
        self.report.rows_in += rows_out + len(rejected)
        self.report.rows_out += rows_out
        self.report.rows_rejected += len(rejected)
        self._reasons.update(rejection_kind(r.reason) for r in rejected)
        self._labels.update(cast("Iterable[str]", labels))  # a list is counted in C; a mapping adds its counts
        self._labels.pop(cast(str, None), None)  # rows without a label were counted under None
        self._prompt.extend(prompt_chars)
        self._total.extend(total_chars)
        self._keys.extend(keys)

    def drop_rows(self, rejected: Sequence[Rejection], labels: Iterable[str | None], lines: Sequence[int] = ()) -> None:
        """Rows that were valid alone but rejected by a dataset-level rule (optional-field consistency, duplicate
        filters); ``lines`` are their positions among the rows added, taken out of the length statistics."""
        self._count_filters(rejected)
        if lines:
            gone = np.asarray(lines, dtype=np.int64)
            for name in ("_prompt", "_total", "_keys"):
                kept = np.delete(np.frombuffer(getattr(self, name), dtype=np.int64), gone)
                setattr(self, name, array("q", kept.tobytes()))
        self.report.rows_out -= len(rejected)
        self.report.rows_rejected += len(rejected)
        self._reasons.update(rejection_kind(r.reason) for r in rejected)
        self._labels.subtract(label for label in labels if label is not None)

    def build(self) -> DataReport:
        rep = self.report
        rep.rejections_by_reason = dict(sorted(self._reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        rep.filtered = dict(sorted(self._filtered.items()))
        rep.filter_examples = {k: self._examples[k] for k in sorted(self._examples)}
        if self._labels:
            rep.labels = {self.split: dict(sorted((k, v) for k, v in self._labels.items() if v > 0))}
        # 8 bytes a row instead of a set entry (~70): the duplicates are counted once, at the end.
        # sorted, not np.unique: np.unique imports numpy.ma (up to a tenth of a second of every run's start-up)
        keys = np.sort(np.frombuffer(self._keys, dtype=np.int64))
        rep.duplicates = int(np.count_nonzero(keys[1:] == keys[:-1])) if len(keys) else 0
        rep.prompt_chars = LengthStats.of(self._prompt)
        rep.total_chars = LengthStats.of(self._total)
        # the token estimate is integer arithmetic, so it applies to the whole column at once
        tokens: npt.NDArray[np.int64] = estimate_tokens(np.frombuffer(self._total, dtype=np.int64))  # type: ignore[arg-type,assignment]
        rep.est_tokens = LengthStats.of(tokens)
        if rep.max_length:
            rep.over_max_length = int(np.count_nonzero(tokens > rep.max_length))
        return rep
