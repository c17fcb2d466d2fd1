"""The promotion gate: deploy only a candidate that beats the baseline by a margin, significantly.

A fine-tuned model that is "better" by 0.4 points on 200 samples is usually noise; deploying it costs money and
trust. By default the paired significance computed by the evaluation step is required as well as the margin.
The gate accepts anything shaped like ``novaflow.evaluation.compare.MetricDelta`` (a Protocol), one of them in a
mapping or sequence, or a comparison object holding them, so it does not depend on that module's internals.

Example:
    >>> decide_gate(delta, metric="em", min_delta=0.02).approved       # doctest: +SKIP
    False
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from novaflow.errors import DeployError


@runtime_checkable
class MetricDeltaLike(Protocol):
    """What the gate reads from a paired comparison of one metric."""

    metric: str
    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


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
    comparison: Any, metric: str, *, baseline: str | None = None, candidate: str | None = None
) -> MetricDeltaLike:
    """The delta for ``metric`` in a MetricDelta, mappings/sequences of them, or an object holding them.

    A stage comparison (``.stages`` plus ``.delta(metric, baseline, candidate)``) is asked for the named stages,
    by default its first stage (the baseline) against its last (the candidate to deploy). Otherwise exactly one
    delta for the metric must be found; with several, pass the one meant.
    """
    stages = getattr(comparison, "stages", None)
    lookup = getattr(comparison, "delta", None)
    if stages and callable(lookup):
        base, cand = baseline or stages[0], candidate or stages[-1]
        try:
            return lookup(metric, base, cand)
        except KeyError:
            raise DeployError(
                f"gate metric {metric!r} has no paired delta for {base} -> {cand} in the "
                f"comparison of stages {', '.join(stages)}"
            ) from None
    found = [d for d in _collect(comparison, depth=0) if d.metric == metric]
    if not found:
        names = sorted({d.metric for d in _collect(comparison, depth=0)})
        raise DeployError(f"gate metric {metric!r} is not in the comparison (available: {', '.join(names) or 'none'})")
    if len({id(d) for d in found}) > 1:
        raise DeployError(f"the comparison holds {len(found)} deltas for {metric!r}; pass the one to gate on")
    return found[0]


def _collect(value: Any, depth: int) -> list[MetricDeltaLike]:
    if _is_delta(value):
        return [value]
    if depth > 4 or isinstance(value, (str, bytes)):
        return []
    if isinstance(value, Mapping):
        items: list[Any] = list(value.values())
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        items = [getattr(value, a) for a in ("deltas", "metric_deltas") if getattr(value, a, None) is not None]
    out: list[MetricDeltaLike] = []
    for item in items:
        out.extend(_collect(item, depth + 1))
    return out


def _is_delta(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("metric", "delta", "p_value", "ci_low", "ci_high"))


def decide_gate(
    comparison_or_delta: Any,
    metric: str = "em",
    *,
    min_delta: float = 0.0,
    require_significance: bool = True,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    baseline: str | None = None,
    candidate: str | None = None,
) -> GateDecision:
    """Approve when the candidate improves ``metric`` by more than nothing and at least ``min_delta``, and (by
    default) the paired test gives ``p_value < alpha``. The reason says which condition failed, with numbers."""
    if not 0 < alpha < 1:
        raise DeployError(f"gate alpha must be between 0 and 1, got {alpha}")
    d = find_delta(comparison_or_delta, metric, baseline=baseline, candidate=candidate)
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
