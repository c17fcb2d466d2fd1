from __future__ import annotations

import math

import numpy as np
import pytest

from novaflow.errors import EvaluationError
from novaflow.evaluation.compare import compare_stages, mcnemar_p_value, paired_delta
from tests.unit.evaluation.stages import golds, sft_rft_500, stage


def test_mcnemar_exact_binomial_for_few_discordant_rows() -> None:
    assert mcnemar_p_value(1, 7) == (2 * (1 + 8) / 256, "mcnemar-exact")
    assert mcnemar_p_value(0, 0) == (1.0, "mcnemar-exact")
    assert mcnemar_p_value(5, 5)[0] == 1.0


def test_mcnemar_chi_square_with_continuity_for_many() -> None:
    p, test = mcnemar_p_value(12, 20)
    assert test == "mcnemar-chi2"
    assert p == math.erfc(math.sqrt((7**2 / 32) / 2))
    assert round(p, 4) == 0.2159


def test_case_study_em_difference_of_0016_on_500_rows() -> None:
    _, sft, rft = sft_rft_500()
    comparison = compare_stages({"sft": sft, "rft": rft})
    em = comparison.delta("em", "sft", "rft")
    assert (em.baseline, em.candidate, em.n) == (0.772, 0.788, 500)
    assert em.delta == pytest.approx(0.016, abs=1e-15)
    assert (em.baseline_only, em.candidate_only) == (12, 20)
    assert em.p_value == math.erfc(math.sqrt((7**2 / 32) / 2))
    assert not em.significant()
    # The CI is the paired bootstrap of the per-row difference: centred on +0.016, straddling zero, with the width
    # the normal approximation predicts for the observed per-row SD (within bootstrap noise).
    diff = np.array(rft.sample_values("em")) - np.array(sft.sample_values("em"))
    half = 1.96 * diff.std(ddof=1) / math.sqrt(500)
    assert em.ci_low < 0 < em.ci_high
    assert (em.ci_high - em.ci_low) / 2 == pytest.approx(half, rel=0.1)
    assert comparison.delta("accuracy", "sft", "rft").delta == pytest.approx(0.016, abs=1e-15)


def test_three_stage_table_and_significant_base_to_sft_jump() -> None:
    base, sft, rft = sft_rft_500()
    comparison = compare_stages({"base": base, "sft": sft, "rft": rft}, n_boot=500)
    assert comparison.stages == ["base", "sft", "rft"]
    row = next(r for r in comparison.table_records() if r["metric"] == "em")
    assert (row["base"], row["sft"], row["rft"]) == (0.0, 0.772, 0.788)  # base wraps labels in a sentence: EM 0
    assert row["delta_rft_vs_base"] == pytest.approx(0.788)
    acc = comparison.delta("accuracy", "base", "sft")
    assert acc.baseline == 0.13 and acc.candidate == 0.772 and acc.p_value < 1e-50
    pairs = {(b, c) for b, c, _ in comparison.deltas}
    assert pairs == {("base", "sft"), ("base", "rft"), ("sft", "rft")}
    assert round(comparison.values["accuracy"]["base"][1], 4) == 0.0151  # the blog's base-model stderr


def test_graded_metrics_use_a_sign_flip_test() -> None:
    d = paired_delta([0.1, 0.2, 0.3, 0.4] * 10, [0.3, 0.4, 0.5, 0.6] * 10, "f1", n_boot=999)
    assert d.test == "sign-flip" and d.delta == pytest.approx(0.2)
    assert d.p_value == 1 / 1000  # every row improves by 0.2: no sign flip reaches the observed mean
    assert d.ci_low == pytest.approx(0.2) and d.ci_high == pytest.approx(0.2)


def test_unpaired_stages_are_refused() -> None:
    a = stage("a", golds(10), {1})
    b = stage("b", golds(11), {1})
    with pytest.raises(EvaluationError, match="stage 'b' was not evaluated on the same rows as 'a'"):
        compare_stages({"a": a, "b": b})
    with pytest.raises(EvaluationError, match="em: paired comparison needs two series of the same length"):
        paired_delta([1, 0], [1], "em")
