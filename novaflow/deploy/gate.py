"""The promotion gate: deploy only a candidate that beats the baseline by a margin, significantly.

A fine-tuned model that is "better" by 0.4 points on 200 samples is usually noise; deploying it costs money and
trust. By default the paired significance computed by the evaluation step is required as well as the margin.
:func:`decide_gate` takes the run's :class:`~novaflow.evaluation.compare.StageComparison` and gates its last stage
against its first (or the stages named); :func:`judge_delta` is the rule on one paired delta.

Example:
    >>> decide_gate(comparison, metric="em", min_delta=0.02).approved       # doctest: +SKIP
    False
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from novaflow.errors import DeployError
from novaflow.evaluation.compare import MetricDelta, StageComparison


@dataclass(frozen=True)
class GateDecision:
    """The verdict and a sentence a person can read in the flow log."""

    approved: bool
    reason: str
    metric: str
    baseline: float
    candidate: float
    delta: float
    min_delta: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    n: int
    require_significance: bool


def find_delta(
    comparison: StageComparison, metric: str, *, baseline: str | None = None, candidate: str | None = None
) -> MetricDelta:
    """The paired delta of ``metric`` between two stages: by default the first (the baseline) and the last (the
    candidate to deploy)."""
    base, cand = baseline or comparison.stages[0], candidate or comparison.stages[-1]
    try:
        return comparison.delta(metric, base, cand)
    except KeyError:
        raise DeployError(
            f"gate metric {metric!r} has no paired delta for {base} -> {cand} in the "
            f"comparison of stages {', '.join(comparison.stages)}"
        ) from None


def decide_gate(
    comparison: StageComparison,
    metric: str = "em",
    *,
    min_delta: float = 0.0,
    require_significance: bool = True,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    baseline: str | None = None,
    candidate: str | None = None,
) -> GateDecision:
    """The gate on the comparison's ``candidate`` stage against its ``baseline`` stage (:func:`find_delta`)."""
    return judge_delta(
        find_delta(comparison, metric, baseline=baseline, candidate=candidate),
        min_delta=min_delta,
        require_significance=require_significance,
        alpha=alpha,
        higher_is_better=higher_is_better,
    )


def judge_delta(
    d: MetricDelta,
    *,
    min_delta: float = 0.0,
    require_significance: bool = True,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> GateDecision:
    """Approve when the candidate improves the metric by more than nothing and at least ``min_delta``, and (by
    default) the paired test gives ``p_value < alpha``. The reason says which condition failed, with numbers."""
    if not 0 < alpha < 1:
        raise DeployError(f"gate alpha must be between 0 and 1, got {alpha}")
    metric = d.metric
    gain = d.delta if higher_is_better else -d.delta
    numbers = (
        f"{metric}: baseline {d.baseline:.4f}, candidate {d.candidate:.4f}, delta {d.delta:+.4f} "
        f"(CI [{d.ci_low:+.4f}, {d.ci_high:+.4f}], p={d.p_value:.4g}, n={d.n})"
    )
    failures: list[str] = []
    if any(math.isnan(float(x)) for x in (d.delta, d.p_value)):
        failures.append("the comparison has NaN values")
    if not gain > 0:
        failures.append("the candidate is not better than the baseline")
    elif gain < min_delta:
        failures.append(f"the improvement {gain:+.4f} is below the required margin {min_delta:+.4f}")
    if require_significance and not d.p_value < alpha:
        failures.append(f"the improvement is not significant (p={d.p_value:.4g} >= alpha={alpha})")
    approved = not failures
    if approved:
        reason = (
            f"approved: candidate beats baseline by >= {min_delta:+.4f}"
            + (f" with p < {alpha}" if require_significance else " (significance not required)")
            + f"; {numbers}"
        )
    else:
        reason = "refused: " + "; ".join(failures) + f"; {numbers}"
    return GateDecision(
        approved=approved,
        reason=reason,
        metric=metric,
        baseline=float(d.baseline),
        candidate=float(d.candidate),
        delta=float(d.delta),
        min_delta=min_delta,
        ci_low=float(d.ci_low),
        ci_high=float(d.ci_high),
        p_value=float(d.p_value),
        alpha=alpha,
        n=int(d.n),
        require_significance=require_significance,
    )
