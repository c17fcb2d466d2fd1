"""``deploy.target: sagemaker_ic`` in the deploy flow (one component, smoke-tested, then cleaned up), and the task a
sweep calls to put several variants side by side on one endpoint."""

from __future__ import annotations

import json

import pytest
from prefect import flow

from flows.deploy_stage import CleanupParams, DeployFlowParams, cleanup, deploy
from flows.params import DeployParams
from novaflow.aws import get_client
from novaflow.deploy.components import ComponentEndpointSpec, ComponentSpec
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.targets import ask
from novaflow.settings import load_settings
from tasks.components import deploy_components_task, remove_component_task

SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."
BUCKET = "customer-escrow-123456789012-smtj-icflow"


@pytest.fixture
def eval_uri(aws: object) -> str:
    s3 = get_client("s3", settings=load_settings())
    s3.create_bucket(Bucket=BUCKET)
    rows = "".join(
        json.dumps({"query": f"Title: question {i}", "response": "HQ", "system": SYSTEM}) + "\n" for i in range(3)
    )
    s3.put_object(Bucket="novaflow-local", Key="icflow/gen_qa.jsonl", Body=rows.encode())
    return "s3://novaflow-local/icflow/gen_qa.jsonl"


@pytest.mark.slow
def test_the_deploy_flow_serves_a_checkpoint_as_an_inference_component_and_cleanup_removes_it(eval_uri: str) -> None:
    params = DeployFlowParams(
        run_name="icflow",
        checkpoint_uri=f"s3://{BUCKET}/sft/outputs/checkpoints",
        eval_uri=eval_uri,
        deploy=DeployParams(
            target="sagemaker_ic", instance_type="ml.g6.48xlarge", context_length=8000, max_concurrency=8
        ),
    )
    out = deploy(params)
    assert out["invoke_id"] == "novaflow-icflow/novaflow-icflow-model"
    assert out["smoke"].startswith("smoke test: 3/3 answers parsed")
    sm = get_client("sagemaker", settings=load_settings())
    assert [c["InferenceComponentName"] for c in sm.list_inference_components()["InferenceComponents"]] == [
        "novaflow-icflow-model"
    ]
    removed = cleanup(CleanupParams(deployment="novaflow-icflow"))["removed"]
    assert removed[:2] == [
        "sagemaker inference-component novaflow-icflow-model",
        "sagemaker endpoint novaflow-icflow",
    ]
    assert sm.list_inference_components()["InferenceComponents"] == [] and sm.list_endpoints()["Endpoints"] == []


@flow
def side_by_side(checkpoints: list[str]) -> list[str]:
    endpoint = ComponentEndpointSpec(endpoint_name="sweep-ab", instance_type="ml.g6.48xlarge", instance_count=2)
    env = EndpointEnvironment(context_length=8000, max_concurrency=8)
    specs = [
        ComponentSpec(component_name=f"sweep-ab-v{i}", checkpoint_uri=c, environment=env)
        for i, c in enumerate(checkpoints)
    ]
    deployed = deploy_components_task(endpoint, specs, settings=load_settings())
    answers = [
        ask(
            "sagemaker_ic", f"sweep-ab/{s.component_name}", "Title: question 1", system=SYSTEM, settings=load_settings()
        ).text
        for s in specs
    ]
    remove_component_task("sweep-ab", "sweep-ab-v0", settings=load_settings())
    answers.append(
        ask("sagemaker_ic", "sweep-ab/sweep-ab-v1", "Title: question 1", system=SYSTEM, settings=load_settings()).text
    )
    return [c.status for c in deployed.components] + answers


@pytest.mark.slow
def test_a_flow_puts_two_variants_on_one_endpoint_and_removes_one(eval_uri: str) -> None:
    result = side_by_side([f"s3://{BUCKET}/v0/outputs/checkpoints", f"s3://{BUCKET}/v1/outputs/checkpoints"])
    assert result[:2] == ["InService", "InService"]
    assert all(isinstance(a, str) and a for a in result[2:])
    assert result[3] == result[4]  # the remaining component answers as before its neighbour left
    sm = get_client("sagemaker", settings=load_settings())
    assert [c["InferenceComponentName"] for c in sm.list_inference_components()["InferenceComponents"]] == [
        "sweep-ab-v1"
    ]
