"""The dry run's permission check runs offline: the embedded AWS answers SimulatePrincipalPolicy as IAM does (it used
to answer an HTML 500, so the dry run noted "IAM simulation unavailable (ResponseParserError)" and checked nothing)."""

from __future__ import annotations

import json

import boto3
import pytest

from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.spec import JobSpec
from novaflow.local.aws.server import LOCAL_ROLE_ARN, SAGEMAKER_TRUST_POLICY
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-novaflow-reward"


def _role(name: str, *statements: dict[str, object]) -> str:
    iam = boto3.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST_POLICY))["Role"]["Arn"]
    if statements:
        document = {"Version": "2012-10-17", "Statement": list(statements)}
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    return str(arn)


def _spec(role: str) -> JobSpec:
    return JobSpec(
        model="nova-lite-2",
        method="rft_lora",
        role_arn=role,
        train_uri="s3://novaflow-local/iam/train.jsonl",
        reward_lambda_arn=LAMBDA,
    )


@pytest.fixture(autouse=True)
def _data(aws) -> None:  # type: ignore[no-untyped-def]
    put_jsonl("iam/train.jsonl", 200)


def _role_lines(report: object) -> list[str]:
    return [str(p) for p in report.problems if str(p).startswith("role_arn")]  # type: ignore[attr-defined]


def test_the_embedded_execution_role_passes_the_simulated_check() -> None:
    report = dry_run(_spec(LOCAL_ROLE_ARN), settings=load_settings())
    assert not [n for n in report.notes if "IAM simulation" in n], report.notes
    assert _role_lines(report) == []


def test_a_role_without_the_permissions_is_refused_before_anything_is_spent() -> None:
    bare = _role("iam-sim-bare")
    assert _role_lines(dry_run(_spec(bare), settings=load_settings())) == [
        "role_arn: role iam-sim-bare is not allowed s3:GetObject, s3:PutObject, s3:ListBucket, lambda:InvokeFunction "
        "-> fix: attach a policy granting these actions on the data, output and Lambda resources"
    ]


def test_an_explicit_deny_wins_and_wildcards_match_as_in_iam() -> None:
    role = _role(
        "iam-sim-partial",
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::novaflow-local/*"},
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "LAMBDA:Invoke*", "Resource": "arn:aws:lambda:*:*:function:SageMaker-*"},
    )
    assert _role_lines(dry_run(_spec(role), settings=load_settings())) == [
        "role_arn: role iam-sim-partial is not allowed s3:PutObject -> fix: attach a policy granting these actions "
        "on the data, output and Lambda resources"
    ]
    answer = boto3.client("iam").simulate_principal_policy(
        PolicySourceArn=role,
        ActionNames=["s3:GetObject", "s3:PutObject", "lambda:InvokeFunction"],
        ResourceArns=["arn:aws:s3:::other-bucket/k"],
    )["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in answer] == [
        ("s3:GetObject", "arn:aws:s3:::other-bucket/k", "implicitDeny"),  # the allow is for another bucket
        ("s3:PutObject", "arn:aws:s3:::other-bucket/k", "explicitDeny"),
        ("lambda:InvokeFunction", "arn:aws:s3:::other-bucket/k", "implicitDeny"),
    ]
    assert answer[1]["MatchedStatements"] == [{"SourcePolicyId": "p", "SourcePolicyType": "IAM Policy"}]


def test_a_conditioned_statement_does_not_match_without_context_and_names_the_missing_key() -> None:
    role = _role(
        "iam-sim-conditioned",
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceAccount": "123456789012"}},
        },
    )
    (result,) = boto3.client("iam").simulate_principal_policy(PolicySourceArn=role, ActionNames=["s3:GetObject"])[
        "EvaluationResults"
    ]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["MissingContextValues"] == ["aws:ResourceAccount"]
