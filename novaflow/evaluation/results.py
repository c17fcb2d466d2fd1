"""Typed evaluation results: a metric table with stderr and per-sample records, whatever layout they came from."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from novaflow.evaluation.metrics import SCALE_100


@dataclass(frozen=True)
class MetricRow:
    """One reported metric. ``scale`` is ``"0-100"`` for BLEU (Nova's scale) and ``"0-1"`` otherwise."""

    name: str
    value: float
    stderr: float | None = None

    @property
    def scale(self) -> str:
        return "0-100" if self.name in SCALE_100 else "0-1"

    def as_fraction(self) -> tuple[float, float | None]:
        """(value, stderr) on 0-1, so BLEU can sit on the same axis as the rest (as AWS's notebook plots it)."""
        if self.scale == "0-100":
            return self.value / 100, None if self.stderr is None else self.stderr / 100
        return self.value, self.stderr


@dataclass
class MetricTable:
    """Metrics in the order the results file lists them."""

    rows: list[MetricRow] = field(default_factory=list)

    def __iter__(self) -> Iterator[MetricRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, name: object) -> bool:
        return any(r.name == name for r in self.rows)

    def get(self, name: str) -> MetricRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no metric {name!r}; have {', '.join(r.name for r in self.rows)}")

    def names(self) -> list[str]:
        return [r.name for r in self.rows]

    def to_records(self) -> list[dict[str, Any]]:
        """Rows for a Prefect table artifact or a DataFrame."""
        return [{"metric": r.name, "value": r.value, "stderr": r.stderr, "scale": r.scale} for r in self.rows]


@dataclass
class SampleRecord:
    """One evaluated sample. ``metrics`` are per-sample values (from the details file, or recomputed)."""

    index: int
    prompt: str
    prediction: str
    gold: str
    metadata: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    logprobs: list[Any] | None = None

    @property
    def messages(self) -> list[dict[str, Any]] | None:
        """The prompt as chat messages when Nova wrote it as a list repr (decoded on demand: the text is kept once)."""
        if not self.prompt.startswith("["):
            return None
        try:
            decoded = ast.literal_eval(self.prompt)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
        return decoded if isinstance(decoded, list) else None


@dataclass
class Disagreement:
    """A metric whose reported value differs from the value recomputed from the per-sample records."""

    metric: str
    reported: float
    recomputed: float

    def __str__(self) -> str:
        return f"{self.metric}: reported {self.reported!r}, recomputed {self.recomputed!r}"


@dataclass
class EvalResult:
    """A parsed evaluation output. ``files`` maps a role (results, inference_output, details, tensorboard) to
    where it was found, so a report can say which file a number came from."""

    source: str
    task: str
    metrics: MetricTable
    samples: list[SampleRecord] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    related: dict[str, EvalResult] = field(default_factory=dict)
    """Evaluations of the same model by another task (``judge``, ``rft_eval``, a benchmark), by metric prefix."""

    @property
    def golds(self) -> list[str]:
        return [s.gold for s in self.samples]

    @property
    def predictions(self) -> list[str]:
        return [s.prediction for s in self.samples]

    def has_sample_values(self, metric: str) -> bool:
        return bool(self.samples) and all(metric in s.metrics for s in self.samples)

    def sample_values(self, metric: str) -> list[float]:
        """Per-sample values of ``metric`` in evaluation order (missing values are an error, not a zero)."""
        out = []
        for s in self.samples:
            if metric not in s.metrics:
                raise KeyError(f"sample {s.index} of {self.source} has no per-sample {metric!r}")
            out.append(s.metrics[metric])
        return out
