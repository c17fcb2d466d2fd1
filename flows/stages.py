"""The stages every flow is made of: prepare data, run a job to the end, evaluate a model.

These are plain functions that call tasks (not subflows), so the end-to-end flow and the single-stage flows share
one implementation, and every job a run submits is registered under the run's own id for the cancel and crash
hooks. Each stage records its elapsed time in a :class:`RunLog` that becomes the run-summary artifact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger

from flows.params import DataParams, JobParams, RewardParams, WaitParams
from novaflow.catalog import DataFormat, Method, Platform, method_problem
from novaflow.data.samples import SAMPLE_CSV, SYSTEM_PROMPT
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.errors import ConfigError, JobError
from novaflow.evaluation.results import EvalResult
from novaflow.jobs.records import JobRecord
from novaflow.jobs.spec import JobSpec
from novaflow.reward.deploy import RewardLambda
from novaflow.settings import NovaflowSettings
from reward_lambda.config import RewardConfig
from tasks.data import prepare_dataset_task, split_dataset_task, upload_dataset_task
from tasks.evaluation import parse_eval_output_task
from tasks.jobs import (
    dry_run_task,
    locate_eval_output_task,
    resolve_checkpoint_task,
    submit_job_task,
    wait_job_task,
)
from tasks.reward import deploy_reward_lambda_task, verify_reward_task
from tasks.runs import current_flow_run_id, job_slot, register_job_task

TRAINING_STAGES: dict[str, Method] = {"sft": Method.SFT_LORA, "rft": Method.RFT_LORA}
"""Training stage (as named in ``skip``) -> the method it runs; every flow also evaluates (Method.EVALUATION)."""


@dataclass
class StageRecord:
    stage: str
    seconds: float
    detail: str = ""


@dataclass
class RunLog:
    """What the run did, for the markdown summary: stages with times, jobs, S3 locations, cost estimates."""

    run_name: str
    stages: list[StageRecord] = field(default_factory=list)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    costs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        record = StageRecord(name, 0.0)
        start = time.perf_counter()
        get_run_logger().info("stage %s: started", name)
        try:
            yield record
        finally:
            record.seconds = time.perf_counter() - start
            self.stages.append(record)
            get_run_logger().info("stage %s: %.1f s %s", name, record.seconds, record.detail)


def source_of(data: DataParams) -> tuple[str, str | None]:
    """The file to read and the constant system prompt (the sample brings its own)."""
    if data.source == "sample":
        return str(SAMPLE_CSV), data.system_prompt or SYSTEM_PROMPT
    return data.source, data.system_prompt


def require_supported(model: str, methods: Sequence[Method], platform: Platform = Platform.SMTJ) -> None:
    """Refuse a run whose model cannot do one of its stages, before any data is prepared or job submitted."""
    for method in methods:
        problem = method_problem(model, method, platform)
        if problem:
            stage = next((name for name, m in TRAINING_STAGES.items() if m is method), None)
            hint = f" Skip the stage (skip: {stage}) or choose another model." if stage else ""
            raise ConfigError(problem + hint)


def prepare_data(
    data: DataParams,
    model: str,
    work_dir: Path,
    s3_prefix: str,
    *,
    methods: Sequence[Method] = (Method.SFT_LORA, Method.EVALUATION, Method.RFT_LORA),
    log: RunLog,
) -> dict[DataFormat, str]:
    """Split the source into one part per data format the methods read, transform each part to its format,
    upload; returns data format -> S3 URI of the data file."""
    path, system = source_of(data)
    formats = {m.data_format for m in methods}
    rows = {DataFormat.SFT: data.sft_rows, DataFormat.EVAL: data.eval_rows, DataFormat.RFT: data.rft_rows}
    sizes = {fmt.value: n for fmt, n in rows.items() if fmt in formats and n > 0}
    augment = {"rft": ["sft"]} if data.augment_rft_with_sft and "rft" in sizes and "sft" in sizes else None
    # Rows without a question or an answer cannot be in any split; leaving them out before splitting keeps the
    # eval set at its full size (the split report counts them).
    require = tuple(
        str(data.columns[k])
        for k in ("query", "response")
        if isinstance(data.columns.get(k), str) and not set("{}+") & set(data.columns[k])
    )
    split = split_dataset_task(
        DatasetSource(path=path),
        sizes,
        str(work_dir / "splits"),
        stratify=data.stratify,
        seed=data.seed,
        holdout=("eval",),
        augment=augment,
        require=require,
    )
    columns = ColumnMap(**data.columns)
    uris: dict[DataFormat, str] = {}
    for name in sizes:
        source = DatasetSource(
            path=str(split.files[name]), columns=columns, system_prompt=None if columns.system else system
        )
        fmt = DataFormat(name)
        prepared = prepare_dataset_task(
            source, fmt, model, str(work_dir / "prepared" / name), strict=data.strict, split=name
        )
        uploaded = upload_dataset_task(prepared, f"{s3_prefix}/data/{name}")
        uris[fmt] = uploaded[prepared.data_file.name]
        log.locations[f"data-{name}"] = uris[fmt]
    return uris


def run_job(
    stage: str, spec: JobSpec, job: JobParams, wait: WaitParams, log: RunLog, settings: NovaflowSettings | None = None
) -> JobRecord:
    """Validate, submit (or attach), register with the run, wait; a failed job fails the flow with its reason."""
    logger = get_run_logger()
    record: JobRecord | None = None
    if job.existing_job:
        record = JobRecord(
            platform=spec.platform,
            name=job.existing_job,
            spec_hash="existing",
            method=spec.method.value,
            model=spec.model,
            output_uri=spec.resolve(settings or _settings()).output_uri,
            attached=True,
        )
        logger.info("%s: using existing job %s", stage, job.existing_job)
    else:
        report = dry_run_task(spec, settings)
        if report.cost is not None:
            log.costs[stage] = report.cost.describe()
    with job_slot(wait.concurrency_limit, wait.max_concurrent_jobs):
        if record is None:
            record = submit_job_task(spec, settings, retry_failed=job.retry_failed)
        register_job_task(current_flow_run_id(), record.name, record.platform.value, stage)
        log.jobs[stage] = record
        done = _wait(stage, record, spec, wait, settings)
    log.jobs[stage] = done
    return done


def _wait(
    stage: str, record: JobRecord, spec: JobSpec, wait: WaitParams, settings: NovaflowSettings | None
) -> JobRecord:
    try:
        return wait_job_task(
            record,
            spec=spec,
            max_wait_seconds=wait.max_wait_hours * 3600,
            poll_seconds=wait.poll_seconds,
            max_poll_seconds=wait.max_poll_seconds,
            stop_on_deadline=wait.stop_on_deadline,
            settings=settings,
        )
    except JobError as exc:
        # The message carries the job's FailureReason and its last log lines; say it in the run log once more
        # with the stage, because this is the line a person reads first.
        get_run_logger().error(
            "%s job %s did not complete (%s): %s", stage, exc.job_name or record.name, exc.status or "see reason", exc
        )
        raise


def train(
    stage: str, spec: JobSpec, job: JobParams, wait: WaitParams, log: RunLog, settings: NovaflowSettings | None = None
) -> str:
    """Run a training job to the end and return its checkpoint URI (from manifest.json)."""
    done = run_job(stage, spec, job, wait, log, settings)
    checkpoint = resolve_checkpoint_task(done, settings)
    log.locations[f"{stage}-checkpoint"] = checkpoint
    return checkpoint


def evaluate(
    stage: str, spec: JobSpec, job: JobParams, wait: WaitParams, log: RunLog, settings: NovaflowSettings | None = None
) -> EvalResult:
    """Run an evaluation job, parse its output into the metric table artifact of the stage."""
    done = run_job(stage, spec, job, wait, log, settings)
    location = locate_eval_output_task(done, settings)
    log.locations[f"{stage}-eval-output"] = location
    return parse_eval_output_task(location, stage)


def evaluate_model(
    stage: str, model: str, eval_uri: str, model_path: str | None, job: JobParams, wait: WaitParams, log: RunLog
) -> EvalResult:
    """Evaluate ``model_path`` (None: the base model) on the gen_qa rows at ``eval_uri``."""
    spec = spec_for(model, Method.EVALUATION, job, train_uri=eval_uri, model_name_or_path=model_path)
    return evaluate(stage, spec, job, wait, log)


def reward_lambda(reward: RewardParams, rows_uri: str) -> RewardLambda:
    """Deploy (or keep) the reward function and verify it on the RFT rows before RFT spends anything."""
    deployed = deploy_reward_lambda_task(reward.function_name, RewardConfig(labels=tuple(reward.labels)))
    verify_reward_task(rows=rows_uri, function_name=deployed.function_name, limit=reward.verify_rows)
    return deployed


def spec_for(model: str, method: Method, job: JobParams, **fields: Any) -> JobSpec:
    """A JobSpec from a stage's parameters (infrastructure left to settings, resolved at submit)."""
    return JobSpec(
        model=model,
        method=method,
        overrides=dict(job.overrides),
        instance_type=job.instance_type,
        instance_count=job.instance_count,
        **fields,
    )


def _settings() -> NovaflowSettings:
    from novaflow.settings import load_settings

    return load_settings()
