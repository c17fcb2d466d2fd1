"""Which reward RFT (and ``rft_eval``) uses, decided in one place and checked before anything is paid for.

novaflow's label grader (with the sample's labels, the ones given, or the RFT rows' distinct reference answers), a
team's reward file (syntax, handler, graded locally on probe rollouts), or an existing Lambda (it must exist). The
``reward-check`` stage settles it from the data stage's RFT rows; ``reward-lambda`` deploys and verifies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.params import RewardParams
from flows.stages.context import StageContext
from novaflow.catalog import DataFormat
from novaflow.runs.graph import Stage
from novaflow.settings import NovaflowSettings
from reward_lambda.labels import DEFAULT_LABELS
from tasks.reward import (
    PackagedReward,
    existing_reward_lambda_task,
    package_reward_task,
    reward_labels_task,
    verify_reward_function_task,
)

REWARD_CHECK = "reward-check"


def needs_reward(*, trains_rft: bool, rft_eval: bool) -> bool:
    """A run deploys a reward Lambda when it trains RFT or evaluates with ``rft_eval``."""
    return trains_rft or rft_eval


@dataclass(frozen=True)
class RewardChoice:
    """Which reward RFT uses, settled before any job runs: novaflow's label grader, a team's file, or a Lambda."""

    kind: str
    """``labels``, ``source`` or ``arn``."""
    labels: tuple[str, ...] = ()
    package: PackagedReward | None = None
    function_arn: str | None = None


def check_reward(
    reward: RewardParams,
    rows_uri: str,
    *,
    settings: NovaflowSettings,
    is_sample: bool,
    rows_file: Path | None = None,
) -> RewardChoice:
    """Settle the reward and refuse a broken one now - before the baseline, SFT or anything else is paid for.

    A team's file is checked (syntax, handler), packaged and graded locally on the probe rollouts; an ARN must
    name an existing function; novaflow's label grader needs a label set (the sample's, or the RFT rows' distinct
    reference answers when there are few).
    """
    if reward.function_arn:
        return RewardChoice("arn", function_arn=existing_reward_lambda_task(reward.function_arn, settings=settings))
    if reward.source:
        package = package_reward_task(reward.source, settings=settings)
        verify_reward_function_task(
            rows=str(rows_file or rows_uri),
            source=package.name,
            package=package,
            limit=reward.verify_rows,
            key_suffix="local",
            settings=settings,
        )
        return RewardChoice("source", package=package)
    if reward.labels:
        return RewardChoice("labels", labels=tuple(reward.labels))
    if is_sample:
        return RewardChoice("labels", labels=DEFAULT_LABELS)
    labels = reward_labels_task(str(rows_file or rows_uri), settings=settings)
    return RewardChoice("labels", labels=labels)


def reward_check_stage(
    reward: RewardParams, *, is_sample: bool, data: str = "data", rows_uri: str | None = None
) -> Stage:
    """The ``reward-check`` stage: the :class:`RewardChoice` for the data stage's RFT rows (or ``rows_uri``).

    ``is_sample`` is true only for the committed sample, whose labels are known; a team's own rows without
    ``reward.labels`` are graded on their own reference answers, never on the sample's.
    """

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> RewardChoice:
        if rows_uri is not None:
            choice = check_reward(reward, rows_uri, settings=ctx.settings, is_sample=is_sample)
        else:
            prepared = inputs[data]
            uri, rows_file = prepared.uris[DataFormat.RFT], prepared.files.get(DataFormat.RFT)
            choice = check_reward(reward, uri, settings=ctx.settings, is_sample=is_sample, rows_file=rows_file)
        ctx.log.details[REWARD_CHECK] = choice.kind
        return choice

    return Stage(REWARD_CHECK, (data,) if rows_uri is None else (), run)
