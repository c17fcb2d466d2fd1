"""Acceptance: a checkpoint produced by the emulated SFT job is deployed, invoked (plain and streamed) and torn
down, leaving no endpoint, config, model, custom model or novaflow role behind."""

from __future__ import annotations

import json

import pytest

from novaflow.aws import get_client
from novaflow.deploy.smoke import load_eval_rows, smoke_test
from novaflow.deploy.targets import ask, deploy_checkpoint
from novaflow.deploy.teardown import teardown
from novaflow.jobs.outputs import resolve_checkpoint
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.local.aws.server import LOCAL_ROLE_NAME
from novaflow.settings import load_settings
from reward_lambda.labels import DEFAULT_LABELS

SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."
LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")


def put(key: str, body: str) -> str:
    get_client("s3", settings=load_settings()).put_object(Bucket="novaflow-local", Key=key, Body=body.encode())
    return f"s3://novaflow-local/{key}"


def sft_checkpoint() -> str:
    rows = "".join(
        json.dumps(
            {
                "schemaVersion": "bedrock-conversation-2024",
                "system": [{"text": SYSTEM}],
                "messages": [
                    {"role": "user", "content": [{"text": f"Title: question {i}"}]},
                    {"role": "assistant", "content": [{"text": LABELS[i % 3]}]},
                ],
            }
        )
        + "\n"
        for i in range(60)
    )
    spec = JobSpec(
        model="nova-lite-2",
        method="sft_lora",
        train_uri=put("deploy-acc/train.jsonl", rows),
        overrides={"max_steps": 4, "global_batch_size": 32},
    )
    record = submit_training_job(spec, settings=load_settings())
    done = wait_for_job(
        record.name,
        poll_seconds=0.05,
        max_poll_seconds=0.2,
        max_wait_seconds=60,
        record=record,
        settings=load_settings(),
    )
    assert done.status.value == "Completed"
    return resolve_checkpoint(record.output_uri, record.name, settings=load_settings())


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
