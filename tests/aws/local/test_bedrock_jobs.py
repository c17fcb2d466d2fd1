"""Bedrock's jobs and serving resources under one table: idempotent create, lookup by ARN or name, List* filters and
pages, and stop, each answered in AWS's words (the botocore model's shapes and error codes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from novaflow.local.aws.server import LOCAL_ROLE_ARN

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@dataclass(frozen=True)
class Kind:
    label: str
    create: str
    get: str
    stop: str
    list: str
    summaries: str
    conflict: str
    request: Callable[[str, str | None], dict[str, Any]]


def _customization(name: str, token: str | None) -> dict[str, Any]:
    return {
        "jobName": name,
        "customModelName": f"{name}-model",
        "roleArn": LOCAL_ROLE_ARN,
        "baseModelIdentifier": "amazon.nova-2-lite-v1:0:256k",
        "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": "s3://novaflow-local/data/train.jsonl"},
        "outputDataConfig": {"s3Uri": "s3://novaflow-local/out/"},
        "hyperParameters": {"epochCount": "1"},
        **({"clientRequestToken": token} if token else {}),
    }


def _invocation(name: str, token: str | None) -> dict[str, Any]:
    return {
        "jobName": name,
        "roleArn": LOCAL_ROLE_ARN,
        "modelId": "amazon.nova-2-lite-v1:0",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://novaflow-local/none/"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://novaflow-local/out/"}},
        **({"clientRequestToken": token} if token else {}),
    }


CUSTOMIZATION = Kind(
    "Model customization job",
    "create_model_customization_job",
    "get_model_customization_job",
    "stop_model_customization_job",
    "list_model_customization_jobs",
    "modelCustomizationJobSummaries",
    "Model customization job {name} already exists",
    _customization,
)
INVOCATION = Kind(
    "Model invocation job",
    "create_model_invocation_job",
    "get_model_invocation_job",
    "stop_model_invocation_job",
    "list_model_invocation_jobs",
    "invocationJobSummaries",
    "A model invocation job with the name {name} already exists.",
    _invocation,
)


def _error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


@pytest.mark.parametrize("kind", [CUSTOMIZATION, INVOCATION], ids=["customization", "invocation"])
def test_a_job_table_answers_both_kinds_alike(aws: Any, kind: Kind) -> None:
    bedrock = boto3.client("bedrock", config=NO_RETRY)
    call = lambda operation, **kw: getattr(bedrock, operation)(**kw)  # noqa: E731
    arns = {name: call(kind.create, **kind.request(name, f"tok-{name}"))["jobArn"] for name in ("ja-1", "ja-2", "jb-1")}
    # the same token again: the first job, not a second one; the name again under a new token: a conflict
    assert call(kind.create, **kind.request("ja-1", "tok-ja-1"))["jobArn"] == arns["ja-1"]
    assert _error(lambda: call(kind.create, **kind.request("ja-1", "other"))) == (
        "ConflictException",
        kind.conflict.format(name="ja-1"),
    )
    # found by ARN (URL-encoded in the path by boto3) or by name
    assert call(kind.get, jobIdentifier=arns["ja-2"])["jobName"] == "ja-2"
    assert call(kind.get, jobIdentifier="jb-1")["jobArn"] == arns["jb-1"]
    assert _error(lambda: call(kind.get, jobIdentifier="nope")) == (
        "ResourceNotFoundException",
        f"{kind.label} nope not found",
    )
    # newest first by default, filtered by name, paged by maxResults / nextToken
    listed = call(kind.list)[kind.summaries]
    assert [s["jobName"] for s in listed] == ["jb-1", "ja-2", "ja-1"]
    assert [s["jobArn"] for s in call(kind.list, nameContains="ja-")[kind.summaries]] == [arns["ja-2"], arns["ja-1"]]
    first = call(kind.list, maxResults=2, sortOrder="Ascending")
    rest = call(kind.list, maxResults=2, sortOrder="Ascending", nextToken=first["nextToken"])
    assert [s["jobName"] for s in first[kind.summaries] + rest[kind.summaries]] == ["ja-1", "ja-2", "jb-1"]
    assert "nextToken" not in rest


def test_a_finished_job_cannot_be_stopped_and_a_running_one_stops(twin: Any) -> None:
    bedrock = boto3.client("bedrock", config=NO_RETRY)
    twin.control.set_transition("bedrock::model_customization_job", {"progression": "manual", "times": 1})
    running = bedrock.create_model_customization_job(**_customization("stop-me", None))["jobArn"]
    bedrock.stop_model_customization_job(jobIdentifier=running)
    assert bedrock.get_model_customization_job(jobIdentifier="stop-me")["status"] == "Stopped"
    assert _error(lambda: bedrock.stop_model_customization_job(jobIdentifier="stop-me")) == (
        "ValidationException",
        f"The job {running} is Stopped and cannot be stopped.",
    )
    batch = bedrock.create_model_invocation_job(**_invocation("finishes", None))["jobArn"]
    deadline = time.monotonic() + 10
    while (status := bedrock.get_model_invocation_job(jobIdentifier=batch)["status"]) not in {"Failed", "Completed"}:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert _error(lambda: bedrock.stop_model_invocation_job(jobIdentifier=batch)) == (
        "ValidationException",
        f"The job {batch} is {status} and cannot be stopped.",
    )
    assert [
        s["jobName"] for s in bedrock.list_model_invocation_jobs(statusEquals=status)["invocationJobSummaries"]
    ] == ["finishes"]


def test_a_deployment_and_a_throughput_are_created_once_per_client_token(aws: Any) -> None:
    bedrock = boto3.client("bedrock", config=NO_RETRY)
    model = bedrock.create_custom_model(
        modelName="tokened",
        roleArn=LOCAL_ROLE_ARN,
        modelSourceConfig={"s3DataSource": {"s3Uri": "s3://customer-escrow-123456789012-smtj-local/tokened/"}},
    )["modelArn"]
    tags = [{"key": "novaflow:managed", "value": "true"}]
    deploy = {"modelDeploymentName": "od-tok", "modelArn": model, "tags": tags, "clientRequestToken": "d1"}
    first = bedrock.create_custom_model_deployment(**deploy)["customModelDeploymentArn"]
    assert bedrock.create_custom_model_deployment(**deploy)["customModelDeploymentArn"] == first
    assert _error(lambda: bedrock.create_custom_model_deployment(**{**deploy, "clientRequestToken": "d2"})) == (
        "ConflictException",
        "Custom model deployment od-tok already exists",
    )
    assert [
        d["customModelDeploymentArn"] for d in bedrock.list_custom_model_deployments()["modelDeploymentSummaries"]
    ] == [first]
    assert bedrock.list_tags_for_resource(resourceARN=first)["tags"] == tags
    throughput = {"provisionedModelName": "pt-tok", "modelId": model, "modelUnits": 1, "clientRequestToken": "p1"}
    arn = bedrock.create_provisioned_model_throughput(**throughput)["provisionedModelArn"]
    assert bedrock.create_provisioned_model_throughput(**throughput)["provisionedModelArn"] == arn
    assert _error(
        lambda: bedrock.create_provisioned_model_throughput(**{**throughput, "clientRequestToken": "p2"})
    ) == (
        "ConflictException",
        "Provisioned model pt-tok already exists",
    )
