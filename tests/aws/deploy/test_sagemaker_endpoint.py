from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from novaflow.aws import get_client
from novaflow.backoff import Backoff
from novaflow.deploy.endpoint import deploy_sagemaker_endpoint, describe_endpoint_status
from novaflow.deploy.endpoint_spec import DeployMode, EndpointSpec
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.invoke import invoke_endpoint, invoke_endpoint_stream
from novaflow.deploy.teardown import teardown
from novaflow.errors import ConfigError, DeployError
from novaflow.settings import load_settings
from reward_lambda.labels import DEFAULT_LABELS, extract_label
from tests.aws.deploy.conftest import Sleeps

SM = ("sagemaker", "iam")  # endpoint-only deployments: no Bedrock listing needed
SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."


def spec_for(checkpoint: str, **changes: Any) -> EndpointSpec:
    fields: dict[str, Any] = {
        "endpoint_name": "nova-sft",
        "checkpoint_uri": checkpoint,
        "instance_type": "ml.g6.48xlarge",
        "environment": EndpointEnvironment(context_length=8000, max_concurrency=4),
    }
    fields.update(changes)
    return EndpointSpec(**fields)


def names(listing: dict[str, Any], key: str, name_key: str) -> list[str]:
    return sorted(item[name_key] for item in listing[key])


def inventory() -> dict[str, list[str]]:
    sm, iam = get_client("sagemaker", load_settings()), get_client("iam", load_settings())
    return {
        "endpoints": names(sm.list_endpoints(), "Endpoints", "EndpointName"),
        "configs": names(sm.list_endpoint_configs(), "EndpointConfigs", "EndpointConfigName"),
        "models": names(sm.list_models(), "Models", "ModelName"),
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("novaflow-")),
    }


def make_untagged_endpoint(checkpoint: str) -> None:
    """Someone else's endpoint whose names look like ours, and someone else's novaflow-named role."""
    sm, iam = get_client("sagemaker", load_settings()), get_client("iam", load_settings())
    sm.create_model(
        ModelName="nova-sft-handmade",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "img", "ModelDataUrl": checkpoint + "/"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="nova-sft-handmade",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": "nova-sft-handmade",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g6.48xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName="nova-sft-handmade", EndpointConfigName="nova-sft-handmade")
    iam.create_role(RoleName="novaflow-sm-nova-sft-handmade", AssumeRolePolicyDocument="{}")


@pytest.fixture
def sent() -> Iterator[dict[str, dict[str, Any]]]:
    """The parameters of every SageMaker call novaflow makes, by operation name (last call wins)."""
    calls: dict[str, dict[str, Any]] = {}

    def record(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        calls[model.name] = dict(params)

    events = get_client("sagemaker", settings=load_settings()).meta.events
    events.register("provide-client-params.sagemaker", record, unique_id="deploy-test-record")
    yield calls
    events.unregister("provide-client-params.sagemaker", unique_id="deploy-test-record")


def test_deploy_invoke_stream_and_teardown_leave_nothing_but_untagged(
    checkpoint: str, sleeps: Sleeps, sent: dict[str, dict[str, Any]]
) -> None:
    make_untagged_endpoint(checkpoint)
    before = inventory()
    seen: list[str] = []
    deployment = deploy_sagemaker_endpoint(
        spec_for(checkpoint), sleep=sleeps, on_status=seen.append, settings=load_settings()
    )
    assert deployment.status == "InService" and deployment.role_created and not deployment.reused
    assert seen[-1] == "InService"

    sm = get_client("sagemaker", settings=load_settings())
    model = sm.describe_model(ModelName=deployment.model_name)
    assert (
        model["PrimaryContainer"]["Image"]
        == "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-inference-repo:SM-Inference-latest"
    )
    assert model["PrimaryContainer"]["Environment"] == {"CONTEXT_LENGTH": "8000", "MAX_CONCURRENCY": "4"}
    assert model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"] == {
        "S3Uri": checkpoint + "/",
        "S3DataType": "S3Prefix",
        "CompressionType": "None",
    }
    # moto 5.2.5 drops EnableNetworkIsolation from CreateModel, so check what went over the wire.
    assert sent["CreateModel"]["EnableNetworkIsolation"] is True
    assert model["ExecutionRoleArn"] == deployment.role_arn == "arn:aws:iam::123456789012:role/novaflow-sm-nova-sft"
    config = sm.describe_endpoint_config(EndpointConfigName=deployment.config_name)
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g6.48xlarge"

    iam = get_client("iam", settings=load_settings())
    policy = iam.get_role_policy(RoleName="novaflow-sm-nova-sft", PolicyName="novaflow-deploy-access")
    doc = policy["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert doc["Statement"][0]["Resource"] == [f"arn:aws:s3:::{checkpoint[5:]}/*"]
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName="novaflow-sm-nova-sft")["Tags"]}
    assert tags["novaflow:managed"] == "true" and tags["novaflow:deployment"] == "nova-sft"

    plain = invoke_endpoint(
        "nova-sft", "Title: How do I reverse a list in Python?", system=SYSTEM, settings=load_settings()
    )
    assert plain.text and extract_label(plain.text, DEFAULT_LABELS) is not None
    assert plain.usage and plain.usage["completion_tokens"] > 0
    pieces: list[str] = []
    streamed = invoke_endpoint_stream(
        "nova-sft",
        "Title: How do I reverse a list in Python?",
        system=SYSTEM,
        on_text=pieces.append,
        settings=load_settings(),
    )
    assert streamed.text == "".join(pieces) == plain.text  # same prompt, same deterministic model
    assert len(pieces) > 1 and streamed.first_token_seconds is not None
    assert 0 <= streamed.first_token_seconds <= streamed.total_seconds
    assert streamed.finish_reason == "stop"

    report = teardown("nova-sft", services=SM, settings=load_settings())
    assert report.ok and report.failed == []
    assert report.removed == [
        "sagemaker endpoint nova-sft",
        f"sagemaker endpoint-config {deployment.config_name}",
        f"sagemaker model {deployment.model_name}",
        "iam role novaflow-sm-nova-sft",
    ]
    assert "sagemaker endpoint nova-sft-handmade (not tagged novaflow:managed=true)" in report.kept
    assert inventory() == before  # only the untagged resources are left
    again = teardown("nova-sft", services=SM, settings=load_settings())
    assert again.removed == [] and again.ok


def test_invalid_tier_is_refused_before_any_aws_call(checkpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import novaflow.deploy.endpoint as endpoint
    import novaflow.deploy.roles as roles

    def no_aws(*args: object, **kwargs: object) -> None:
        raise AssertionError("an AWS client was requested before validation")

    monkeypatch.setattr(endpoint, "get_client", no_aws)
    monkeypatch.setattr(roles, "get_client", no_aws)
    bad = spec_for(checkpoint, environment=EndpointEnvironment(context_length=16000, max_concurrency=8))
    with pytest.raises(ConfigError, match=r"allowed tiers: \(CONTEXT_LENGTH<=8000, MAX_CONCURRENCY<=8\)\."):
        deploy_sagemaker_endpoint(bad, settings=load_settings())
    with pytest.raises(ConfigError, match=r"cannot be hosted on ml\.g5\.12xlarge"):
        deploy_sagemaker_endpoint(spec_for(checkpoint, instance_type="ml.g5.12xlarge"), settings=load_settings())


def test_create_mode_reuses_same_spec_and_refuses_a_different_one(checkpoint: str, sleeps: Sleeps) -> None:
    first = deploy_sagemaker_endpoint(spec_for(checkpoint), sleep=sleeps, settings=load_settings())
    created = inventory()
    again = deploy_sagemaker_endpoint(spec_for(checkpoint), sleep=sleeps, settings=load_settings())
    assert again.reused and again.config_name == first.config_name and again.role_arn == first.role_arn
    assert inventory() == created  # nothing new
    other = spec_for(checkpoint, environment=EndpointEnvironment(context_length=8000, max_concurrency=8))
    with pytest.raises(
        DeployError,
        match=r"Endpoint nova-sft already exists \(status InService, config "
        rf"{first.config_name}\); deploy with mode=update",
    ):
        deploy_sagemaker_endpoint(other, sleep=sleeps, settings=load_settings())
    assert inventory() == created
    teardown("nova-sft", services=SM, settings=load_settings())


def test_update_in_place_switches_config_and_removes_the_old_one(checkpoint: str, sleeps: Sleeps) -> None:
    first = deploy_sagemaker_endpoint(spec_for(checkpoint), sleep=sleeps, settings=load_settings())
    other = spec_for(checkpoint, environment=EndpointEnvironment(context_length=8000, max_concurrency=8))
    updated = deploy_sagemaker_endpoint(other, mode=DeployMode.UPDATE, sleep=sleeps, settings=load_settings())
    assert updated.config_name != first.config_name and updated.status == "InService"
    assert updated.replaced == [f"endpoint-config {first.config_name}", f"model {first.model_name}"]
    status = describe_endpoint_status("nova-sft", settings=load_settings())
    assert status is not None and status.config_name == updated.config_name
    assert status.tags["novaflow:spec-hash"] == other.spec_hash()
    assert inventory()["configs"] == [updated.config_name]
    assert inventory()["models"] == [updated.model_name]
    assert teardown("nova-sft", services=SM, settings=load_settings()).ok and inventory()["endpoints"] == []


def test_refuses_to_touch_an_endpoint_novaflow_did_not_create(checkpoint: str) -> None:
    make_untagged_endpoint(checkpoint)
    with pytest.raises(DeployError, match="nova-sft-handmade exists and was not created by novaflow"):
        deploy_sagemaker_endpoint(
            spec_for(checkpoint, endpoint_name="nova-sft-handmade"), mode="update", settings=load_settings()
        )


def test_waits_through_creating_with_backoff(aws: Any, checkpoint: str, sleeps: Sleeps) -> None:
    aws.control.set_transition("sagemaker::endpoint", {"progression": "manual", "times": 2})
    seen: list[str] = []
    deployment = deploy_sagemaker_endpoint(
        spec_for(checkpoint),
        sleep=sleeps,
        on_status=seen.append,
        backoff=Backoff(initial=30, factor=2, maximum=60, deadline=3600),
        settings=load_settings(),
    )
    assert seen == ["Creating", "InService"]
    assert deployment.statuses == ["Creating", "InService"]
    assert sleeps.delays and sleeps.delays[0] == 30 and all(d <= 60 for d in sleeps.delays)
    teardown("nova-sft", services=SM, settings=load_settings())


def test_deadline_reports_the_endpoint_may_still_bill(aws: Any, checkpoint: str, sleeps: Sleeps) -> None:
    aws.control.set_transition("sagemaker::endpoint", {"progression": "manual", "times": 1000})
    with pytest.raises(DeployError, match=r"SageMaker endpoint nova-sft still Creating after .* it may still be"):
        deploy_sagemaker_endpoint(
            spec_for(checkpoint),
            sleep=sleeps,
            backoff=Backoff(initial=30, factor=1, maximum=30, deadline=90),
            settings=load_settings(),
        )
    assert teardown("nova-sft", services=SM, settings=load_settings()).removed[0] == "sagemaker endpoint nova-sft"
