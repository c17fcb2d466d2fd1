"""Thin tasks around :mod:`novaflow.tracking.mlflow`: start the run's MLflow parent, log a stage, close it.

None of them can fail a flow (the domain object swallows and reports its first error), none is cached (each call
writes to the tracking server once) and none persists its result (the run handle holds a client, not data).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from novaflow.tracking.mlflow import MlflowRun

TRACKING_TASK: dict[str, Any] = {"cache_policy": NONE, "persist_result": False, "retries": 0}


@task(name="start-mlflow-run", **TRACKING_TASK)
def start_tracking_task(
    uri: str, *, experiment: str, run_name: str, tags: Mapping[str, str], params: Mapping[str, Any]
) -> MlflowRun:
    run = MlflowRun(uri, experiment=experiment, run_name=run_name, tags=tags, params=params)
    if run.start():
        get_run_logger().info("MLflow run %s in experiment %s at %s", run.parent_id, experiment, uri)
    return run


@task(name="track-stage", **TRACKING_TASK)
def track_stage_task(
    run: MlflowRun,
    stage: str,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float | None] | None = None,
    series: Mapping[str, Iterable[tuple[int, float]]] | None = None,
    tags: Mapping[str, str] | None = None,
) -> str | None:
    return run.stage(stage, params=params, metrics=metrics, series=series, tags=tags)


@task(name="finish-mlflow-run", **TRACKING_TASK)
def finish_tracking_task(
    run: MlflowRun,
    *,
    artifacts: Iterable[Path] = (),
    metrics: Mapping[str, float | None] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """The report and metric tables as artifacts, the comparison as metrics, the verdict as tags; then FINISHED."""
    run.log_parent(metrics=metrics, tags=tags)
    for path in artifacts:
        run.artifact(path)
    run.finish()
