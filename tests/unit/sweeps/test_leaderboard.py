"""The leaderboard: Holm against hand-checked numbers, the winner after adjustment, the plan's numbers."""

from __future__ import annotations

import pytest

from novaflow.catalog import Method
from novaflow.evaluation.compare import StageComparison, paired_delta
from novaflow.quotas.capacity import book_from_mapping
from novaflow.recipes.serverless import load_serverless_prices
from novaflow.recipes.tables import load_price_table
from novaflow.sweeps.leaderboard import VariantOutcome, build_leaderboard, holm_adjust
from novaflow.sweeps.plan import JobUsage, PlannedJob, plan_sweep, usage_cost


def test_holm_against_a_hand_checked_example() -> None:
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> 0.06 (never below the one before)
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert holm_adjust([0.5, 0.6]) == [1.0, 1.0]
    assert holm_adjust([]) == []


def _outcome(name: str, gained: int, lost: int, *, cost: float = 10.0) -> VariantOutcome:
    """A variant whose SFT answers ``gained`` rows right the baseline got wrong and ``lost`` the other way."""
    baseline = [0.0] * 50 + [1.0] * 50
    candidate = list(baseline)
    for i in range(gained):
        candidate[i] = 1.0
    for i in range(lost):
        candidate[50 + i] = 0.0
    delta = paired_delta(baseline, candidate, "em", seed=0)
    values = {"em": {"baseline": (0.5, None), "sft": (sum(candidate) / 100, None)}}
    comparison = StageComparison(["baseline", "sft"], values, [("baseline", "sft", delta)], 100)
    return VariantOutcome(name, f"sft.overrides.lr={name}", comparison, cost, "instance-hours", 60.0, 2, None)


def test_the_winner_passes_the_gate_after_the_adjustment_not_before() -> None:
    outcomes = [_outcome("a", 8, 0), _outcome("b", 6, 0), _outcome("c", 13, 4)]
    # McNemar exact: a 2/2^8 = 0.0078125; b 2/2^6 = 0.03125; c 2 * (1+17+136+680+2380) / 2^17 = 0.049041748046875
    assert [o.comparison.deltas[0][2].p_value for o in outcomes] == [0.0078125, 0.03125, 0.049041748046875]
    board = build_leaderboard(outcomes, metric="em", alpha=0.05)
    # Holm over 3: a 0.0234375; b 0.0625; c max(0.0625, 0.0490...) = 0.0625. c has the largest gain (+0.09) and
    # would win unadjusted; after the adjustment only a passes.
    assert [r.p_adjusted for r in board.rows] == [0.0234375, 0.0625, 0.0625]
    assert [r.gate.approved for r in board.rows if r.gate] == [True, False, False]
    assert board.winner == "a" and board.winner_line() == "winner: a"
    records = board.records()
    assert records[2] == {
        "variant": "c",
        "patch": "sft.overrides.lr=c",
        "baseline:em": 0.5,
        "sft:em": 0.59,
        "delta": 0.09,
        "ci_low": records[2]["ci_low"],
        "ci_high": records[2]["ci_high"],
        "p_value": 0.049,
        "p_holm": 0.0625,
        "gate": "fail",
        "cost": 10.0,
        "cost_basis": "instance-hours",
        "wall_s": 60.0,
        "jobs": 2,
        "model_package_version": "",
        "error": "",
    }
    assert records[2]["ci_low"] < 0.09 < records[2]["ci_high"]
    lines = board.lines()
    assert lines[0].split() == ["variant", "em", "delta", "95%", "CI", "p", "p_holm", "gate", "cost", "wall", "jobs"]
    assert lines[1].split()[:3] == ["a", "0.5800", "+0.0800"] and lines[-1] == "winner: a"


def test_no_winner_says_why() -> None:
    failed = VariantOutcome("broken", "data.sft_rows=1", None, error="sft job failed: AlgorithmError: boom")
    board = build_leaderboard([_outcome("b", 6, 0), _outcome("c", 13, 4), failed], metric="em")
    assert board.winner is None
    # Holm over 2: b 0.03125 x 2 = 0.0625; c max(0.0625, 0.0490...) = 0.0625: the p in the reason is the adjusted one
    assert board.winner_line() == (
        "winner: none (no variant passes the gate after the Holm adjustment over 2 variants; the best, c, refused: "
        "the improvement is not significant (p=0.0625 >= alpha=0.05); em: baseline 0.5000, candidate 0.5900, delta "
        "+0.0900 (CI [+0.0100, +0.1700], p=0.0625, n=100))"
    )
    assert board.records()[2]["error"] == "sft job failed: AlgorithmError: boom"
    assert build_leaderboard([failed]).reason == "no variant has a em comparison with the baseline (broken failed)"


def test_the_plan_counts_shared_jobs_once_and_what_the_quota_runs_at_once() -> None:
    jobs = [PlannedJob("eval-base", "baseline", (v,), "SMTJ", "ml.p5.48xlarge", 1, 2.0) for v in "xyz"]
    jobs += [PlannedJob("sft-1", "sft", (v,), "SMTJ", "ml.p5.48xlarge", 4, 10.0) for v in "xyz"]
    jobs += [PlannedJob(f"rft-{v}", "rft", (v,), "SMTJ", "ml.p5.48xlarge", 4, 10.0) for v in "xyz"]
    jobs += [PlannedJob(f"eval-rft-{v}", "eval", (v,), "SMTJ", "ml.p5.48xlarge", 1, 2.0) for v in "xyz"]
    plan = plan_sweep(jobs, book_from_mapping({"ml.p5.48xlarge": 8}, "Service Quotas L-1"), load_price_table())
    assert len(plan.jobs) == 8 and [j.name for j in plan.shared] == ["eval-base", "sft-1"]
    assert plan.at_once == {"ml.p5.48xlarge": (8, 2, "quota 8 instances, Service Quotas L-1")}
    # instance-hours: 4 evaluations x 1 x 2 h + 4 trainings x 4 x 10 h = 168 at 55.04 USD/h = 9,246.72
    assert plan.cost_upper == 9246.72
    assert plan.lines() == [
        "plan: 8 jobs for 3 variants (2 shared between variants)",
        "  ml.p5.48xlarge: 8 jobs, at most 2 at once (quota 8 instances, Service Quotas L-1)",
        "  cost upper bound: 9,246.72 USD (every job at its maximum runtime; price table)",
    ]


def test_what_finished_jobs_cost() -> None:
    prices, tokens = load_price_table(), load_serverless_prices()
    usages = [
        JobUsage("nova-lite-2", Method.SFT_LORA, "ml.p5.48xlarge", 4, billable_seconds=1800),
        JobUsage("nova-lite-2", Method.EVALUATION, "ml.p5.48xlarge", 1, billable_seconds=900),
    ]
    # (0.5 h x 4 + 0.25 h x 1) x 55.04 = 123.84
    assert usage_cost(usages, prices, tokens) == (123.84, "instance-hours")
    serverless = [JobUsage("nova-lite-2", Method.SFT_LORA, billable_tokens=2_000_000)]
    assert usage_cost(serverless, prices, tokens) == (5.0, "billable tokens")  # 2 M x 2.50 / M
    assert usage_cost([JobUsage("nova-lite-2", Method.SFT_LORA, "ml.x1.huge", 1, 60)], prices, tokens)[0] is None
