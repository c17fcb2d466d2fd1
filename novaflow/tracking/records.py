"""What of a stage goes to a tracking server: novaflow's results flattened to parameters, metrics and curves.

Kept apart from the MLflow client so the shapes are plain dicts a test can read and another tracker can reuse.
"""

from __future__ import annotations

from typing import Any

from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.results import EvalResult
from novaflow.jobs.records import JobRecord
from novaflow.jobs.series import TrainingSeries
from novaflow.jobs.spec import JobSpec

SERIES_EXCLUDED = frozenset({"epoch"})


def eval_metrics(result: EvalResult) -> dict[str, float | None]:
    """Every metric of an evaluation with its standard error (``<metric>_stderr``), as the results file has them."""
    out: dict[str, float | None] = {}
    for row in result.metrics:
        out[row.name] = row.value
        if row.stderr is not None:
            out[f"{row.name}_stderr"] = row.stderr
    out["samples"] = float(len(result.samples))
    return out


def series_points(series: TrainingSeries) -> dict[str, list[tuple[int, float]]]:
    """Each curve as (step, value) pairs: ``loss`` for SFT; ``reward_mean``, ``kl``, ... for RFT."""
    return {name: series.points(name) for name in series.values if name not in SERIES_EXCLUDED and series.has(name)}


def job_params(record: JobRecord, spec: JobSpec | None = None) -> dict[str, Any]:
    """Which job ran, on what, with which recipe overrides and data (enough to find or repeat it)."""
    params: dict[str, Any] = {
        "job_name": record.name,
        "platform": record.platform.value,
        "method": record.method,
        "model": record.model,
        "attached": record.attached,
        "output_uri": record.output_uri,
    }
    params.update({f"data.{channel}": uri for channel, uri in record.data.items()})
    if spec is not None:
        params["instance_type"] = spec.instance_type
        params["instance_count"] = spec.instance_count
        params["model_name_or_path"] = spec.model_name_or_path
        params.update({f"override.{k}": v for k, v in sorted(spec.overrides.items())})
    return params


def comparison_metrics(comparison: StageComparison) -> dict[str, float]:
    """Each paired delta with its CI and p-value, keyed ``<metric>.<candidate>_vs_<baseline>.<field>``."""
    out: dict[str, float] = {}
    for base, cand, d in comparison.deltas:
        key = f"{d.metric}.{cand}_vs_{base}"
        out.update(
            {
                f"{key}.delta": d.delta,
                f"{key}.ci_low": d.ci_low,
                f"{key}.ci_high": d.ci_high,
                f"{key}.p_value": d.p_value,
            }
        )
    return out
