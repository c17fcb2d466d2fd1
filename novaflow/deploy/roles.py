"""The execution role a Nova endpoint or Bedrock custom model runs as, created when missing.

Least privilege: read only the checkpoint prefix, pull only the Nova inference repository, decrypt only with the
configured key, write only the endpoint's own log group. A role novaflow creates is tagged so teardown can remove
it; a role that already exists without our tag is used as it is and never modified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, split_s3_uri, wrap_client_error
from novaflow.deploy.images import inference_repository_arn
from novaflow.deploy.tags import from_aws, is_managed, novaflow_tags, to_aws
from novaflow.settings import NovaflowSettings

Service = Literal["sagemaker", "bedrock"]
INLINE_POLICY_NAME = "novaflow-deploy-access"
MAX_ROLE_NAME = 64


@dataclass(frozen=True)
class ExecutionRole:
    """The role to pass to SageMaker or Bedrock; ``created`` is True when this call created it."""

    name: str
    arn: str
    created: bool
    managed: bool


def default_role_name(deployment: str, service: Service) -> str:
    """``novaflow-<service>-<deployment>``, cut to IAM's 64 characters."""
    return f"novaflow-{'sm' if service == 'sagemaker' else 'br'}-{deployment}"[:MAX_ROLE_NAME].rstrip("-")


def trust_policy(service: Service, account: str) -> dict[str, Any]:
    """Only the hosting service of this account may assume the role."""
    principal = "sagemaker.amazonaws.com" if service == "sagemaker" else "bedrock.amazonaws.com"
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}
    if service == "bedrock":
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def kms_key_arn(key: str, region: str, account: str) -> str:
    """A key id, alias or ARN as an ARN (aliases stay aliases)."""
    if key.startswith("arn:"):
        return key
    if key.startswith("alias/"):
        return f"arn:aws:kms:{region}:{account}:{key}"
    return f"arn:aws:kms:{region}:{account}:key/{key}"


def access_policy(
    service: Service,
    *,
    checkpoint_uri: str,
    region: str,
    account: str,
    kms_key_id: str | None = None,
    endpoint_name: str | None = None,
) -> dict[str, Any]:
    """The inline policy: S3 read on the checkpoint prefix, ECR pull (SageMaker), KMS decrypt, endpoint logs."""
    bucket, key = split_s3_uri(checkpoint_uri)
    prefix = key.strip("/")
    objects = f"arn:aws:s3:::{bucket}/{prefix}/*" if prefix else f"arn:aws:s3:::{bucket}/*"
    list_condition = {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"] if prefix else ["*"]}}
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadCheckpoint", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [objects]},
        {
            "Sid": "ListCheckpoint",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": list_condition,
        },
    ]
    if service == "sagemaker":
        statements += [
            {
                "Sid": "PullNovaInferenceImage",
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": [inference_repository_arn(region)],
            },
            # GetAuthorizationToken has no resource-level permissions: "*" is the only valid resource.
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
        ]
        if endpoint_name:
            group = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}"
            statements.append(
                {
                    "Sid": "EndpointLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [group, f"{group}:*"],
                }
            )
    if kms_key_id:
        arn = kms_key_arn(kms_key_id, region, account)
        statement: dict[str, Any] = {
            "Sid": "DecryptCheckpoint",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey"],
        }
        if ":alias/" in arn:
            statement["Resource"] = ["*"]
            statement["Condition"] = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": arn.split(":", 5)[5]}}
        else:
            statement["Resource"] = [arn]
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def account_id(settings: NovaflowSettings) -> str:
    """The caller's account (for ARNs in policies)."""
    try:
        return str(get_client("sts", settings).get_caller_identity()["Account"])
    except ClientError as exc:
        raise wrap_client_error(exc, "sts GetCallerIdentity") from exc


def ensure_execution_role(
    deployment: str,
    service: Service,
    *,
    checkpoint_uri: str,
    role_name: str | None = None,
    endpoint_name: str | None = None,
    settings: NovaflowSettings,
) -> ExecutionRole:
    """Return the role, creating it (tagged, least-privilege inline policy) when it does not exist.

    An existing role carrying our tag gets its inline policy refreshed (the checkpoint may have changed); an
    existing role without it belongs to someone else and is returned untouched.
    """
    iam = get_client("iam", settings)
    name = role_name or default_role_name(deployment, service)
    account = account_id(settings)
    policy = access_policy(
        service,
        checkpoint_uri=checkpoint_uri,
        region=settings.region,
        account=account,
        kms_key_id=settings.kms_key_id,
        endpoint_name=endpoint_name,
    )
    try:
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if not is_not_found(exc):
                raise
        else:
            tags = from_aws(iam.list_role_tags(RoleName=name).get("Tags", []))
            managed = is_managed(tags)
            if managed:
                iam.put_role_policy(RoleName=name, PolicyName=INLINE_POLICY_NAME, PolicyDocument=json.dumps(policy))
            return ExecutionRole(name=name, arn=role["Arn"], created=False, managed=managed)
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust_policy(service, account)),
            Description=f"novaflow {service} execution role for deployment {deployment}",
            Tags=to_aws(novaflow_tags(deployment, role=service)),
        )["Role"]
        iam.put_role_policy(RoleName=name, PolicyName=INLINE_POLICY_NAME, PolicyDocument=json.dumps(policy))
    except ClientError as exc:
        raise wrap_client_error(exc, f"iam role {name}") from exc
    return ExecutionRole(name=name, arn=role["Arn"], created=True, managed=True)
