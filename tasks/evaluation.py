"""Prefect tasks for evaluation: parse an output into a metric table artifact, compare stages.

Thin on purpose: the numbers come from :mod:`novaflow.evaluation`; these tasks add retries on transient S3 errors,
logging, and artifacts a person reads in the Prefect UI (the metric table per stage and the paired comparison; the
HTML report is :mod:`tasks.reports`). A recomputation disagreement is logged as a warning, never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from novaflow.evaluation.compare import StageComparison, compare_stages
from novaflow.evaluation.judging import upload_judge_dataset
from novaflow.evaluation.parser import parse_eval_output
from novaflow.evaluation.results import EvalResult
from novaflow.reports.eval_summary import comparison_markdown, metric_rows, metric_table_markdown
from novaflow.settings import NovaflowSettings
from tasks.common import AWS_RETRIES, artifact_key, publish_table


@task(name="parse-eval-output", **AWS_RETRIES)
def parse_eval_output_task(location: str, stage: str, *, settings: NovaflowSettings, verify: bool = True) -> EvalResult:
    """Parse one stage's evaluation output and publish its metric table (``eval-<stage>-metrics``)."""
    result = parse_eval_output(location, settings=settings, verify=verify)
    logger = get_run_logger()
    logger.info("%s: %d metrics, %d samples from %s", stage, len(result.metrics), len(result.samples), location)
    for warning in result.warnings:
        logger.warning(warning)
    for disagreement in result.disagreements:
        logger.warning("%s: archive and recomputation disagree: %s", stage, disagreement)
    publish_table(
        metric_rows(result),
        key=artifact_key("eval", stage, "metrics"),
        description=f"{stage}: {result.source}\n\n{metric_table_markdown(result)}",
    )
    return result


@task(name="upload-judge-dataset", **AWS_RETRIES)
def upload_judge_dataset_task(result: EvalResult, uri: str, *, settings: NovaflowSettings) -> str:
    """Write a stage's judge dataset (prompt, reference as response_A, the stage's answer as response_B)."""
    where = upload_judge_dataset(result, uri, settings)
    get_run_logger().info("judge dataset of %d answers: %s", len(result.samples), where)
    return where


@task(name="compare-stages")
def compare_stages_task(
    stages: Mapping[str, EvalResult], *, n_boot: int = 2000, seed: int = 0, key_suffix: str = ""
) -> StageComparison:
    """Paired comparison of the stages (baseline first); publishes the deltas table and the markdown summary."""
    comparison = compare_stages(dict(stages), n_boot=n_boot, seed=seed)
    markdown = comparison_markdown(comparison)
    publish_table(
        comparison.delta_records(),
        key=artifact_key("eval", "comparison", key_suffix),
        description=f"Paired deltas over {comparison.n} rows",
    )
    create_markdown_artifact(
        markdown=markdown,
        key=artifact_key("eval", "comparison", "summary", key_suffix),
        description=f"Stages {', '.join(comparison.stages)} side by side, with paired deltas over {comparison.n} rows",
    )
    return comparison
