"""One job run to its end for every stage that runs one: dry run, submit (or attach), record, wait.

Training and evaluation stages share this, so a job submitted by any flow is the same job (its name is a hash of
its resolved spec) and every job is written to the run's job ledger before the run waits on it: the hooks and the
graph runner stop what the ledger lists when the run is cancelled or a branch fails.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from flows.params import JobParams
from flows.stages.context import StageContext
from flows.stages.run_log import RunLog
from novaflow.catalog import Method, Platform
from novaflow.errors import JobError
from novaflow.jobs.records import JobRecord
from novaflow.jobs.spec import JobSpec
from novaflow.quotas.refusals import is_capacity_failure
from novaflow.tracking.mlflow import is_sagemaker_mlflow_arn
from tasks.jobs import dry_run_task, submit_job_task, wait_job_task
from tasks.quotas import KeepWhileSuspended, run_job_within_quota
from tasks.runs import current_flow_run_id, park_while_running, register_job_task


def run_job(ctx: StageContext, stage: str, spec: JobSpec, job: JobParams) -> JobRecord:
    """Validate, submit (or attach), register with the run, wait; a failed job fails the stage with its reason."""
    log, wait, settings = ctx.log, ctx.wait, ctx.settings
    record: JobRecord | None = None
    spec = with_recipe_tracking(spec, log)
    log.specs[stage] = spec
    if job.existing_job:
        record = JobRecord(
            platform=spec.platform,
            name=job.existing_job,
            spec_hash="existing",
            method=spec.method.value,
            model=spec.model,
            output_uri=spec.resolve(settings).output_uri,
            attached=True,
        )
        get_run_logger().info("%s: using existing job %s", stage, job.existing_job)
    else:
        report = dry_run_task(spec, settings)
        if report.cost is not None:
            log.costs[stage] = report.cost.describe()
    existing = record

    def submit(capacity_attempt: int) -> JobRecord:
        submitted = existing or submit_job_task(
            spec, settings, retry_failed=job.retry_failed, capacity_attempt=capacity_attempt
        )
        register_job_task(ctx.owner_id(), submitted.name, submitted.platform.value, stage, settings=settings)
        log.jobs[stage] = submitted
        return submitted

    done = run_job_within_quota(
        stage,
        spec,
        settings,
        quotas=wait.quotas,
        submit=submit,
        wait=lambda submitted: _wait(ctx, stage, submitted, spec),
        poll_seconds=wait.poll_seconds,
        max_poll_seconds=wait.max_poll_seconds,
        max_wait_hours=wait.max_wait_hours,
        keep=KeepWhileSuspended(current_flow_run_id(), settings, wait.max_wait_hours * 3600)
        if wait.mode == "suspend"
        else None,
    )
    log.jobs[stage] = done
    return done


def _wait(ctx: StageContext, stage: str, record: JobRecord, spec: JobSpec) -> JobRecord:
    wait = ctx.wait
    park_while_running(stage, record, wait.mode, ctx.settings)
    try:
        return wait_job_task(
            record,
            spec=spec,
            max_wait_seconds=wait.max_wait_hours * 3600,
            poll_seconds=wait.poll_seconds,
            max_poll_seconds=wait.max_poll_seconds,
            stop_on_deadline=wait.stop_on_deadline,
            settings=ctx.settings,
            stage=stage,
        )
    except JobError as exc:
        if is_capacity_failure(exc.failure_reason):
            raise  # not a failure of the stage: the quota queue logs it as queued and submits again
        # The message carries the job's FailureReason and its last log lines; say it in the run log once more
        # with the stage, because this is the line a person reads first.
        get_run_logger().error(
            "%s job %s did not complete (%s): %s", stage, exc.job_name or record.name, exc.status or "see reason", exc
        )
        raise


def with_recipe_tracking(spec: JobSpec, log: RunLog) -> JobSpec:
    """With a SageMaker MLflow ARN as the tracking URI, the recipe tells the training container to log there too
    (experiment: the run's; MLflow run name: the job's). Other URIs (a local file, a laptop server) are not
    reachable from a training container, so only novaflow itself logs to them."""
    tracker = log.tracker
    if tracker is None or not is_sagemaker_mlflow_arn(tracker.uri) or spec.mlflow_tracking_uri:
        return spec
    return spec.model_copy(update={"mlflow_tracking_uri": tracker.uri, "mlflow_experiment_name": tracker.experiment})


def spec_for(model: str, method: Method, job: JobParams, *, group: str | None = None, **fields: Any) -> JobSpec:
    """A JobSpec from a stage's parameters (infrastructure left to settings, resolved at submit); a SERVERLESS
    job registers its model in the run's ``group``."""
    platform = Platform.parse(job.platform)
    serverless = platform is Platform.SERVERLESS
    hyperpod = platform is Platform.SMHP
    return JobSpec(
        platform=platform,
        cluster=job.cluster if hyperpod else None,
        namespace=job.namespace if hyperpod else None,
        model=model,
        method=method,
        overrides=dict(job.overrides),
        instance_type=None if serverless else job.instance_type,
        instance_count=None if serverless else job.instance_count,
        image_uri=job.image_uri,
        model_package_group=group if serverless else None,
        accept_eula=job.accept_eula and serverless,
        **fields,
    )
