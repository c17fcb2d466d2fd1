"""Markdown summary and table rows of an evaluation: what a Prefect artifact or a pull request shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.results import EvalResult
from novaflow.reports.format import fixed as _num
from novaflow.reports.format import p_text


def metric_table_markdown(result: EvalResult) -> str:
    lines = ["| metric | value | stderr | scale |", "|---|---:|---:|---|"]
    lines += [f"| {r.name} | {_num(r.value)} | {_num(r.stderr)} | {r.scale} |" for r in result.metrics]
    return "\n".join(lines)


def comparison_markdown(comparison: StageComparison, *, alpha: float = 0.05) -> str:
    """The stage table (value ± stderr) and every paired delta with its CI, p-value and verdict."""
    stages = comparison.stages
    head = "| metric | " + " | ".join(stages) + " |"
    lines = [head, "|---|" + "---:|" * len(stages)]
    for metric, by_stage in comparison.values.items():
        cells = []
        for s in stages:
            value, stderr = by_stage.get(s, (float("nan"), None))
            cells.append(_num(value) + (f" ± {_num(stderr)}" if stderr is not None else ""))
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Paired on {comparison.n} rows (bootstrap CI; McNemar for 0/1 metrics, sign-flip otherwise).",
        "",
        "| from | to | metric | delta | CI | p-value | test | verdict |",
        "|---|---|---|---:|---|---:|---|---|",
    ]
    for base, cand, d in comparison.deltas:
        verdict = "significant" if d.significant(alpha) else "not significant"
        lines.append(
            f"| {base} | {cand} | {d.metric} | {_num(d.delta, signed=True)} | "
            f"[{_num(d.ci_low, signed=True)}, {_num(d.ci_high, signed=True)}] | {p_text(d.p_value)} | {d.test} | "
            f"{verdict} |"
        )
    return "\n".join(lines)


def summary_markdown(stages: Mapping[str, EvalResult], comparison: StageComparison | None = None) -> str:
    parts = ["# Evaluation summary", ""]
    for name, result in stages.items():
        parts += [
            f"## {name}",
            f"Source: `{result.source}` - {len(result.samples)} samples",
            "",
            metric_table_markdown(result),
            "",
        ]
        parts += [f"> warning: {w}" for w in result.warnings]
        parts += [f"> **disagreement with the archive**: {d}" for d in result.disagreements]
    if comparison is not None:
        parts += ["## Comparison", "", comparison_markdown(comparison), ""]
    return "\n".join(parts).rstrip() + "\n"


def metric_rows(result: EvalResult) -> list[dict[str, Any]]:
    """Rows for a Prefect table artifact (exact; :func:`tasks.common.publish_table` rounds them for reading)."""
    return result.metrics.to_records()
