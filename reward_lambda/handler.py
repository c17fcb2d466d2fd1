"""The Lambda entry point: validate the batch, grade every sample, log why invalid samples were invalid.

The batch as a whole must be a JSON array within the size limit; anything else raises :class:`InvalidEvent`, which
the Lambda runtime returns as ``errorMessage`` / ``errorType`` - the RFT container treats that as a failed call,
which is right for a malformed event (it is a wiring bug, and a reward of 0 would hide it).
"""

from __future__ import annotations

import logging
from typing import Any

from reward_lambda.config import RewardConfig
from reward_lambda.grader import Grade, grade_sample, invalid_grade, sample_id

LOG = logging.getLogger("reward_lambda")
LOG.setLevel(logging.INFO)
MAX_LOGGED_INVALID = 20
"""Invalid samples logged one by one per batch; the rest are counted in one summary line."""


class InvalidEvent(ValueError):
    """The event is not a batch this Lambda accepts (not a list, or too large)."""


def grade_batch(event: object, config: RewardConfig) -> list[Grade]:
    """Grade a batch with an explicit config (what the handler and novaflow's local verification share)."""
    if not isinstance(event, list):
        raise InvalidEvent(f"event must be a JSON array of samples, got a {type(event).__name__}")
    if len(event) > config.max_batch:
        raise InvalidEvent(f"batch of {len(event)} samples is over the limit of {config.max_batch} (REWARD_MAX_BATCH)")
    grades: list[Grade] = []
    for sample in event:
        try:
            grade = grade_sample(sample, config)
        except Exception as exc:  # a grader bug must cost one sample, not the batch; it is logged with a trace
            LOG.exception("grader error on sample id=%r", sample_id(sample))
            grade = invalid_grade(sample_id(sample), f"grader error: {type(exc).__name__}: {exc}", config)
        grades.append(grade)
    _log_invalid(grades)
    return grades


def lambda_handler(event: Any, context: Any) -> list[dict[str, Any]]:
    """AWS Lambda handler: a batch of samples in, ``[{id, aggregate_reward_score, metrics_list}]`` out."""
    config = RewardConfig.from_env()
    return [grade.to_output() for grade in grade_batch(event, config)]


def _log_invalid(grades: list[Grade]) -> None:
    invalid = [g for g in grades if g.invalid_reason is not None]
    for grade in invalid[:MAX_LOGGED_INVALID]:
        LOG.warning("invalid_sample id=%r reason=%s", grade.id, grade.invalid_reason)
    if invalid:
        LOG.warning("invalid_samples %d of %d in this batch", len(invalid), len(grades))
