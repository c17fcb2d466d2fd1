"""Settings: where novaflow works on AWS (region, bucket, role, encryption, network).

Read from ``NOVAFLOW_*`` environment variables, then a ``.env`` file, then defaults, by :func:`load_settings` -
called once, where a run or a command starts (a flow's ``run_context``, a CLI command, the embedded AWS's start),
and the result passed down to everything that run calls: no domain function loads settings itself, so two runs in
one process never read each other's region, endpoint or credentials. A settings object also carries the boto3
session the run signs with (:meth:`NovaflowSettings.with_session`, from a prefect-aws ``AwsCredentials`` block in
``tasks.credentials``; the domain never imports Prefect). Errors are turned into one line that names the setting
and the variable that sets it, because a pydantic traceback is not what a user should have to read before
spending money.

Example:
    >>> settings = load_settings(bucket="my-bucket")
    >>> settings.s3_uri("data", "train.jsonl")
    's3://my-bucket/novaflow/data/train.jsonl'
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from novaflow.catalog import DEFAULT_MODEL, MODELS, model_field
from novaflow.errors import ConfigError, NovaflowError
from novaflow.quotas.capacity import parse_quota_items

ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
KMS_RE = re.compile(r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]+|alias/[\w/-]+|[0-9a-f-]{36})$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

ENV_PREFIX = "NOVAFLOW_"
DEFAULT_HYPERPOD_NAMESPACE = "kubeflow"


class NovaflowSettings(BaseSettings):
    """Everything novaflow needs to know about the AWS account it works in, and the session it signs with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    region: str = Field(
        "us-east-1",
        description="AWS region for every client (Nova customization runs in "
        "us-east-1, us-west-2, eu-west-2, ap-northeast-1).",
    )
    bucket: str | None = Field(None, description="S3 bucket for data, recipes and job outputs.")
    prefix: str = Field("novaflow", description="Key prefix inside the bucket for everything novaflow writes.")
    role_arn: str | None = Field(None, description="SageMaker execution role ARN (must trust sagemaker.amazonaws.com).")
    kms_key_id: str | None = Field(None, description="KMS key for S3 uploads and job outputs; SSE-S3 when unset.")
    subnets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="VPC subnets for training jobs (comma separated)."
    )
    security_group_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="VPC security groups (comma separated)."
    )
    endpoint_url: str | None = Field(
        None, description="AWS endpoint override (local mode); AWS_ENDPOINT_URL is used when unset."
    )
    console_url: str | None = Field(
        None,
        description="Base of the job links in reports and summaries; empty = the AWS console of the region. The "
        "embedded AWS sets it to its own job pages, since a local run's jobs are not in the AWS console.",
    )
    model: str = Field(
        DEFAULT_MODEL,
        description=f"Default Nova model of every command and flow ({', '.join(MODELS)}, or any alias of one).",
    )
    max_attempts: int = Field(
        8,
        ge=1,
        le=20,
        description="Retries per AWS call (botocore adaptive mode, which also rate-limits the client after throttles).",
    )
    hyperpod_cluster: str | None = Field(
        None, description="SageMaker HyperPod cluster (EKS orchestrator) that platform HYPERPOD jobs run on."
    )
    hyperpod_namespace: str = Field(
        DEFAULT_HYPERPOD_NAMESPACE,
        description="Kubernetes namespace of HyperPod jobs (sagemaker v3 and the hyperpod CLI default to kubeflow).",
    )
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to open a connection to AWS.")
    quotas: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description="Training quotas when Service Quotas cannot be read (or to use less of them), comma separated "
        "TYPE=N: ml.p5.48xlarge=8,serverless=2 (instances per type; concurrent serverless jobs).",
    )
    read_timeout: float = Field(60.0, gt=0, description="Seconds to wait for an AWS response.")
    run_lease_seconds: float = Field(
        120.0,
        ge=3,
        description="How long a run's hold on its run name outlives its last renewal (renewed every third of it): "
        "a run whose process died frees its name after this long.",
    )
    watch_events_queue: str | None = Field(
        None,
        description="SQS queue `novaflow watch` reads the jobs' end events from (it creates the queue and its "
        "EventBridge rules when missing); empty = the watcher polls the suspended runs' jobs instead.",
    )
    watch_safety_seconds: float = Field(
        300.0,
        gt=0,
        description="With watch_events_queue: how often `novaflow watch` also polls the suspended runs' jobs (and "
        "renews their holds), so a missed event never strands a run.",
    )

    _session: Any = PrivateAttr(default=None)
    """A ``boto3.Session`` (the run's credentials block), or None for boto3's default credential chain. Private:
    never in a dump, a JSON parameter, a cache key or a pickle, so credentials are never written anywhere."""

    @property
    def session(self) -> Any:
        """The ``boto3.Session`` clients sign with, or None for boto3's default credential chain."""
        return self._session

    def with_session(self, session: Any) -> NovaflowSettings:
        """These settings, signing with ``session`` (a ``boto3.Session``; None: the default chain), as a copy."""
        copy = self.model_copy()
        copy._session = session
        return copy

    def __getstate__(self) -> dict[Any, Any]:
        # A pickle (a persisted task result, a process pool) is written somewhere: the credentials stay behind, and
        # what is unpickled signs with the default chain of the process that reads it.
        state = dict(super().__getstate__())
        state["__pydantic_private__"] = {**(state.get("__pydantic_private__") or {}), "_session": None}
        return state

    @field_validator("subnets", "security_group_ids", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("quotas", mode="before")
    @classmethod
    def _parse_quotas(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_quota_items(value.split(","), where="NOVAFLOW_QUOTAS")
            except NovaflowError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if not REGION_RE.match(value):
            raise ValueError("must be an AWS region name such as us-east-1")
        return value

    _canonical_model = field_validator("model")(model_field)

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str | None) -> str | None:
        if value is not None and not BUCKET_RE.match(value):
            raise ValueError("must be an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)")
        return value

    @field_validator("role_arn")
    @classmethod
    def _check_role(cls, value: str | None) -> str | None:
        if value is not None and not ROLE_ARN_RE.match(value):
            raise ValueError("must look like arn:aws:iam::<12-digit account>:role/<name>")
        return value

    @field_validator("kms_key_id")
    @classmethod
    def _check_kms(cls, value: str | None) -> str | None:
        if value is not None and not KMS_RE.match(value):
            raise ValueError("must be a KMS key id, key ARN or alias")
        return value

    @field_validator("prefix")
    @classmethod
    def _strip_prefix(cls, value: str) -> str:
        return value.strip("/")

    def require(self, *names: str) -> None:
        """Fail with one clear line for the first named setting that is unset."""
        for name in names:
            if getattr(self, name) in (None, "", []):
                raise ConfigError(missing_message(name))

    def resolved_endpoint_url(self) -> str | None:
        """The endpoint boto3 clients talk to: the setting, else ``AWS_ENDPOINT_URL``, else AWS itself."""
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    def s3_uri(self, *parts: str) -> str:
        """An ``s3://`` URI under the configured bucket and prefix."""
        self.require("bucket")
        keys = [p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/")]
        return f"s3://{self.bucket}/" + "/".join(keys)


def env_var(name: str) -> str:
    """The environment variable that sets a field."""
    return ENV_PREFIX + name.upper()


def missing_message(name: str) -> str:
    flag = name.replace("_", "-")
    return (
        f"Setting '{name}' is not set: export {env_var(name)}=... (or put it in .env, "
        f"or pass --{flag} where the command offers it)."
    )


def load_settings(**overrides: Any) -> NovaflowSettings:
    """Build settings, turning validation errors into a one-line :class:`ConfigError`.

    Keyword overrides win over the environment (None values are ignored so CLI defaults do not erase it). Call it
    where a run or command starts and pass the result down (CONTRIBUTING.md, "Settings and credentials").
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return NovaflowSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "?"
        reason = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        value = first.get("input")
        raise ConfigError(
            f"Setting '{name}' is malformed ({reason}; got {value!r}): fix {env_var(name)} in the environment or .env."
        ) from None
