"""Inference components on the embedded AWS: two fine-tuned models on one endpoint, each answering its own calls
from its own stand-in model; removing one leaves the other serving; teardown leaves nothing behind."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from novaflow.aws import get_client
from novaflow.backoff import Backoff
from novaflow.deploy.components import (
    ComponentEndpointSpec,
    ComponentSpec,
    add_component,
    deploy_components,
    list_components,
    remove_component,
)
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.invoke import invoke_endpoint
from novaflow.deploy.teardown import teardown
from novaflow.errors import AwsError, ConfigError, DeployError
from novaflow.local.aws.server import LOCAL_ROLE_NAME
from novaflow.settings import load_settings
from tests.aws.helpers import SYSTEM
from tests.aws.inference.conftest import train_checkpoint

FAST = Backoff(initial=0.01, factor=1.0, maximum=0.01, deadline=30)
ENV = EndpointEnvironment(context_length=8000, max_concurrency=8)
TOPICS = ("python", "html", "sql")


def ask(component: str, topic: str) -> str:
    return invoke_endpoint(
        "nova-ab", f"Question 99 about {topic}", system=SYSTEM, inference_component=component, settings=load_settings()
    ).text


def leftovers() -> dict[str, list[str]]:
    sm, iam = get_client("sagemaker", load_settings()), get_client("iam", load_settings())
    return {
        "components": [c["InferenceComponentName"] for c in sm.list_inference_components()["InferenceComponents"]],
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
        "roles": [
            r["RoleName"]
            for r in iam.list_roles()["Roles"]
            if r["RoleName"].startswith("novaflow-") and r["RoleName"] != LOCAL_ROLE_NAME
        ],
    }


@pytest.mark.slow
def test_two_models_on_one_endpoint_each_answer_their_own_calls_and_leave_nothing(aws: object) -> None:
    first = train_checkpoint("ic-a", {"python": "HQ", "html": "LQ_EDIT", "sql": "LQ_CLOSE"})
    second = train_checkpoint("ic-b", {"python": "LQ_CLOSE", "html": "HQ", "sql": "LQ_EDIT"})
    endpoint = ComponentEndpointSpec(endpoint_name="nova-ab", instance_type="ml.g6.48xlarge", instance_count=2)
    components = [
        ComponentSpec(component_name="nova-ab-sft-a", checkpoint_uri=first, environment=ENV),
        ComponentSpec(component_name="nova-ab-sft-b", checkpoint_uri=second, environment=ENV),
    ]
    deployed = deploy_components(endpoint, components, backoff=FAST, sleep=lambda s: None, settings=load_settings())
    assert deployed.endpoint_status == "InService"
    assert [(c.name, c.status, c.copies) for c in deployed.components] == [
        ("nova-ab-sft-a", "InService", 1),
        ("nova-ab-sft-b", "InService", 1),
    ]
    sm = get_client("sagemaker", settings=load_settings())
    described = sm.describe_inference_component(InferenceComponentName="nova-ab-sft-a")
    assert described["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfAcceleratorDevicesRequired": 8,
        "NumberOfCpuCoresRequired": 1,
        "MinMemoryRequiredInMb": 1024,
    }
    assert described["VariantName"] == "nova-ab" and described["RuntimeConfig"] == {
        "DesiredCopyCount": 1,
        "CurrentCopyCount": 1,
    }

    # Each component answers from its own fine-tuned model: the labels each learnt for each topic.
    answers_a = {topic: ask("nova-ab-sft-a", topic) for topic in TOPICS}
    answers_b = {topic: ask("nova-ab-sft-b", topic) for topic in TOPICS}
    assert answers_a == {"python": "HQ", "html": "LQ_EDIT", "sql": "LQ_CLOSE"}
    assert answers_b == {"python": "LQ_CLOSE", "html": "HQ", "sql": "LQ_EDIT"}
    with pytest.raises(AwsError, match="Inference Component Name header is required for endpoints"):
        invoke_endpoint("nova-ab", "Question about python", system=SYSTEM, settings=load_settings())

    # A third copy does not fit two instances: refused before anything is created.
    third = ComponentSpec(component_name="nova-ab-sft-c", checkpoint_uri=first, environment=ENV)
    with pytest.raises(ConfigError, match=r"has 2 x ml\.g6\.48xlarge but its components need 3"):
        add_component(endpoint, third, backoff=FAST, sleep=lambda s: None, settings=load_settings())
    assert [c.name for c in list_components("nova-ab", settings=load_settings())] == ["nova-ab-sft-a", "nova-ab-sft-b"]

    removed = remove_component("nova-ab", "nova-ab-sft-a", backoff=FAST, sleep=lambda s: None, settings=load_settings())
    assert removed == [
        "sagemaker inference-component nova-ab-sft-a",
        f"sagemaker model {components[0].model_name}",
        "iam role novaflow-sm-nova-ab-sft-a",
    ]
    assert [c.name for c in list_components("nova-ab", settings=load_settings())] == ["nova-ab-sft-b"]
    assert {topic: ask("nova-ab-sft-b", topic) for topic in TOPICS} == answers_b
    with pytest.raises(AwsError, match="Inference component nova-ab-sft-a of endpoint nova-ab not found"):
        ask("nova-ab-sft-a", "python")

    report = teardown(
        "nova-ab", services=("sagemaker", "iam"), backoff=FAST, sleep=lambda s: None, settings=load_settings()
    )
    assert report.ok, report.failed
    assert report.removed[:2] == ["sagemaker inference-component nova-ab-sft-b", "sagemaker endpoint nova-ab"]
    assert leftovers() == {"components": [], "endpoints": [], "configs": [], "models": [], "roles": []}


def test_an_endpoint_without_components_and_a_model_whose_isolation_differs_are_refused(aws: object) -> None:
    sm = get_client("sagemaker", settings=load_settings())
    sm.create_model(
        ModelName="plain",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m/"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="ic-config",
        ProductionVariants=[{"VariantName": "v", "InstanceType": "ml.g6.48xlarge", "InitialInstanceCount": 1}],
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        EnableNetworkIsolation=True,
    )
    sm.create_endpoint(EndpointName="ic-ep", EndpointConfigName="ic-config")
    request = {
        "InferenceComponentName": "c1",
        "EndpointName": "ic-ep",
        "VariantName": "v",
        "Specification": {
            "ModelName": "plain",
            "ComputeResourceRequirements": {"NumberOfAcceleratorDevicesRequired": 8, "MinMemoryRequiredInMb": 1024},
        },
        "RuntimeConfig": {"CopyCount": 1},
    }
    with pytest.raises(ClientError, match='EnableNetworkIsolation of model "plain" does not match'):
        sm.create_inference_component(**request)
    with pytest.raises(ClientError, match="Could not find model"):
        sm.create_inference_component(**{**request, "Specification": {**request["Specification"], "ModelName": "x"}})


def test_a_component_the_instances_cannot_hold_fails_with_the_reason(aws: object) -> None:
    sm = get_client("sagemaker", settings=load_settings())
    sm.create_model(
        ModelName="m8",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m/"},
        EnableNetworkIsolation=True,
    )
    sm.create_endpoint_config(
        EndpointConfigName="small",
        ProductionVariants=[{"VariantName": "v", "InstanceType": "ml.g6.12xlarge", "InitialInstanceCount": 1}],
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        EnableNetworkIsolation=True,
    )
    sm.create_endpoint(EndpointName="small-ep", EndpointConfigName="small")
    sm.create_inference_component(
        InferenceComponentName="too-big",
        EndpointName="small-ep",
        VariantName="v",
        Specification={
            "ModelName": "m8",
            "ComputeResourceRequirements": {"NumberOfAcceleratorDevicesRequired": 8, "MinMemoryRequiredInMb": 1024},
        },
        RuntimeConfig={"CopyCount": 1},
    )
    described = sm.describe_inference_component(InferenceComponentName="too-big")
    assert described["InferenceComponentStatus"] == "Failed"
    assert described["FailureReason"] == (
        "Insufficient capacity: inference component too-big needs 8 accelerator device(s) for each of 1 copy(ies); "
        "endpoint small-ep has 4 free on 1 x ml.g6.12xlarge (4 each)."
    )
    assert described["RuntimeConfig"] == {"DesiredCopyCount": 1, "CurrentCopyCount": 0}


def test_a_component_that_fails_is_reported_with_aws_reason_and_removed_again(aws: object) -> None:
    """A spec that believes the endpoint has more instances than it has: SageMaker fails the component, novaflow
    reports its FailureReason and deletes the component and its model, so nothing half-made is left."""
    env = EndpointEnvironment(context_length=8000, max_concurrency=8)
    one = ComponentEndpointSpec(endpoint_name="nova-one", instance_type="ml.g6.48xlarge", instance_count=1)
    first = ComponentSpec(
        component_name="nova-one-a", checkpoint_uri="s3://escrow/a/outputs/checkpoints", environment=env
    )
    deploy_components(one, [first], backoff=FAST, sleep=lambda s: None, settings=load_settings())
    stale = one.model_copy(update={"instance_count": 2})
    second = ComponentSpec(
        component_name="nova-one-b", checkpoint_uri="s3://escrow/b/outputs/checkpoints", environment=env
    )
    with pytest.raises(DeployError) as failed:
        add_component(stale, second, backoff=FAST, sleep=lambda s: None, settings=load_settings())
    assert "Insufficient capacity: inference component nova-one-b needs 8 accelerator device(s)" in str(failed.value)
    assert [c.name for c in list_components("nova-one", settings=load_settings())] == ["nova-one-a"]
    models = [m["ModelName"] for m in get_client("sagemaker", settings=load_settings()).list_models()["Models"]]
    assert models == [first.model_name]
    teardown("nova-one", services=("sagemaker", "iam"), backoff=FAST, sleep=lambda s: None, settings=load_settings())
