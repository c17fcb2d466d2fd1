"""One novaflow run as an MLflow parent run with a nested run per stage, for teams that compare runs in MLflow.

Tracking is a convenience next to the run, never a reason for it to fail: the first error (the package missing,
the server unreachable, a permission denied) is logged once as a warning and every later call is skipped. HTTP
retries are capped (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``_TIMEOUT`` unless already set) so an unreachable
server costs seconds, not minutes. Any tracking URI works: a local ``sqlite:///`` file, an MLflow server, or a
SageMaker managed MLflow ARN (with the ``sagemaker-mlflow`` plugin the ``mlflow`` extra installs). ``mlflow`` is
imported only when tracking is on, so the CLI stays fast without it.

Example:
    >>> run = MlflowRun("sqlite:///mlflow.db", experiment="novaflow", run_name="case-study")  # doctest: +SKIP
    >>> run.start(); run.stage("Baseline", metrics={"em": 0.048}); run.finish()                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

SAGEMAKER_MLFLOW_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-(tracking-server|app)/\S+$")
PARENT_TAG = "mlflow.parentRunId"
FLOW_RUN_TAG = "prefect.flow_run_id"
MODEL_PACKAGE_TAG = "novaflow.model_package_version"
MAX_PARAM_CHARS = 6000
BATCH = {"metrics": 1000, "params": 100, "tags": 100}
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def is_sagemaker_mlflow_arn(uri: str | None) -> bool:
    """A SageMaker managed MLflow tracking server (or MLflow app) ARN: what a Nova recipe's mlflow field takes."""
    return bool(uri) and SAGEMAKER_MLFLOW_ARN.match(uri or "") is not None


def resolve_tracking_uri(explicit: str | None = None) -> str | None:
    """The flow parameter first, then ``MLFLOW_TRACKING_URI``; None means no tracking."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or None


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local sqlite store go beside the database (MLflow's default is ``./mlruns`` in the cwd)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return None


class MlflowRun:
    """A parent run and its nested stage runs, written with ``MlflowClient`` (explicit run ids, no global state)."""

    def __init__(
        self,
        uri: str,
        *,
        experiment: str,
        run_name: str,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.uri = uri
        self.experiment = experiment
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.params = dict(params or {})
        self.parent_id: str | None = None
        self.stage_ids: dict[str, str] = {}
        self.failed: str | None = None
        self._client: Any = None
        self._experiment_id: str | None = None

    @property
    def active(self) -> bool:
        return self.failed is None and self.parent_id is not None

    def _safely(self, what: str, action: Callable[[], T]) -> T | None:
        if self.failed is not None:
            return None
        try:
            return action()
        except Exception as exc:  # tracking must never fail the run: say it once, then stop trying
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning(
                "MLflow tracking to %s stopped while %s (%s); the run goes on without it.", self.uri, what, self.failed
            )
            return None

    def start(self) -> bool:
        """Create the experiment (if new) and the parent run; False when tracking is off from here on."""
        self._safely("starting the run", self._start)
        return self.active

    def _start(self) -> None:
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise RuntimeError("the mlflow package is not installed: pip install 'novaflow[mlflow]'") from exc
        self._client = MlflowClient(tracking_uri=self.uri)
        found = self._client.get_experiment_by_name(self.experiment)
        self._experiment_id = (
            found.experiment_id
            if found is not None
            else self._client.create_experiment(self.experiment, artifact_location=artifact_location(self.uri))
        )
        run = self._client.create_run(self._experiment_id, run_name=self.run_name, tags=self.tags)
        self.parent_id = run.info.run_id
        self._log(self.parent_id, params=self.params)

    def stage(
        self,
        name: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        series: Mapping[str, Iterable[tuple[int, float]]] | None = None,
        tags: Mapping[str, str] | None = None,
        status: str = "FINISHED",
    ) -> str | None:
        """A nested run for one stage: its parameters, its metrics, its curves (one value per step)."""
        if not self.active:
            return None

        def create() -> str:
            run = self._client.create_run(
                self._experiment_id,
                run_name=name,
                tags={PARENT_TAG: self.parent_id, "novaflow.stage": name, **self.tags, **dict(tags or {})},
            )
            run_id: str = run.info.run_id
            self._log(run_id, params=params, metrics=metrics, series=series)
            self._client.set_terminated(run_id, status=status)
            return run_id

        run_id = self._safely(f"logging stage {name}", create)
        if run_id:
            self.stage_ids[name] = run_id
        return run_id

    def log_parent(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if self.active:
            self._safely(
                "logging the run", lambda: self._log(self.parent_id, params=params, metrics=metrics, tags=tags)
            )

    def artifact(self, path: str | Path, folder: str | None = None) -> None:
        """Attach a file (the report, its JSON, a metric table) to the parent run."""
        if self.active:
            self._safely(
                f"uploading {Path(path).name}", lambda: self._client.log_artifact(self.parent_id, str(path), folder)
            )

    def finish(self, status: str = "FINISHED") -> None:
        if self.active:
            self._safely("closing the run", lambda: self._client.set_terminated(self.parent_id, status=status))

    def _log(
        self,
        run_id: str | None,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float | None] | None = None,
        series: Mapping[str, Iterable[tuple[int, float]]] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        assert run_id is not None
        now = int(time.time() * 1000)
        metric_list = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if v is not None and _number(v)]
        for key, points in (series or {}).items():
            metric_list += [Metric(key, float(v), now, int(step)) for step, v in points if _number(v)]
        param_list = [Param(k, _param(v)) for k, v in (params or {}).items() if v is not None]
        tag_list = [RunTag(k, str(v)) for k, v in (tags or {}).items() if v is not None]
        for metric_chunk in _chunks(metric_list, BATCH["metrics"]):
            self._client.log_batch(run_id, metrics=metric_chunk)
        for param_chunk in _chunks(param_list, BATCH["params"]):
            self._client.log_batch(run_id, params=param_chunk)
        for tag_chunk in _chunks(tag_list, BATCH["tags"]):
            self._client.log_batch(run_id, tags=tag_chunk)


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and value == value and abs(value) != float("inf")
    )


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"


def _chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mark_flow_run_failed(uri: str, flow_run_id: str, status: str = "FAILED") -> list[str]:
    """Close every still-running MLflow run of a Prefect flow run (the flow's failure hook calls this)."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(
            experiments, filter_string=f"tags.`{FLOW_RUN_TAG}` = '{flow_run_id}' and attributes.status = 'RUNNING'"
        )
        for run in runs:
            client.set_terminated(run.info.run_id, status=status)
        return [r.info.run_id for r in runs]
    except Exception as exc:
        log.warning("could not mark the MLflow runs of flow run %s %s at %s: %s", flow_run_id, status, uri, exc)
        return []
