"""SageMaker's ``CreateJob`` / ``DescribeJob`` / ``StopJob`` / ``ListJobs`` (job category ``AgentRFT``) in the embedded
AWS; moto 5.2.5 has none of them.

AWS checks the job config document before it creates the job - the schema version, the agent (an existing Lambda
function or an AgentCore runtime ARN), a ``train`` channel, the output and checkpoint model package groups (they exist
and differ), the base model's hub content and its EULA, hyperparameters the MTRL recipe accepts - so the same checks
run here, with AWS's error codes. Status and secondary status follow an emulator
:class:`~novaflow.local.emulator.jobstate.JobRun` exactly as a training job's do; once the worker is done,
``DescribeJob``'s document carries the ``ServiceOutput`` it filled in (output model package, billable tokens,
progress), which is where sagemaker v3 reads them (docs/agentic-rft.md#what-describejob-returns).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError

from novaflow.catalog import Method, get_model
from novaflow.jobs.agent_rft import AGENTCORE_ARN_RE, LAMBDA_ARN_RE
from novaflow.local.emulator import jobstate
from novaflow.local.emulator.serverless_jobs import parse_hub_content_arn
from novaflow.recipes.serverless import hyperparameter_spec

CATEGORIES = ("AgentRFT", "AgentRFTEvaluation")
SCHEMA_VERSIONS = ("1.0.0",)

ON_AGENT_JOB_CREATED: list[Callable[[AgentJob, str], None]] = []
"""Called with (job, server URL) after a job is created; the emulator's worker registers here."""


@dataclass
class AgentJob:
    """One job of the ``CreateJob`` family, as the service keeps it."""

    name: str
    arn: str
    category: str
    role_arn: str
    schema_version: str
    document: dict[str, Any]
    tags: list[dict[str, str]]
    account: str
    region: str
    run: jobstate.JobRun
    created: datetime = field(default_factory=utcnow)
    service_output: dict[str, Any] = field(default_factory=dict)
    """Filled in by the worker: ``OutputModelPackageArn``, ``BillableTokenUsage``, ``ProgressInfo``."""

    def describe(self) -> dict[str, Any]:
        status, secondary = self.run.status()
        document = dict(self.document)
        if self.service_output:
            document["ServiceOutput"] = dict(self.service_output)
        out: dict[str, Any] = {
            "JobName": self.name,
            "JobArn": self.arn,
            "RoleArn": self.role_arn,
            "JobCategory": self.category,
            "JobConfigSchemaVersion": self.schema_version,
            "JobConfigDocument": json.dumps(document),
            "CreationTime": self.created.isoformat(),
            "LastModifiedTime": (self.run.history[-1][1]).isoformat(),
            "JobStatus": status,
            "SecondaryStatus": secondary,
            "SecondaryStatusTransitions": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in t.items()}
                for t in self.run.transitions()
            ],
            "Tags": self.tags,
        }
        if self.run.end_time is not None:
            out["EndTime"] = self.run.end_time.isoformat()
        if status == "Failed" and self.run.failure_reason:
            out["FailureReason"] = self.run.failure_reason
        return out


_JOBS: dict[tuple[str, str], dict[str, AgentJob]] = {}
_LOCK = threading.Lock()


def jobs(account: str, region: str) -> dict[str, AgentJob]:
    with _LOCK:
        return _JOBS.setdefault((account, region), {})


def job_arn(account: str, region: str, category: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:job/{category}/{name}"


def _get(account: str, region: str, name: str, category: str) -> AgentJob:
    job = jobs(account, region).get(name)
    if job is None or job.category != category:
        raise ResourceNotFound(f"Job {job_arn(account, region, category, name)} does not exist.")
    return job


def _group_exists(backend: Any, arn: str, field_name: str) -> str:
    name = str(arn).rsplit("/", 1)[-1]
    if name not in backend.model_package_groups:
        raise ValidationError(f"{field_name} {arn} does not exist: create the model package group first.")
    return name


def _lambda_exists(arn: str, account: str, region: str) -> bool:
    """Looked up in the backend moto serves Lambda from (the simple one when functions run without Docker)."""
    from moto.awslambda.models import lambda_backends
    from moto.awslambda_simple.models import lambda_simple_backends

    for backends in (lambda_simple_backends, lambda_backends):
        try:
            backends[account][region].get_function(arn)
            return True
        except Exception:  # noqa: S112 - moto raises its own not-found types
            continue
    return False


def validate_document(backend: Any, document: Any, account: str, region: str) -> None:
    """What AWS checks in an AgentRFT job config before it creates the job (ValidationException on the first)."""
    if not isinstance(document, dict):
        raise ValidationError("JobConfigDocument must be a JSON object.")
    for block in ("AgentConfig", "InputDataConfig", "OutputDataConfig", "ModelPackageConfig", "TrainingConfig"):
        if block not in document:
            raise ValidationError(f"JobConfigDocument is missing {block}.")
    agent = document["AgentConfig"]
    lam = (agent.get("CustomAgentLambdaConfig") or {}).get("LambdaArn")
    runtime = (agent.get("BedrockAgentCoreConfig") or {}).get("AgentRuntimeArn")
    if bool(lam) == bool(runtime):
        raise ValidationError("AgentConfig must set exactly one of CustomAgentLambdaConfig and BedrockAgentCoreConfig.")
    if lam:
        if not LAMBDA_ARN_RE.match(lam):
            raise ValidationError(f"AgentConfig.CustomAgentLambdaConfig.LambdaArn {lam!r} is not a Lambda ARN.")
        if not _lambda_exists(lam, account, region):
            raise ValidationError(f"The agent Lambda function {lam} does not exist.")
    elif not AGENTCORE_ARN_RE.match(str(runtime)):
        raise ValidationError(f"AgentConfig.BedrockAgentCoreConfig.AgentRuntimeArn {runtime!r} is not a runtime ARN.")
    channels = {c.get("ChannelName"): c for c in document["InputDataConfig"] if isinstance(c, dict)}
    if "train" not in channels:
        raise ValidationError("InputDataConfig needs a channel named train.")
    if not str((document["OutputDataConfig"] or {}).get("S3OutputPath", "")).startswith("s3://"):
        raise ValidationError("OutputDataConfig.S3OutputPath must be an s3:// URI.")
    packages = document["ModelPackageConfig"]
    output_group = _group_exists(backend, packages.get("OutputModelPackageGroupArn"), "OutputModelPackageGroupArn")
    checkpoints = packages.get("IntermediateCheckpointModelPackageGroupArn")
    if checkpoints:
        if _group_exists(backend, checkpoints, "IntermediateCheckpointModelPackageGroupArn") == output_group:
            raise ValidationError("IntermediateCheckpointModelPackageGroupArn must differ from the output group.")
    training = document["TrainingConfig"]
    _check_base_model(backend, training)
    _check_hyperparameters(training.get("HyperParameters") or {})


def _check_base_model(backend: Any, training: dict[str, Any]) -> None:
    hub, kind, name, version = parse_hub_content_arn(str(training.get("BaseModelArn")), "BaseModelArn")
    content = backend.describe_hub_content(hub, kind, name, version)
    document = json.loads(content.document)
    if document.get("GatedBucket") and training.get("AcceptEula") is not True:
        raise ValidationError(f"{name} is a gated model: set TrainingConfig.AcceptEula to true to accept its EULA.")
    if not any(r.get("CustomizationTechnique") == "MTRL" for r in document.get("RecipeCollection", [])):
        raise ValidationError(f"{name} has no recipe for customization technique MTRL.")


def _check_hyperparameters(values: dict[str, Any]) -> None:
    spec = hyperparameter_spec(get_model("nova-lite-2"), Method.RFT_MULTITURN)
    _, problems = spec.check(values)
    unknown = [k for k in values if k not in spec.parameters]
    if unknown or problems:
        raise ValidationError("TrainingConfig.HyperParameters: " + "; ".join(problems or [f"unknown {unknown}"]))


def create_job(self: Any, params: dict[str, Any], url: str) -> AgentJob:
    category = params.get("JobCategory")
    if category not in CATEGORIES:
        raise ValidationError(f"JobCategory {category!r} must be one of {', '.join(CATEGORIES)}.")
    if params.get("JobConfigSchemaVersion") not in SCHEMA_VERSIONS:
        raise ValidationError(f"JobConfigSchemaVersion {params.get('JobConfigSchemaVersion')!r} is not supported.")
    name = str(params["JobName"])
    account, region = self.account_id, self.region_name
    arn = job_arn(account, region, category, name)
    if name in jobs(account, region):
        raise ResourceInUseException(f"Job names must be unique within an AWS account and region ({arn} exists).")
    try:
        document = json.loads(params.get("JobConfigDocument") or "")
    except ValueError as exc:
        raise ValidationError(f"JobConfigDocument is not valid JSON: {exc}") from None
    validate_document(self, document, account, region)
    run = jobstate.JobRun(name=name)
    jobstate.register(arn, run)
    job = AgentJob(
        name=name,
        arn=arn,
        category=category,
        role_arn=str(params.get("RoleArn")),
        schema_version=str(params["JobConfigSchemaVersion"]),
        document=document,
        tags=list(params.get("Tags") or []),
        account=account,
        region=region,
        run=run,
    )
    with _LOCK:
        _JOBS.setdefault((account, region), {})[name] = job
    for hook in ON_AGENT_JOB_CREATED:
        hook(job, url)
    return job


def _r_create_job(self: Any) -> ActionResult:
    host = self.headers.get("Host") or self.headers.get("host") or ""
    job = create_job(self.sagemaker_backend, json.loads(self.body or "{}"), f"http://{host}")
    return ActionResult({"JobArn": job.arn})


def _r_describe_job(self: Any) -> ActionResult:
    backend = self.sagemaker_backend
    job = _get(backend.account_id, backend.region_name, self._get_param("JobName"), self._get_param("JobCategory"))
    return ActionResult(job.describe())


def _r_stop_job(self: Any) -> EmptyResult:
    backend = self.sagemaker_backend
    job = _get(backend.account_id, backend.region_name, self._get_param("JobName"), self._get_param("JobCategory"))
    blocking = job.run.request_stop()
    if blocking is not None:
        raise ValidationError(f"The request was rejected because the job is in status {blocking}.")
    return EmptyResult()


def _r_list_jobs(self: Any) -> ActionResult:
    backend = self.sagemaker_backend
    category = self._get_param("JobCategory")
    found = [j for j in jobs(backend.account_id, backend.region_name).values() if j.category == category]
    summaries = []
    for job in sorted(found, key=lambda j: j.created, reverse=True):
        status, secondary = job.run.status()
        summaries.append(
            {
                "JobName": job.name,
                "JobArn": job.arn,
                "JobCategory": job.category,
                "CreationTime": job.created.isoformat(),
                "JobStatus": status,
                "JobSecondaryStatus": secondary,
                "LastModifiedTime": job.run.history[-1][1].isoformat(),
            }
        )
    return ActionResult({"JobSummaries": summaries})


def install() -> None:
    """Add the CreateJob family to moto's SageMaker responses (idempotent)."""
    resp = sm_responses.SageMakerResponse
    if getattr(resp, "create_job", None) is _r_create_job:
        return
    resp.create_job = _r_create_job  # type: ignore[attr-defined]
    resp.describe_job = _r_describe_job  # type: ignore[attr-defined]
    resp.stop_job = _r_stop_job  # type: ignore[attr-defined]
    resp.list_jobs = _r_list_jobs  # type: ignore[attr-defined]
    _ = sm_models  # the backend is moto's; the jobs live beside it, keyed by account and region


def reset() -> None:
    with _LOCK:
        _JOBS.clear()
