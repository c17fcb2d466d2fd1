"""Idempotent submission: describe first, create only when absent, attach when someone else won the race.

Money is real: a retried task, a re-run flow or a second process submitting the same spec must find the job the
first one created. The name is derived from the spec (see :mod:`novaflow.jobs.spec`), so "the same job" is a
describe call away; the "already exists" error of a concurrent creator is treated as success. A failed or stopped
job is never silently resubmitted: ``retry_failed`` creates the next attempt (``-r1``, ``-r2``, ...) under a
name that is itself deterministic, and ``force_new`` deliberately creates a fresh job. The one exception is a job
that failed for capacity before training (nothing ran): its spec moves on to the next attempt's name by itself.

Example:
    >>> record = submit_training_job(spec)          # doctest: +SKIP
    >>> record.attached                              # True on the second call with the same spec
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import get_client, split_s3_uri, wrap_client_error
from novaflow.catalog import Platform
from novaflow.errors import JobError, RecipeError
from novaflow.jobs.agent_rft import AgentRefs, agent_kind, build_agent_rft_request, is_agent_rft, resolve_agent_refs
from novaflow.jobs.backend_base import JobBackend, JobState, is_already_exists
from novaflow.jobs.backends import get_backend
from novaflow.jobs.reasoning import follow_data_reasoning
from novaflow.jobs.records import JobRecord, JobStatus
from novaflow.jobs.request import build_bedrock_request, build_training_job_request, validate_request
from novaflow.jobs.serverless import ServerlessRefs, build_serverless_request, resolve_refs, typed_hyperparameters
from novaflow.jobs.spec import JobSpec
from novaflow.quotas.refusals import is_capacity_failure
from novaflow.recipes.build import MLFLOW_FIELDS, ResolvedRecipe, build_recipe
from novaflow.recipes.serverless import availability_problem, hyperparameter_spec
from novaflow.recipes.support import check_supported
from novaflow.recipes.tables import InstanceTable, load_instance_table
from novaflow.settings import NovaflowSettings

log = logging.getLogger(__name__)
MAX_RETRY_ATTEMPTS = 20


@dataclass
class Submission:
    """Everything decided before any AWS call: the resolved spec, recipe, name, infrastructure and request."""

    spec: JobSpec
    recipe: ResolvedRecipe
    job_name: str
    instance_type: str | None
    instance_count: int
    recipe_uri: str | None
    settings: NovaflowSettings
    serverless: ServerlessRefs | None = None
    """What a serverless request points at (base model, group, evaluator), once resolved."""
    agent: AgentRefs | None = None
    """Multi-turn RFT: the intermediate checkpoint group, once resolved."""

    @property
    def serverless_spec(self) -> bool:
        return self.spec.platform is Platform.SERVERLESS

    def recipe_yaml(self, job_name: str | None = None) -> str:
        """The uploaded recipe text; ``run.name`` is the job name (a retry attempt gets its own)."""
        if job_name is None or job_name == self.job_name or self.spec.platform not in (Platform.SMTJ, Platform.SMHP):
            return self.recipe.to_yaml()
        renamed = ResolvedRecipe(
            self.recipe.template,
            {**self.recipe.recipe, "run": {**self.recipe.recipe["run"], "name": job_name}},
            self.recipe.specs,
        )
        return renamed.to_yaml()

    def request(self, job_name: str | None = None) -> dict[str, Any]:
        name = job_name or self.job_name
        if self.spec.platform is Platform.SMHP:
            # HyperPod's modules load only for HyperPod jobs; their request module imports this one
            from novaflow.jobs.hyperpod.request import build_hyperpod_request

            return build_hyperpod_request(self, name)
        if self.spec.platform is Platform.BEDROCK:
            return build_bedrock_request(self.spec, self.recipe, job_name=name)
        if self.spec.platform is Platform.SERVERLESS:
            if self.serverless is None:
                raise RecipeError(f"{name}: resolve the serverless references first (resolve_refs).")
            if is_agent_rft(self.spec):
                if self.agent is None:
                    raise RecipeError(f"{name}: resolve the checkpoint group first (resolve_agent_refs).")
                return build_agent_rft_request(self.spec, self.serverless, self.agent, job_name=name)
            return build_serverless_request(self.spec, self.serverless, job_name=name)
        recipe_uri = recipe_location(self.settings, name)
        assert self.instance_type is not None
        return build_training_job_request(
            self.spec,
            self.recipe,
            job_name=name,
            recipe_uri=recipe_uri,
            instance_type=self.instance_type,
            instance_count=self.instance_count,
        )


def recipe_location(settings: NovaflowSettings, job_name: str) -> str:
    """Deterministic S3 key of a job's recipe: ``<bucket>/<prefix>/recipes/<job-name>/recipe.yaml``."""
    return settings.s3_uri("recipes", job_name, "recipe.yaml")


def prepare_submission(
    spec: JobSpec,
    settings: NovaflowSettings,
    *,
    suffix: str = "",
    instance_table: InstanceTable | None = None,
    strict: bool = True,
) -> Submission:
    """Resolve spec, recipe, name and instances without calling AWS (shared by submit and dry run)."""
    spec = spec.resolve(settings)
    check_supported(spec.nova, spec.method, spec.platform, spec.region, spec.eval_task)
    if spec.platform is Platform.SERVERLESS:
        return _serverless_submission(spec, settings, suffix, strict)
    table = instance_table or load_instance_table()
    instance_type, count = spec.instance_type, spec.instance_count
    if spec.platform is Platform.SMTJ:
        default_type, default_count = table.default(spec.platform.value, spec.model, spec.method.value)
        instance_type = instance_type or default_type
        count = count or (
            default_count
            if instance_type == default_type
            else table.allowed(spec.platform.value, spec.model, spec.method.value).get(instance_type, [default_count])[
                0
            ]
        )
        if strict:
            problem = table.check(spec.platform.value, spec.model, spec.method.value, instance_type, count)
            if problem:
                raise RecipeError(problem[0].upper() + problem[1:] + ".")
    if spec.platform is Platform.SMHP:
        # HyperPod's modules load only for HyperPod jobs; their request module imports this one
        from novaflow.jobs.hyperpod.request import hyperpod_instances

        instance_type, count = hyperpod_instances(spec, strict=strict)
    name = spec.job_name(suffix)
    recipe = build_recipe(
        spec.nova,
        spec.method,
        run_name=name,
        platform=spec.platform,
        replicas=count or 1,
        model_name_or_path=spec.model_name_or_path,
        reward_lambda_arn=spec.reward_lambda_arn,
        eval_task=spec.eval_task,
        overrides=spec.overrides,
        recipe_file=spec.recipe_file,
        mlflow={field: getattr(spec, field) for field in MLFLOW_FIELDS},
        instance_type=instance_type,
    )
    if strict:
        recipe.raise_for_problems()
    recipe_uri = recipe_location(settings, name) if spec.platform is Platform.SMTJ and settings.bucket else None
    return Submission(spec, recipe, name, instance_type, count or 1, recipe_uri, settings)


def _serverless_submission(spec: JobSpec, settings: NovaflowSettings, suffix: str, strict: bool) -> Submission:
    """A serverless job has no recipe file: its "recipe" is the typed hyperparameter map, checked against the
    hub spec of the recipe the service trains with (shown by the dry run, hashed by nobody: the spec is)."""
    problem = availability_problem(spec.nova, spec.method, str(spec.region))
    if problem:
        raise RecipeError(problem)
    if is_agent_rft(spec):
        if not spec.agent_arn:
            raise RecipeError("rft_multiturn needs its agent: pass --agent FILE.py, a Lambda ARN or a runtime ARN.")
        agent_kind(spec.agent_arn)
    name = spec.job_name(suffix)
    values, problems = typed_hyperparameters(spec, name)
    spec_of = hyperparameter_spec(spec.nova, spec.method)
    recipe = ResolvedRecipe(f"serverless:{spec_of.recipe.name}", {"HyperParameters": values}, {}, problems)
    if strict:
        recipe.raise_for_problems()
    return Submission(spec, recipe, name, None, 1, None, settings)


def record_for(
    sub: Submission, state: JobState | None, name: str, *, attached: bool, arn: str | None = None
) -> JobRecord:
    return JobRecord(
        platform=sub.spec.platform,
        name=name,
        arn=(state.arn if state else None) or arn,
        spec_hash=sub.spec.spec_hash(),
        method=sub.spec.method.value,
        model=sub.spec.model,
        data=sub.spec.data_channels(),
        output_uri=sub.spec.output_uri,
        recipe_uri=recipe_location(sub.settings, name) if sub.spec.platform is Platform.SMTJ else None,
        started=(state.created if state and state.created else datetime.now(UTC)),
        status=state.status if state else JobStatus.IN_PROGRESS,
        failure_reason=state.failure_reason if state else None,
        attached=attached,
        output_model_arn=state.output_model_arn if state else None,
        output_model_package_arn=state.output_model_package_arn if state else None,
        cluster=sub.spec.cluster,
        namespace=sub.spec.namespace,
    )


def upload_recipe(sub: Submission, job_name: str, settings: NovaflowSettings) -> str:
    """Put the resolved recipe at its deterministic key (re-uploading identical bytes is harmless)."""
    uri = recipe_location(settings, job_name)
    bucket, key = split_s3_uri(uri)
    extra: dict[str, Any] = {}
    if sub.spec.kms_key_id:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": sub.spec.kms_key_id}
    text = sub.recipe_yaml(job_name)
    try:
        get_client("s3", settings).put_object(
            Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/x-yaml", **extra
        )
    except ClientError as exc:
        raise wrap_client_error(exc, f"Uploading recipe to {uri}") from exc
    return uri


def submit_training_job(
    spec: JobSpec,
    settings: NovaflowSettings,
    *,
    force_new: bool = False,
    retry_failed: bool = False,
    backend: JobBackend | None = None,
) -> JobRecord:
    """Submit ``spec`` once: attach to an existing job with the same name, create it otherwise.

    Raises :class:`JobError` when the existing job failed or was stopped and ``retry_failed`` is False.
    """
    spec = follow_data_reasoning(spec.resolve(settings), settings)
    sub = prepare_submission(spec, settings, suffix=f"n{uuid.uuid4().hex[:8]}" if force_new else "")
    if sub.spec.platform in (Platform.SMTJ, Platform.SERVERLESS, Platform.SMHP):
        settings.require("bucket")
    backend = backend or get_backend(
        sub.spec.platform, settings, method=sub.spec.method, cluster=sub.spec.cluster, namespace=sub.spec.namespace
    )
    name = sub.job_name
    for attempt in range(MAX_RETRY_ATTEMPTS + 1):
        if attempt:
            name = sub.spec.job_name(f"r{attempt}")
        state = _describe(backend, name)
        if state is None:
            return _create(sub, backend, name, settings)
        if state.status not in {JobStatus.FAILED, JobStatus.STOPPED}:
            log.info("Job %s already exists (%s): attaching instead of creating a duplicate.", name, state.raw_status)
            return record_for(sub, state, name, attached=True)
        if state.status is JobStatus.FAILED and is_capacity_failure(state.failure_reason):
            # Nothing trained and the name cannot be reused: the next deterministic name is this spec's job.
            log.info("Job %s failed for capacity before training (%s): next attempt.", name, state.failure_reason)
            continue
        if not retry_failed:
            reason = f": {state.failure_reason}" if state.failure_reason else ""
            raise JobError(
                f"Job {name} already exists and is {state.raw_status}{reason}. Submitting the same spec "
                f"again would repeat it: pass retry_failed=True (CLI --retry-failed) to start a new "
                f"attempt, or change the spec.",
                job_name=name,
                status=state.raw_status,
                failure_reason=state.failure_reason,
            )
    raise JobError(
        f"Gave up after {MAX_RETRY_ATTEMPTS} failed attempts of {sub.job_name}: fix the cause first.",
        job_name=sub.job_name,
    )


def serverless_refs(spec: JobSpec, settings: NovaflowSettings, *, create: bool) -> ServerlessRefs:
    """Resolve what a serverless job points at; refuse a gated model whose EULA the spec does not accept."""
    refs = resolve_refs(spec, settings, create=create)
    if refs.gated and not spec.accept_eula:
        raise RecipeError(
            f"{spec.model} is a gated model: serverless customization requires accepting its end-user license "
            "agreement; read it and pass accept_eula=True (CLI --accept-eula)."
        )
    return refs


def _describe(backend: JobBackend, name: str) -> JobState | None:
    try:
        return backend.describe(name)
    except ClientError as exc:
        raise wrap_client_error(exc, f"Describing job {name}") from exc


def _create(sub: Submission, backend: JobBackend, name: str, settings: NovaflowSettings) -> JobRecord:
    if sub.spec.platform is Platform.SMTJ:
        upload_recipe(sub, name, settings)
    if sub.spec.platform is Platform.SERVERLESS:
        sub.serverless = serverless_refs(sub.spec, settings, create=True)
    if is_agent_rft(sub.spec):
        sub.agent = resolve_agent_refs(sub.spec, settings, create=True)
    request = sub.request(name)
    if backend.create_operation:
        validate_request(backend.client, backend.create_operation, request)
    try:
        arn = backend.create(request)
    except ClientError as exc:
        if is_already_exists(exc):
            log.info("Job %s was created concurrently by another submitter: attaching.", name)
            state = _describe(backend, name)
            return record_for(sub, state, name, attached=True)
        raise wrap_client_error(exc, f"Creating job {name}") from exc
    log.info("Created job %s (%s).", name, arn)
    return record_for(sub, None, name, attached=False, arn=arn)
