"""JobSpec: everything that decides what a training or evaluation job does, and therefore its name.

The job name is a readable prefix plus a hash of the full (resolved) spec, so re-running the same spec finds the
same job instead of paying for a second one, and any change - one override, another dataset - is a new job.

Example:
    >>> spec = JobSpec(model="nova-lite-2", method="sft_lora", train_uri="s3://b/d/train.jsonl",
    ...                output_uri="s3://b/out", role_arn="arn:aws:iam::123456789012:role/r")
    >>> spec.job_name().startswith("nova-lite-2-sft-lora-")
    True
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from novaflow.catalog import Method, NovaModel, Platform, canonical_model, get_model
from novaflow.recipes.build import MLFLOW_FIELDS
from novaflow.registry.packages import default_group
from novaflow.settings import NovaflowSettings

JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
MAX_NAME = 63
HASH_CHARS = 12
HASHED_WHEN_SET = ("model_package_group", "accept_eula", "cluster", "namespace")
"""Fields added after the first release: hashed only when set, so every job submitted before keeps its name
(a re-run must attach to it, not pay for a second one)."""


class JobSpec(BaseModel):
    """A job to run. Unset infrastructure fields are filled from settings by :meth:`resolve`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: Platform = Field(
        Platform.SMTJ,
        description="SMTJ (training job on instances), SERVERLESS (no instances), BEDROCK or SMHP (alias HYPERPOD: "
        "a job on a SageMaker HyperPod cluster).",
    )
    model: str = Field(..., description="Nova model: nova-micro, nova-lite, nova-pro, nova-lite-2 (or an alias).")
    method: Method = Field(..., description="sft_lora, sft_full, rft_lora or evaluation (see novaflow.catalog).")
    eval_task: str | None = Field(None, description="Evaluation task (gen_qa, mmlu, rft_eval, ...); evaluation only.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Flat recipe overrides such as lr=1e-5.")
    recipe_file: str | None = Field(None, description="A user recipe YAML replacing the packaged template.")
    instance_type: str | None = Field(None, description="Default from the instance table.")
    instance_count: int | None = Field(None, ge=1, description="= recipe run.replicas; default from the table.")
    train_uri: str | None = Field(None, description="s3:// URI of the training (or gen_qa.jsonl evaluation) data.")
    validation_uri: str | None = Field(None, description="Optional s3:// URI of validation data.")
    output_uri: str | None = Field(None, description="s3:// output path; default <bucket>/<prefix>/jobs.")
    model_name_or_path: str | None = Field(
        None,
        description="Base prod path, an s3:// checkpoint to continue (SMTJ), or a model package version ARN "
        "(SERVERLESS continues from, or evaluates, registered versions).",
    )
    model_package_group: str | None = Field(
        None,
        description="Registry group a SERVERLESS job registers its model in (default novaflow-jobs-<model>).",
    )
    accept_eula: bool = Field(
        False, description="Accept the base model's end-user license agreement (SERVERLESS requires it)."
    )
    reward_lambda_arn: str | None = Field(None, description="Reward Lambda for rft_lora and rft_eval.")
    cluster: str | None = Field(None, description="HyperPod cluster name (SMHP); default NOVAFLOW_HYPERPOD_CLUSTER.")
    namespace: str | None = Field(
        None, description="Kubernetes namespace of an SMHP job; default NOVAFLOW_HYPERPOD_NAMESPACE (kubeflow)."
    )
    role_arn: str | None = None
    region: str | None = None
    kms_key_id: str | None = None
    subnets: tuple[str, ...] | None = None
    security_group_ids: tuple[str, ...] | None = None
    image_uri: str | None = Field(None, description="Override of the Nova training image (ECR URI).")
    max_runtime_seconds: int = Field(86400, ge=60, le=28 * 86400)
    tags: dict[str, str] = Field(default_factory=dict)
    name_prefix: str | None = Field(None, description="Readable job-name prefix; default <model>-<method>.")
    mlflow_tracking_uri: str | None = Field(
        None, description="SageMaker MLflow ARN the training container logs to (the recipe's run.mlflow_* fields)."
    )
    mlflow_experiment_name: str | None = Field(None, description="Default: the job name (as sagemaker v3).")
    mlflow_run_name: str | None = Field(None, description="Default: the job name (as sagemaker v3).")

    _canonical_model = field_validator("model")(canonical_model)

    @property
    def nova(self) -> NovaModel:
        return get_model(self.model)

    def resolve(self, settings: NovaflowSettings) -> JobSpec:
        """Fill infrastructure fields from settings so the hash covers what is actually sent (idempotent)."""
        updates: dict[str, Any] = {}
        if self.region is None:
            updates["region"] = settings.region
        if self.role_arn is None and settings.role_arn:
            updates["role_arn"] = settings.role_arn
        if self.kms_key_id is None and settings.kms_key_id:
            updates["kms_key_id"] = settings.kms_key_id
        if self.subnets is None:
            updates["subnets"] = tuple(settings.subnets)
        if self.security_group_ids is None:
            updates["security_group_ids"] = tuple(settings.security_group_ids)
        if self.output_uri is None and settings.bucket:
            updates["output_uri"] = settings.s3_uri("jobs")
        if self.method is Method.EVALUATION and self.eval_task is None:
            updates["eval_task"] = "gen_qa"
        if self.platform is Platform.SMHP:
            if self.cluster is None and settings.hyperpod_cluster:
                updates["cluster"] = settings.hyperpod_cluster
            if self.namespace is None:
                updates["namespace"] = settings.hyperpod_namespace
        if self.platform is Platform.SERVERLESS and self.model_package_group is None:
            updates["model_package_group"] = default_group(self.model, "jobs")
        return self.model_copy(update=updates) if updates else self

    def canonical(self) -> dict[str, Any]:
        """The hashed form: every field, plus the content (not just the path) of a user recipe file.

        Where the job reports its metrics (the MLflow fields) is not what it computes: leaving them out means a
        re-run with tracking switched on attaches to the job it already paid for instead of starting a twin.
        """
        data = self.model_dump(mode="json", exclude=set(MLFLOW_FIELDS))
        for key in HASHED_WHEN_SET:
            if not data.get(key):
                data.pop(key, None)
        if self.recipe_file:
            path = Path(self.recipe_file)
            data["recipe_file_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
        return data

    def spec_hash(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def readable_prefix(self) -> str:
        if self.name_prefix:
            raw = self.name_prefix
        elif self.method is Method.EVALUATION:
            raw = f"{self.model}-eval-{self.eval_task or 'gen_qa'}"
        else:
            raw = f"{self.model}-{self.method.value}"
        prefix = re.sub(r"[^a-zA-Z0-9-]+", "-", raw).strip("-")
        return re.sub(r"-{2,}", "-", prefix) or "nova"

    def job_name(self, suffix: str = "") -> str:
        """``<prefix>-<12 hex of the spec hash>[-suffix]``, at most 63 characters, valid for SageMaker."""
        tail = f"-{self.spec_hash()[:HASH_CHARS]}" + (f"-{suffix}" if suffix else "")
        prefix = self.readable_prefix()[: MAX_NAME - len(tail)].rstrip("-")
        name = prefix + tail
        if not JOB_NAME_RE.match(name):
            raise ValueError(f"generated job name {name!r} is invalid")
        return name

    def data_channels(self) -> dict[str, str]:
        channels = {}
        if self.train_uri:
            channels["train"] = self.train_uri
        if self.validation_uri:
            channels["validation"] = self.validation_uri
        return channels
