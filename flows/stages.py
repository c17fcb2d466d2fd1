"""The stages every flow is made of: prepare data, run a job to the end, evaluate a model.

These are plain functions that call tasks (not subflows), so the end-to-end flow and the single-stage flows share
one implementation, and every job a run submits is registered under the run's own id for the cancel and crash
hooks. Each stage records its elapsed time in a :class:`RunLog` that becomes the run-summary artifact, and what the
report shows (data reports, training curves, the reward verification); with MLflow on, each stage is also logged
as a nested MLflow run as soon as it ends.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger

from flows.params import DataParams, EvaluationParams, JobParams, RegistryParams, RewardParams, WaitParams
from novaflow.catalog import DataFormat, Method, Platform, get_model, method_problem
from novaflow.data.preferences import derive_pairs
from novaflow.data.report import DataReport
from novaflow.data.samples import CASE_STUDY_COLUMNS, SAMPLE_CSV, SYSTEM_PROMPT
from novaflow.data.source import CANONICAL, ColumnMap, DatasetSource
from novaflow.data.splits import AUTO, SplitReport
from novaflow.deploy.gate import GateDecision
from novaflow.errors import ConfigError, JobError
from novaflow.evaluation.judging import JUDGE_FILE
from novaflow.evaluation.results import EvalResult
from novaflow.evaluation.tasks import GEN_QA, JUDGE, RFT_EVAL, resolve_task
from novaflow.jobs.records import JobRecord
from novaflow.jobs.series import TrainingSeries
from novaflow.jobs.spec import JobSpec
from novaflow.quotas.refusals import is_capacity_failure
from novaflow.registry.packages import ModelVersion, default_group
from novaflow.reward.verify import RewardVerification
from novaflow.settings import NovaflowSettings
from novaflow.tracking.mlflow import MlflowRun, is_sagemaker_mlflow_arn
from novaflow.tracking.records import eval_metrics, job_params, series_points
from reward_lambda.config import RewardConfig
from reward_lambda.labels import DEFAULT_LABELS
from tasks.data import prepare_dataset_task, split_dataset_task, upload_dataset_task
from tasks.evaluation import parse_eval_output_task, upload_judge_dataset_task
from tasks.jobs import (
    dry_run_task,
    locate_eval_output_task,
    resolve_checkpoint_task,
    submit_job_task,
    training_series_task,
    wait_job_task,
)
from tasks.quotas import run_job_within_quota
from tasks.registry import record_metrics_task, register_model_task
from tasks.reward import (
    PackagedReward,
    deploy_reward_lambda_task,
    existing_reward_lambda_task,
    package_reward_task,
    reward_labels_task,
    verify_reward_function_task,
    verify_reward_task,
)
from tasks.runs import current_flow_run_id, register_job_task
from tasks.tracking import track_stage_task

TRAINING_STAGES: dict[str, Method] = {"sft": Method.SFT_LORA, "dpo": Method.DPO_LORA, "rft": Method.RFT_LORA}
"""Training stage (as named in ``skip``) -> the method it runs; every flow also evaluates (Method.EVALUATION)."""
STAGE_LABELS = {"sft": "SFT", "dpo": "DPO", "rft": "RFT", "cpt": "CPT"}


@dataclass(frozen=True)
class TrainedModel:
    """What a training stage produced: its checkpoint and, with the registry on, its model package version."""

    stage: str
    checkpoint: str
    version: ModelVersion | None = None
    hyperpod: tuple[str | None, str | None] | None = None
    """(cluster, namespace) when the stage trained on HyperPod: AWS evaluates such a checkpoint only there."""

    def source_for(self, platform: Platform | str) -> str:
        """What a job on ``platform`` starts from (or evaluates): the version for SERVERLESS, else the checkpoint."""
        if Platform.parse(platform) is not Platform.SERVERLESS:
            return self.checkpoint
        if self.version is None:
            raise ConfigError(
                f"A SERVERLESS job after the {self.stage} stage needs that stage's model package version: turn the "
                "registry on (registry.enabled) or run the job on SMTJ."
            )
        return self.version.arn


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
    specs: dict[str, JobSpec] = field(default_factory=dict)
    split: SplitReport | None = None
    data: dict[str, DataReport] = field(default_factory=dict)
    curves: dict[str, TrainingSeries] = field(default_factory=dict)
    reward: RewardVerification | None = None
    gate: GateDecision | None = None
    model_package_version: str | None = None
    """Set by a stage that registers a model package (serverless); shown in the report and tagged in MLflow."""
    versions: dict[str, ModelVersion] = field(default_factory=dict)
    """Training stage -> its model package version (latest known state: status, approval reason, metrics)."""
    tracker: MlflowRun | None = None

    def track(self, stage: str, **logged: Any) -> None:
        """Log a finished stage as a nested MLflow run (nothing when tracking is off or has given up)."""
        if self.tracker is not None and self.tracker.active:
            track_stage_task(self.tracker, stage, **logged)

    def track_job(self, stage: str, record: JobRecord, outputs: dict[str, str], **logged: Any) -> None:
        """A job's stage: which job ran on what (and what it produced), plus its metrics or curves."""
        params = job_params(record, self.specs.get(stage)) | outputs
        self.track(stage, params=params, tags={"novaflow.job_name": record.name}, **logged)

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


@contextmanager
def flow_run_scratch(home: Path) -> Iterator[Path]:
    """``home/scratch/<flow run id>``: this run's local files (splits, prepared data) while it runs.

    Per flow run, not per run name, so two runs at once never write or rename each other's files. When the run
    succeeds its files move up to ``home`` (``home/splits``, ``home/prepared``), replacing the previous run's, where
    a person looks for them; a failed run's stay in its scratch directory for inspection. Callers hold the run
    name (:func:`tasks.runs.run_name_held`) around this, so no other run of the name moves files meanwhile.
    """
    scratch = home / "scratch" / current_flow_run_id()
    scratch.mkdir(parents=True, exist_ok=True)
    yield scratch
    for entry in sorted(scratch.iterdir()):
        target = home / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        entry.replace(target)
    scratch.rmdir()


@dataclass(frozen=True)
class DataPlan:
    """The data settings with the case study's defaults applied only where they belong: to the sample."""

    path: str
    system: str | None
    columns: dict[str, Any]
    stratify: str
    is_sample: bool


def data_plan(data: DataParams) -> DataPlan:
    """The file to read, its system prompt, column mapping and stratification (``auto`` unless asked)."""
    if data.source == "sample":
        columns = dict(data.columns) or dict(CASE_STUDY_COLUMNS)
        return DataPlan(str(SAMPLE_CSV), data.system_prompt or SYSTEM_PROMPT, columns, data.stratify or "Y", True)
    return DataPlan(data.source, data.system_prompt, dict(data.columns), data.stratify or AUTO, False)


def require_supported(
    model: str, methods: Sequence[Method | tuple[Method, Platform | str]], platform: Platform = Platform.SMTJ
) -> None:
    """Refuse a run whose model cannot do one of its stages (on that stage's platform), before any data is
    prepared or job submitted."""
    for item in methods:
        method, where = item if isinstance(item, tuple) else (item, platform)
        problem = method_problem(model, method, Platform.parse(where))
        if problem:
            stage = next((name for name, m in TRAINING_STAGES.items() if m is method), None)
            hint = f" Skip the stage (skip: {stage}) or choose another model." if stage else ""
            raise ConfigError(problem + hint)


@dataclass
class PreparedData:
    """Data format -> S3 URI of its Nova-format file, the local prepared files (for checks that need the rows),
    and the evaluation rows in the RFT format when ``rft_eval`` asked for them."""

    uris: dict[DataFormat, str]
    files: dict[DataFormat, Path] = field(default_factory=dict)
    eval_rft_uri: str | None = None


def prepare_data(
    data: DataParams,
    model: str,
    work_dir: Path,
    s3_prefix: str,
    *,
    methods: Sequence[Method] = (Method.SFT_LORA, Method.EVALUATION, Method.RFT_LORA),
    eval_rft: bool = False,
    log: RunLog,
) -> PreparedData:
    """Split the source into one part per data format the methods read, transform each part to its format,
    upload. ``eval_rft`` also writes the evaluation rows in the RFT format (what ``rft_eval`` reads)."""
    plan = data_plan(data)
    formats = {m.data_format for m in methods} | ({DataFormat.RFT} if eval_rft else set())
    rows = {
        DataFormat.SFT: data.sft_rows,
        DataFormat.EVAL: data.eval_rows,
        DataFormat.RFT: data.rft_rows,
        DataFormat.DPO: 0 if data.preferences else data.dpo_rows,
    }
    sizes = {fmt.value: n for fmt, n in rows.items() if fmt in formats and n > 0}
    augment = {"rft": ["sft"]} if data.augment_rft_with_sft and "rft" in sizes and "sft" in sizes else None
    # Rows without a question or an answer cannot be in any split; leaving them out before splitting keeps the
    # eval set at its full size (the split report counts them).
    require = tuple(
        str(plan.columns[k])
        for k in ("query", "response")
        if isinstance(plan.columns.get(k), str) and not set("{}+") & set(plan.columns[k])
    )
    response = plan.columns.get("response")
    split = split_dataset_task(
        DatasetSource(path=plan.path),
        sizes,
        str(work_dir / "splits"),
        stratify=plan.stratify,
        seed=data.seed,
        holdout=("eval",),
        augment=augment,
        require=require,
        auto_column=response if isinstance(response, str) and response in require else CANONICAL["response"],
    )
    log.notes.append(f"splits: {split.report.stratify_reason}")
    log.split = split.report
    columns = ColumnMap(**plan.columns)
    out = PreparedData(uris={})
    hashes: dict[str, str | None] = {}
    parts = [(name, DataFormat(name), name) for name in sizes]
    if eval_rft and "eval" in sizes:
        parts.append(("eval", DataFormat.RFT, "eval-rft"))
    for split_name, fmt, folder in parts:
        source = DatasetSource(
            path=str(split.files[split_name]),
            columns=columns,
            system_prompt=None if columns.system else plan.system,
        )
        if fmt is DataFormat.DPO:
            source = preference_source(source, work_dir, data.seed)
        prepared = prepare_dataset_task(
            source,
            fmt,
            model,
            str(work_dir / "prepared" / folder),
            strict=data.strict,
            split=split_name,
            curation=data.filters,
        )
        uri = upload_dataset_task(prepared, f"{s3_prefix}/data/{folder}")[prepared.data_file.name]
        log.locations[f"data-{folder}"] = uri
        log.data[folder] = prepared.report
        hashes[f"{folder}.sha256"] = prepared.manifest.get("files", {}).get(prepared.data_file.name, {}).get("sha256")
        if folder == "eval-rft":
            out.eval_rft_uri = uri
        else:
            out.uris[fmt] = uri
            out.files[fmt] = prepared.data_file
    if data.preferences and DataFormat.DPO in formats:
        pairs = DatasetSource(
            path=data.preferences, columns=columns, system_prompt=None if columns.system else plan.system
        )
        prepared = prepare_dataset_task(
            pairs, DataFormat.DPO, model, str(work_dir / "prepared" / "dpo"), strict=data.strict
        )
        out.uris[DataFormat.DPO] = upload_dataset_task(prepared, f"{s3_prefix}/data/dpo")[prepared.data_file.name]
        out.files[DataFormat.DPO] = prepared.data_file
        log.locations["data-dpo"] = out.uris[DataFormat.DPO]
    log.track(
        "data",
        params={"source": plan.path, "seed": data.seed, "stratify": plan.stratify, **hashes}
        | {f"{k}.rows": v for k, v in split.report.sizes.items()}
        | {f"{fmt.value}.uri": uri for fmt, uri in out.uris.items()},
        metrics={f"{k}.rejected": float(r.rows_rejected) for k, r in log.data.items()},
    )
    return out


def preference_source(split: DatasetSource, work_dir: Path, seed: int) -> DatasetSource:
    """Contrastive pairs from the DPO rows: each row's answer preferred over another row's different answer."""
    response = split.columns.response or "response"
    if not isinstance(response, str) or response not in _header(split):
        raise ConfigError(
            f"Deriving DPO pairs needs a plain response column (data.columns.response), not {response!r}; or give "
            "data.preferences, a file of pairs."
        )
    out = derive_pairs(split, response, work_dir / "splits" / "dpo_pairs.csv", seed=seed)
    columns = split.columns.model_copy(update={"chosen": "chosen", "rejected": "rejected"})
    return split.model_copy(update={"path": str(out), "format": "csv", "columns": columns})


def _header(source: DatasetSource) -> list[str]:
    from novaflow.data.loaders import iter_chunks

    for chunk in iter_chunks(source):
        return chunk.columns
    return []


def run_job(
    stage: str, spec: JobSpec, job: JobParams, wait: WaitParams, log: RunLog, settings: NovaflowSettings | None = None
) -> JobRecord:
    """Validate, submit (or attach), register with the run, wait; a failed job fails the flow with its reason."""
    logger = get_run_logger()
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
            output_uri=spec.resolve(settings or _settings()).output_uri,
            attached=True,
        )
        logger.info("%s: using existing job %s", stage, job.existing_job)
    else:
        report = dry_run_task(spec, settings)
        if report.cost is not None:
            log.costs[stage] = report.cost.describe()
    existing = record

    def submit(capacity_attempt: int) -> JobRecord:
        record = existing or submit_job_task(
            spec, settings, retry_failed=job.retry_failed, capacity_attempt=capacity_attempt
        )
        register_job_task(current_flow_run_id(), record.name, record.platform.value, stage)
        log.jobs[stage] = record
        return record

    done = run_job_within_quota(
        stage,
        spec,
        settings,
        quotas=wait.quotas,
        submit=submit,
        wait=lambda record: _wait(stage, record, spec, wait, settings),
        poll_seconds=wait.poll_seconds,
        max_poll_seconds=wait.max_poll_seconds,
        max_wait_hours=wait.max_wait_hours,
    )
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


def train(
    stage: str,
    spec: JobSpec,
    job: JobParams,
    wait: WaitParams,
    log: RunLog,
    settings: NovaflowSettings | None = None,
    *,
    group: str | None = None,
) -> TrainedModel:
    """Run a training job to the end; its checkpoint (from the registered version or manifest.json), its curves,
    and with a registry ``group`` the model package version holding it with its lineage."""
    done = run_job(stage, spec, job, wait, log, settings)
    checkpoint = resolve_checkpoint_task(done, settings)
    log.locations[f"{stage}-checkpoint"] = checkpoint
    series = training_series_task(stage, done, settings)
    log.curves[stage] = series
    outputs = {"checkpoint": checkpoint}
    version = None
    if group:
        version = register_model_task(
            done, spec, group, checkpoint, stage=stage, flow_run=current_flow_run_id(), settings=settings
        )
        log.versions[stage] = version
        log.model_package_version = version.arn
        log.locations[f"{stage}-model-package"] = version.arn
        outputs["model_package"] = version.arn
    log.track_job(stage, done, outputs, series=series_points(series))
    hyperpod = (done.cluster, done.namespace) if done.platform is Platform.SMHP else None
    return TrainedModel(stage, checkpoint, version, hyperpod)


def record_evaluation(trained: TrainedModel | None, result: EvalResult, stage: str, log: RunLog) -> None:
    """The evaluation after a stage, as metrics on that stage's version."""
    if trained is None or trained.version is None:
        return
    metrics = {row.name: row.value for row in result.metrics.rows}
    log.versions[trained.stage] = record_metrics_task(trained.version.arn, metrics, stage)


def require_registry(group: str | None, jobs: Sequence[JobParams]) -> None:
    """A SERVERLESS stage registers its model, and a SERVERLESS evaluation reads one: both need the registry."""
    if group is None and any(Platform.parse(job.platform) is Platform.SERVERLESS for job in jobs):
        raise ConfigError(
            "SERVERLESS stages register their models and are evaluated from model package versions: turn the "
            "registry on (registry.enabled) or run them on SMTJ."
        )


def registry_group(registry: RegistryParams, model: str, run_name: str) -> str | None:
    """The run family's model package group, or None with the registry off."""
    if not registry.enabled:
        return None
    return registry.group or default_group(model, run_name)


def evaluate(
    stage: str, spec: JobSpec, job: JobParams, wait: WaitParams, log: RunLog, settings: NovaflowSettings | None = None
) -> EvalResult:
    """Run an evaluation job, parse its output into the metric table artifact of the stage."""
    done = run_job(stage, spec, job, wait, log, settings)
    location = locate_eval_output_task(done, settings)
    log.locations[f"{stage}-eval-output"] = location
    result = parse_eval_output_task(location, stage)
    log.track_job(stage, done, {"eval_output": location}, metrics=eval_metrics(result))
    return result


@dataclass(frozen=True)
class EvalContext:
    """What the added evaluation task of a stage needs besides the gen_qa rows."""

    run_prefix: str
    """S3 prefix of the run, where each stage's judge dataset is written."""
    eval_rft_uri: str | None = None
    """The evaluation rows in the RFT format (``rft_eval``)."""
    reward_arn: str | None = None
    """The reward Lambda that grades ``rft_eval`` answers."""


def evaluate_model(
    stage: str,
    model: str,
    eval_uri: str,
    trained: TrainedModel | str | None,
    job: EvaluationParams,
    wait: WaitParams,
    log: RunLog,
    context: EvalContext | None = None,
) -> EvalResult:
    """Evaluate a stage's model (or a checkpoint URI; None: the base model) on the gen_qa rows at ``eval_uri``,
    then by ``job.task``; with the registry on, the gen_qa metrics are recorded on the stage's version.

    The added task's result is kept under ``result.related[<prefix>]`` (``judge``, ``rft_eval``, a benchmark), so
    the stage comparison and the gate see its metrics as ``<prefix>:<metric>``.
    """
    if isinstance(trained, TrainedModel) and trained.hyperpod and Platform.parse(job.platform) is not Platform.SMHP:
        cluster, namespace = trained.hyperpod
        get_run_logger().info(
            "%s: the %s checkpoint is evaluated on HyperPod %s, where it was trained", stage, trained.stage, cluster
        )
        job = job.model_copy(update={"platform": "HYPERPOD", "cluster": cluster, "namespace": namespace})
    model_path = trained.source_for(job.platform) if isinstance(trained, TrainedModel) else trained
    spec = spec_for(model, Method.EVALUATION, job, train_uri=eval_uri, model_name_or_path=model_path)
    result = evaluate(stage, spec, job, wait, log)
    if isinstance(trained, TrainedModel):
        record_evaluation(trained, result, stage, log)
    prefix, recipe_task = resolve_task(job.task or GEN_QA, get_model(model).version)
    if recipe_task is None:
        return result
    if context is None:
        raise ValueError(f"{stage}: evaluation task {job.task!r} needs the run's data locations (end-to-end flow)")
    job = job.model_copy(update={"existing_job": None})  # an attached job is the gen_qa one, not this
    if prefix == JUDGE:
        judge_uri = upload_judge_dataset_task(result, f"{context.run_prefix}/judge/{stage}/{JUDGE_FILE}")
        extra = spec_for(model, Method.EVALUATION, job, eval_task=recipe_task, train_uri=judge_uri)
    elif prefix == RFT_EVAL:
        if not context.eval_rft_uri or not context.reward_arn:
            raise ValueError(f"{stage}: rft_eval needs the evaluation rows in the RFT format and a reward Lambda")
        extra = spec_for(
            model,
            Method.EVALUATION,
            job,
            eval_task=recipe_task,
            train_uri=context.eval_rft_uri,
            model_name_or_path=model_path,
            reward_lambda_arn=context.reward_arn,
        )
    else:
        overrides = {**job.overrides, **({"subtask": job.subtask} if job.subtask else {})}
        extra = spec_for(
            model,
            Method.EVALUATION,
            job.model_copy(update={"overrides": overrides}),
            eval_task=recipe_task,
            model_name_or_path=model_path,
        )
    result.related[prefix] = evaluate(f"{stage}-{prefix}", extra, job, wait, log)
    return result


@dataclass(frozen=True)
class RewardChoice:
    """Which reward RFT uses, settled before any job runs: novaflow's label grader, a team's file, or a Lambda."""

    kind: str
    """``labels``, ``source`` or ``arn``."""
    labels: tuple[str, ...] = ()
    package: PackagedReward | None = None
    function_arn: str | None = None


def check_reward(
    reward: RewardParams, rows_uri: str, *, is_sample: bool, rows_file: Path | None = None
) -> RewardChoice:
    """Settle the reward and refuse a broken one now - before the baseline, SFT or anything else is paid for.

    A team's file is checked (syntax, handler), packaged and graded locally on the probe rollouts; an ARN must
    name an existing function; novaflow's label grader needs a label set (the sample's, or the RFT rows' distinct
    reference answers when there are few).
    """
    if reward.function_arn:
        return RewardChoice("arn", function_arn=existing_reward_lambda_task(reward.function_arn))
    if reward.source:
        package = package_reward_task(reward.source)
        verify_reward_function_task(
            rows=str(rows_file or rows_uri),
            source=package.name,
            package=package,
            limit=reward.verify_rows,
            key_suffix="local",
        )
        return RewardChoice("source", package=package)
    if reward.labels:
        return RewardChoice("labels", labels=tuple(reward.labels))
    if is_sample:
        return RewardChoice("labels", labels=DEFAULT_LABELS)
    labels = reward_labels_task(str(rows_file or rows_uri))
    return RewardChoice("labels", labels=labels)


def reward_lambda(
    reward: RewardParams, rows_uri: str, choice: RewardChoice | None = None, log: RunLog | None = None
) -> str:
    """Deploy (or keep) the reward function and verify it on the RFT rows before RFT spends anything.

    Returns the function ARN the RFT recipe (and ``rft_eval``) names.
    """
    choice = choice or check_reward(reward, rows_uri, is_sample=False)
    if choice.kind == "arn":
        assert choice.function_arn is not None
        verify_reward_function_task(
            rows=rows_uri, source=choice.function_arn, function_name=choice.function_arn, limit=reward.verify_rows
        )
        return choice.function_arn
    if choice.kind == "source":
        deployed = deploy_reward_lambda_task(reward.function_name, package=choice.package)
        assert choice.package is not None
        verify_reward_function_task(
            rows=rows_uri,
            source=choice.package.name,
            package=choice.package,
            function_name=deployed.function_name,
            limit=reward.verify_rows,
        )
        return deployed.function_arn
    deployed = deploy_reward_lambda_task(reward.function_name, RewardConfig(labels=choice.labels))
    verification = verify_reward_task(rows=rows_uri, function_name=deployed.function_name, limit=reward.verify_rows)
    if log is not None:
        log.reward = verification
        log.track(
            "reward-lambda",
            params={"function_arn": deployed.function_arn, "version": deployed.version, "rows": rows_uri},
            metrics={
                f"{d.runner}.{name}": getattr(d, name)
                for d in verification.distributions
                for name in ("mean", "share_max", "share_min", "accuracy")
            },
        )
    return deployed.function_arn


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


def _settings() -> NovaflowSettings:
    from novaflow.settings import load_settings

    return load_settings()
