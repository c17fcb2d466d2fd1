"""Serverless stages and the model registry in the flows: a gated deployment from the approved version, re-runs
that attach, rejected versions that are never deployed, and the approval pause reflected in the registry."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from flows.deploy_stage import DeployFlowParams, deploy
from flows.end_to_end import end_to_end
from flows.params import DeployParams, EvaluationParams, GateParams, JobParams
from novaflow.cli import app
from novaflow.registry.packages import default_group, list_versions
from novaflow.settings import load_settings
from tests.flows.helpers import artifacts_of, resume_when_paused, small_params, training_jobs

SERVERLESS = {"platform": "SERVERLESS", "accept_eula": True}


def _serverless_params(run_name: str, tmp_path: Any, **changes: Any) -> Any:
    return small_params(
        run_name,
        tmp_path,
        baseline=EvaluationParams(**SERVERLESS),
        sft=JobParams(**SERVERLESS, overrides={"max_steps": 60}),
        rft=JobParams(**SERVERLESS, overrides={"max_steps": 6}),
        evaluation=EvaluationParams(**SERVERLESS),
        **changes,
    )


def test_serverless_end_to_end_deploys_the_approved_version_and_a_rerun_attaches(aws, tmp_path) -> None:
    params = _serverless_params("sls-e2e", tmp_path)
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    group = default_group("nova-lite-2", "sls-e2e")
    sft, rft = list_versions(group, settings=load_settings())

    # every job ran without instances, as a serverless job
    sm = boto3.client("sagemaker")
    jobs = {j["TrainingJobName"] for j in training_jobs()}
    assert jobs == set(result["jobs"].values()) and len(jobs) == 5
    for name in jobs:
        described = sm.describe_training_job(TrainingJobName=name)
        assert "ServerlessJobConfig" in described and "AlgorithmSpecification" not in described
    assert sm.describe_training_job(TrainingJobName=result["jobs"]["rft"])["OutputModelPackageArn"] == rft.arn

    # a version per training stage, with lineage, its evaluation and the gate's decision
    assert (sft.version, sft.status, rft.version, rft.status) == (1, "PendingManualApproval", 2, "Approved")
    assert rft.approval_description == result["gate"].split(": ", 1)[1]
    assert rft.lineage["source"] == sft.arn and rft.lineage["stage"] == "rft"
    assert rft.lineage["data:train"].endswith("/data/rft/data/rft.jsonl")
    assert len(rft.lineage["data:train:sha256"]) == 64
    assert rft.lineage["flow-run"] == str(state.state_details.flow_run_id)
    assert sft.metrics["em"] == pytest.approx(result["metrics"]["post-sft"]["em"], abs=1e-6)
    assert rft.metrics["em"] == pytest.approx(result["metrics"]["post-rft"]["em"], abs=1e-6)
    summary = artifacts_of(state.state_details.flow_run_id)["run-summary-sls-e2e"]["data"]
    assert f"deployed from model package version {rft.arn}" in summary
    assert "## Model registry" in summary and f"| rft | {rft.group} | 2 | Approved |" in summary
    assert f"- rft: `{rft.arn}`\n  - approval: {rft.approval_description}\n" in summary
    # every table row fits the page: long values (ARNs, URIs, reasons) stand on their own lines
    assert not [row for row in summary.splitlines() if row.startswith("|") and len(row) > 160]

    # teardown removed the endpoint, never the versions; the registry CLI shows them with status and lineage
    assert sm.list_endpoints()["Endpoints"] == []
    listed = CliRunner().invoke(app, ["registry", "list", "--run-name", "sls-e2e"])
    assert f"  v2  Approved               stage rft      job {result['jobs']['rft']}" in listed.output
    assert f"        source: {sft.arn}" in listed.output

    # a re-run attaches to every job: no new job, no new version
    again = end_to_end(params, return_state=True)
    assert again.is_completed(), again.message
    assert {j["TrainingJobName"] for j in training_jobs()} == jobs
    assert [v.arn for v in list_versions(group, settings=load_settings())] == [sft.arn, rft.arn]
    assert again.result()["jobs"] == result["jobs"]


def test_a_rejected_version_is_never_deployed(aws, tmp_path) -> None:
    gate = GateParams(min_delta=0.99)  # no candidate can clear it
    params = small_params("sls-reject", tmp_path, stages=["sft"], deploy=DeployParams(gate=gate))
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    (version,) = list_versions(default_group("nova-lite-2", "sls-reject"), settings=load_settings())
    assert version.status == "Rejected"
    assert version.approval_description.startswith(
        "refused: the improvement"
    ) and "is below the required margin +0.9900" in (version.approval_description)
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []
    # asking the deploy flow for it fails before anything is created
    failed = deploy(
        DeployFlowParams(run_name="sls-reject", deploy=DeployParams(model_package=version.arn)), return_state=True
    )
    assert failed.is_failed()
    assert f"Model package {version.arn} is Rejected: refused: the improvement" in str(failed.message)
    assert "a rejected version is never deployed" in str(failed.message)
    sm = boto3.client("sagemaker")
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []


def test_the_approval_pause_is_pending_in_the_registry_and_the_answer_is_recorded(aws, tmp_path) -> None:
    run_name = f"sls-pause-{uuid.uuid4().hex[:6]}"
    gate = GateParams(human_approval=True, approval_timeout_seconds=120)
    params = small_params(run_name, tmp_path, stages=["sft"], deploy=DeployParams(gate=gate))
    group = default_group("nova-lite-2", run_name)
    seen: dict[str, Any] = {}
    answer = {"approve": False, "reviewer": "ana", "note": "not yet"}

    def look() -> None:
        seen["versions"] = [(v.status, v.approval_description) for v in list_versions(group, settings=load_settings())]

    thread = resume_when_paused(run_name, answer, on_pause=look)
    state = end_to_end.with_options(flow_run_name=run_name)(params, return_state=True)
    thread.join(10)
    assert state.is_failed()
    ((status, reason),) = seen["versions"]
    assert status == "PendingManualApproval" and reason.startswith("gate approved; awaiting a person")
    (version,) = list_versions(group, settings=load_settings())
    assert version.status == "Rejected"
    assert version.approval_description.startswith("Deployment of post-sft model package")
    assert "rejected by ana: not yet" in version.approval_description
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []
