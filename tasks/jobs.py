"""Prefect tasks for training and evaluation jobs: submit once, then watch inside one long task.

Submit is cached on its inputs and task source with persisted results, so a re-run flow gets the cached record
instead of calling AWS; the hash-derived job name plus describe-before-create closes the window a crash leaves.
Waiting polls inside one task (task timeouts cannot interrupt a blocking boto3 call) with its own deadline,
streams the job's log lines to the run logger and keeps a progress artifact at step / max_steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import TASK_SOURCE, CacheKeyFnPolicy

from novaflow.aws import get_client, is_retryable
from novaflow.catalog import Method, Platform
from novaflow.errors import JobError, NovaflowError, RecipeError
from novaflow.jobs.dryrun import DryRunReport, dry_run
from novaflow.jobs.logs import LogLine, metrics_frame, parse_metric_line
from novaflow.jobs.outputs import checkpoint_of, locate_eval_output
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.records import JobRecord
from novaflow.jobs.series import TrainingSeries, read_training_series
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission, submit_training_job
from novaflow.recipes.overrides import get_path
from novaflow.settings import NovaflowSettings, load_settings
from novaflow.sweeps.plan import JobUsage
from tasks.common import AWS_RETRIES, artifact_key, publish_table


@task(name="dry-run-job", **AWS_RETRIES)
def dry_run_task(
    spec: JobSpec, settings: NovaflowSettings | None = None, expected_hours: float | None = None
) -> DryRunReport:
    """Every problem and the cost estimate, logged before anything is spent; raises when there are problems."""
    report = dry_run(spec, settings, expected_hours=expected_hours)
    logger = get_run_logger()
    logger.info(report.describe())
    if not report.ok:
        raise RecipeError(report.describe())
    return report


def submit_cache_key(context: object, parameters: dict[str, object]) -> str:
    """Job name (a hash of the full resolved spec) + where it was sent: the same spec against another account,
    region or endpoint (a fresh embedded AWS) is another job, and a cached record must not stand in for it."""
    import hashlib
    import json

    settings = parameters.get("settings") or load_settings()
    spec = parameters["spec"]
    assert isinstance(spec, JobSpec) and isinstance(settings, NovaflowSettings)
    key = {
        "job": spec.resolve(settings).job_name(),
        "region": settings.region,
        "bucket": settings.bucket,
        "endpoint": settings.resolved_endpoint_url(),
        "retry_failed": parameters.get("retry_failed"),
        "force_new": parameters.get("force_new"),
    }
    if parameters.get("capacity_attempt"):  # a retry after a capacity refusal asks AWS again (older keys unchanged)
        key["capacity_attempt"] = parameters["capacity_attempt"]
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


@task(
    name="submit-training-job",
    cache_policy=TASK_SOURCE + CacheKeyFnPolicy(cache_key_fn=submit_cache_key),
    persist_result=True,
    **AWS_RETRIES,
)
def submit_job_task(
    spec: JobSpec,
    settings: NovaflowSettings | None = None,
    *,
    retry_failed: bool = False,
    force_new: bool = False,
    capacity_attempt: int = 0,
) -> JobRecord:
    """Create the job for ``spec`` or attach to it; never a duplicate. ``capacity_attempt`` counts the capacity
    refusals before this call (see :func:`novaflow.quotas.queue.run_within_capacity`): only the cache sees it."""
    record = submit_training_job(spec, settings, retry_failed=retry_failed, force_new=force_new)
    get_run_logger().info(
        "%s job %s (%s)", "attached to" if record.attached else "created", record.name, record.status.value
    )
    return record


PROGRESS_UPDATE_SECONDS = 2.0
"""Least time between two updates of a job's progress artifact (each is an API call)."""


class ProgressReporter:
    """Turns log lines into run-log lines and a progress artifact (step / max_steps).

    The artifact is updated at most every ``PROGRESS_UPDATE_SECONDS``: a job's log arrives in pages, and a run
    resumed after its job ended (``wait.mode: suspend``) reads the whole log at once - one update per metric line
    was a hundred API calls of worker time for a progress bar that ends at 100 % anyway."""

    def __init__(
        self,
        record: JobRecord,
        max_steps: int | None,
        stage: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = get_run_logger()
        self.max_steps = max_steps
        self.lines: list[str] = []
        self.clock = clock
        self.updated: float | None = None
        # One card per stage, named by the stage a person knows ("sft-progress"), not by the job's hash name.
        what = f"{stage} (job {record.name})" if stage else f"job {record.name}"
        artifact_id = create_progress_artifact(
            0.0, key=artifact_key(stage or record.name, "progress"), description=f"Progress of {what}"
        )
        assert isinstance(artifact_id, UUID)  # called from sync code, so Prefect ran it and returned the id
        self.artifact_id = artifact_id

    def __call__(self, line: LogLine) -> None:
        self.lines.append(line.message)
        self.logger.info("[%s] %s", line.stream, line.message)
        metric = parse_metric_line(line.message)
        now = self.clock()
        if metric and self.max_steps and (self.updated is None or now - self.updated >= PROGRESS_UPDATE_SECONDS):
            update_progress_artifact(self.artifact_id, min(100.0, 100.0 * metric["step"] / self.max_steps))
            self.updated = now


def max_steps_of(spec: JobSpec | None) -> int | None:
    if spec is None:
        return None
    recipe = prepare_submission(spec, strict=False).recipe.recipe
    for path in ("training_config.max_steps", "training_config.trainer.max_steps", "HyperParameters.max_steps"):
        try:
            return int(get_path(recipe, path))
        except (KeyError, TypeError, ValueError):
            continue
    return None


@task(name="wait-for-job", **AWS_RETRIES)
def wait_job_task(
    record: JobRecord,
    *,
    spec: JobSpec | None = None,
    max_wait_seconds: float = 86400.0,
    poll_seconds: float = 30.0,
    max_poll_seconds: float = 300.0,
    stop_on_deadline: bool = True,
    settings: NovaflowSettings | None = None,
    stage: str | None = None,
) -> JobRecord:
    """Poll until the job ends; log lines go to the run log, progress to an artifact, metrics to a table (both
    named by ``stage`` when given)."""
    reporter = ProgressReporter(record, max_steps_of(spec), stage)
    try:
        done = wait_for_job(
            record.name,
            platform=record.platform,
            poll_seconds=poll_seconds,
            max_poll_seconds=max_poll_seconds,
            max_wait_seconds=max_wait_seconds,
            stop_on_deadline=stop_on_deadline,
            on_log_line=reporter,
            settings=settings,
            record=record,
        )
    finally:
        frame = metrics_frame(reporter.lines)
        if not frame.empty:
            publish_table(
                frame.to_dict("records"),
                key=artifact_key(stage or record.name, "metrics"),
                description=f"Training metrics parsed from the logs of {stage or 'job'} {record.name}",
            )
    update_progress_artifact(reporter.artifact_id, 100.0)
    return done


@task(name="read-training-series", **AWS_RETRIES)
def training_series_task(stage: str, record: JobRecord, settings: NovaflowSettings | None = None) -> TrainingSeries:
    """The job's curves for the report and MLflow; a job whose metrics cannot be read still counts as trained."""
    try:
        series = read_training_series(stage, record, settings)
    except NovaflowError as exc:
        if is_retryable(exc) or (exc.__cause__ is not None and is_retryable(exc.__cause__)):
            raise  # throttled or transient: the task's retries handle it
        get_run_logger().warning("%s: no training curves for %s: %s", stage, record.name, exc)
        return TrainingSeries(stage, record.name)
    get_run_logger().info(
        "%s: %d steps of %s from %s", stage, len(series.steps), ", ".join(series.values), ", ".join(series.sources)
    )
    return series


@task(name="resolve-checkpoint", **AWS_RETRIES)
def resolve_checkpoint_task(record: JobRecord, settings: NovaflowSettings | None = None) -> str:
    return checkpoint_of(record, settings)


@task(name="locate-eval-output", **AWS_RETRIES)
def locate_eval_output_task(record: JobRecord, settings: NovaflowSettings | None = None) -> str:
    return locate_eval_output(_output_uri(record), record.name, settings)


def _output_uri(record: JobRecord) -> str:
    if not record.output_uri:
        raise JobError(
            f"Job record {record.name} has no output_uri: load the record saved at submit time.", job_name=record.name
        )
    return record.output_uri


@task(name="job-usage", **AWS_RETRIES)
def job_usage_task(record: JobRecord, settings: NovaflowSettings | None = None) -> JobUsage:
    """What AWS says a finished job used: billable seconds on its instances, or the billable tokens of a serverless
    job (what a sweep's leaderboard prices)."""
    method = Method.parse(record.method)
    if record.billable_tokens is not None or record.platform is not Platform.SMTJ:
        return JobUsage(record.model, method, billable_tokens=record.billable_tokens)
    described = get_client("sagemaker", settings).describe_training_job(TrainingJobName=record.name)
    resources = described.get("ResourceConfig") or {}
    return JobUsage(
        record.model,
        method,
        instance_type=resources.get("InstanceType"),
        instance_count=int(resources.get("InstanceCount") or 1),
        billable_seconds=described.get("BillableTimeInSeconds"),
    )
