from __future__ import annotations

from dataclasses import dataclass

import pytest

from novaflow.deploy.gate import MetricDeltaLike, decide_gate, find_delta
from novaflow.errors import DeployError
from novaflow.evaluation.compare import MetricDelta

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


def test_protocol_accepts_the_evaluation_metric_delta() -> None:
    assert isinstance(delta(), MetricDeltaLike)


def test_significant_improvement_above_margin_is_approved() -> None:
    decision = decide_gate(delta(), "em", min_delta=0.05)
    assert decision.approved
    assert decision.reason == (
        "approved: candidate beats baseline by >= +0.0500 with p < 0.05; em: baseline 0.4000, "
        "candidate 0.4600, delta +0.0600 (CI [+0.0200, +0.1000], p=0.01, n=300)"
    )


def test_not_significant_is_refused_with_the_p_value() -> None:
    decision = decide_gate(delta(p=0.20, ci=(-0.01, 0.13)), "em")
    assert not decision.approved
    assert decision.reason.startswith("refused: the improvement is not significant (p=0.2 >= alpha=0.05); em:")


def test_significance_can_be_waived() -> None:
    assert decide_gate(delta(p=0.20), "em", require_significance=False).approved


def test_below_margin_and_worse_are_refused_with_reasons() -> None:
    small = decide_gate(delta(cand=0.41, p=0.001), "em", min_delta=0.02)
    assert not small.approved
    assert "the improvement +0.0100 is below the required margin +0.0200" in small.reason
    worse = decide_gate(delta(cand=0.35, p=0.001), "em")
    assert "the candidate is not better than the baseline" in worse.reason
    tie = decide_gate(delta(cand=0.40, p=1.0), "em")
    assert not tie.approved and "not better" in tie.reason and "not significant" in tie.reason


def test_p_value_equal_to_alpha_is_not_significant() -> None:
    assert not decide_gate(delta(p=0.05), "em").approved
    assert decide_gate(delta(p=0.0499), "em").approved


def test_lower_is_better_metrics() -> None:
    loss = Delta("loss", 1.0, 0.8, -0.2, -0.3, -0.1, 0.001, 50)
    assert decide_gate(loss, "loss", higher_is_better=False, min_delta=0.1).approved
    assert not decide_gate(loss, "loss").approved


def test_delta_found_in_mappings_sequences_and_comparison_objects() -> None:
    em, f1 = delta("em"), delta("f1", p=0.3)

    @dataclass
    class Comparison:
        deltas: dict[str, Delta]

    assert find_delta({"em": em, "f1": f1}, "f1") is f1
    assert find_delta([em, f1], "em") is em
    assert find_delta(Comparison({"em": em, "f1": f1}), "f1") is f1
    assert find_delta({("base", "sft"): {"em": em}}, "em") is em
    assert not decide_gate(Comparison({"em": em, "f1": f1}), "f1").approved


def test_missing_or_ambiguous_metric_is_an_error() -> None:
    with pytest.raises(DeployError, match=r"gate metric 'rougeL' is not in the comparison \(available: em, f1\)"):
        find_delta([delta("em"), delta("f1")], "rougeL")
    with pytest.raises(DeployError, match="holds 2 deltas for 'em'"):
        find_delta({"sft": delta("em"), "rft": delta("em")}, "em")
    with pytest.raises(DeployError, match="alpha must be between 0 and 1"):
        decide_gate(delta(), alpha=1.5)


def test_stage_comparison_gates_last_stage_against_first_by_default() -> None:
    from novaflow.evaluation.compare import StageComparison

    sft_vs_base, rft_vs_base, rft_vs_sft = delta(cand=0.45, p=0.2), delta(cand=0.52, p=0.001), delta(p=0.4)
    comparison = StageComparison(
        stages=["baseline", "sft", "rft"],
        values={},
        deltas=[("baseline", "sft", sft_vs_base), ("baseline", "rft", rft_vs_base), ("sft", "rft", rft_vs_sft)],
    )  # type: ignore[list-item]
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
