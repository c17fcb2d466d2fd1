"""Deployment against the embedded AWS: idempotent, least privilege, tagged, and Invoke runs the real grader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import reward_lambda
from novaflow.aws import get_client
from novaflow.errors import ConfigError, RewardError
from novaflow.local import LOCAL_ROLE_ARN
from novaflow.reward.deploy import deploy_reward_lambda, invoke_policy_name
from novaflow.reward.package import build_zip, code_sha256
from novaflow.settings import load_settings
from reward_lambda.config import RewardConfig
from reward_lambda.handler import lambda_handler

NAME = "SageMaker-novaflow-reward"
EVENT = [
    {
        "id": "a",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "**LQ_EDIT**"}],
        "metadata": {"reference_answer": "LQ_EDIT"},
    },
    {
        "id": 2,
        "messages": [{"role": "assistant", "content": [{"type": "text", "text": "HQ"}]}],
        "reference_answer": "LQ_CLOSE",
    },
    {"id": "broken"},
]


def deploy(**kw: object):
    return deploy_reward_lambda(poll_seconds=0.01, **{"settings": load_settings(), **kw})  # type: ignore[arg-type]


def test_deploying_twice_leaves_one_function_one_role_and_changes_nothing(aws: object) -> None:
    first = deploy()
    second = deploy()
    assert first.changed and not second.changed
    assert second == first.__class__(**{**first.__dict__, "changed": False})
    assert first.arn == f"arn:aws:lambda:us-east-1:123456789012:function:{NAME}:1"
    assert first.code_sha256 == code_sha256(build_zip())
    lam, iam = get_client("lambda", load_settings()), get_client("iam", load_settings())
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == [NAME]
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=NAME)["Versions"]] == ["$LATEST", "1"]
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert sorted(roles) == sorted(["novaflow-local-sagemaker-execution", f"{NAME}-exec"])
    conf = lam.get_function_configuration(FunctionName=NAME)
    assert (conf["Runtime"], conf["Handler"], conf["Timeout"], conf["Role"]) == (
        "python3.12",
        "lambda_function.lambda_handler",
        300,
        first.role_arn,
    )
    assert conf["Environment"]["Variables"] == RewardConfig().to_env()


def test_invoke_permission_names_exactly_this_function(aws: object) -> None:
    reward = deploy()
    iam = get_client("iam", settings=load_settings())
    role_name = LOCAL_ROLE_ARN.rsplit("/", 1)[-1]
    # the embedded AWS seeds the execution role with its own policy (for IAM simulation); deploy adds exactly one
    names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    assert sorted(names) == sorted([invoke_policy_name(NAME), "novaflow-local-execution"])
    doc = iam.get_role_policy(RoleName=role_name, PolicyName=invoke_policy_name(NAME))["PolicyDocument"]
    [statement] = doc["Statement"]
    assert statement["Action"] == "lambda:InvokeFunction" and statement["Effect"] == "Allow"
    function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{NAME}"
    assert statement["Resource"] == [function_arn, f"{function_arn}:*"]
    assert reward.function_arn == function_arn and reward.arn.startswith(function_arn + ":")


def test_lambda_role_trusts_lambda_and_may_only_write_its_logs(aws: object) -> None:
    deploy()
    iam = get_client("iam", settings=load_settings())
    role = iam.get_role(RoleName=f"{NAME}-exec")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert iam.list_attached_role_policies(RoleName=f"{NAME}-exec")["AttachedPolicies"] == []
    [policy] = iam.list_role_policies(RoleName=f"{NAME}-exec")["PolicyNames"]
    statements = iam.get_role_policy(RoleName=f"{NAME}-exec", PolicyName=policy)["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
    group = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{NAME}"
    assert {s["Resource"] for s in statements} == {f"{group}:*", f"{group}:log-stream:*"}


def test_everything_created_is_tagged_managed(aws: object) -> None:
    reward = deploy()
    assert get_client("lambda", settings=load_settings()).list_tags(Resource=reward.function_arn)["Tags"] == {
        "novaflow:managed": "true"
    }
    tags = get_client("iam", settings=load_settings()).list_role_tags(RoleName=f"{NAME}-exec")["Tags"]
    assert tags == [{"Key": "novaflow:managed", "Value": "true"}]


def test_invoke_of_deployed_zip_returns_the_graders_real_output(aws: object) -> None:
    reward = deploy()
    resp = get_client("lambda", settings=load_settings()).invoke(FunctionName=reward.arn, Payload=json.dumps(EVENT))
    assert "FunctionError" not in resp
    body = json.loads(resp["Payload"].read())
    assert body == lambda_handler(EVENT, None)
    assert [(o["id"], o["aggregate_reward_score"]) for o in body] == [("a", 1.0), (2, -1.0), ("broken", -1.0)]


def test_changed_code_or_config_publishes_a_new_version(aws: object, tmp_path: Path) -> None:
    first = deploy()
    src = tmp_path / "src"
    shutil.copytree(Path(reward_lambda.__file__).parent, src, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "grader.py").write_text((src / "grader.py").read_text() + "\n# v2\n")
    second = deploy(zip_bytes=build_zip(src))
    assert second.changed and second.version == "2" and second.code_sha256 != first.code_sha256
    third = deploy(zip_bytes=build_zip(src), config=RewardConfig(verbose_penalty=0.5))
    assert third.version == "3"
    env = get_client("lambda", settings=load_settings()).get_function_configuration(FunctionName=NAME)["Environment"][
        "Variables"
    ]
    assert env["REWARD_VERBOSE_PENALTY"] == "0.5"
    assert deploy(zip_bytes=build_zip(src), config=RewardConfig(verbose_penalty=0.5)).version == "3"


def test_name_must_contain_sagemaker_and_role_must_be_known(aws: object, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RewardError, match="must contain 'SageMaker'"):
        deploy(function_name="novaflow-reward")
    with pytest.raises(RewardError, match="is not a Lambda name"):
        deploy(function_name="SageMaker reward!")
    monkeypatch.delenv("NOVAFLOW_ROLE_ARN")
    with pytest.raises(ConfigError, match="Setting 'role_arn' is not set"):
        deploy()
    assert get_client("lambda", settings=load_settings()).list_functions()["Functions"] == []
