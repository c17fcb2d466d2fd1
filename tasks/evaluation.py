"""Prefect tasks for evaluation: parse an output into a metric table artifact, compare stages, publish a report.

Thin on purpose: the numbers come from :mod:`novaflow.evaluation`; these tasks add retries on transient S3 errors,
logging, and artifacts a person reads in the Prefect UI (the metric table per stage, the paired comparison, and a
link to the self-contained HTML report). A recomputation disagreement is logged as a warning, never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from novaflow.evaluation.compare import StageComparison, compare_stages
from novaflow.evaluation.judging import upload_judge_dataset
from novaflow.evaluation.parser import parse_eval_output
from novaflow.evaluation.results import EvalResult
from novaflow.reports.html import build_report, save_report
from novaflow.reports.summary import comparison_markdown, metric_rows, metric_table_markdown
from tasks.common import AWS_RETRIES, artifact_key


@task(name="parse-eval-output", **AWS_RETRIES)
def parse_eval_output_task(location: str, stage: str, *, verify: bool = True) -> EvalResult:
    """Parse one stage's evaluation output and publish its metric table (``eval-<stage>-metrics``)."""
    result = parse_eval_output(location, verify=verify)
    logger = get_run_logger()
    logger.info("%s: %d metrics, %d samples from %s", stage, len(result.metrics), len(result.samples), location)
    for warning in result.warnings:
        logger.warning(warning)
    for disagreement in result.disagreements:
        logger.warning("%s: archive and recomputation disagree: %s", stage, disagreement)
    create_table_artifact(
        table=metric_rows(result),
        key=artifact_key("eval", stage, "metrics"),
        description=f"{stage}: {result.source}\n\n{metric_table_markdown(result)}",
    )
    return result


@task(name="upload-judge-dataset", **AWS_RETRIES)
def upload_judge_dataset_task(result: EvalResult, uri: str) -> str:
    """Write a stage's judge dataset (prompt, reference as response_A, the stage's answer as response_B)."""
    where = upload_judge_dataset(result, uri)
    get_run_logger().info("judge dataset of %d answers: %s", len(result.samples), where)
    return where


@task(name="compare-stages")
def compare_stages_task(
    stages: Mapping[str, EvalResult], *, n_boot: int = 2000, seed: int = 0, key_suffix: str = ""
) -> StageComparison:
    """Paired comparison of the stages (baseline first); publishes the deltas table and the markdown summary."""
    comparison = compare_stages(dict(stages), n_boot=n_boot, seed=seed)
    markdown = comparison_markdown(comparison)
    create_table_artifact(
        table=comparison.delta_records(),
        key=artifact_key("eval", "comparison", key_suffix),
        description=f"Paired deltas over {comparison.n} rows",
    )
    create_markdown_artifact(markdown=markdown, key=artifact_key("eval", "comparison", "summary", key_suffix))
    return comparison


@task(name="build-eval-report", **AWS_RETRIES)
def build_report_task(
    stages: Mapping[str, EvalResult],
    out_path: str,
    *,
    comparison: StageComparison | None = None,
    s3_uri: str | None = None,
    curves: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    key_suffix: str = "",
) -> dict[str, str]:
    """Write the HTML report (and upload it) and publish a link artifact to it."""
    html = build_report(stages, comparison=comparison, curves=curves)
    where = save_report(html, Path(out_path), s3_uri=s3_uri)
    link = where.get("s3") or Path(where["local"]).resolve().as_uri()
    create_link_artifact(link=link, link_text="evaluation report", key=artifact_key("eval", "report", key_suffix))
    get_run_logger().info("evaluation report: %s", ", ".join(where.values()))
    return where
