from __future__ import annotations

import pytest

import novaflow.deploy.teardown as deploy_teardown
from novaflow.aws import get_client
from novaflow.backoff import Backoff
from novaflow.deploy.bedrock import BedrockMode, BedrockSpec, deploy_bedrock
from novaflow.deploy.invoke import converse, converse_stream
from novaflow.deploy.tags import ESCROW_TAG_KEY, from_aws
from novaflow.deploy.teardown import teardown
from novaflow.local.aws.server import LOCAL_ROLE_NAME
from novaflow.settings import load_settings
from reward_lambda.labels import DEFAULT_LABELS, extract_label
from tests.aws.deploy.conftest import Sleeps

BR = ("bedrock", "iam")
SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."


def bedrock_inventory() -> dict[str, list[str]]:
    br, iam = get_client("bedrock", load_settings()), get_client("iam", load_settings())
    return {
        "models": sorted(m["modelName"] for m in br.list_custom_models()["modelSummaries"]),
        "deployments": sorted(
            d["customModelDeploymentName"] for d in br.list_custom_model_deployments()["modelDeploymentSummaries"]
        ),
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("novaflow-")),
    }


def test_on_demand_deploy_converse_stream_and_teardown(checkpoint: str, sleeps: Sleeps) -> None:
    deployment = deploy_bedrock(
        BedrockSpec(name="nova-sft-od", checkpoint_uri=checkpoint), sleep=sleeps, settings=load_settings()
    )
    assert deployment.status == "Active" and deployment.mode is BedrockMode.ON_DEMAND
    assert not deployment.custom_model_reused and deployment.role_created
    assert deployment.role_arn == "arn:aws:iam::123456789012:role/novaflow-br-nova-sft-od"
    br = get_client("bedrock", settings=load_settings())
    model = br.get_custom_model(modelIdentifier=deployment.custom_model_arn)
    assert model["modelStatus"] == "Active"
    tags = from_aws(br.list_tags_for_resource(resourceARN=deployment.custom_model_arn)["tags"])
    assert tags[ESCROW_TAG_KEY] == checkpoint and tags["novaflow:deployment"] == "nova-sft-od"

    answer = converse(
        deployment.invoke_arn, "Title: Why does my loop never end?", system=SYSTEM, settings=load_settings()
    )
    assert extract_label(answer.text, DEFAULT_LABELS) is not None and answer.finish_reason == "end_turn"
    pieces: list[str] = []
    streamed = converse_stream(
        deployment.invoke_arn,
        "Title: Why does my loop never end?",
        system=SYSTEM,
        on_text=pieces.append,
        settings=load_settings(),
    )
    assert streamed.text == "".join(pieces) == answer.text and len(pieces) > 1
    assert streamed.first_token_seconds is not None and streamed.usage is not None

    again = deploy_bedrock(
        BedrockSpec(name="nova-sft-od", checkpoint_uri=checkpoint), sleep=sleeps, settings=load_settings()
    )
    assert again.reused and again.invoke_arn == deployment.invoke_arn
    assert bedrock_inventory()["deployments"] == ["nova-sft-od"]

    report = teardown("nova-sft-od", services=BR, settings=load_settings())
    assert report.ok, report
    assert report.removed == [
        "bedrock deployment nova-sft-od",
        f"bedrock custom-model {model['modelName']}",
        "iam role novaflow-br-nova-sft-od",
    ]
    assert bedrock_inventory() == {"models": [], "deployments": [], "roles": [LOCAL_ROLE_NAME]}
    assert teardown("nova-sft-od", services=BR, settings=load_settings()).removed == []


def test_second_deployment_reuses_the_custom_model_and_the_last_teardown_removes_it(
    checkpoint: str, sleeps: Sleeps
) -> None:
    first = deploy_bedrock(
        BedrockSpec(name="nova-sft-a", checkpoint_uri=checkpoint), sleep=sleeps, settings=load_settings()
    )
    second = deploy_bedrock(
        BedrockSpec(name="nova-sft-b", checkpoint_uri=checkpoint + "/", mode=BedrockMode.PROVISIONED, model_units=1),
        sleep=sleeps,
        settings=load_settings(),
    )
    assert second.custom_model_reused and second.custom_model_arn == first.custom_model_arn
    assert second.status == "InService" and ":provisioned-model/" in second.invoke_arn
    assert len(bedrock_inventory()["models"]) == 1

    first_report = teardown("nova-sft-a", services=BR, settings=load_settings())
    assert first_report.removed == ["bedrock deployment nova-sft-a", "iam role novaflow-br-nova-sft-a"]
    assert any(k.startswith("bedrock custom-model") and "still used by" in k for k in first_report.kept)
    assert converse(
        second.invoke_arn, "Title: still there?", settings=load_settings()
    ).text  # the shared model still serves b

    last = teardown("nova-sft-b", services=BR, settings=load_settings())
    assert last.ok and last.removed[0] == "bedrock provisioned-throughput nova-sft-b"
    assert last.removed[1].startswith("bedrock custom-model nova-sft-a-")
    assert bedrock_inventory() == {"models": [], "deployments": [], "roles": [LOCAL_ROLE_NAME]}


def test_untagged_custom_model_survives_teardown_of_everything(checkpoint: str, aws: object) -> None:
    br = get_client("bedrock", settings=load_settings())
    arn = br.create_custom_model(
        modelName="someone-elses-model",
        roleArn="arn:aws:iam::123456789012:role/x",
        modelSourceConfig={"s3DataSource": {"s3Uri": checkpoint}},
    )["modelArn"]
    report = teardown(None, services=BR, settings=load_settings())
    assert report.removed == []
    assert "bedrock custom-model someone-elses-model (not tagged novaflow:managed=true)" in report.kept
    assert br.get_custom_model(modelIdentifier=arn)["modelName"] == "someone-elses-model"


def test_teardown_reports_a_custom_model_still_in_use_at_the_deadline(
    checkpoint: str, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS deletes a deployment asynchronously; while it is still listed its custom model cannot go, and a wait
    that runs out must say so (naming both) instead of giving up silently."""
    deployment = deploy_bedrock(
        BedrockSpec(name="nova-sft-slow", checkpoint_uri=checkpoint), sleep=sleeps, settings=load_settings()
    )
    requested: list[str] = []
    monkeypatch.setitem(deploy_teardown._DELETERS, "bedrock-deployment", lambda res, _s: requested.append(res.name))
    waits = Sleeps()
    report = teardown(
        "nova-sft-slow",
        services=BR,
        backoff=Backoff(initial=5, factor=1, maximum=5, deadline=12),
        sleep=waits,
        settings=load_settings(),
    )
    model = get_client("bedrock", settings=load_settings()).get_custom_model(
        modelIdentifier=deployment.custom_model_arn
    )["modelName"]
    assert requested == ["nova-sft-slow"] and waits.delays == [5, 5, 2]
    assert report.failed == [
        f"bedrock custom-model {model}: still used by bedrock deployment nova-sft-slow after 12 s (deadline 12 s); "
        "not deleted - run teardown again once they are gone."
    ]
    assert not report.ok and bedrock_inventory()["models"] == [model]
    assert report.removed == ["bedrock deployment nova-sft-slow", "iam role novaflow-br-nova-sft-slow"]
