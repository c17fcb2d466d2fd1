"""The end-to-end run as a graph: when one branch fails, the others are stopped with their jobs and the run fails
in one line naming the stage."""

from __future__ import annotations

import boto3
import pytest

from flows.end_to_end import end_to_end, run_plan
from tests.flows.helpers import baseline_job_name, logs_of, sft_job_name, small_params, training_jobs

pytestmark = pytest.mark.slow


def test_the_baseline_failing_while_sft_trains_stops_sft_and_fails_the_run_naming_the_baseline(aws, tmp_path) -> None:
    params = small_params("graph-fail", tmp_path)
    baseline, sft = baseline_job_name(params), sft_job_name(params)
    aws.control.stall_job(sft)  # SFT trains until someone stops it
    aws.control.fail_job(baseline, "AlgorithmError: evaluation container exited (emulated)")
    state = end_to_end(params, return_state=True)

    assert state.is_failed()
    assert state.message.endswith(
        f"StageFailed: stage baseline failed: Job {baseline} failed: AlgorithmError: evaluation container exited "
        "(emulated)."
    ), state.message
    sagemaker = boto3.client("sagemaker")
    assert sagemaker.describe_training_job(TrainingJobName=sft)["TrainingJobStatus"] == "Stopped"  # not billing
    assert sorted(j["TrainingJobName"] for j in training_jobs()) == sorted([baseline, sft])  # nothing started after
    assert all(j["TrainingJobStatus"] != "InProgress" for j in training_jobs())
    logs = "\n".join(logs_of(state.state_details.flow_run_id))
    assert f"stopped training job(s) {sft}" in logs
    assert "stage baseline: failed" in logs and "stage sft: stopped" in logs
    assert "stage post-sft" not in logs and "stage rft:" not in logs


def test_the_case_study_graph() -> None:
    plan = run_plan(small_params("graph-shape", "."))  # type: ignore[arg-type]
    graph = plan.graph
    assert graph.order() == [
        "data",
        "reward-check",
        "reward-lambda",
        "baseline",
        "sft",
        "post-sft",
        "rft",
        "post-rft",
        "compare",
        "gate",
        "deploy",
        "smoke",
        "cleanup",
    ]
    needs = {key: set(graph.upstream(key)) for key in graph.stages}
    assert needs["baseline"] == {"data", "reward-check"} and needs["sft"] == {"data", "reward-check"}
    assert needs["rft"] == {"data", "sft", "reward-lambda", "reward-check"}  # not the evaluation of SFT
    assert needs["post-sft"] == {"data", "sft"} and needs["compare"] == {"baseline", "post-sft", "post-rft"}
    assert plan.evaluations == ("baseline", "post-sft", "post-rft") and plan.candidate == "rft"
    path, _ = graph.critical_path({"sft": 1.0, "rft": 1.0, "post-rft": 1.0, "baseline": 1.0, "post-sft": 1.0})
    assert [k for k in path if k in {"sft", "rft", "post-rft", "baseline", "post-sft"}] == ["sft", "rft", "post-rft"]
