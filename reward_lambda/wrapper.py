"""A robust Lambda handler around a team's own ``grade(response, reference_answer, sample)`` function.

A reward file may define the Nova ``lambda_handler(event, context)`` itself (then it is used as is) or only a
``grade`` function; novaflow then packages this wrapper, which reads both event shapes of the Nova RFT contract
(the reference answer under ``metadata`` or at the top level; the rollout as a string or a list of text parts),
calls ``grade`` once per sample and turns what it returns into the contract's output objects:

* a number is the ``aggregate_reward_score``;
* a dict of named numbers becomes ``metrics_list`` entries; the aggregate is the value under ``"reward"`` when
  there is one (the other names are informational ``Metric`` entries), otherwise the mean of all values (each a
  ``Reward`` entry).

A sample that cannot be graded - no rollout, no reference, ``grade`` raises or returns something that is not a
number - gets the module's ``MIN_REWARD`` (default 0.0) and an ``invalid_sample`` metric of 1, and the reason is
logged: one broken rollout must not fail an RFT step, and a silent 0 must not hide a bug either.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeGuard, cast

from reward_lambda.grader import InvalidSample, raw_reference, rollout_text, sample_id

LOG = logging.getLogger("reward_lambda.wrapper")
LOG.setLevel(logging.INFO)
MAX_LOGGED_INVALID = 20
INVALID_METRIC = "invalid_sample"
AGGREGATE_KEY = "reward"

Handler = Callable[[Any, Any], Any]


def handler_for(module: ModuleType) -> Handler:
    """The module's own ``lambda_handler`` if it defines one, else a robust handler around its ``grade``."""
    own = getattr(module, "lambda_handler", None)
    if callable(own):
        return cast(Handler, own)
    grade = getattr(module, "grade", None)
    if not callable(grade):
        raise TypeError(f"{module.__name__} defines neither lambda_handler(event, context) nor grade(...)")
    minimum = float(getattr(module, "MIN_REWARD", 0.0))

    def lambda_handler(event: Any, context: Any) -> list[dict[str, Any]]:
        if not isinstance(event, list):
            raise ValueError(f"event must be a JSON array of samples, got a {type(event).__name__}")
        return grade_samples(event, grade, minimum)

    return lambda_handler


def grade_samples(samples: list[Any], grade: Callable[..., Any], minimum: float = 0.0) -> list[dict[str, Any]]:
    """Grade every sample with ``grade``; never raises for a bad sample (see the module docstring)."""
    outputs: list[dict[str, Any]] = []
    invalid: list[tuple[Any, str]] = []
    for sample in samples:
        sid = sample_id(sample)
        try:
            response, reference = rollout_and_reference(sample)
            value = grade(response, reference, sample)
            output = to_output(sid, value)
        except InvalidSample as exc:
            invalid.append((sid, str(exc)))
            output = invalid_output(sid, minimum)
        except Exception as exc:  # the team's code: one failing sample costs that sample only, and is logged
            LOG.exception("grade raised on sample id=%r", sid)
            invalid.append((sid, f"grade raised {type(exc).__name__}: {exc}"))
            output = invalid_output(sid, minimum)
        outputs.append(output)
    for sid, reason in invalid[:MAX_LOGGED_INVALID]:
        LOG.warning("invalid_sample id=%r reason=%s", sid, reason)
    if invalid:
        LOG.warning("invalid_samples %d of %d in this batch", len(invalid), len(samples))
    return outputs


def rollout_and_reference(sample: object) -> tuple[str, Any]:
    """(the assistant's last message as text, the reference answer as the dataset gave it)."""
    response = rollout_text(sample)
    assert isinstance(sample, Mapping)  # rollout_text checked it
    return response, raw_reference(sample)


def to_output(sid: Any, value: object) -> dict[str, Any]:
    """A grade (number or dict of named numbers) as the contract's output object."""
    if _is_number(value):
        return {"id": sid, "aggregate_reward_score": float(value), "metrics_list": [_metric(INVALID_METRIC, 0)]}
    if isinstance(value, Mapping) and value:
        bad = [k for k, v in value.items() if not isinstance(k, str) or not _is_number(v)]
        if bad:
            raise InvalidSample(f"grade returned {_short(value)}: {bad[0]!r} is not a finite number")
        scores = {k: float(v) for k, v in value.items()}
        if AGGREGATE_KEY in scores:
            aggregate = scores[AGGREGATE_KEY]
            metrics = [_metric(k, v, "Reward" if k == AGGREGATE_KEY else "Metric") for k, v in scores.items()]
        else:
            aggregate = sum(scores.values()) / len(scores)
            metrics = [_metric(k, v, "Reward") for k, v in scores.items()]
        return {"id": sid, "aggregate_reward_score": aggregate, "metrics_list": [*metrics, _metric(INVALID_METRIC, 0)]}
    raise InvalidSample(f"grade returned {_short(value)}, not a finite number or a dict of named numbers")


def invalid_output(sid: Any, minimum: float) -> dict[str, Any]:
    return {"id": sid, "aggregate_reward_score": minimum, "metrics_list": [_metric(INVALID_METRIC, 1)]}


def _metric(name: str, value: float, kind: str = "Metric") -> dict[str, Any]:
    return {"name": name, "value": value, "type": kind}


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
