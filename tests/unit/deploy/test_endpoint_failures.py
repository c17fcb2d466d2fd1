"""Failure branches the embedded AWS cannot produce, driven with botocore's Stubber (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

import novaflow.deploy.endpoint as endpoint
from novaflow.backoff import Backoff
from novaflow.deploy.endpoint_spec import EndpointSpec, build_endpoint_config_request, build_model_request
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.errors import AwsError, DeployError
from novaflow.settings import load_settings

ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nova-sft"
ROLE = "arn:aws:iam::123456789012:role/mine"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = EndpointSpec(
    endpoint_name="nova-sft",
    checkpoint_uri="s3://escrow/job/outputs/checkpoints",
    instance_type="ml.g6.48xlarge",
    role_arn=ROLE,
    environment=EndpointEnvironment(context_length=8000, max_concurrency=2),
)


_SESSION = boto3.session.Session(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
"""One session for the module: it parses the SageMaker model once, so each test's client costs milliseconds."""


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = _SESSION.client("sagemaker", endpoint_url="http://127.0.0.1:9")
    monkeypatch.setattr(endpoint, "get_client", lambda service, settings=None: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def described(status: str, config: str = "cfg", reason: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "EndpointName": "nova-sft",
        "EndpointArn": ARN,
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
    }
    if reason:
        out["FailureReason"] = reason
    return out


def test_failed_endpoint_surfaces_failure_reason(stub: Stubber) -> None:
    stub.add_response("describe_endpoint", described("Creating"), {"EndpointName": "nova-sft"})
    stub.add_response(
        "describe_endpoint",
        described(
            "Failed", reason="The primary container for production variant primary did not pass the ping health check."
        ),
        {"EndpointName": "nova-sft"},
    )
    slept: list[float] = []
    with pytest.raises(
        DeployError,
        match=r"SageMaker endpoint nova-sft reached status Failed: The primary container "
        r"for production variant primary did not pass the ping health check\.",
    ):
        endpoint.wait_for_endpoint(
            "nova-sft", sleep=slept.append, backoff=Backoff(initial=30, deadline=600), settings=load_settings()
        )
    assert slept == [30]


def test_update_rolled_back_is_a_failure_even_though_in_service(stub: Stubber) -> None:
    stub.add_response("describe_endpoint", described("RollingBack", config="old"), {"EndpointName": "nova-sft"})
    stub.add_response(
        "describe_endpoint", described("InService", config="old", reason="capacity"), {"EndpointName": "nova-sft"}
    )
    with pytest.raises(DeployError, match="rolled back to old instead of new: capacity"):
        endpoint.wait_for_endpoint("nova-sft", expected_config="new", sleep=lambda s: None, settings=load_settings())


def test_failed_create_endpoint_removes_the_model_and_config_it_created(stub: Stubber) -> None:
    settings = load_settings(region="us-east-1")
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint nova-sft.")
    stub.add_client_error("describe_model", "ValidationException", "Could not find model.")
    stub.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"},
        build_model_request(SPEC, region="us-east-1", role_arn=ROLE),
    )
    stub.add_client_error("describe_endpoint_config", "ValidationException", "Could not find endpoint config.")
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c"},
        build_endpoint_config_request(SPEC),
    )
    stub.add_client_error(
        "create_endpoint",
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.g6.48xlarge for endpoint usage' is 0 Instances.",
    )
    stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": SPEC.config_name})
    stub.add_response("delete_model", {}, {"ModelName": SPEC.model_name})
    with pytest.raises(
        AwsError, match="create endpoint nova-sft failed: ResourceLimitExceeded: The account-level"
    ) as err:
        endpoint.deploy_sagemaker_endpoint(SPEC, settings=settings, sleep=lambda s: None)
    assert err.value.code == "ResourceLimitExceeded"


def test_endpoint_being_updated_cannot_be_updated_again(stub: Stubber) -> None:
    stub.add_response("describe_endpoint", described("Updating"), {"EndpointName": "nova-sft"})
    stub.add_response(
        "list_tags",
        {"Tags": [{"Key": "novaflow:managed", "Value": "true"}, {"Key": "novaflow:deployment", "Value": "nova-sft"}]},
        {"ResourceArn": ANY},
    )
    with pytest.raises(DeployError, match="Endpoint nova-sft is Updating; it can only be updated when InService"):
        endpoint.deploy_sagemaker_endpoint(SPEC, mode="update", settings=load_settings(region="us-east-1"))
