"""The IAM policies in ``infra/iam``: IAM's grammar (CreatePolicy on the embedded AWS), every AWS call novaflow's
code can make is allowed to the flow run's role, and ``iam:PassRole`` only on execution roles, to their service."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import boto3
import pytest
from botocore.exceptions import ClientError

from novaflow.deploy.roles import default_role_name
from novaflow.reward.deploy import DEFAULT_FUNCTION_NAME, execution_role_name
from tests.production.iam import POLICIES, ROOT, allows, calls_in_code, iam_actions, load_policy

NAMES = sorted(p.name for p in POLICIES.glob("*.json"))


def test_there_is_a_policy_for_the_flow_runs_and_one_for_the_ecs_worker() -> None:
    assert NAMES == ["ecs-worker-policy.json", "flow-run-policy.json"]


@pytest.mark.parametrize("name", NAMES)
def test_the_policy_is_valid_iam_grammar(aws, name) -> None:
    iam = boto3.client("iam")
    document = (POLICIES / name).read_text()
    created = iam.create_policy(PolicyName=name.removesuffix(".json"), PolicyDocument=document)["Policy"]
    version = iam.get_policy_version(PolicyArn=created["Arn"], VersionId=created["DefaultVersionId"])
    assert version["PolicyVersion"]["Document"] == json.loads(document)
    for statement in json.loads(document)["Statement"]:
        assert "*" not in statement["Action"] and not any(a.endswith(":*") for a in statement["Action"])


def test_the_grammar_check_is_real(aws) -> None:
    broken = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker CreateTrainingJob"}]}
    with pytest.raises(ClientError) as err:
        boto3.client("iam").create_policy(PolicyName="broken", PolicyDocument=json.dumps(broken))
    assert err.value.response["Error"]["Code"] == "MalformedPolicyDocument"


@pytest.mark.slow
def test_the_flow_run_role_may_make_every_call_in_novaflows_code() -> None:
    policy = load_policy("flow-run-policy.json")
    calls = calls_in_code("novaflow", "tasks", "flows")
    # The scan sees the code: training jobs, endpoints, Bedrock, the reward Lambda, logs, teardown.
    assert {
        ("sagemaker", "CreateTrainingJob"),
        ("bedrock", "CreateModelCustomizationJob"),
        ("lambda", "Invoke"),
    } <= set(calls)
    missing = {
        f"{action} ({service}.{operation} in {', '.join(sorted(files))})"
        for (service, operation), files in calls.items()
        for action in iam_actions(service, operation)
        if not allows(policy, action)
    }
    assert not missing, sorted(missing)


def test_the_ecs_worker_may_make_every_call_of_prefect_awss_ecs_worker() -> None:
    import prefect_aws.workers.ecs_worker as worker

    policy = load_policy("ecs-worker-policy.json")
    source = open(worker.__file__).read()
    for call, action in [
        ("register_task_definition(", "ecs:RegisterTaskDefinition"),
        ("describe_task_definition(", "ecs:DescribeTaskDefinition"),
        ("run_task(", "ecs:RunTask"),
        ("stop_task(", "ecs:StopTask"),
        ("describe_vpcs(", "ec2:DescribeVpcs"),
        ("describe_subnets(", "ec2:DescribeSubnets"),
    ]:
        assert call in source and allows(policy, action), action


def test_pass_role_is_only_for_execution_roles_and_only_to_their_service() -> None:
    policy = load_policy("flow-run-policy.json")
    passes = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    grants = {}
    for statement in passes:
        assert statement["Action"] == "iam:PassRole"  # alone, so its condition binds only it
        services = statement["Condition"]["StringEquals"]["iam:PassedToService"]
        grants[statement["Resource"]] = set([services] if isinstance(services, str) else services)
    account = "arn:aws:iam::*:role/"
    assert grants == {
        account + "novaflow-sagemaker-execution": {"sagemaker.amazonaws.com", "bedrock.amazonaws.com"},
        account + "novaflow-sm-*": {"sagemaker.amazonaws.com"},
        account + "novaflow-br-*": {"bedrock.amazonaws.com"},
        account + "*SageMaker*-exec": {"lambda.amazonaws.com"},
    }
    # The patterns are the names novaflow gives the roles it creates, and nothing wider.
    assert fnmatchcase(account + default_role_name("case-study", "sagemaker"), account + "novaflow-sm-*")
    assert fnmatchcase(account + default_role_name("case-study", "bedrock"), account + "novaflow-br-*")
    assert fnmatchcase(account + execution_role_name(DEFAULT_FUNCTION_NAME), account + "*SageMaker*-exec")
    worker = load_policy("ecs-worker-policy.json")
    [worker_pass] = [s for s in worker["Statement"] if s["Action"] == "iam:PassRole"]
    assert worker_pass["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_the_readme_points_at_the_policies() -> None:
    readme = (ROOT / "README.md").read_text()
    production = readme[readme.index("## Running in production") :]
    assert [name for name in NAMES if f"infra/iam/{name}" not in production] == []
