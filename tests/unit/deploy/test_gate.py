from __future__ import annotations

import pytest

from novaflow.deploy.gate import decide_gate, find_delta, judge_delta
from novaflow.errors import DeployError
from novaflow.evaluation.compare import MetricDelta, StageComparison

Delta = MetricDelta


def delta(
    metric: str = "em",
    base: float = 0.40,
    cand: float = 0.46,
    p: float = 0.01,
    ci: tuple[float, float] = (0.02, 0.10),
    n: int = 300,
) -> Delta:
    return Delta(metric, base, cand, round(cand - base, 10), ci[0], ci[1], p, n)


def test_significant_improvement_above_margin_is_approved() -> None:
    decision = judge_delta(delta(), min_delta=0.05)
    assert decision.approved
    assert decision.reason == (
        "approved: candidate beats baseline by >= +0.0500 with p < 0.05; em: baseline 0.4000, "
        "candidate 0.4600, delta +0.0600 (CI [+0.0200, +0.1000], p=0.01, n=300)"
    )


def test_not_significant_is_refused_with_the_p_value() -> None:
    decision = judge_delta(delta(p=0.20, ci=(-0.01, 0.13)))
    assert not decision.approved
    assert decision.reason.startswith("refused: the improvement is not significant (p=0.2 >= alpha=0.05); em:")


def test_significance_can_be_waived() -> None:
    assert judge_delta(delta(p=0.20), require_significance=False).approved


def test_below_margin_and_worse_are_refused_with_reasons() -> None:
    small = judge_delta(delta(cand=0.41, p=0.001), min_delta=0.02)
    assert not small.approved
    assert "the improvement +0.0100 is below the required margin +0.0200" in small.reason
    worse = judge_delta(delta(cand=0.35, p=0.001))
    assert "the candidate is not better than the baseline" in worse.reason
    tie = judge_delta(delta(cand=0.40, p=1.0))
    assert not tie.approved and "not better" in tie.reason and "not significant" in tie.reason


def test_p_value_equal_to_alpha_is_not_significant() -> None:
    assert not judge_delta(delta(p=0.05)).approved
    assert judge_delta(delta(p=0.0499)).approved


def test_lower_is_better_metrics() -> None:
    loss = Delta("loss", 1.0, 0.8, -0.2, -0.3, -0.1, 0.001, 50)
    assert judge_delta(loss, higher_is_better=False, min_delta=0.1).approved
    assert not judge_delta(loss).approved


def test_alpha_outside_zero_and_one_is_an_error() -> None:
    with pytest.raises(DeployError, match="alpha must be between 0 and 1"):
        judge_delta(delta(), alpha=1.5)


def test_stage_comparison_gates_last_stage_against_first_by_default() -> None:
    sft_vs_base, rft_vs_base, rft_vs_sft = delta(cand=0.45, p=0.2), delta(cand=0.52, p=0.001), delta(p=0.4)
    comparison = StageComparison(
        stages=["baseline", "sft", "rft"],
        values={},
        deltas=[("baseline", "sft", sft_vs_base), ("baseline", "rft", rft_vs_base), ("sft", "rft", rft_vs_sft)],
    )
    assert find_delta(comparison, "em") is rft_vs_base
    assert decide_gate(comparison, "em").approved
    refused = decide_gate(comparison, "em", baseline="sft", candidate="rft")
    assert not refused.approved and "not significant (p=0.4" in refused.reason
    with pytest.raises(
        DeployError,
        match=r"no paired delta for baseline -> rft in the comparison of stages "
        r"baseline, sft, rft",
    ):
        decide_gate(comparison, "f1")
