from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.validate import validate_parameters
from pydantic import ValidationError

from novaflow.deploy.endpoint_spec import (
    EndpointSpec,
    build_endpoint_config_request,
    build_endpoint_request,
    build_model_request,
    derived_name,
)
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.tags import ESCROW_TAG_KEY, escrow_tag_value

GOLDEN = Path(__file__).parents[2] / "golden" / "deploy"
ROLE = "arn:aws:iam::123456789012:role/novaflow-sm-nova-sft-demo"
CHECKPOINT = "s3://customer-escrow-123456789012-smtj-abc123/nova-sft-job/outputs/checkpoints/"


def demo_spec(**changes: object) -> EndpointSpec:
    fields: dict[str, object] = {
        "endpoint_name": "nova-sft-demo",
        "checkpoint_uri": CHECKPOINT,
        "model": "nova-lite-2",
        "instance_type": "ml.g6.48xlarge",
        "environment": EndpointEnvironment(context_length=8000, max_concurrency=4, default_temperature=0.0),
    }
    fields.update(changes)
    return EndpointSpec(**fields)  # type: ignore[arg-type]


def requests_for(spec: EndpointSpec) -> dict[str, dict[str, object]]:
    return {
        "CreateModel": build_model_request(spec, region="us-east-1", role_arn=ROLE),
        "CreateEndpointConfig": build_endpoint_config_request(spec),
        "CreateEndpoint": build_endpoint_request(spec),
    }


def test_requests_match_golden_file_byte_for_byte() -> None:
    rendered = json.dumps(requests_for(demo_spec()), indent=2) + "\n"
    assert rendered == (GOLDEN / "sagemaker_requests.json").read_text()


def test_requests_are_valid_for_the_sagemaker_api() -> None:
    model = boto3.session.Session(region_name="us-east-1").client("sagemaker").meta.service_model
    for operation, request in requests_for(demo_spec()).items():
        validate_parameters(request, model.operation_model(operation).input_shape)


def test_checkpoint_prefix_ends_with_one_slash_whatever_the_input() -> None:
    for uri in (CHECKPOINT, CHECKPOINT.rstrip("/"), CHECKPOINT + "/"):
        request = build_model_request(demo_spec(checkpoint_uri=uri), region="us-east-1", role_arn=ROLE)
        source = request["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]  # type: ignore[index]
        assert source["S3Uri"] == CHECKPOINT


def test_spec_hash_changes_with_what_is_served_not_with_the_role() -> None:
    base = demo_spec()
    assert base.spec_hash() == demo_spec(role_arn=ROLE).spec_hash()
    assert base.spec_hash() != demo_spec(instance_type="ml.p5.48xlarge").spec_hash()
    assert (
        base.spec_hash()
        != demo_spec(environment=EndpointEnvironment(context_length=8000, max_concurrency=8)).spec_hash()
    )
    assert base.model_name != demo_spec(checkpoint_uri="s3://b/other/").model_name


def test_long_endpoint_names_keep_the_hash_suffix_within_63_characters() -> None:
    spec = demo_spec(endpoint_name="e" * 63)
    assert len(spec.model_name) == 63 and spec.model_name.endswith("-" + spec.spec_hash())
    assert len(spec.config_name) == 63 and spec.config_name.endswith(f"-{spec.spec_hash()}-config")
    assert derived_name("abc-", "x") == "abc-x"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("endpoint_name", "bad_name", "letters, digits or hyphens"),
        ("endpoint_name", "-x", "letters, digits or hyphens"),
        ("checkpoint_uri", "/local/ckpt", "s3:// URI of the checkpoint prefix"),
        ("model", "nova-mega", "Unknown Nova model"),
        ("instance_count", 0, "greater than or equal to 1"),
    ],
)
def test_bad_spec_fields_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises((ValidationError, Exception)) as err:
        demo_spec(**{field: value})
    assert message in str(err.value)


def test_escrow_tag_value_is_hashed_when_too_long() -> None:
    long_uri = "s3://b/" + "k" * 300
    assert len(escrow_tag_value(long_uri)) == 64
    request = build_model_request(demo_spec(checkpoint_uri=long_uri), region="us-east-1", role_arn=ROLE)
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}  # type: ignore[union-attr]
    assert tags[ESCROW_TAG_KEY] == escrow_tag_value(long_uri)
