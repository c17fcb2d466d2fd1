"""Bedrock under the patches: ARN lookups, consistent model ARNs, import, deployments, throughput, Converse."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from novaflow.local.model import base_answer
from novaflow.local.server import LOCAL_ROLE_ARN


def test_customization_job_by_arn_progresses_and_names_its_model(twin) -> None:
    twin.control.set_transition("bedrock::model_customization_job", {"progression": "manual", "times": 1})
    bedrock = boto3.client("bedrock")
    arn = bedrock.create_model_customization_job(
        jobName="cust-1", customModelName="my-model", roleArn=LOCAL_ROLE_ARN,
        baseModelIdentifier="amazon.nova-2-lite-v1:0:256k", customizationType="FINE_TUNING",
        trainingDataConfig={"s3Uri": "s3://novaflow-local/data/train.jsonl"},
        outputDataConfig={"s3Uri": "s3://novaflow-local/out/"}, hyperParameters={"epochCount": "2"})["jobArn"]
    statuses = [bedrock.get_model_customization_job(jobIdentifier=arn)["status"] for _ in range(3)]
    assert statuses == ["InProgress", "Completed", "Completed"]
    job = bedrock.get_model_customization_job(jobIdentifier=arn)
    model = bedrock.get_custom_model(modelIdentifier=job["outputModelArn"])
    assert model["modelArn"] == job["outputModelArn"] == \
        "arn:aws:bedrock:us-east-1:123456789012:custom-model/my-model"


def test_import_deploy_converse_and_delete(twin) -> None:
    twin.control.set_transition("bedrock::custom_model_deployment", {"progression": "manual", "times": 1})
    bedrock = boto3.client("bedrock")
    model_arn = bedrock.create_custom_model(
        modelName="imported", roleArn=LOCAL_ROLE_ARN,
        modelSourceConfig={"s3DataSource": {"s3Uri": "s3://customer-escrow-123456789012-smtj-local/none/"}})[
        "modelArn"]
    assert bedrock.get_custom_model(modelIdentifier=model_arn)["modelStatus"] == "Active"
    deployment = bedrock.create_custom_model_deployment(modelDeploymentName="od-1", modelArn=model_arn)[
        "customModelDeploymentArn"]
    assert [bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=deployment)["status"]
            for _ in range(2)] == ["Creating", "Active"]
    throughput = bedrock.create_provisioned_model_throughput(modelUnits=1, provisionedModelName="pt-1",
                                                             modelId=model_arn)["provisionedModelArn"]
    assert bedrock.get_provisioned_model_throughput(provisionedModelId=throughput)["status"] == "InService"
    system, question = "Reply HQ, LQ_EDIT or LQ_CLOSE.", "my code no work plz fix"
    reply = boto3.client("bedrock-runtime").converse(
        modelId=deployment, system=[{"text": system}],
        messages=[{"role": "user", "content": [{"text": question}]}])
    # No emulator checkpoint behind the import: the base model answers.
    assert reply["output"]["message"]["content"][0]["text"] == base_answer(system, question)
    assert reply["stopReason"] == "end_turn"
    stream = boto3.client("bedrock-runtime").converse_stream(
        modelId=throughput, system=[{"text": system}], messages=[{"role": "user", "content": [{"text": question}]}])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in stream["stream"] if "contentBlockDelta" in e)
    assert text == base_answer(system, question)
    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=deployment)
    bedrock.delete_provisioned_model_throughput(provisionedModelId=throughput)
    bedrock.delete_custom_model(modelIdentifier=model_arn)
    with pytest.raises(ClientError) as info:
        bedrock.get_custom_model(modelIdentifier=model_arn)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
