"""Deploy the reward Lambda with least privilege, idempotently.

Re-running with unchanged code and configuration changes nothing (CodeSha256 and the configuration are compared
before any write, and no new version is published), so a retried flow cannot pile up versions or roles. The
Lambda's own role may only write its logs; the SageMaker execution role gets ``lambda:InvokeFunction`` on this one
function (its unqualified ARN and its versions) through an inline policy. Everything created is tagged
``novaflow:managed=true`` so teardown can find it; the inline policy on the SageMaker role is named
``novaflow-invoke-<function>``.

Example:
    >>> reward = deploy_reward_lambda()                      # doctest: +SKIP
    >>> reward.arn                                           # doctest: +SKIP
    'arn:aws:lambda:us-east-1:123456789012:function:SageMaker-novaflow-reward:1'
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import error_code, error_message, get_client, is_not_found, wrap_client_error
from novaflow.errors import AwsError, RewardError
from novaflow.reward.defaults import DEFAULT_FUNCTION_NAME
from novaflow.reward.package import HANDLER, RUNTIME, build_zip, code_sha256
from novaflow.settings import NovaflowSettings
from reward_lambda.config import RewardConfig

MANAGED_TAG_KEY = "novaflow:managed"
MANAGED_TAGS = {MANAGED_TAG_KEY: "true"}
LOGS_POLICY_NAME = "novaflow-reward-logs"
INVOKE_POLICY_PREFIX = "novaflow-invoke-"
DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_MEMORY_MB = 512
FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LAMBDA_ARN_RE = re.compile(r"^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9-_]+$")
"""An unqualified function ARN, the form RFT recipes and evaluation ``rl_env`` take."""
LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@dataclass(frozen=True)
class RewardLambda:
    """A deployed reward Lambda; ``arn`` is the published version's ARN (what an RFT recipe should name)."""

    function_name: str
    arn: str
    version: str
    role_arn: str
    code_sha256: str
    function_arn: str
    changed: bool


def validate_function_name(name: str) -> None:
    """SageMaker HyperPod only accepts reward functions whose name contains ``SageMaker`` (any case)."""
    if not FUNCTION_NAME_RE.match(name):
        raise RewardError(f"reward function name {name!r} is not a Lambda name (1-64 letters, digits, '-', '_')")
    if "sagemaker" not in name.lower():
        raise RewardError(
            f"reward function name {name!r} must contain 'SageMaker' (e.g. 'SageMaker-{name}') so "
            "SageMaker HyperPod accepts it"
        )


def execution_role_name(function_name: str) -> str:
    return f"{function_name}-exec"[:64]


def invoke_policy_name(function_name: str) -> str:
    return f"{INVOKE_POLICY_PREFIX}{function_name}"[:128]


def logs_policy(partition: str, region: str, account: str, function_name: str) -> dict[str, Any]:
    """Only the Lambda's own log group: create it, create streams, put events."""
    group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": f"{group}:*"},
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{group}:log-stream:*",
            },
        ],
    }


def invoke_policy(function_arn: str) -> dict[str, Any]:
    """``lambda:InvokeFunction`` on exactly one function: its unqualified ARN and its versions/aliases."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeNovaflowReward",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": [function_arn, f"{function_arn}:*"],
            }
        ],
    }


def deploy_reward_lambda(
    *,
    function_name: str = DEFAULT_FUNCTION_NAME,
    config: RewardConfig | None = None,
    settings: NovaflowSettings,
    invoke_role_arn: str | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    memory_mb: int = DEFAULT_MEMORY_MB,
    zip_bytes: bytes | None = None,
    environment: dict[str, str] | None = None,
    wait_seconds: float = 300.0,
    poll_seconds: float = 2.0,
) -> RewardLambda:
    """Create or update the function, wait until it is ready, publish a version, grant the SageMaker role.

    ``invoke_role_arn`` defaults to ``settings.role_arn`` (the SageMaker execution role that runs RFT jobs).
    ``zip_bytes`` replaces novaflow's label grader (a team's packaged reward); its ``environment`` replaces the
    grader's ``REWARD_*`` variables (empty for a team's own code, which has no use for them).
    """
    validate_function_name(function_name)
    if not 1 <= timeout_seconds <= 900:
        raise RewardError(f"timeout_seconds={timeout_seconds}: a Lambda runs for 1 to 900 seconds")
    if invoke_role_arn is None:
        settings.require("role_arn")
        invoke_role_arn = settings.role_arn
    assert invoke_role_arn is not None
    data = zip_bytes if zip_bytes is not None else build_zip()
    sha = code_sha256(data)
    env = dict(environment) if environment is not None else (config or RewardConfig()).to_env()
    partition = invoke_role_arn.split(":")[1]
    account = _account(settings)

    lam = get_client("lambda", settings)
    role_arn, role_changed = ensure_execution_role(function_name, partition, settings.region, account, settings)
    desired = {
        "Runtime": RUNTIME,
        "Handler": HANDLER,
        "Role": role_arn,
        "Timeout": timeout_seconds,
        "MemorySize": memory_mb,
        "Environment": {"Variables": env},
    }
    changed = role_changed
    try:
        current = lam.get_function(FunctionName=function_name)
    except ClientError as exc:
        if not is_not_found(exc):
            raise wrap_client_error(exc, f"get reward function {function_name}") from exc
        current = None
    if current is None:
        try:
            _retry_role_propagation(
                lambda: lam.create_function(
                    FunctionName=function_name,
                    Code={"ZipFile": data},
                    Publish=False,
                    PackageType="Zip",
                    Description="novaflow RFT reward grader",
                    Tags=MANAGED_TAGS,
                    **desired,
                ),
                function_name,
            )
            changed = True
        except AwsError as exc:
            if exc.code != "ResourceConflictException":
                raise
            current = lam.get_function(FunctionName=function_name)  # another run created it meanwhile: update it
    if current is not None:
        configuration = current["Configuration"]
        if configuration.get("CodeSha256") != sha:
            _call(
                lambda: lam.update_function_code(FunctionName=function_name, ZipFile=data),
                f"update code of {function_name}",
            )
            changed = True
            _wait_ready(lam, function_name, wait_seconds, poll_seconds)
        if _config_differs(configuration, desired):
            _retry_role_propagation(
                lambda: lam.update_function_configuration(FunctionName=function_name, **desired), function_name
            )
            changed = True
        function_arn = configuration["FunctionArn"]
        tags = current.get("Tags") or {}
        if tags.get(MANAGED_TAG_KEY) != "true":
            _call(lambda: lam.tag_resource(Resource=function_arn, Tags=MANAGED_TAGS), f"tag {function_name}")
    final = _wait_ready(lam, function_name, wait_seconds, poll_seconds)
    if final.get("CodeSha256") != sha:
        raise RewardError(
            f"reward function {function_name} reports CodeSha256 {final.get('CodeSha256')} after "
            f"deployment, expected {sha}: another deployment may be running concurrently"
        )
    function_arn = _unqualified(final["FunctionArn"])
    version = (
        _published_version(lam, function_name, final)
        or _call(
            lambda: lam.publish_version(
                FunctionName=function_name, CodeSha256=sha, Description=f"novaflow reward {sha[:12]}"
            ),
            f"publish a version of {function_name}",
        )["Version"]
    )
    changed = grant_invoke(invoke_role_arn, function_arn, settings) or changed
    return RewardLambda(
        function_name=function_name,
        arn=f"{function_arn}:{version}",
        version=str(version),
        role_arn=role_arn,
        code_sha256=sha,
        function_arn=function_arn,
        changed=changed,
    )


def existing_function_arn(function_arn: str, settings: NovaflowSettings) -> str:
    """Check a team's own function, used as is (never redeployed): an unqualified ARN of a function that exists."""
    if not LAMBDA_ARN_RE.match(function_arn):
        raise RewardError(
            f"reward function ARN {function_arn!r} is not an unqualified Lambda function ARN "
            "(arn:aws:lambda:<region>:<account>:function:<name>, no version or alias): RFT recipes take that form"
        )
    try:
        conf = get_client("lambda", settings).get_function(FunctionName=function_arn)["Configuration"]
    except ClientError as exc:
        if is_not_found(exc):
            raise RewardError(f"reward function {function_arn} does not exist (or is in another region)") from None
        raise wrap_client_error(exc, f"check reward function {function_arn}") from exc
    if conf.get("State", "Active") != "Active":
        raise RewardError(f"reward function {function_arn} is {conf.get('State')}: {conf.get('StateReason', '')}")
    return function_arn


def ensure_execution_role(
    function_name: str, partition: str, region: str, account: str, settings: NovaflowSettings
) -> tuple[str, bool]:
    """The Lambda's execution role (trusts lambda.amazonaws.com, logs only); returns (ARN, whether it changed)."""
    iam = get_client("iam", settings)
    name = execution_role_name(function_name)
    changed = False
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if not is_not_found(exc):
            raise wrap_client_error(exc, f"get role {name}") from exc
        try:
            role = _call(
                lambda: iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
                    Description=f"Execution role of the novaflow reward Lambda {function_name} (logs only)",
                    Tags=[{"Key": k, "Value": v} for k, v in MANAGED_TAGS.items()],
                ),
                f"create role {name}",
            )["Role"]
            changed = True
        except AwsError as exc:
            # Two runs deploying the same reward at once (their stages overlap now): the other one created it.
            if exc.code != "EntityAlreadyExists":
                raise
            role = iam.get_role(RoleName=name)["Role"]
    policy = logs_policy(partition, region, account, function_name)
    changed = _put_inline_policy(iam, name, LOGS_POLICY_NAME, policy) or changed
    return role["Arn"], changed


def grant_invoke(role_arn: str, function_arn: str, settings: NovaflowSettings) -> bool:
    """Allow ``role_arn`` to invoke exactly ``function_arn``; returns whether the policy had to change."""
    iam = get_client("iam", settings)
    role_name = role_arn.rsplit("/", 1)[-1]
    function_name = function_arn.rsplit(":", 1)[-1]
    return _put_inline_policy(iam, role_name, invoke_policy_name(function_name), invoke_policy(function_arn))


def _put_inline_policy(iam: Any, role_name: str, policy_name: str, document: dict[str, Any]) -> bool:
    try:
        existing = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    except ClientError as exc:
        if not is_not_found(exc):
            raise wrap_client_error(exc, f"read policy {policy_name} of role {role_name}") from exc
        existing = None
    if isinstance(existing, str):
        existing = json.loads(existing)
    if existing == document:
        return False
    _call(
        lambda: iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(document)),
        f"put policy {policy_name} on role {role_name}",
    )
    return True


def _config_differs(configuration: dict[str, Any], desired: dict[str, Any]) -> bool:
    for key in ("Runtime", "Handler", "Role", "Timeout", "MemorySize"):
        if configuration.get(key) != desired[key]:
            return True
    current_env = (configuration.get("Environment") or {}).get("Variables") or {}
    return current_env != desired["Environment"]["Variables"]


def _published_version(lam: Any, function_name: str, latest: dict[str, Any]) -> str | None:
    """The newest published version if it has the same code and configuration as $LATEST (nothing to publish)."""
    versions: list[dict[str, Any]] = []
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=function_name):
        versions.extend(v for v in page["Versions"] if v.get("Version", "$LATEST") != "$LATEST")
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v["Version"]))
    if newest.get("CodeSha256") != latest.get("CodeSha256"):
        return None
    desired = {k: latest.get(k) for k in ("Runtime", "Handler", "Role", "Timeout", "MemorySize")}
    desired["Environment"] = {"Variables": (latest.get("Environment") or {}).get("Variables") or {}}
    return None if _config_differs(newest, desired) else str(newest["Version"])


def _wait_ready(lam: Any, function_name: str, wait_seconds: float, poll_seconds: float) -> dict[str, Any]:
    """Poll until ``State=Active`` and the last update succeeded; a Failed state raises with AWS's reason."""
    deadline = time.monotonic() + wait_seconds
    while True:
        conf = _call(lambda: lam.get_function_configuration(FunctionName=function_name), f"describe {function_name}")
        state, update = conf.get("State", "Active"), conf.get("LastUpdateStatus", "Successful")
        if state == "Failed" or update == "Failed":
            reason = conf.get("StateReason") or conf.get("LastUpdateStatusReason") or "no reason given"
            raise RewardError(
                f"reward function {function_name} failed to deploy (State={state}, LastUpdateStatus={update}): {reason}"
            )
        if state == "Active" and update in (None, "Successful"):
            return conf
        if time.monotonic() >= deadline:
            raise RewardError(
                f"reward function {function_name} not ready after {wait_seconds:.0f} s "
                f"(State={state}, LastUpdateStatus={update})"
            )
        time.sleep(poll_seconds)


def _retry_role_propagation(call: Callable[[], Any], function_name: str, attempts: int = 10, delay: float = 3.0) -> Any:
    """A just-created role takes seconds to become assumable by Lambda; AWS says so with this exact error."""
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            propagating = error_code(exc) == "InvalidParameterValueException" and "cannot be assumed" in error_message(
                exc
            )
            if not propagating or attempt == attempts - 1:
                raise wrap_client_error(exc, f"create or configure reward function {function_name}") from exc
            time.sleep(delay)
    raise AssertionError("unreachable")


def _call(call: Callable[[], Any], what: str) -> Any:
    try:
        return call()
    except ClientError as exc:
        raise wrap_client_error(exc, what) from exc


def _account(settings: NovaflowSettings) -> str:
    return _call(lambda: get_client("sts", settings).get_caller_identity()["Account"], "get the AWS account id")


def _unqualified(arn: str) -> str:
    parts = arn.split(":")
    return ":".join(parts[:7])
