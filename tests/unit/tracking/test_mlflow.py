"""MlflowRun against a real MLflow store (sqlite in a temp dir), read back through MLflow's own client."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is part of dev")

from mlflow.tracking import MlflowClient

from novaflow.tracking.mlflow import (
    FLOW_RUN_TAG,
    PARENT_TAG,
    MlflowRun,
    is_sagemaker_mlflow_arn,
    mark_flow_run_failed,
)

pytestmark = pytest.mark.slow  # an MLflow tracking store on disk (MLflow's import alone takes seconds)


def test_parent_and_nested_stage_runs_with_metrics_curves_and_artifacts(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = MlflowRun(uri, experiment="novaflow-test", run_name="demo", tags={FLOW_RUN_TAG: "fr-1"}, params={"rows": 500})
    assert run.start()
    run.stage("Baseline", metrics={"em": 0.048, "em_stderr": 0.0096, "skipped": None}, params={"job_name": "j1"})
    run.stage("sft", series={"loss": [(1, 2.5), (2, 1.25), (3, 0.5)]}, tags={"novaflow.job_name": "j2"})
    report = tmp_path / "report.html"
    report.write_text("<html></html>")
    run.artifact(report)
    run.log_parent(metrics={"em.Post-SFT_vs_Baseline.delta": 0.814}, tags={"novaflow.gate": "approved"})
    run.finish()
    assert run.failed is None

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(run.parent_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "demo"
    assert parent.data.params == {"rows": "500"} and parent.data.tags["novaflow.gate"] == "approved"
    assert parent.data.metrics == {"em.Post-SFT_vs_Baseline.delta": 0.814}
    assert [a.path for a in client.list_artifacts(run.parent_id)] == ["report.html"]
    # the artifacts went beside the database, not into ./mlruns of whatever directory the flow ran in
    assert (tmp_path / "mlartifacts").is_dir()

    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{run.parent_id}'", order_by=["start_time"]
    )
    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {"Baseline", "sft"}
    assert by_name["Baseline"].data.metrics == {"em": 0.048, "em_stderr": 0.0096}
    assert by_name["Baseline"].data.tags[FLOW_RUN_TAG] == "fr-1"  # every stage links the Prefect flow run
    history = client.get_metric_history(by_name["sft"].info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.5), (2, 1.25), (3, 0.5)]

    # a second parent left RUNNING (the flow died) is closed by the failure hook's helper; finished ones are not
    dead = MlflowRun(uri, experiment="novaflow-test", run_name="dead", tags={FLOW_RUN_TAG: "fr-2"})
    assert dead.start()
    assert mark_flow_run_failed(uri, "fr-2") == [dead.parent_id]
    assert client.get_run(dead.parent_id).info.status == "FAILED"
    assert mark_flow_run_failed(uri, "fr-1") == []


def test_an_unreachable_server_warns_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = MlflowRun(f"http://127.0.0.1:{port}", experiment="x", run_name="r")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="novaflow.tracking.mlflow"):
        assert run.start() is False
        assert run.stage("sft", metrics={"loss": 1.0}) is None
        run.artifact("/nonexistent")
        run.finish()
    warnings = [r.getMessage() for r in caplog.records if r.name == "novaflow.tracking.mlflow"]
    assert (
        len(warnings) == 1
        and f"MLflow tracking to http://127.0.0.1:{port} stopped while starting the run" in (warnings[0])
    )
    assert time.monotonic() - started < 120  # capped retries, not MLflow's default minutes of backoff


def test_sagemaker_mlflow_arns() -> None:
    assert is_sagemaker_mlflow_arn("arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/team")
    assert is_sagemaker_mlflow_arn("arn:aws:sagemaker:us-west-2:123456789012:mlflow-app/app-abc123")
    assert not is_sagemaker_mlflow_arn("sqlite:///mlflow.db")
    assert not is_sagemaker_mlflow_arn("arn:aws:sagemaker:us-east-1:123456789012:training-job/x")
    assert not is_sagemaker_mlflow_arn(None)
