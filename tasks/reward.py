"""Prefect tasks for the reward Lambda: deploy it, then verify it before an RFT job spends money.

Deployment retries only on transient AWS errors (it is idempotent, so a retry cannot create a second function
or role). Verification publishes its reward distribution as a table artifact and, by default, fails the task
when the grader and the deployed function disagree or the distribution is not what the data implies - RFT
should not start on a reward nobody has looked at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from novaflow.errors import RewardError
from novaflow.reward.deploy import DEFAULT_FUNCTION_NAME, RewardLambda, deploy_reward_lambda
from novaflow.reward.verify import RewardVerification, verify_reward
from novaflow.settings import NovaflowSettings
from reward_lambda.config import RewardConfig
from tasks.common import AWS_RETRIES, artifact_key


@task(name="deploy-reward-lambda", **AWS_RETRIES)
def deploy_reward_lambda_task(
    function_name: str = DEFAULT_FUNCTION_NAME,
    config: RewardConfig | None = None,
    settings: NovaflowSettings | None = None,
) -> RewardLambda:
    """Create or update the reward function and return its published version (the ARN RFT should use)."""
    reward = deploy_reward_lambda(function_name=function_name, config=config, settings=settings)
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
    settings: NovaflowSettings | None = None,
    limit: int = 200,
    require_ok: bool = True,
    key_suffix: str = "",
) -> RewardVerification:
    """Grade sample rows / predictions locally and through Lambda; publish the distribution as a table."""
    verification = verify_reward(
        rows=rows, predictions=predictions, function_name=function_name, settings=settings, limit=limit
    )
    create_table_artifact(
        table=verification.table(),
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
