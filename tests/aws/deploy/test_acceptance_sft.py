"""Acceptance: a checkpoint produced by the emulated SFT job is deployed, invoked (plain and streamed) and torn
down, leaving no endpoint, config, model, custom model or novaflow role behind."""

from __future__ import annotations

import json

import pytest

from novaflow.aws import get_client
from novaflow.deploy.smoke import load_eval_rows, smoke_test
from novaflow.deploy.targets import ask, deploy_checkpoint
from novaflow.deploy.teardown import teardown
from novaflow.jobs.spec import JobSpec
from novaflow.local.aws.server import LOCAL_ROLE_NAME
from novaflow.settings import load_settings
from reward_lambda.labels import DEFAULT_LABELS
from tests.aws.helpers import LABELS, SYSTEM, conversation_lines, put, trained_checkpoint


def sft_checkpoint() -> str:
    pairs = ((f"Title: question {i}", LABELS[i % 3]) for i in range(60))
    spec = JobSpec(
        model="nova-lite-2",
        method="sft_lora",
        train_uri=put("deploy-acc/train.jsonl", conversation_lines(pairs)),
        overrides={"max_steps": 4, "global_batch_size": 32},
    )
    return trained_checkpoint(spec)


def leftovers() -> dict[str, list[str]]:
    sm, br, iam = (
        get_client("sagemaker", load_settings()),
        get_client("bedrock", load_settings()),
        get_client("iam", load_settings()),
    )
    return {
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "custom_models": [m["modelName"] for m in br.list_custom_models()["modelSummaries"]],
        "roles": [
            r["RoleName"]
            for r in iam.list_roles()["Roles"]
            if r["RoleName"].startswith("novaflow-") and r["RoleName"] != LOCAL_ROLE_NAME
        ],
    }


def test_sft_checkpoint_deploy_invoke_stream_teardown(aws: object) -> None:
    pytest.importorskip("novaflow.local.emulator.emulate_sft")
    checkpoint = sft_checkpoint()
    assert checkpoint.startswith("s3://customer-escrow-123456789012-smtj-")
    eval_uri = put(
        "deploy-acc/gen_qa.jsonl",
        "".join(
            json.dumps({"query": f"Title: eval question {i}", "response": LABELS[i % 3], "system": SYSTEM}) + "\n"
            for i in range(5)
        ),
    )
    served = [
        deploy_checkpoint(
            "sagemaker",
            "nova-acc-sm",
            checkpoint,
            instance_type="ml.g6.48xlarge",
            context_length=8000,
            max_concurrency=8,
            sleep=lambda s: None,
            settings=load_settings(),
        ),
        deploy_checkpoint("bedrock_od", "nova-acc-od", checkpoint, sleep=lambda s: None, settings=load_settings()),
    ]
    rows = load_eval_rows(eval_uri, limit=3, settings=load_settings())
    for dep in served:
        assert dep.status in {"InService", "Active"}
        report = smoke_test(
            lambda q, s, d=dep: ask(d.target, d.invoke_id, q, system=s, settings=load_settings()).text,
            rows,
            labels=DEFAULT_LABELS,
        )
        assert report.passed, report.summary()
        plain = ask(dep.target, dep.invoke_id, rows[0]["query"], system=SYSTEM, settings=load_settings())
        streamed = ask(
            dep.target, dep.invoke_id, rows[0]["query"], system=SYSTEM, stream=True, settings=load_settings()
        )
        assert streamed.text == plain.text  # type: ignore[union-attr]
        assert streamed.first_token_seconds is not None  # type: ignore[union-attr]
    for dep in served:
        assert teardown(dep.name, services=dep.services, settings=load_settings()).ok
    assert leftovers() == {"endpoints": [], "configs": [], "models": [], "custom_models": [], "roles": []}
