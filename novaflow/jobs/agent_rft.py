"""Multi-turn (agentic) RFT jobs: SageMaker's ``CreateJob`` with ``JobCategory="AgentRFT"`` and a JSON job config.

Unlike every other Nova job this one is not a training job: the request is a name, a role, a category, a schema
version and one JSON document (docs/agentic-rft.md#the-request). The document says which agent plays the rollouts
(a Lambda function or a Bedrock AgentCore runtime), where the tasks are, where outputs go, which model package
group receives the trained model (and which one the intermediate checkpoints), the base model's hub content, the
EULA, and only the hyperparameters that differ from the recipe's defaults - exactly what sagemaker v3's
``MultiTurnRLTrainer`` sends for the same inputs (``tests/aws/jobs/test_sagemaker_fidelity.py``). The trained model
comes back as a model package version, in ``DescribeJob``'s ``JobConfigDocument`` under ``ServiceOutput``.

Example:
    >>> agent_config("arn:aws:lambda:us-east-1:123456789012:function:my-agent")
    {'CustomAgentLambdaConfig': {'LambdaArn': 'arn:aws:lambda:us-east-1:123456789012:function:my-agent'}}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient

from novaflow.aws import get_client
from novaflow.catalog import Method, Platform
from novaflow.errors import RecipeError
from novaflow.jobs.backend_base import ClientBackend, JobState
from novaflow.jobs.records import map_status
from novaflow.jobs.serverless import ServerlessRefs, is_package_arn, sdk_tags
from novaflow.jobs.spec import JobSpec
from novaflow.recipes import serverless as hub_spec
from novaflow.registry.packages import ensure_group, group_arn
from novaflow.settings import NovaflowSettings

JOB_CATEGORY = "AgentRFT"
SCHEMA_VERSION = "1.0.0"
"""The job config schema novaflow writes (the one sagemaker v3 3.27 writes)."""
LOG_GROUP = "/aws/sagemaker/Job/AgentRFT"
AGENTCORE_QUALIFIER = "DEFAULT"
LAMBDA_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[a-zA-Z0-9_.-]+(:(\$LATEST|[a-zA-Z0-9_-]+))?$"
)
AGENTCORE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:bedrock-agentcore:[a-z0-9-]+:\d{12}:runtime/[a-zA-Z0-9_-]+$")
MLFLOW_APP_RE = re.compile(r"^arn:[a-z0-9.-]+:sagemaker:[^:]+:[^:]+:mlflow-app/.+$")


def is_agent_rft(spec: JobSpec) -> bool:
    return spec.method is Method.RFT_MULTITURN


def agent_kind(arn: str) -> str:
    """``lambda`` or ``agentcore``; anything else is refused with what to pass instead."""
    if LAMBDA_ARN_RE.match(arn):
        return "lambda"
    if AGENTCORE_ARN_RE.match(arn):
        return "agentcore"
    raise RecipeError(
        f"agent {arn!r} is neither a Lambda function ARN nor a Bedrock AgentCore runtime ARN: pass --agent FILE.py "
        "(deployed as a Lambda), arn:aws:lambda:...:function:NAME or arn:aws:bedrock-agentcore:...:runtime/ID."
    )


def agent_config(arn: str, qualifier: str = AGENTCORE_QUALIFIER) -> dict[str, Any]:
    """The ``AgentConfig`` block: a Lambda the service invokes per rollout, or an AgentCore runtime."""
    if agent_kind(arn) == "lambda":
        return {"CustomAgentLambdaConfig": {"LambdaArn": arn}}
    return {"BedrockAgentCoreConfig": {"AgentRuntimeArn": arn, "Qualifier": qualifier}}


def checkpoint_group_name(spec: JobSpec) -> str:
    """Where the intermediate checkpoints are registered: sagemaker v3's default group for the base model."""
    return f"{spec.nova.hub_name}-mtrl-checkpoint-mpg"


def changed_hyperparameters(spec: JobSpec) -> dict[str, str]:
    """The overrides that differ from the recipe's defaults - the only ones the service is sent - as strings, in
    the order of the recipe's override spec (as v3 serialises its hyperparameter object)."""
    parameters = hub_spec.hyperparameter_spec(spec.nova, spec.method)
    values, problems = parameters.check(spec.overrides)
    if problems:
        raise RecipeError(f"Multi-turn RFT hyperparameters of {spec.readable_prefix()}: " + "; ".join(problems))
    defaults = parameters.defaults()
    return {
        name: hub_spec.hyperparameter_text(values[name])
        for name in parameters.parameters
        if name in values and values[name] != defaults.get(name)
    }


@dataclass(frozen=True)
class AgentRefs:
    """What an agentic RFT request points at besides the serverless references: the checkpoint group."""

    checkpoint_group_arn: str


def resolve_agent_refs(spec: JobSpec, settings: NovaflowSettings | None = None, *, create: bool = False) -> AgentRefs:
    """The intermediate checkpoint group (read-only in a dry run, created on submit as v3 does)."""
    name = checkpoint_group_name(spec)
    if create:
        return AgentRefs(ensure_group(name, settings, description="novaflow: multi-turn RFT intermediate checkpoints"))
    found = group_arn(name, settings)
    if found:
        return AgentRefs(found)
    account = get_client("sts", settings).get_caller_identity()["Account"]
    return AgentRefs(f"arn:aws:sagemaker:{spec.region}:{account}:model-package-group/{name}")


def job_config(spec: JobSpec, refs: ServerlessRefs, agent: AgentRefs) -> dict[str, Any]:
    """The job config document (schema 1.0.0) as a dict, keys in the order v3 writes them."""
    if not spec.agent_arn:
        raise RecipeError("A multi-turn RFT job needs its agent: pass --agent FILE.py, a Lambda ARN or a runtime ARN.")
    if not spec.train_uri:
        raise RecipeError("A multi-turn RFT job needs its tasks: train_uri (prepared with --method rft_multiturn).")
    if not refs.model_package_group_arn:
        raise RecipeError("A multi-turn RFT job needs the model package group its model is registered in.")
    channels = [
        {"ChannelName": name, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}
        for name, uri in spec.data_channels().items()
    ]
    output: dict[str, Any] = {"S3OutputPath": spec.output_uri}
    if spec.kms_key_id:
        output["KmsKeyArn"] = spec.kms_key_id
    packages: dict[str, Any] = {"OutputModelPackageGroupArn": refs.model_package_group_arn}
    if is_package_arn(spec.model_name_or_path):
        packages["InputModelPackageArn"] = spec.model_name_or_path
    packages["IntermediateCheckpointModelPackageGroupArn"] = agent.checkpoint_group_arn
    training: dict[str, Any] = {"BaseModelArn": refs.base_model_arn}
    mlflow = mlflow_config(spec)
    if mlflow:
        training["MlflowConfig"] = mlflow
    training["AcceptEula"] = spec.accept_eula
    changed = changed_hyperparameters(spec)
    if changed:
        training["HyperParameters"] = changed
    config: dict[str, Any] = {
        "AgentConfig": agent_config(spec.agent_arn),
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "ModelPackageConfig": packages,
        "TrainingConfig": training,
    }
    if spec.subnets and spec.security_group_ids:
        config["VpcConfig"] = {"SecurityGroupIds": list(spec.security_group_ids), "Subnets": list(spec.subnets)}
    return config


def mlflow_config(spec: JobSpec) -> dict[str, str] | None:
    """``MlflowConfig`` when the spec names a SageMaker MLflow app (a tracking server URI is not one)."""
    if not spec.mlflow_tracking_uri or not MLFLOW_APP_RE.match(spec.mlflow_tracking_uri):
        return None
    config = {"MlflowResourceArn": spec.mlflow_tracking_uri}
    if spec.mlflow_experiment_name:
        config["MlflowExperimentName"] = spec.mlflow_experiment_name
    if spec.mlflow_run_name:
        config["MlflowRunName"] = spec.mlflow_run_name
    return config


def build_agent_rft_request(spec: JobSpec, refs: ServerlessRefs, agent: AgentRefs, *, job_name: str) -> dict[str, Any]:
    """The CreateJob parameters; the document is JSON with a two-space indent, as v3 serialises it."""
    if not spec.role_arn:
        raise RecipeError("No execution role: set NOVAFLOW_ROLE_ARN (a role trusting sagemaker.amazonaws.com).")
    if not spec.output_uri:
        raise RecipeError("Spec is not resolved: call spec.resolve(settings) first (output_uri).")
    return {
        "JobName": job_name,
        "JobCategory": JOB_CATEGORY,
        "RoleArn": spec.role_arn,
        "JobConfigSchemaVersion": SCHEMA_VERSION,
        "JobConfigDocument": json.dumps(job_config(spec, refs, agent), indent=2),
        "Tags": sdk_tags(spec),
    }


def service_output(raw: dict[str, Any]) -> dict[str, Any]:
    """``ServiceOutput`` of a described job's config document (what the service filled in)."""
    try:
        document = json.loads(raw.get("JobConfigDocument") or "{}")
    except ValueError:
        return {}
    output = document.get("ServiceOutput") if isinstance(document, dict) else None
    return output if isinstance(output, dict) else {}


class AgentRFTBackend(ClientBackend):
    """``DescribeJob`` / ``CreateJob`` / ``StopJob`` of the AgentRFT category behind the backend interface."""

    platform = Platform.SERVERLESS
    create_operation = "CreateJob"
    stopping = "Stopping multi-turn RFT job"
    log_group = LOG_GROUP

    def __init__(self, settings: NovaflowSettings | None = None, client: BaseClient | None = None) -> None:
        self._client = client or get_client("sagemaker", settings)

    def _describe(self, name: str) -> dict[str, Any]:
        raw: dict[str, Any] = self._client.describe_job(JobName=name, JobCategory=JOB_CATEGORY)
        return raw

    def _state(self, name: str, raw: dict[str, Any]) -> JobState:
        output = service_output(raw)
        usage = output.get("BillableTokenUsage") or {}
        tokens = sum(int(v) for v in usage.values() if isinstance(v, (int, float))) if usage else None
        document = json.loads(raw.get("JobConfigDocument") or "{}")
        return JobState(
            name=name,
            status=map_status(raw["JobStatus"]),
            raw_status=raw["JobStatus"],
            failure_reason=raw.get("FailureReason"),
            secondary_status=raw.get("SecondaryStatus"),
            arn=raw.get("JobArn"),
            created=raw.get("CreationTime"),
            output_uri=(document.get("OutputDataConfig") or {}).get("S3OutputPath"),
            output_model_package_arn=output.get("OutputModelPackageArn"),
            billable_tokens=tokens,
            raw=raw,
        )

    def create(self, request: dict[str, Any]) -> str | None:
        return self._client.create_job(**request).get("JobArn")

    def _stop(self, name: str) -> None:
        self._client.stop_job(JobName=name, JobCategory=JOB_CATEGORY)
