"""What a run tells people at its end: the run-summary markdown artifact (what ran, how long, where, what it may
cost) and the content of the HTML report, gathered from the :class:`RunLog` the stages filled."""

from __future__ import annotations

from typing import Any

from flows.params import EndToEndParams
from flows.stages import RunLog
from novaflow.aws import bills_like_aws
from novaflow.data.splits import MAX_STRATA
from novaflow.evaluation.compare import StageComparison
from novaflow.evaluation.results import EvalResult
from novaflow.reports.run import JobLink, RunReport
from reward_lambda.labels import DEFAULT_LABELS

CELL_CHARS = 60
"""The longest value a summary table cell holds; longer ones (URIs, reasons) go on their own lines, so the tables
fit the artifact page instead of running off its right edge."""


def fits_a_cell(text: str) -> bool:
    return len(text) <= CELL_CHARS and "://" not in text


def run_summary_markdown(
    log: RunLog,
    *,
    comparison_rows: list[dict[str, Any]] | None = None,
    gate: str | None = None,
    deployment: str | None = None,
    endpoint: str | None = None,
) -> str:
    """The run-summary artifact. ``endpoint`` is where the run's AWS clients went (None: AWS itself); cost estimates
    say they bill nothing when it is not AWS."""
    lines = [f"# novaflow run `{log.run_name}`", ""]
    total = sum(s.seconds for s in log.stages)
    details = [(s.stage, s.detail) for s in log.stages if not fits_a_cell(s.detail)]
    lines += ["## Stages", "", "| stage | seconds | detail |", "|---|---:|---|"]
    lines += [
        f"| {s.stage} | {s.seconds:.1f} | {s.detail if fits_a_cell(s.detail) else 'below, under Stage details'} |"
        for s in log.stages
    ]
    lines += [f"| **total** | {total:.1f} | |", ""]
    if details:
        lines += ["### Stage details", ""] + [f"- {stage}: {detail}" for stage, detail in details] + [""]
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
    if log.versions:
        # The table holds what fits a column; the ARN, the approval's reason and the metrics are long, so each
        # version gets its own lines under the table.
        lines += ["## Model registry", "", "| stage | group | version | status |", "|---|---|---:|---|"]
        lines += [f"| {stage} | {v.group} | {v.version} | {v.status} |" for stage, v in log.versions.items()]
        lines.append("")
        for stage, version in log.versions.items():
            metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(version.metrics.items())[:4])
            lines += [f"- {stage}: `{version.arn}`"]
            lines += [f"  - approval: {version.approval_description}"] if version.approval_description else []
            lines += [f"  - metrics: {metrics}"] if metrics else []
        lines.append("")
    if gate:
        lines += ["## Gate", "", gate, ""]
    if deployment:
        lines += ["## Deployment", "", deployment, ""]
    if log.locations:
        lines += ["## Where things are", ""] + [f"- {k}: {_location(v)}" for k, v in log.locations.items()] + [""]
    if log.costs:
        lines += ["## Cost estimates (before spending)", ""]
        if not bills_like_aws(endpoint):
            lines += [
                f"Nothing was billed: this run's AWS clients talked to {endpoint} - not AWS. On AWS, at the price "
                "table's list prices, the jobs would cost at most:",
                "",
            ]
        lines += [f"- {k}: {v}" for k, v in log.costs.items()] + [""]
    if log.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in log.notes] + [""]
    return "\n".join(lines)


def _location(value: str) -> str:
    """A link a person clicks for a web address (a presigned report link is long), the value as code otherwise."""
    if value.startswith(("http://", "https://")):
        return f"[open]({value})"
    return f"`{value}`"


def run_report(
    log: RunLog,
    params: EndToEndParams,
    stages: dict[str, EvalResult],
    comparison: StageComparison | None,
    *,
    region: str,
    console: str | None = None,
    deployment: str | None,
    flow_run_url: str | None = None,
) -> RunReport:
    """The report's content; says why nothing was deployed when nothing was."""
    not_deployed = None
    if deployment is None:
        if "deploy" in params.skip:
            not_deployed = "the deploy stage was skipped"
        elif not params.deploy.enabled:
            not_deployed = "deployment is disabled (deploy.enabled = false)"
        elif log.gate is not None and not log.gate.approved:
            not_deployed = f"the gate rejected the candidate: {log.gate.reason}"
        elif comparison is None:
            not_deployed = "there was no baseline and candidate to compare"
        else:
            not_deployed = "no trained checkpoint to deploy"
    gate_stages = (comparison.stages[0], comparison.stages[-1]) if comparison is not None and log.gate else None
    return RunReport(
        run_name=log.run_name,
        stages=stages,
        comparison=comparison,
        gate=log.gate,
        gate_stages=gate_stages,
        deployment=deployment.replace("`", "") if deployment else None,
        not_deployed=not_deployed,
        jobs=[JobLink(stage, r.name, r.status.value, region, r.attached, console) for stage, r in log.jobs.items()],
        curves=dict(log.curves),
        split=log.split,
        data=dict(log.data),
        reward=log.reward,
        timings={s.stage: s.seconds for s in log.stages},
        labels=report_labels(params, stages),
        model_package_version=log.model_package_version,
        flow_run_url=flow_run_url,
        notes=list(log.notes),
    )


def report_labels(params: EndToEndParams, stages: dict[str, EvalResult]) -> tuple[str, ...]:
    """The label set for per-class tables: the reward's, the sample's, or the reference answers when they are as few as
    the splits stratify by."""
    if params.reward.labels:
        return tuple(params.reward.labels)
    if params.data.source == "sample":
        return DEFAULT_LABELS
    golds = {g.strip() for result in stages.values() for g in result.golds}
    return tuple(sorted(golds)) if 0 < len(golds) <= MAX_STRATA else ()
