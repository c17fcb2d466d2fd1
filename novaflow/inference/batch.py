"""Batch inference from one call: plan (offline), submit once, wait, collect into the result table.

A model - a base Nova model, a checkpoint, a model package version or a run's deployed winner - answers every row
of a dataset. On ``SMTJ`` it runs as a gen_qa evaluation job (:mod:`novaflow.inference.gen_qa_batch`), on
``BEDROCK`` as a Bedrock batch inference job for base models (:mod:`novaflow.inference.bedrock_batch`). The plan
reads the rows, writes the job's input file and names the job (a hash of model and data) before anything is
uploaded, so the dry run refuses what AWS would refuse and a re-run attaches to the job it already paid for.

Example:
    >>> spec = BatchSpec(data=DatasetSource(path="q.csv", columns=ColumnMap(query="Body", id="Id")),
    ...                  model="nova-lite-2", checkpoint_uri="s3://escrow/job/outputs/checkpoints", out_dir="out")
    >>> outcome = run_batch_inference(spec)                       # doctest: +SKIP
    >>> outcome.summary.describe()                                # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from novaflow.aws import wrap_client_error
from novaflow.catalog import canonical_model, get_model
from novaflow.data.io import upload_file_verified
from novaflow.data.source import DatasetSource
from novaflow.errors import ConfigError, JobError, NovaflowError, RecipeError
from novaflow.inference import bedrock_batch
from novaflow.inference.gen_qa_batch import answers_from_samples, batch_job_spec, read_inference_output, write_gen_qa
from novaflow.inference.results import Answer, BatchSummary, BatchTable, build_table, write_table
from novaflow.inference.rows import BatchRows, read_batch_rows
from novaflow.jobs.backend_base import is_already_exists
from novaflow.jobs.backends import SageMakerBackend
from novaflow.jobs.invocation_jobs import InvocationJobBackend
from novaflow.jobs.outputs import locate_eval_output
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.records import JobRecord, JobStatus
from novaflow.jobs.request import validate_request
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission, submit_training_job
from novaflow.recipes.tables import CostEstimate, load_instance_table, load_price_table
from novaflow.registry.packages import APPROVED, default_group, describe_version, list_versions
from novaflow.settings import NovaflowSettings
from novaflow.storage import list_keys, numbered_lines, sha256_file

BatchPlatform = Literal["SMTJ", "BEDROCK"]
DEFAULT_MAX_TOKENS = 1024


class BatchSpec(BaseModel):
    """What to run: which model answers which rows, where, and where the results go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: DatasetSource = Field(description="The rows: a CSV/JSONL/JSON/Parquet file (local or s3://) and its map.")
    model: str = Field(description="The Nova model (or the base of the checkpoint / package).")
    checkpoint_uri: str | None = Field(None, description="An s3:// checkpoint (manifest.json checkpoint_s3_bucket).")
    model_package_arn: str | None = Field(None, description="A model package version whose model answers.")
    run_name: str | None = Field(None, description="Use this run's deployed winner (its latest Approved version).")
    platform: BatchPlatform = Field("SMTJ", description="SMTJ (gen_qa evaluation job) or BEDROCK (batch, base only).")
    out_dir: str = Field(description="Local folder for results.jsonl, results.parquet, failures.jsonl, summary.json.")
    instance_type: str | None = Field(None, description="SMTJ: default from the instance table.")
    instance_count: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1, description="Longest answer, in tokens.")
    role_arn: str | None = Field(None, description="BEDROCK: service role trusting bedrock.amazonaws.com.")

    _canonical_model = field_validator("model")(canonical_model)

    def model_source(self) -> str:
        chosen = [
            (n, v)
            for n, v in (
                ("checkpoint", self.checkpoint_uri),
                ("model package", self.model_package_arn),
                ("run", self.run_name),
            )
            if v
        ]
        if len(chosen) > 1:
            raise ConfigError(
                f"Give at most one of --checkpoint, --model-package and --run (got {', '.join(n for n, _ in chosen)})."
            )
        return f"{chosen[0][0]} {chosen[0][1]}" if chosen else f"base model {self.model}"


@dataclass
class BatchPlan:
    """Everything decided before spending: the rows, the input file, the job and its cost."""

    spec: BatchSpec
    model_path: str | None
    """The checkpoint that answers (None: the base model)."""
    rows: BatchRows
    input_file: Path
    input_uri: str
    output_uri: str
    job_name: str
    job_spec: JobSpec | None = None
    request: dict[str, Any] = field(default_factory=dict)
    cost: CostEstimate | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        lines = [
            f"batch inference {self.job_name} on {self.spec.platform}: {self.spec.model_source()} over "
            f"{len(self.rows.rows)} rows of {self.rows.source} ({len(self.rows.failures)} refused while reading)",
            f"input {self.input_uri}; outputs {self.output_uri}",
        ]
        lines += [f"note: {n}" for n in self.notes]
        if self.cost is not None:
            lines.append(self.cost.describe())
        lines += [f"problem: {p}" for p in self.problems]
        return "\n".join(lines)

    def raise_for_problems(self) -> None:
        if self.problems:
            raise RecipeError(self.problems[0] if len(self.problems) == 1 else "; ".join(self.problems))


@dataclass
class BatchOutcome:
    plan: BatchPlan
    record: JobRecord
    table: BatchTable
    summary: BatchSummary
    paths: dict[str, Path]
    warnings: list[str] = field(default_factory=list)


def resolve_model_path(spec: BatchSpec, settings: NovaflowSettings) -> str | None:
    """The s3:// checkpoint that answers, from a checkpoint, a model package version or a run's winner."""
    spec.model_source()
    if spec.checkpoint_uri:
        if not spec.checkpoint_uri.startswith("s3://"):
            raise ConfigError(f"--checkpoint {spec.checkpoint_uri!r}: expected an s3:// checkpoint prefix.")
        return spec.checkpoint_uri.rstrip("/")
    if spec.model_package_arn:
        version = describe_version(spec.model_package_arn, settings)
    elif spec.run_name:
        group = default_group(spec.model, spec.run_name)
        try:
            approved = [v for v in list_versions(group, settings) if v.status == APPROVED]
        except ConfigError as exc:
            raise ConfigError(f"Run {spec.run_name!r} has no deployed winner: {exc}") from None
        if not approved:
            raise ConfigError(
                f"Run {spec.run_name!r} has no deployed winner: no Approved version in model package group {group}."
            )
        version = max(approved, key=lambda v: v.version)
    else:
        return None
    if not version.checkpoint_uri or not version.checkpoint_uri.startswith("s3://"):
        raise ConfigError(f"Model package {version.arn} has no s3:// model data to run.")
    return version.checkpoint_uri


def plan_batch(spec: BatchSpec, work_dir: str | Path, settings: NovaflowSettings) -> BatchPlan:
    """Read the rows, write the job's input file under ``work_dir`` and decide the job; nothing is written to AWS.

    A problem that AWS would refuse (a custom model on Bedrock batch, a bad instance choice, no rows) is listed
    in ``plan.problems`` - the dry run's answer - rather than raised.
    """
    settings.require("bucket")
    problems: list[str] = []
    model_path = resolve_model_path(spec, settings)
    rows = read_batch_rows(spec.data, settings)
    if not rows.rows:
        problems.append(f"{rows.source}: no row to answer ({len(rows.failures)} refused; see failures)")
    work = Path(work_dir)
    if spec.platform == "BEDROCK":
        refusal = bedrock_batch.custom_model_problem(None, model_path)
        if refusal:
            problems.append(refusal)
        input_file = bedrock_batch.write_records(rows, work / bedrock_batch.INPUT_FILE, max_tokens=spec.max_new_tokens)
    else:
        input_file = write_gen_qa(rows, work / "gen_qa.jsonl")
    digest = sha256_file(input_file)
    input_uri = settings.s3_uri("batch", "input", digest[:16], input_file.name)
    output_uri = settings.s3_uri("batch", "output")
    if spec.platform == "BEDROCK":
        plan = _bedrock_plan(spec, rows, input_file, input_uri, output_uri, digest, settings)
    else:
        plan = _smtj_plan(spec, model_path, rows, input_file, input_uri, output_uri, settings)
    plan.problems[:0] = problems
    return plan


def _smtj_plan(
    spec: BatchSpec,
    model_path: str | None,
    rows: BatchRows,
    input_file: Path,
    input_uri: str,
    output_uri: str,
    settings: NovaflowSettings,
) -> BatchPlan:
    job_spec = batch_job_spec(
        spec.model,
        input_uri,
        model_path=model_path,
        output_uri=output_uri,
        instance_type=spec.instance_type,
        instance_count=spec.instance_count,
        overrides={"max_new_tokens": spec.max_new_tokens},
    ).resolve(settings)
    plan = BatchPlan(spec, model_path, rows, input_file, input_uri, output_uri, job_spec.job_name(), job_spec)
    try:
        sub = prepare_submission(job_spec, settings, strict=False)
    except NovaflowError as exc:
        plan.problems.append(str(exc))
        return plan
    plan.problems += sub.recipe.problems
    if sub.instance_type:
        problem = load_instance_table().check(
            "SMTJ", spec.model, job_spec.method.value, sub.instance_type, sub.instance_count
        )
        if problem:
            plan.problems.append(problem)
        plan.cost = load_price_table().estimate(
            sub.instance_type,
            sub.instance_count,
            job_spec.max_runtime_seconds / 3600,
            basis="upper bound at MaxRuntimeInSeconds",
        )
    if not plan.problems:
        plan.request = sub.request()
    return plan


def _bedrock_plan(
    spec: BatchSpec,
    rows: BatchRows,
    input_file: Path,
    input_uri: str,
    output_uri: str,
    digest: str,
    settings: NovaflowSettings,
) -> BatchPlan:
    model_id = get_model(spec.model).bedrock_id  # the US inference profile: more regions than the in-region id
    key = hashlib.sha256(f"{model_id}|{digest}|{spec.max_new_tokens}".encode()).hexdigest()[:12]
    job_name = f"{spec.model}-batch-{key}"
    plan = BatchPlan(spec, None, rows, input_file, input_uri, output_uri, job_name)
    role = spec.role_arn or settings.role_arn
    if not role:
        plan.problems.append("No Bedrock service role: set NOVAFLOW_ROLE_ARN (a role trusting bedrock.amazonaws.com).")
        return plan
    plan.request = bedrock_batch.build_request(
        job_name,
        model_id=model_id,
        role_arn=role,
        input_uri=input_uri,
        output_uri=output_uri,
        token=key,
        tags={"novaflow:managed": "true"},
        kms_key_id=settings.kms_key_id,
    )
    plan.notes.append("billed per token at Bedrock's batch price; tokens are counted in the summary")
    return plan


def submit_batch(plan: BatchPlan, settings: NovaflowSettings) -> JobRecord:
    """Upload the input file (verified) and create the job once; a re-run attaches to the existing job."""
    plan.raise_for_problems()
    upload_file_verified(plan.input_file, plan.input_uri, settings)
    if plan.job_spec is not None:
        return submit_training_job(plan.job_spec, settings)
    backend = InvocationJobBackend(settings)
    state = backend.describe(plan.job_name)
    attached = state is not None
    if state is None:
        validate_request(backend.client, backend.create_operation, plan.request)
        try:
            backend.create(plan.request)
        except ClientError as exc:
            if not is_already_exists(exc):  # a concurrent submitter won the race: attach to its job
                raise wrap_client_error(exc, f"Creating Bedrock batch inference job {plan.job_name}") from exc
            attached = True
        state = backend.describe(plan.job_name)
    if state is None:
        raise JobError(f"Bedrock batch inference job {plan.job_name} vanished right after it was created.")
    return JobRecord(
        platform=backend.platform,
        name=plan.job_name,
        arn=state.arn,
        spec_hash=str(plan.request.get("clientRequestToken", "")),
        method="batch_inference",
        model=plan.spec.model,
        data={"input": plan.input_uri},
        output_uri=plan.output_uri,
        started=state.created,
        status=state.status,
        attached=attached,
    )


def wait_batch(
    plan: BatchPlan,
    record: JobRecord,
    *,
    poll_seconds: float = 30.0,
    max_poll_seconds: float = 300.0,
    max_wait_seconds: float = 86400.0,
    settings: NovaflowSettings,
    sleep: Callable[[float], None] = time.sleep,
) -> JobRecord:
    """Wait until the job ends (JobError when it failed or was stopped); polls back off up to ``max_poll_seconds``."""
    backend = InvocationJobBackend(settings) if plan.job_spec is None else None
    return wait_for_job(
        record.name,
        platform=record.platform,
        poll_seconds=poll_seconds,
        max_poll_seconds=max(poll_seconds, max_poll_seconds),
        max_wait_seconds=max_wait_seconds,
        settings=settings,
        backend=backend,
        record=record,
        sleep=sleep,
    )


def collect_batch(plan: BatchPlan, record: JobRecord, settings: NovaflowSettings) -> BatchOutcome:
    """Read the job's outputs into the result table and write it under ``plan.spec.out_dir``."""
    if plan.job_spec is not None:
        location = locate_eval_output(plan.output_uri, record.name, settings)
        answers, warnings = answers_from_samples(*read_inference_output(location, settings), plan.rows)
        tokens_basis = "estimated: about 4 characters a token (the evaluation reports none)"
    else:
        answers, warnings, location = _bedrock_answers(plan, record, settings)
        tokens_basis = "counted by Bedrock"
    table = build_table(plan.rows, answers)
    summary = _summary(plan, record, table, answers, tokens_basis, settings)
    paths = write_table(table, summary, plan.spec.out_dir)
    warnings.insert(0, f"outputs read from {location}")
    return BatchOutcome(plan, record, table, summary, paths, warnings)


def _bedrock_answers(
    plan: BatchPlan, record: JobRecord, settings: NovaflowSettings
) -> tuple[dict[str, Answer], list[str], str]:
    if not record.arn:
        raise JobError(f"Bedrock batch inference job {record.name} has no ARN; cannot find its outputs.")
    prefix = bedrock_batch.output_prefix(plan.output_uri, record.arn)
    outputs = [k for k in list_keys(prefix, settings=settings) if k.endswith(".jsonl.out")]
    if not outputs:
        raise JobError(f"Bedrock batch inference job {record.name} wrote no .jsonl.out under {prefix}.")
    answers: dict[str, Answer] = {}
    warnings: list[str] = []
    for key in outputs:
        uri = prefix + key
        lines = (line for _, line in numbered_lines(uri, settings=settings, error=JobError))
        found, notes = bedrock_batch.parse_output_lines(lines, where=uri, batch=plan.rows)
        answers.update(found)
        warnings += notes
    return answers, warnings, prefix


def _summary(
    plan: BatchPlan,
    record: JobRecord,
    table: BatchTable,
    answers: dict[str, Answer],
    tokens_basis: str,
    settings: NovaflowSettings,
) -> BatchSummary:
    tokens_in = sum(a.input_tokens or 0 for a in answers.values())
    tokens_out = sum(a.output_tokens or 0 for a in answers.values())
    cost, currency, basis = _cost(plan, record, settings)
    return BatchSummary(
        platform=plan.spec.platform,
        model=plan.spec.model_source(),
        job=record.name,
        rows=len(table.records),
        answered=table.answered,
        failures=len(table.failures),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        tokens_basis=tokens_basis,
        cost=cost,
        currency=currency,
        cost_basis=basis,
    )


def _cost(plan: BatchPlan, record: JobRecord, settings: NovaflowSettings) -> tuple[float | None, str, str]:
    """SMTJ: the job's billable seconds x instances x the price table (an estimate); Bedrock: per token, not priced."""
    prices = load_price_table()
    if plan.job_spec is None:
        return None, prices.currency, "Bedrock batch is billed per token; no price table for it"
    state = SageMakerBackend(settings).describe(record.name)
    if state is None or record.status is not JobStatus.COMPLETED:
        return None, prices.currency, "job not found"
    raw = state.raw
    seconds = raw.get("BillableTimeInSeconds")
    if seconds is None and raw.get("TrainingStartTime") and raw.get("TrainingEndTime"):
        seconds = (raw["TrainingEndTime"] - raw["TrainingStartTime"]).total_seconds()
    resources = raw.get("ResourceConfig") or {}
    instance_type = resources.get("InstanceType") or (plan.cost.instance_type if plan.cost else "")
    count = int(resources.get("InstanceCount") or 1)
    price = prices.prices.get(instance_type)
    if seconds is None or price is None:
        return None, prices.currency, f"no billable time or no price for {instance_type}"
    estimate = prices.estimate(instance_type, count, float(seconds) / 3600, basis=f"{float(seconds):.0f} s billed")
    return (
        estimate.total,
        prices.currency,
        f"ESTIMATE: {count} x {instance_type} x {float(seconds):.0f} s at {price:.2f}/h",
    )


def run_batch_inference(
    spec: BatchSpec,
    settings: NovaflowSettings,
    *,
    work_dir: str | Path | None = None,
    poll_seconds: float = 30.0,
    max_poll_seconds: float = 300.0,
    max_wait_seconds: float = 86400.0,
) -> BatchOutcome:
    """Plan, submit (or attach), wait and collect; the results land in ``spec.out_dir``."""
    plan = plan_batch(spec, work_dir or Path(spec.out_dir) / "input", settings)
    record = submit_batch(plan, settings)
    record = wait_batch(
        plan,
        record,
        poll_seconds=poll_seconds,
        max_poll_seconds=max_poll_seconds,
        max_wait_seconds=max_wait_seconds,
        settings=settings,
    )
    return collect_batch(plan, record, settings)
