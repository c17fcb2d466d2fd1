"""Prefect tasks for batch inference: plan (the dry run), submit once, wait, collect into the result table.

Thin on purpose: the work is :mod:`novaflow.inference.batch`; these add retries on transient AWS errors, the run
log, and the artifacts a person reads (the plan, the summary, the refused rows).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import get_run_logger, task

from novaflow.inference.batch import BatchPlan, BatchSpec, collect_batch, plan_batch, submit_batch, wait_batch
from novaflow.inference.results import BatchSummary
from novaflow.jobs.records import JobRecord
from novaflow.settings import NovaflowSettings
from tasks.common import AWS_RETRIES, artifact_key, publish_table

FAILURES_SHOWN = 200
"""Refused rows shown in the artifact; every one of them is in ``failures.jsonl``."""


@task(name="plan-batch-inference", **AWS_RETRIES)
def plan_batch_task(spec: BatchSpec, work_dir: str, *, settings: NovaflowSettings) -> BatchPlan:
    """Read the rows and decide the job; refuse (before anything is uploaded) what AWS would refuse."""
    plan = plan_batch(spec, Path(work_dir), settings)
    get_run_logger().info(plan.describe())
    plan.raise_for_problems()
    return plan


@task(name="submit-batch-inference", **AWS_RETRIES)
def submit_batch_task(plan: BatchPlan, *, settings: NovaflowSettings) -> JobRecord:
    """Upload the input and create the job, or attach to the one this model and data already have."""
    record = submit_batch(plan, settings)
    get_run_logger().info("%s batch inference job %s", "attached to" if record.attached else "created", record.name)
    return record


@task(name="wait-batch-inference", **AWS_RETRIES)
def wait_batch_task(
    plan: BatchPlan,
    record: JobRecord,
    *,
    poll_seconds: float = 30.0,
    max_poll_seconds: float = 300.0,
    max_wait_seconds: float = 86400.0,
    settings: NovaflowSettings,
) -> JobRecord:
    """Wait until the job ends; a failed or stopped job fails the task with the job's reason."""
    return wait_batch(
        plan,
        record,
        poll_seconds=poll_seconds,
        max_poll_seconds=max_poll_seconds,
        max_wait_seconds=max_wait_seconds,
        settings=settings,
    )


@task(name="collect-batch-inference", **AWS_RETRIES)
def collect_batch_task(plan: BatchPlan, record: JobRecord, *, settings: NovaflowSettings) -> BatchSummary:
    """Write the result table and publish the summary and the refused rows as artifacts."""
    outcome = collect_batch(plan, record, settings)
    logger = get_run_logger()
    for warning in outcome.warnings:
        logger.info(warning)
    logger.info(outcome.summary.describe())
    summary = asdict(outcome.summary)
    publish_table(
        [{"field": k, "value": v} for k, v in summary.items() if k != "outputs"],
        key=artifact_key("batch", record.name, "summary"),
        description=f"Batch inference {record.name}: {outcome.summary.describe()}",
    )
    if outcome.table.failures:
        publish_table(
            [f.as_dict() for f in outcome.table.failures[:FAILURES_SHOWN]],
            key=artifact_key("batch", record.name, "failures"),
            description=f"{len(outcome.table.failures)} rows without an answer (all in {outcome.paths['failures']})",
        )
    return outcome.summary
