"""The sweep's leaderboard: every variant side by side, each against the shared baseline, and the winner.

Comparing N variants with the baseline is N tests: at alpha 0.05 one in twenty useless variants "beats" the
baseline by luck alone, so a sweep of ten would crown noise half the time. Each variant's p-value (the paired test
:mod:`novaflow.evaluation.compare` already computes) is therefore adjusted for the number of variants compared,
with Holm's step-down method - as strict as Bonferroni where it must be and never weaker than it - and the gate
(:func:`novaflow.deploy.gate.judge_delta`, the same rule a single run deploys by) is applied with the adjusted
p-value. The winner is the variant with the largest gain on the gate metric among those that pass; with none, the
reason names the best one and why it did not pass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from novaflow.deploy.gate import GateDecision, judge_delta
from novaflow.errors import DeployError
from novaflow.evaluation.compare import MetricDelta, StageComparison


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: the i-th smallest of m is multiplied by (m - i + 1), then made
    non-decreasing in that order and capped at 1. A variant passes at level alpha when its adjusted p < alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (p_values[i], i))
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class VariantOutcome:
    """What one variant produced: its comparison with the baseline (baseline first, its stages after), or the one
    line that says why it produced none; and what it cost."""

    name: str
    patch: str
    comparison: StageComparison | None
    cost: float | None = None
    cost_basis: str = ""
    wall_seconds: float | None = None
    jobs: int = 0
    model_package_version: str | None = None
    error: str | None = None


@dataclass
class LeaderboardRow:
    outcome: VariantOutcome
    metrics: dict[str, float]
    delta: MetricDelta | None
    p_adjusted: float | None = None
    gate: GateDecision | None = None

    @property
    def name(self) -> str:
        return self.outcome.name

    def record(self) -> dict[str, Any]:
        """One row of the leaderboard table artifact (four decimals, as every table novaflow publishes)."""
        d = self.delta
        row: dict[str, Any] = {"variant": self.name, "patch": self.outcome.patch}
        row.update({k: round(v, 4) for k, v in self.metrics.items()})
        row.update(
            {
                "delta": None if d is None else round(d.delta, 4),
                "ci_low": None if d is None else round(d.ci_low, 4),
                "ci_high": None if d is None else round(d.ci_high, 4),
                "p_value": None if d is None else round(d.p_value, 4),
                "p_holm": None if self.p_adjusted is None else round(self.p_adjusted, 4),
                "gate": "pass" if self.gate and self.gate.approved else ("fail" if self.gate else "-"),
                "cost": None if self.outcome.cost is None else round(self.outcome.cost, 2),
                "cost_basis": self.outcome.cost_basis,
                "wall_s": None if self.outcome.wall_seconds is None else round(self.outcome.wall_seconds, 1),
                "jobs": self.outcome.jobs,
                "model_package_version": self.outcome.model_package_version or "",
                "error": self.outcome.error or "",
            }
        )
        return row


@dataclass
class Leaderboard:
    metric: str
    rows: list[LeaderboardRow] = field(default_factory=list)
    winner: str | None = None
    reason: str = ""

    @property
    def compared(self) -> int:
        return sum(1 for row in self.rows if row.p_adjusted is not None)

    def records(self) -> list[dict[str, Any]]:
        return [row.record() for row in self.rows]

    def winner_line(self) -> str:
        return f"winner: {self.winner}" if self.winner else f"winner: none ({self.reason})"

    def lines(self) -> list[str]:
        """The leaderboard as the CLI prints it, then the winner line."""
        header = ["variant", f"{self.metric}", "delta", "95% CI", "p", "p_holm", "gate", "cost", "wall", "jobs"]
        body = []
        for row in self.rows:
            d = row.delta
            value = (
                row.metrics.get(f"{row.outcome.comparison.stages[-1]}:{self.metric}")
                if row.outcome.comparison
                else None
            )
            body.append(
                [
                    row.name,
                    "-" if value is None else f"{value:.4f}",
                    "-" if d is None else f"{d.delta:+.4f}",
                    "-" if d is None else f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]",
                    "-" if d is None else f"{d.p_value:.4g}",
                    "-" if row.p_adjusted is None else f"{row.p_adjusted:.4g}",
                    "pass" if row.gate and row.gate.approved else ("fail" if row.gate else (row.outcome.error or "-")),
                    "-" if row.outcome.cost is None else f"{row.outcome.cost:,.2f}",
                    "-" if row.outcome.wall_seconds is None else f"{row.outcome.wall_seconds:.1f}s",
                    str(row.outcome.jobs),
                ]
            )
        widths = [max(len(h), *(len(r[i]) for r in body)) + 2 if body else len(h) + 2 for i, h in enumerate(header)]
        lines = ["".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
        lines += ["".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
        return [*lines, self.winner_line()]


def _stage_metrics(comparison: StageComparison | None) -> dict[str, float]:
    if comparison is None:
        return {}
    return {
        f"{stage}:{metric}": float(by_stage[stage][0])
        for metric, by_stage in comparison.values.items()
        for stage in comparison.stages
        if stage in by_stage
    }


def build_leaderboard(
    outcomes: Sequence[VariantOutcome],
    *,
    metric: str = "em",
    min_delta: float = 0.0,
    alpha: float = 0.05,
    require_significance: bool = True,
    higher_is_better: bool = True,
) -> Leaderboard:
    """Rank the variants on ``metric``: each variant's last stage against the baseline (the comparison's first
    stage), p-values Holm-adjusted over the variants that have one, the gate applied with the adjusted p-value."""
    board = Leaderboard(metric)
    for outcome in outcomes:
        delta = None
        if outcome.comparison is not None and outcome.error is None:
            stages = outcome.comparison.stages
            try:
                delta = outcome.comparison.delta(metric, stages[0], stages[-1])
            except KeyError:
                delta = None
        board.rows.append(LeaderboardRow(outcome, _stage_metrics(outcome.comparison), delta))
    compared = [row for row in board.rows if row.delta is not None]
    for row, p in zip(compared, holm_adjust([r.delta.p_value for r in compared if r.delta]), strict=True):
        row.p_adjusted = p
        assert row.delta is not None
        adjusted = dataclasses.replace(row.delta, p_value=p)
        try:
            row.gate = judge_delta(
                adjusted,
                min_delta=min_delta,
                require_significance=require_significance,
                alpha=alpha,
                higher_is_better=higher_is_better,
            )
        except DeployError as exc:  # a NaN or malformed delta: not a candidate, said in the row
            row.gate = None
            row.outcome = dataclasses.replace(row.outcome, error=str(exc))
    sign = 1.0 if higher_is_better else -1.0
    passing = [row for row in compared if row.gate is not None and row.gate.approved]
    if passing:
        best = max(passing, key=lambda r: sign * (r.delta.delta if r.delta else -math.inf))
        board.winner = best.name
        board.reason = best.gate.reason if best.gate else ""
    elif not compared:
        failed = [row.name for row in board.rows if row.outcome.error]
        board.reason = f"no variant has a {metric} comparison with the baseline" + (
            f" ({', '.join(failed)} failed)" if failed else ""
        )
    else:
        best = max(compared, key=lambda r: sign * (r.delta.delta if r.delta else -math.inf))
        why = best.gate.reason if best.gate else (best.outcome.error or "no gate decision")
        board.reason = (
            f"no variant passes the gate after the Holm adjustment over {len(compared)} variants; "
            f"the best, {best.name}, {why}"
        )
    return board
