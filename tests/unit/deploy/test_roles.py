from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.validate import validate_parameters

from novaflow.deploy.roles import access_policy, default_role_name, kms_key_arn, trust_policy

GOLDEN = Path(__file__).parents[2] / "golden" / "deploy"
CKPT = "s3://customer-escrow-123456789012-smtj-abc123/nova-sft-job/outputs/checkpoints"


def test_sagemaker_policy_matches_golden() -> None:
    policy = access_policy(
        "sagemaker",
        checkpoint_uri=CKPT + "/",
        region="us-east-1",
        account="123456789012",
        kms_key_id="1234abcd-12ab-34cd-56ef-1234567890ab",
        endpoint_name="nova-sft",
    )
    assert json.dumps(policy, indent=2) + "\n" == (GOLDEN / "sagemaker_role_policy.json").read_text()


def test_bedrock_policy_reads_checkpoint_only_and_has_no_ecr_or_logs() -> None:
    policy = access_policy("bedrock", checkpoint_uri=CKPT, region="us-east-1", account="123456789012")
    actions = sorted(a for s in policy["Statement"] for a in s["Action"])
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    assert policy["Statement"][0]["Resource"] == [
        "arn:aws:s3:::customer-escrow-123456789012-smtj-abc123/nova-sft-job/outputs/checkpoints/*"
    ]


def test_wildcards_only_where_aws_allows_nothing_else() -> None:
    policy = access_policy(
        "sagemaker", checkpoint_uri=CKPT, region="us-east-1", account="123456789012", endpoint_name="e"
    )
    wildcard = [s["Sid"] for s in policy["Statement"] if "*" in s["Resource"]]
    assert wildcard == ["EcrLogin"]
    assert all(a != "*" and not a.endswith(":*") for s in policy["Statement"] for a in s["Action"])


def test_kms_alias_is_scoped_by_condition() -> None:
    policy = access_policy(
        "bedrock", checkpoint_uri=CKPT, region="us-east-1", account="123456789012", kms_key_id="alias/novaflow"
    )
    stmt = policy["Statement"][-1]
    assert stmt["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/novaflow"}}
    assert kms_key_arn("abc", "us-west-2", "1") == "arn:aws:kms:us-west-2:1:key/abc"


def test_trust_and_names() -> None:
    assert trust_policy("sagemaker", "1")["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    bedrock = trust_policy("bedrock", "123456789012")["Statement"][0]
    assert bedrock["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert default_role_name("nova-sft", "sagemaker") == "novaflow-sm-nova-sft"
    assert len(default_role_name("x" * 80, "bedrock")) == 64


@pytest.mark.parametrize("service", ["sagemaker", "bedrock"])
def test_role_requests_are_valid_iam_parameters(service: str) -> None:
    shape = boto3.session.Session(region_name="us-east-1").client("iam").meta.service_model
    doc = json.dumps(
        access_policy(
            service,
            checkpoint_uri=CKPT,
            region="us-east-1",  # type: ignore[arg-type]
            account="123456789012",
            endpoint_name="e",
        )
    )
    validate_parameters(
        {"RoleName": "r", "PolicyName": "p", "PolicyDocument": doc}, shape.operation_model("PutRolePolicy").input_shape
    )
    assert len(doc) < 10240  # inline policy size limit
