from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from novaflow.aws import get_client
from novaflow.jobs.spec import JobSpec
from novaflow.settings import load_settings

SERVICES = ("s3", "sagemaker", "iam", "lambda", "logs", "sts", "bedrock")


@pytest.fixture
def calls(aws) -> Iterator[list[str]]:
    """Names of every AWS operation novaflow's cached clients send during the test (botocore before-call)."""
    seen: list[str] = []

    def hook(model, **_: object) -> None:
        seen.append(model.name)

    clients = [get_client(s, settings=load_settings()) for s in SERVICES]
    for c in clients:
        c.meta.events.register("before-call", hook)
    yield seen
    for c in clients:
        c.meta.events.unregister("before-call", hook)


def put_jsonl(key: str, rows: int) -> str:
    body = "".join(
        '{"schemaVersion": "bedrock-conversation-2024", "messages": [{"role": "user", "content": '
        f'[{{"text": "q{i}"}}]}}, {{"role": "assistant", "content": [{{"text": "HQ"}}]}}]}}\n'
        for i in range(rows)
    )
    get_client("s3", settings=load_settings()).put_object(Bucket="novaflow-local", Key=key, Body=body.encode())
    return f"s3://novaflow-local/{key}"


def sft_spec(**kw: object) -> JobSpec:
    base = {
        "model": "nova-lite-2",
        "method": "sft_lora",
        "train_uri": "s3://novaflow-local/data/train.jsonl",
        "overrides": {"max_steps": 4},
    }
    return JobSpec(**{**base, **kw})


def stub_role(stub: Any, role: str, decisions: dict[str, str]) -> None:
    """Stubbed IAM answers for the dry run's role check: a role trusting SageMaker, and one simulation decision
    per action, in the order the dry run asks."""
    import json

    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
    stub.add_response(
        "get_role",
        {
            "Role": {
                "Path": "/",
                "RoleName": role.rsplit("/", 1)[1],
                "RoleId": "AROAEXAMPLEID123456",
                "Arn": role,
                "CreateDate": 0,
                "AssumeRolePolicyDocument": json.dumps(trust),
            }
        },
        {"RoleName": role.rsplit("/", 1)[1]},
    )
    stub.add_response(
        "simulate_principal_policy",
        {"EvaluationResults": [{"EvalActionName": a, "EvalDecision": d} for a, d in decisions.items()]},
        {"PolicySourceArn": role, "ActionNames": list(decisions)},
    )
