"""The ``reward-lambda`` stage: deploy (or keep) the chosen reward function and verify it on the RFT rows before
RFT or ``rft_eval`` spends anything; gives the function ARN the recipes name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.params import RewardParams
from flows.stages.context import StageContext
from flows.stages.reward import REWARD_CHECK, RewardChoice
from flows.stages.run_log import RunLog
from novaflow.catalog import DataFormat
from novaflow.runs.graph import Stage
from novaflow.settings import NovaflowSettings
from reward_lambda.config import RewardConfig
from tasks.reward import deploy_reward_lambda_task, verify_reward_function_task, verify_reward_task

REWARD_LAMBDA = "reward-lambda"


def reward_lambda(
    reward: RewardParams,
    rows_uri: str,
    choice: RewardChoice,
    log: RunLog | None = None,
    *,
    settings: NovaflowSettings,
) -> str:
    """Deploy (or keep) the reward function and verify it on the RFT rows before RFT spends anything.

    Returns the function ARN the RFT recipe (and ``rft_eval``) names.
    """
    if choice.kind == "arn":
        assert choice.function_arn is not None
        verify_reward_function_task(
            rows=rows_uri,
            source=choice.function_arn,
            function_name=choice.function_arn,
            limit=reward.verify_rows,
            settings=settings,
        )
        return choice.function_arn
    if choice.kind == "source":
        deployed = deploy_reward_lambda_task(reward.function_name, package=choice.package, settings=settings)
        assert choice.package is not None
        verify_reward_function_task(
            rows=rows_uri,
            source=choice.package.name,
            package=choice.package,
            function_name=deployed.function_name,
            limit=reward.verify_rows,
            settings=settings,
        )
        return deployed.function_arn
    deployed = deploy_reward_lambda_task(reward.function_name, RewardConfig(labels=choice.labels), settings=settings)
    verification = verify_reward_task(
        rows=rows_uri, function_name=deployed.function_name, limit=reward.verify_rows, settings=settings
    )
    if log is not None:
        log.reward = verification
        log.track(
            "reward-lambda",
            params={"function_arn": deployed.function_arn, "version": deployed.version, "rows": rows_uri},
            metrics={
                f"{d.runner}.{name}": getattr(d, name)
                for d in verification.distributions
                for name in ("mean", "share_max", "share_min", "accuracy")
            },
        )
    return deployed.function_arn


def reward_lambda_stage(reward: RewardParams, *, data: str = "data", rows_uri: str | None = None) -> Stage:
    """Needs the ``reward-check`` stage's choice and the RFT rows (the data stage's, or ``rows_uri``)."""

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> str:
        uri = rows_uri or inputs[data].uris[DataFormat.RFT]
        return reward_lambda(reward, uri, inputs[REWARD_CHECK], ctx.log, settings=ctx.settings)

    return Stage(REWARD_LAMBDA, (REWARD_CHECK,) if rows_uri else (REWARD_CHECK, data), run)
