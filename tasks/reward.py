"""Prefect tasks for the reward Lambda: deploy it, then verify it before an RFT job spends money.

Deployment retries only on transient AWS errors (it is idempotent, so a retry cannot create a second function
or role). Verification publishes its reward distribution as a table artifact and, by default, fails the task
when the grader and the deployed function disagree or the distribution is not what the data implies - RFT
should not start on a reward nobody has looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from novaflow.errors import RewardError
from novaflow.reward.defaults import DEFAULT_FUNCTION_NAME
from novaflow.reward.deploy import RewardLambda, deploy_reward_lambda, existing_function_arn
from novaflow.reward.package import code_sha256
from novaflow.reward.probes import GraderVerification, verify_reward_function
from novaflow.reward.source import build_reward_zip, load_reward_source
from novaflow.reward.verify import RewardVerification, labels_of_rows, verify_reward
from novaflow.settings import NovaflowSettings
from reward_lambda.config import RewardConfig
from tasks.common import AWS_RETRIES, artifact_key, publish_table


@task(name="deploy-reward-lambda", **AWS_RETRIES)
def deploy_reward_lambda_task(
    function_name: str = DEFAULT_FUNCTION_NAME,
    config: RewardConfig | None = None,
    *,
    settings: NovaflowSettings,
    package: PackagedReward | None = None,
) -> RewardLambda:
    """Create or update the reward function and return its published version (the ARN RFT should use).

    With ``package`` (a team's reward file, packaged) that code is deployed instead of novaflow's label grader.
    """
    reward = deploy_reward_lambda(
        function_name=function_name,
        config=config,
        settings=settings,
        zip_bytes=package.zip_bytes if package is not None else None,
        environment={} if package is not None else None,
    )
    get_run_logger().info(
        "reward Lambda %s version %s (%s)",
        reward.function_name,
        reward.version,
        "changed" if reward.changed else "unchanged",
    )
    return reward


@task(name="verify-reward-lambda", **AWS_RETRIES)
def verify_reward_task(
    *,
    rows: str | Path | None = None,
    predictions: str | Path | None = None,
    function_name: str | None = None,
    settings: NovaflowSettings,
    limit: int = 200,
    require_ok: bool = True,
    key_suffix: str = "",
) -> RewardVerification:
    """Grade sample rows / predictions locally and through Lambda; publish the distribution as a table."""
    verification = verify_reward(
        rows=rows, predictions=predictions, function_name=function_name, settings=settings, limit=limit
    )
    publish_table(
        verification.table(),
        key=artifact_key("reward", "verification", key_suffix),
        description=verification_markdown(verification),
    )
    logger = get_run_logger()
    for line in verification.mismatches + verification.problems:
        logger.warning(line)
    if require_ok and not verification.ok:
        raise RewardError(
            "reward verification failed: " + "; ".join((verification.mismatches + verification.problems)[:5])
        )
    return verification


def verification_markdown(verification: RewardVerification) -> str:
    """The artifact description: verdict first, then what went wrong."""
    lines: list[Any] = [f"**Reward verification: {'OK' if verification.ok else 'FAILED'}**"]
    lines += [f"- mismatch: {m}" for m in verification.mismatches[:10]]
    lines += [f"- problem: {p}" for p in verification.problems[:10]]
    return "\n".join(lines)


@dataclass(frozen=True)
class PackagedReward:
    """A team's reward file, checked and packaged (what is deployed and what verification runs locally)."""

    location: str
    name: str
    kind: str
    zip_bytes: bytes
    code_sha256: str


@task(name="package-reward")
def package_reward_task(location: str, settings: NovaflowSettings) -> PackagedReward:
    """Check the reward file (syntax, handler) and build its deterministic zip (with its requirements)."""
    source = load_reward_source(location, settings)
    data = build_reward_zip(source)
    packaged = PackagedReward(source.location, source.name, source.kind, data, code_sha256(data))
    get_run_logger().info(
        "reward %s: %s, %d bytes, CodeSha256 %s%s",
        source.location,
        "its own lambda_handler" if source.kind == "lambda_handler" else "grade() in novaflow's robust handler",
        len(data),
        packaged.code_sha256,
        f", with {source.requirements}" if source.requirements else "",
    )
    return packaged


@task(name="check-reward-lambda", **AWS_RETRIES)
def existing_reward_lambda_task(function_arn: str, settings: NovaflowSettings) -> str:
    """An existing function, used as is: the ARN must be unqualified and the function must exist."""
    return existing_function_arn(function_arn, settings)


@task(name="verify-reward-function", **AWS_RETRIES)
def verify_reward_function_task(
    *,
    rows: str,
    source: str,
    package: PackagedReward | None = None,
    function_name: str | None = None,
    settings: NovaflowSettings,
    limit: int = 200,
    key_suffix: str = "",
) -> GraderVerification:
    """Probe a team's reward (locally and/or through Lambda); publish the distribution; refuse a degenerate one."""
    verification = verify_reward_function(
        rows,
        source=source,
        zip_bytes=package.zip_bytes if package is not None else None,
        function_name=function_name,
        settings=settings,
        limit=limit,
    )
    verdict = "OK" if verification.ok else f"FAILED: {verification.reason()}"
    lines = [f"**Reward verification of {source}: {verdict}**"]
    lines += [f"- problem: {p}" for p in verification.problems + verification.mismatches]
    lines += [f"- note: {n}" for n in verification.notes]
    names = verification.metric_names
    if names:
        lines.append(f"- metrics reported: {', '.join(names)}")
    publish_table(
        verification.table(), key=artifact_key("reward", "verification", key_suffix), description="\n".join(lines)
    )
    logger = get_run_logger()
    for line in verification.notes:
        logger.warning(line)
    if not verification.ok:
        raise RewardError(verification.reason())
    logger.info(
        "reward %s verified: %s",
        source,
        "; ".join(f"{r['probe']}/{r['runner']} mean {r['mean']}" for r in verification.table()),
    )
    return verification


@task(name="reward-labels", **AWS_RETRIES)
def reward_labels_task(rows: str, settings: NovaflowSettings) -> tuple[str, ...]:
    """The label set novaflow's label grader uses on a team's data: the RFT rows' distinct reference answers."""
    labels = labels_of_rows(rows, settings=settings)
    get_run_logger().info("label grader: labels %s (the RFT rows' reference answers)", ", ".join(labels))
    return labels
