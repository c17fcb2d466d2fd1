"""The end-to-end flow on the embedded AWS: artifacts, failure handling, nothing left running."""

from __future__ import annotations

import boto3
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from flows.end_to_end import end_to_end
from novaflow.evaluation.parser import parse_eval_output
from tests.flows.helpers import artifacts_of, logs_of, sft_job_name, small_params, training_jobs


def test_end_to_end_leaves_artifacts_that_match_the_jobs_outputs(aws, tmp_path) -> None:
    params = small_params("e2e-artifacts", tmp_path)
    slots_before = _active_slots("novaflow-training-jobs")
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    arts = artifacts_of(state.state_details.flow_run_id)

    # One metric table per evaluation, equal to what the evaluation archive in S3 says.
    for stage in ("baseline", "post-sft", "post-rft"):
        table = {row["metric"]: row for row in arts[f"eval-{stage}-metrics"]["data"]}
        job = result["jobs"][stage]
        archive = parse_eval_output(f"s3://novaflow-local/novaflow/jobs/{job}/output/output.tar.gz")
        assert table["em"]["value"] == pytest.approx(archive.metrics.get("em").value, abs=1e-12)
        assert set(table) >= {"rouge1", "rouge2", "rougeL", "em", "qem", "f1", "f1_score_quasi", "bleu"}

    # The comparison carries every stage and a paired test for each delta.
    deltas = arts["eval-comparison"]["data"]
    pairs = {(d["baseline_stage"], d["candidate_stage"]) for d in deltas}
    assert ("Baseline", "Post-SFT") in pairs and ("Baseline", "Post-RFT") in pairs
    em = next(
        d
        for d in deltas
        if d["metric"] == "em" and d["candidate_stage"] == "Post-SFT" and d["baseline_stage"] == "Baseline"
    )
    assert em["p_value"] < 0.05 and em["ci_low"] > 0  # SFT really learned on the emulator

    assert {
        "data-report-sft-sft",
        "data-report-eval-eval",
        "data-report-rft-rft",
        "data-splits",
        "reward-verification",
        "deploy-gate",
        "eval-report",
    } <= set(arts)
    assert arts["data-splits"]["data"]
    summary = arts["run-summary-e2e-artifacts"]["data"]
    for stage in ("baseline", "sft", "rft"):
        assert result["jobs"][stage] in summary
    assert "## Cost estimates" in summary and "## Gate" in summary
    progress = [k for k, a in arts.items() if a["type"] == "progress"]
    assert progress and all(arts[k]["data"] == 100 for k in progress)

    # Every job held a slot of the training-job limit (created on first use) and gave it back. (A run killed in
    # another test keeps its slot until the lease expires, as it would in production.)
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("novaflow-training-jobs")
    assert (limit.limit, limit.active_slots) == (2, slots_before)

    # Training log lines reached the Prefect run log.
    assert any("reduced_train_loss" in line for line in logs_of(state.state_details.flow_run_id))
    # Cleanup ran: no endpoint, endpoint config or model is left behind.
    sm = boto3.client("sagemaker")
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []


def test_failing_job_fails_the_flow_with_reason_and_log_tail(aws, tmp_path) -> None:
    params = small_params("e2e-failing", tmp_path)
    name = sft_job_name(params)
    aws.control.fail_job(name, "AlgorithmError: CUDA out of memory (emulated)")
    state = end_to_end(params, return_state=True)
    assert state.is_failed()
    logs = "\n".join(logs_of(state.state_details.flow_run_id))
    assert (
        f"sft job {name} did not complete (Failed): Job {name} failed: AlgorithmError: CUDA out of memory (emulated)."
    ) in logs
    assert "last log lines:" in logs and "[ERROR] Training job failed: AlgorithmError" in logs
    # No later stage ran: only the baseline evaluation and the failed SFT job exist, nothing was deployed.
    names = sorted(j["TrainingJobName"] for j in training_jobs())
    assert len(names) == 2 and name in names
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_an_existing_training_job_limit_is_kept() -> None:
    from tasks.runs import ensure_concurrency_limit

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="team-jobs", limit=1))
        ensure_concurrency_limit("team-jobs", 5)
        ensure_concurrency_limit("new-jobs", 3)
        assert client.read_global_concurrency_limit_by_name("team-jobs").limit == 1
        assert client.read_global_concurrency_limit_by_name("new-jobs").limit == 3


def _active_slots(name: str) -> int:
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:
            return 0
