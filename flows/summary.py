"""The run-summary markdown artifact: what ran, how long it took, where everything is, what it may cost."""

from __future__ import annotations

from typing import Any

from flows.stages import RunLog


def run_summary_markdown(
    log: RunLog,
    *,
    comparison_rows: list[dict[str, Any]] | None = None,
    gate: str | None = None,
    deployment: str | None = None,
) -> str:
    lines = [f"# novaflow run `{log.run_name}`", ""]
    total = sum(s.seconds for s in log.stages)
    lines += ["## Stages", "", "| stage | seconds | detail |", "|---|---:|---|"]
    lines += [f"| {s.stage} | {s.seconds:.1f} | {s.detail} |" for s in log.stages]
    lines += [f"| **total** | {total:.1f} | |", ""]
    if log.jobs:
        lines += ["## Jobs", "", "| stage | job | status | attached |", "|---|---|---|---|"]
        lines += [
            f"| {stage} | `{r.name}` | {r.status.value} | {'yes' if r.attached else 'no'} |"
            for stage, r in log.jobs.items()
        ]
        lines.append("")
    if comparison_rows:
        stages = [
            k for k in comparison_rows[0] if k != "metric" and not k.endswith("_stderr") and not k.startswith("delta_")
        ]
        deltas = [k for k in comparison_rows[0] if k.startswith("delta_")]
        lines += [
            "## Comparison",
            "",
            "| metric | " + " | ".join(stages + deltas) + " |",
            "|---|" + "---:|" * (len(stages) + len(deltas)),
        ]
        for row in comparison_rows:
            cells = [f"{row[k]:.4f}" if isinstance(row[k], float) else str(row[k]) for k in stages + deltas]
            lines.append(f"| {row['metric']} | " + " | ".join(cells) + " |")
        lines.append("")
    if gate:
        lines += ["## Gate", "", gate, ""]
    if deployment:
        lines += ["## Deployment", "", deployment, ""]
    if log.locations:
        lines += ["## Where things are", ""] + [f"- {k}: `{v}`" for k, v in log.locations.items()] + [""]
    if log.costs:
        lines += ["## Cost estimates (before spending)", ""] + [f"- {k}: {v}" for k, v in log.costs.items()] + [""]
    if log.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in log.notes] + [""]
    return "\n".join(lines)
