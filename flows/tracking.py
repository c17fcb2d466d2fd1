"""MLflow around the end-to-end flow: the parent run at the start, the report and verdict at the end, and the
hook that closes the runs of a flow run that failed, crashed or was cancelled.

The URI comes from ``tracking.mlflow_uri`` or ``MLFLOW_TRACKING_URI``; without either nothing here imports mlflow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect.logging import get_logger

from flows.params import EndToEndParams
from flows.stages.run_log import RunLog
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.results import EvalResult
from novaflow.tracking.mlflow import (
    FLOW_RUN_TAG,
    MODEL_PACKAGE_TAG,
    MlflowRun,
    mark_flow_run_failed,
    resolve_tracking_uri,
)
from novaflow.tracking.records import comparison_metrics
from tasks.runs import current_flow_run_id
from tasks.tracking import finish_tracking_task, start_tracking_task

DEFAULT_EXPERIMENT = "novaflow"


def experiment_name(params: EndToEndParams) -> str:
    return params.tracking.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def start_tracking(params: EndToEndParams, model: str, flow_run_url: str | None) -> MlflowRun | None:
    """The run's MLflow parent (tags link the Prefect flow run), or None when no tracking URI is set."""
    uri = resolve_tracking_uri(params.tracking.mlflow_uri)
    if not uri:
        return None
    tags = {
        FLOW_RUN_TAG: current_flow_run_id(),
        "prefect.flow_run_url": flow_run_url,
        "novaflow.run_name": params.run_name,
        "novaflow.model": model,
    }
    data = params.data
    logged: dict[str, Any] = {
        "model": model,
        "data.source": data.source,
        "data.sft_rows": data.sft_rows,
        "data.eval_rows": data.eval_rows,
        "data.rft_rows": data.rft_rows,
        "data.seed": data.seed,
        "skip": ",".join(params.skip) or "-",
        "deploy.target": params.deploy.target,
        "gate.metric": params.deploy.gate.metric,
        "gate.min_delta": params.deploy.gate.min_delta,
        "gate.alpha": params.deploy.gate.alpha,
    }
    return start_tracking_task(
        uri,
        experiment=experiment_name(params),
        run_name=params.run_name,
        tags={k: v for k, v in tags.items() if v},
        params=logged,
    )


def finish_tracking(
    log: RunLog,
    work: Path,
    stages: dict[str, EvalResult],
    comparison: StageComparison | None,
    deployment: str | None,
) -> None:
    """Report, report.json and the metric tables as artifacts; the deltas as metrics; the verdict as tags."""
    if log.tracker is None or not log.tracker.active:
        return
    import pandas as pd

    tables = work / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    files = [p for p in (work / "report.html", work / "report.json") if p.exists()]
    for name, result in stages.items():
        path = tables / f"metrics-{name}.csv"
        pd.DataFrame(result.metrics.to_records()).to_csv(path, index=False)
        files.append(path)
    if comparison is not None:
        path = tables / "comparison.csv"
        pd.DataFrame(comparison.delta_records()).to_csv(path, index=False)
        files.append(path)
    tags = {
        "novaflow.gate": None if log.gate is None else ("approved" if log.gate.approved else "rejected"),
        "novaflow.deployment": deployment,
        MODEL_PACKAGE_TAG: log.model_package_version,
    }
    finish_tracking_task(
        log.tracker,
        artifacts=files,
        metrics=comparison_metrics(comparison) if comparison is not None else None,
        tags={k: v for k, v in tags.items() if v},
    )


def close_tracking(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: a run that did not finish is marked FAILED (or KILLED when cancelled) in MLflow too."""
    raw = (getattr(flow_run, "parameters", None) or {}).get("params") or {}
    explicit = (
        raw.tracking.mlflow_uri if isinstance(raw, EndToEndParams) else (raw.get("tracking") or {}).get("mlflow_uri")
    )
    uri = resolve_tracking_uri(explicit)
    if not uri:
        return
    status = "KILLED" if getattr(state, "is_cancelled", lambda: False)() else "FAILED"
    closed = mark_flow_run_failed(uri, str(flow_run.id), status)
    if closed:
        get_logger("novaflow.hooks").warning(
            "flow run %s is %s: MLflow run(s) %s marked %s", flow_run.id, state.name, ", ".join(closed), status
        )
