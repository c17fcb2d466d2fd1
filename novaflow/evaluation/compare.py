"""Stage comparison (baseline -> SFT -> RFT) with paired significance on the same evaluation rows.

A "+1.6 points EM" on 500 rows is within noise more often than not. Every stage is scored on the same rows, so
the tests are paired: a bootstrap over rows gives the confidence interval of each delta, McNemar's test (exact
binomial when fewer than 25 discordant rows) gives the p-value for 0/1 metrics (exact match, label accuracy), and a
paired sign-flip permutation test gives it for graded metrics (F1, ROUGE).

Example:
    >>> d = paired_delta([0, 1, 1, 0], [1, 1, 1, 1], "em", n_boot=200)
    >>> d.delta
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from novaflow.errors import EvaluationError
from novaflow.evaluation.classification import classify, is_label_task
from novaflow.evaluation.consistency import fill_sample_metrics
from novaflow.evaluation.metrics import NOVA_METRICS, SAMPLE_METRICS
from novaflow.evaluation.results import EvalResult

EXACT_BELOW = 25
"""Discordant-pair count below which McNemar uses the exact binomial test."""


@dataclass(frozen=True)
class MetricDelta:
    """candidate - baseline for one metric, with a paired bootstrap CI and a paired test's two-sided p-value."""

    metric: str
    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    test: str = ""
    baseline_only: int | None = None
    """0/1 metrics: rows right in the baseline and wrong in the candidate (McNemar's b)."""
    candidate_only: int | None = None
    """0/1 metrics: rows wrong in the baseline and right in the candidate (McNemar's c)."""

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha

    def as_record(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "delta": self.delta,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "n": self.n,
            "test": self.test,
        }


def mcnemar_p_value(baseline_only: int, candidate_only: int) -> tuple[float, str]:
    """Two-sided McNemar p-value: exact binomial for few discordant rows, else chi-square with continuity."""
    b, c = baseline_only, candidate_only
    total = b + c
    if total == 0:
        return 1.0, "mcnemar-exact"
    if total < EXACT_BELOW:
        tail = sum(math.comb(total, k) for k in range(min(b, c) + 1))
        return min(1.0, 2 * tail / 2**total), "mcnemar-exact"
    statistic = (abs(b - c) - 1) ** 2 / total
    return math.erfc(math.sqrt(statistic / 2)), "mcnemar-chi2"


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def _bootstrap_means(diff: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = diff.size
    chunk = max(1, 2_000_000 // n)
    out = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, (min(chunk, n_boot - start), n))
        out.append(diff[idx].mean(axis=1))
    return np.concatenate(out)


def _sign_flip_p(diff: np.ndarray, n_boot: int, rng: np.random.Generator) -> float:
    observed = abs(diff.mean())
    if observed == 0:
        return 1.0
    n = diff.size
    chunk = max(1, 2_000_000 // n)
    extreme = 0
    for start in range(0, n_boot, chunk):
        signs = rng.choice((-1.0, 1.0), size=(min(chunk, n_boot - start), n))
        extreme += int((np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12).sum())
    return (extreme + 1) / (n_boot + 1)


def paired_delta(
    baseline: Sequence[float],
    candidate: Sequence[float],
    metric: str,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> MetricDelta:
    """Delta of the means of two per-sample series on the same rows, with its paired CI and p-value."""
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise EvaluationError(
            f"{metric}: paired comparison needs two series of the same length, got {a.size} and {b.size}"
        )
    if a.size == 0:
        raise EvaluationError(f"{metric}: no samples to compare")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    diff = b - a
    means = _bootstrap_means(diff, n_boot, rng)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    b_only = c_only = None
    if _is_binary(a) and _is_binary(b):
        b_only = int(((a == 1) & (b == 0)).sum())
        c_only = int(((a == 0) & (b == 1)).sum())
        p_value, test = mcnemar_p_value(b_only, c_only)
    else:
        p_value, test = _sign_flip_p(diff, n_boot, rng), "sign-flip"
    return MetricDelta(
        metric=metric,
        baseline=float(a.mean()),
        candidate=float(b.mean()),
        delta=float(b.mean() - a.mean()),
        ci_low=float(low),
        ci_high=float(high),
        p_value=p_value,
        n=int(a.size),
        test=test,
        baseline_only=b_only,
        candidate_only=c_only,
    )


def unpaired_delta(
    metric: str,
    baseline: tuple[float, float],
    candidate: tuple[float, float],
    n: int,
    *,
    confidence: float = 0.95,
) -> MetricDelta:
    """Delta of two (value, stderr) pairs without per-sample records: a normal-approximation z test.

    Weaker than the paired tests (it ignores that the stages saw the same rows), so it is used only where an
    output has no per-sample values, e.g. the original Nova judge, which writes no details file.
    """
    (a, se_a), (b, se_b) = baseline, candidate
    delta = b - a
    se = math.sqrt(se_a**2 + se_b**2)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p_value = math.erfc(abs(delta) / se / math.sqrt(2)) if se > 0 else (1.0 if delta == 0 else 0.0)
    return MetricDelta(metric, a, b, delta, delta - z * se, delta + z * se, p_value, n, "unpaired-z")


@dataclass
class StageComparison:
    """Stage values (metric -> stage -> (value, stderr)) and paired deltas of every later stage vs the first and
    vs the stage before it."""

    stages: list[str]
    values: dict[str, dict[str, tuple[float, float | None]]]
    deltas: list[tuple[str, str, MetricDelta]] = field(default_factory=list)
    n: int = 0

    def delta(self, metric: str, baseline: str, candidate: str) -> MetricDelta:
        for base, cand, d in self.deltas:
            if (base, cand, d.metric) == (baseline, candidate, metric):
                return d
        raise KeyError(f"no delta of {metric} for {baseline} -> {candidate}")

    def table_records(self) -> list[dict[str, Any]]:
        """The case study's final table: one row per metric, one column per stage, then deltas vs the first."""
        rows = []
        first = self.stages[0]
        for metric, by_stage in self.values.items():
            row: dict[str, Any] = {"metric": metric}
            for stage in self.stages:
                value, stderr = by_stage.get(stage, (float("nan"), None))
                row[stage] = value
                row[f"{stage}_stderr"] = stderr
            for stage in self.stages[1:]:
                row[f"delta_{stage}_vs_{first}"] = by_stage[stage][0] - by_stage[first][0]
            rows.append(row)
        return rows

    def delta_records(self) -> list[dict[str, Any]]:
        return [{"baseline_stage": base, "candidate_stage": cand, **d.as_record()} for base, cand, d in self.deltas]


def _per_sample(result: EvalResult, metric: str, accuracy: list[float] | None) -> list[float]:
    if metric == "accuracy":
        assert accuracy is not None
        return accuracy
    return result.sample_values(metric)


def compare_stages(
    stages: dict[str, EvalResult], *, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> StageComparison:
    """Compare stages (insertion order: baseline first) evaluated on the same rows.

    Rows are matched by position and must carry the same golds; otherwise pairing would be meaningless.
    """
    names = list(stages)
    if len(names) < 2:
        raise EvaluationError("comparison needs at least two stages (baseline and a candidate)")
    first = stages[names[0]]
    for name in names[1:]:
        other = stages[name]
        if len(other.samples) != len(first.samples) or other.golds != first.golds:
            raise EvaluationError(
                f"stage {name!r} was not evaluated on the same rows as {names[0]!r} "
                f"({len(other.samples)} vs {len(first.samples)} samples, or different golds)"
            )
    for result in stages.values():
        fill_sample_metrics(result)
    label_task = bool(first.samples) and is_label_task(first.golds)
    accuracy = {n: classify(r.golds, r.predictions).correct for n, r in stages.items()} if label_task else {}
    values: dict[str, dict[str, tuple[float, float | None]]] = {}
    for metric in NOVA_METRICS:
        if all(metric in r.metrics for r in stages.values()):
            values[metric] = {n: (r.metrics.get(metric).value, r.metrics.get(metric).stderr) for n, r in stages.items()}
    paired = (list(SAMPLE_METRICS) if first.samples else []) + (["accuracy"] if label_task else [])
    for n_, acc in accuracy.items():
        arr = np.asarray(acc)
        se = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else None
        values.setdefault("accuracy", {})[n_] = (float(arr.mean()), se)
    comparison = StageComparison(stages=names, values=values, n=len(first.samples))
    pairs = [(names[0], c) for c in names[1:]] + [(names[i - 1], names[i]) for i in range(2, len(names))]
    for base, cand in pairs:
        for metric in paired:
            delta = paired_delta(
                _per_sample(stages[base], metric, accuracy.get(base)),
                _per_sample(stages[cand], metric, accuracy.get(cand)),
                metric,
                n_boot=n_boot,
                seed=seed,
                confidence=confidence,
            )
            comparison.deltas.append((base, cand, delta))
    _compare_related(stages, comparison, pairs, n_boot=n_boot, seed=seed, confidence=confidence)
    return comparison


def _compare_related(
    stages: dict[str, EvalResult],
    comparison: StageComparison,
    pairs: list[tuple[str, str]],
    *,
    n_boot: int,
    seed: int,
    confidence: float,
) -> None:
    """Add the other tasks' metrics (``<task>:<metric>``) that every stage has, with a test per delta.

    Paired (as for gen_qa) when every stage has per-sample values that reproduce the reported number; otherwise
    the unpaired z test when both numbers have a standard error (the judge's ``winrate`` gets one from its
    counts); otherwise the value is shown without a test (counts, interval bounds).
    """
    names = list(stages)
    first = stages[names[0]]
    for task in first.related:
        if not all(task in r.related for r in stages.values()):
            continue
        results = {n: r.related[task] for n, r in stages.items()}
        for row in first.related[task].metrics:
            if not all(row.name in r.metrics for r in results.values()):
                continue
            name = f"{task}:{row.name}"
            comparison.values[name] = {
                n: (r.metrics.get(row.name).value, r.metrics.get(row.name).stderr) for n, r in results.items()
            }
            for base, cand in pairs:
                a, b = results[base], results[cand]
                if _reproducible(a, row.name) and _reproducible(b, row.name) and len(a.samples) == len(b.samples):
                    delta = paired_delta(
                        a.sample_values(row.name),
                        b.sample_values(row.name),
                        name,
                        n_boot=n_boot,
                        seed=seed,
                        confidence=confidence,
                    )
                else:
                    se_a, se_b = _stderr(a, row.name), _stderr(b, row.name)
                    if se_a is None or se_b is None:
                        continue
                    delta = unpaired_delta(
                        name,
                        (a.metrics.get(row.name).value, se_a),
                        (b.metrics.get(row.name).value, se_b),
                        _valid_count(a),
                        confidence=confidence,
                    )
                comparison.deltas.append((base, cand, delta))


def _reproducible(result: EvalResult, metric: str) -> bool:
    """Per-sample values exist and their mean is the reported value (so a paired test tests that number)."""
    if not result.has_sample_values(metric):
        return False
    return math.isclose(float(np.mean(result.sample_values(metric))), result.metrics.get(metric).value, abs_tol=1e-9)


def _stderr(result: EvalResult, metric: str) -> float | None:
    """The reported stderr; for a judge's winrate (no stderr is reported) the binomial one from the counts."""
    stderr = result.metrics.get(metric).stderr
    if stderr is not None or metric != "winrate":
        return stderr
    n = _valid_count(result)
    value = result.metrics.get(metric).value
    return math.sqrt(value * (1 - value) / n) if n > 0 else None


def _valid_count(result: EvalResult) -> int:
    table = result.metrics
    if all(k in table for k in ("a_scores", "b_scores", "ties")):
        return int(sum(table.get(k).value for k in ("a_scores", "b_scores", "ties")))
    return len(result.samples)
