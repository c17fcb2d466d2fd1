"""The deploy tasks inside a flow run: gate -> human approval (Prefect pause with a typed input) -> deploy ->
smoke test -> teardown, resumed from another thread the way a person in the UI would."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from prefect import flow

from novaflow.aws import get_client
from novaflow.errors import DeployError
from novaflow.evaluation.compare import MetricDelta, StageComparison
from novaflow.settings import load_settings
from tasks.deploy import deploy_task, gate_task, request_approval, smoke_test_task, teardown_task
from tests.flows.helpers import resume_when_paused

SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."
BUCKET = "customer-escrow-123456789012-smtj-flowtest"
CHECKPOINT = f"s3://{BUCKET}/job/outputs/checkpoints"
GOOD = StageComparison(
    stages=["baseline", "sft"],
    values={},
    deltas=[("baseline", "sft", MetricDelta("em", 0.40, 0.48, 0.08, 0.03, 0.13, 0.002, 150))],
)


@flow
def gated_deploy(eval_uri: str) -> dict[str, Any]:
    decision = gate_task(GOOD, "em", min_delta=0.02)
    approval = request_approval(decision, f"`{CHECKPOINT}` as `nova-flow`", timeout_seconds=60, poll_interval=1)
    served = deploy_task(
        "sagemaker",
        "nova-flow",
        CHECKPOINT,
        instance_type="ml.g6.48xlarge",
        context_length=8000,
        max_concurrency=8,
        settings=load_settings(),
    )
    smoke = smoke_test_task(
        "sagemaker", served.invoke_id, eval_uri, rows=2, labels=["HQ", "LQ_EDIT", "LQ_CLOSE"], settings=load_settings()
    )
    report = teardown_task("nova-flow", target="sagemaker", settings=load_settings())
    return {"reviewer": approval.reviewer, "smoke": smoke.summary(), "removed": report.removed}


@pytest.fixture
def eval_uri(aws: object) -> str:
    s3 = get_client("s3", settings=load_settings())
    s3.create_bucket(Bucket=BUCKET)
    rows = "".join(
        json.dumps({"query": f"Title: question {i}", "response": "HQ", "system": SYSTEM}) + "\n" for i in range(3)
    )
    s3.put_object(Bucket="novaflow-local", Key="flowtest/gen_qa.jsonl", Body=rows.encode())
    return "s3://novaflow-local/flowtest/gen_qa.jsonl"


def test_approved_deployment_runs_smoke_test_and_tears_down(eval_uri: str) -> None:
    run_name = f"approve-{uuid.uuid4().hex[:8]}"
    thread = resume_when_paused(run_name, {"approve": True, "reviewer": "alice", "note": "numbers look right"})
    result = gated_deploy.with_options(flow_run_name=run_name)(eval_uri)
    thread.join(5)
    assert result["reviewer"] == "alice"
    assert re.fullmatch(r"smoke test: 2/2 answers parsed, [0-2]/2 equal to the expected label", result["smoke"])
    assert result["removed"][0] == "sagemaker endpoint nova-flow"
    assert get_client("sagemaker", settings=load_settings()).list_endpoints()["Endpoints"] == []


def test_rejected_deployment_deploys_nothing(eval_uri: str) -> None:
    run_name = f"reject-{uuid.uuid4().hex[:8]}"
    thread = resume_when_paused(run_name, {"approve": False, "reviewer": "bob", "note": "wait for the RFT run"})
    with pytest.raises(DeployError, match="rejected by bob: wait for the RFT run"):
        gated_deploy.with_options(flow_run_name=run_name)(eval_uri)
    thread.join(5)
    assert get_client("sagemaker", settings=load_settings()).list_endpoints()["Endpoints"] == []
    assert get_client("sagemaker", settings=load_settings()).list_models()["Models"] == []
