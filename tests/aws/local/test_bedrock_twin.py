"""Bedrock under the patches: ARN lookups, consistent model ARNs, import, deployments, throughput, Converse."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.models.classifier import base_answer
from novaflow.settings import load_settings
from tests.aws.helpers import customization_job

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def test_customization_job_by_arn_progresses_and_names_its_model(twin) -> None:
    twin.control.set_transition("bedrock::model_customization_job", {"progression": "manual", "times": 1})
    bedrock = boto3.client("bedrock")
    arn = customization_job("cust-1", "my-model")
    statuses = [bedrock.get_model_customization_job(jobIdentifier=arn)["status"] for _ in range(3)]
    assert statuses == ["InProgress", "Completed", "Completed"]
    job = bedrock.get_model_customization_job(jobIdentifier=arn)
    model = bedrock.get_custom_model(modelIdentifier=job["outputModelArn"])
    assert model["modelArn"] == job["outputModelArn"] == "arn:aws:bedrock:us-east-1:123456789012:custom-model/my-model"


def test_import_deploy_converse_and_delete(twin) -> None:
    twin.control.set_transition("bedrock::custom_model_deployment", {"progression": "manual", "times": 1})
    bedrock = boto3.client("bedrock")
    model_arn = bedrock.create_custom_model(
        modelName="imported",
        roleArn=LOCAL_ROLE_ARN,
        modelSourceConfig={"s3DataSource": {"s3Uri": "s3://customer-escrow-123456789012-smtj-local/none/"}},
    )["modelArn"]
    assert bedrock.get_custom_model(modelIdentifier=model_arn)["modelStatus"] == "Active"
    deployment = bedrock.create_custom_model_deployment(modelDeploymentName="od-1", modelArn=model_arn)[
        "customModelDeploymentArn"
    ]
    assert [
        bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=deployment)["status"] for _ in range(2)
    ] == ["Creating", "Active"]
    throughput = bedrock.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName="pt-1", modelId=model_arn
    )["provisionedModelArn"]
    assert bedrock.get_provisioned_model_throughput(provisionedModelId=throughput)["status"] == "InService"
    system, question = "Reply HQ, LQ_EDIT or LQ_CLOSE.", "my code no work plz fix"
    reply = boto3.client("bedrock-runtime").converse(
        modelId=deployment, system=[{"text": system}], messages=[{"role": "user", "content": [{"text": question}]}]
    )
    # No emulator checkpoint behind the import: the base model answers.
    assert reply["output"]["message"]["content"][0]["text"] == base_answer(system, question)
    assert reply["stopReason"] == "end_turn"
    stream = boto3.client("bedrock-runtime").converse_stream(
        modelId=throughput, system=[{"text": system}], messages=[{"role": "user", "content": [{"text": question}]}]
    )
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in stream["stream"] if "contentBlockDelta" in e)
    assert text == base_answer(system, question)
    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=deployment)
    bedrock.delete_provisioned_model_throughput(provisionedModelId=throughput)
    bedrock.delete_custom_model(modelIdentifier=model_arn)
    with pytest.raises(ClientError) as info:
        bedrock.get_custom_model(modelIdentifier=model_arn)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def _imported(bedrock, name: str) -> str:
    return bedrock.create_custom_model(
        modelName=name,
        roleArn=LOCAL_ROLE_ARN,
        modelSourceConfig={"s3DataSource": {"s3Uri": f"s3://customer-escrow-123456789012-smtj-local/{name}/"}},
    )["modelArn"]


def test_provisioned_throughputs_and_deployments_list_with_filters_and_pages(twin) -> None:
    twin.control.set_transition("bedrock::provisioned_model_throughput", {"progression": "manual", "times": 1})
    bedrock = boto3.client("bedrock", config=NO_RETRY)
    first, second = _imported(bedrock, "list-a"), _imported(bedrock, "list-b")
    pt = {
        name: bedrock.create_provisioned_model_throughput(modelUnits=units, provisionedModelName=name, modelId=model)[
            "provisionedModelArn"
        ]
        for name, units, model in (("pt-a1", 1, first), ("pt-a2", 2, first), ("pt-b1", 3, second))
    }
    od = {
        name: bedrock.create_custom_model_deployment(modelDeploymentName=name, modelArn=model)[
            "customModelDeploymentArn"
        ]
        for name, model in (("od-a1", first), ("od-b1", second))
    }
    listed = bedrock.list_provisioned_model_throughputs()["provisionedModelSummaries"]
    # Newest first (AWS's default sort), every one still Creating: listing does not advance the status.
    assert [(s["provisionedModelName"], s["modelUnits"], s["status"]) for s in listed] == [
        ("pt-b1", 3, "Creating"),
        ("pt-a2", 2, "Creating"),
        ("pt-a1", 1, "Creating"),
    ]
    assert listed[0]["provisionedModelArn"] == pt["pt-b1"] and listed[0]["modelArn"] == second
    by_model = bedrock.list_provisioned_model_throughputs(modelArnEquals=first, sortOrder="Ascending")
    assert [s["provisionedModelName"] for s in by_model["provisionedModelSummaries"]] == ["pt-a1", "pt-a2"]
    bedrock.get_provisioned_model_throughput(provisionedModelId=pt["pt-a2"])
    assert [
        s["provisionedModelName"]
        for s in bedrock.list_provisioned_model_throughputs(statusEquals="InService")["provisionedModelSummaries"]
    ] == ["pt-a2"]
    page = bedrock.list_provisioned_model_throughputs(maxResults=2, sortOrder="Ascending")
    rest = bedrock.list_provisioned_model_throughputs(maxResults=2, sortOrder="Ascending", nextToken=page["nextToken"])
    assert [
        s["provisionedModelName"] for s in page["provisionedModelSummaries"] + rest["provisionedModelSummaries"]
    ] == ["pt-a1", "pt-a2", "pt-b1"]
    assert "nextToken" not in rest
    deployments = bedrock.list_custom_model_deployments(nameContains="-b", modelArnEquals=second)
    assert [
        (d["customModelDeploymentName"], d["customModelDeploymentArn"]) for d in deployments["modelDeploymentSummaries"]
    ] == [("od-b1", od["od-b1"])]
    assert (
        bedrock.list_custom_model_deployments(nameContains="-b", modelArnEquals=first)["modelDeploymentSummaries"] == []
    )
    bedrock.delete_provisioned_model_throughput(provisionedModelId="pt-a1")
    assert [
        s["provisionedModelArn"]
        for s in bedrock.list_provisioned_model_throughputs(modelArnEquals=first)["provisionedModelSummaries"]
    ] == [pt["pt-a2"]]


def test_deployment_and_throughput_tags_are_stored_changed_and_dropped_with_the_resource(twin) -> None:
    bedrock = boto3.client("bedrock", config=NO_RETRY)
    model = _imported(bedrock, "tagged")
    owner = [{"key": "novaflow:managed", "value": "true"}, {"key": "novaflow:deployment", "value": "nova-sft"}]
    deployment = bedrock.create_custom_model_deployment(modelDeploymentName="od-tagged", modelArn=model, tags=owner)[
        "customModelDeploymentArn"
    ]
    throughput = bedrock.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName="pt-tagged", modelId=model, tags=owner[:1]
    )["provisionedModelArn"]
    untagged = bedrock.create_custom_model_deployment(modelDeploymentName="od-bare", modelArn=model)[
        "customModelDeploymentArn"
    ]
    assert bedrock.list_tags_for_resource(resourceARN=deployment)["tags"] == owner
    assert bedrock.list_tags_for_resource(resourceARN=throughput)["tags"] == owner[:1]
    assert bedrock.list_tags_for_resource(resourceARN=untagged)["tags"] == []
    bedrock.tag_resource(resourceARN=throughput, tags=[{"key": "team", "value": "ml"}])
    bedrock.untag_resource(resourceARN=throughput, tagKeys=["novaflow:managed"])
    assert bedrock.list_tags_for_resource(resourceARN=throughput)["tags"] == [{"key": "team", "value": "ml"}]
    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=deployment)
    with pytest.raises(ClientError) as info:
        bedrock.list_tags_for_resource(resourceARN=deployment)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert info.value.response["Error"]["Message"] == f"Resource {deployment} not found"
    # A deployment created again under the old name does not inherit the deleted one's tags.
    again = bedrock.create_custom_model_deployment(modelDeploymentName="od-tagged", modelArn=model)[
        "customModelDeploymentArn"
    ]
    assert bedrock.list_tags_for_resource(resourceARN=again)["tags"] == []


def test_teardown_of_an_empty_account_lists_every_service_at_once(twin) -> None:
    from novaflow.deploy.teardown import teardown

    report = teardown(None, settings=load_settings())
    assert report.unlisted == [] and report.failed == [] and report.removed == []
    assert report.ok
