"""Prefect tasks for the model registry: register a stage's model, record its evaluation, set its approval."""

from __future__ import annotations

from collections.abc import Mapping

from prefect import get_run_logger, task

from novaflow.jobs.records import JobRecord
from novaflow.jobs.spec import JobSpec
from novaflow.registry.jobs import register_job_model
from novaflow.registry.lineage import metric_properties
from novaflow.registry.packages import ModelVersion, annotate, deployable_checkpoint, set_approval
from novaflow.settings import NovaflowSettings
from tasks.common import AWS_RETRIES


@task(name="register-model", **AWS_RETRIES)
def register_model_task(
    record: JobRecord,
    spec: JobSpec,
    group: str,
    checkpoint: str,
    *,
    stage: str,
    flow_run: str | None = None,
    settings: NovaflowSettings,
) -> ModelVersion:
    """The stage's model as a version of ``group`` with its lineage (idempotent: a re-run finds it)."""
    version = register_job_model(record, spec, group, checkpoint, stage=stage, flow_run=flow_run, settings=settings)
    get_run_logger().info("%s model is %s v%d (%s)", stage, version.group, version.version, version.status)
    return version


@task(name="record-evaluation", **AWS_RETRIES)
def record_metrics_task(arn: str, metrics: Mapping[str, float], stage: str, settings: NovaflowSettings) -> ModelVersion:
    """The evaluation that followed a stage, as metrics on its version."""
    return annotate(arn, metric_properties(metrics, stage=stage), settings)


@task(name="set-approval", **AWS_RETRIES)
def set_approval_task(arn: str, status: str, reason: str, settings: NovaflowSettings) -> ModelVersion:
    """Record the gate's (or a person's) decision on the version; the reason is kept with it."""
    version = set_approval(arn, status, reason, settings)
    get_run_logger().info("%s is %s: %s", arn, version.status, reason)
    return version


@task(name="approved-checkpoint", **AWS_RETRIES)
def approved_checkpoint_task(arn: str, settings: NovaflowSettings) -> str:
    """The checkpoint of an Approved version; a rejected or pending version fails the run before deploying."""
    version, checkpoint = deployable_checkpoint(arn, settings)
    get_run_logger().info("deploying %s (%s): %s", arn, version.status, checkpoint)
    return checkpoint
