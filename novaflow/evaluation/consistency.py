"""Recompute a parsed run's gen_qa metrics from its per-sample records and flag disagreements.

If the archive's numbers and our recomputation differ, either the archive is incomplete (samples missing), the
predictions were post-processed before scoring, or our engine drifted from Nova's; any of those must be seen
before a number is trusted for a promotion decision.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from novaflow.evaluation.metrics import NOVA_METRICS, nova_results_json, sample_metrics
from novaflow.evaluation.results import Disagreement, MetricRow, MetricTable

if TYPE_CHECKING:
    from novaflow.evaluation.results import Disagreement, EvalResult, MetricTable


def fill_sample_metrics(result: EvalResult) -> None:
    """Give every sample its gen_qa per-sample metrics where the details file did not (recomputed, exact)."""
    for sample in result.samples:
        if any(name not in sample.metrics for name in ("em", "qem", "f1", "rouge1")):
            computed = sample_metrics(sample.gold, sample.prediction)
            for name, value in computed.items():
                sample.metrics.setdefault(name, value)


def check_against_samples(result: EvalResult, *, rel_tol: float = 1e-9) -> list[Disagreement]:
    """Metrics whose reported value or stderr is not reproduced from the samples within ``rel_tol``."""
    fill_sample_metrics(result)
    entry = nova_results_json(result.golds, result.predictions)["results"]["all"]
    out: list[Disagreement] = []
    for row in result.metrics:
        if row.name not in NOVA_METRICS:
            continue
        pairs = [(row.name, row.value, entry.get(row.name))]
        if row.stderr is not None:
            pairs.append((f"{row.name}_stderr", row.stderr, entry.get(f"{row.name}_stderr")))
        for name, reported, recomputed in pairs:
            if recomputed is None or not math.isclose(reported, recomputed, rel_tol=rel_tol, abs_tol=1e-12):
                out.append(Disagreement(name, reported, float("nan") if recomputed is None else recomputed))
    return out


def recomputed_table(result: EvalResult) -> MetricTable:
    """The gen_qa metric table computed from the samples alone (for outputs without a results file)."""
    if not result.samples:
        return MetricTable()
    fill_sample_metrics(result)
    entry = nova_results_json(result.golds, result.predictions)["results"]["all"]
    return MetricTable([MetricRow(name, entry[name], entry.get(f"{name}_stderr")) for name in NOVA_METRICS])
