"""Model package groups and versions: register a checkpoint, record what it came from, decide its approval.

A bare S3 URI cannot say which data and recipe made it, how it scored, or whether anyone may deploy it. A version
in a model package group can: one group per run family, one version per training stage, lineage and metrics in
its metadata (:mod:`novaflow.registry.lineage`), and an approval status the deploy gate sets - ``Approved`` when
it deploys, ``Rejected`` with the reason when it does not, ``PendingManualApproval`` while a person decides.
Registration is idempotent: a version is found by the job that trained it before one is created, and the create
carries a client token derived from the job, so a retried call cannot add a second version. Versions are never
deleted by novaflow (teardown removes what serves traffic, not what was learnt).

Example:
    >>> version = register_checkpoint("novaflow-case-study-nova-lite-2", ckpt, model="nova-lite-2",
    ...                               job_name="nova-lite-2-sft-lora-5f32aa882e45")        # doctest: +SKIP
    >>> set_approval(version.arn, APPROVED, "gate: em +0.81 over baseline, p=7e-90")          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import error_message, get_client, is_not_found, wrap_client_error
from novaflow.catalog import get_model
from novaflow.errors import ConfigError, DeployError
from novaflow.registry.lineage import PREFIX, fit, lineage_properties, read_lineage
from novaflow.settings import NovaflowSettings

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
STATUSES = (APPROVED, REJECTED, PENDING)
GROUP_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
VERSION_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[^/]+/\d+$")
JOB_KEY = PREFIX + "job"
MAX_DESCRIPTION = 1024


def default_group(model: str, run_name: str) -> str:
    """``novaflow-<run>-<model>``, as a valid group name: the run family's versions live together."""
    raw = re.sub(r"[^a-zA-Z0-9]+", "-", f"novaflow-{run_name}-{get_model(model).key}").strip("-")
    return re.sub(r"-{2,}", "-", raw)[:63].rstrip("-")


def check_group_name(name: str) -> str:
    if not GROUP_NAME_RE.match(name):
        raise ConfigError(
            f"Model package group name {name!r} is invalid: use 1-63 letters, digits and hyphens "
            "(starting and ending with a letter or digit)."
        )
    return name


def check_version_arn(arn: str) -> str:
    if not VERSION_ARN_RE.match(arn):
        raise ConfigError(
            f"{arn!r} is not a model package version ARN "
            "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)."
        )
    return arn


@dataclass(frozen=True)
class ModelVersion:
    """One registered version, as DescribeModelPackage shows it."""

    arn: str
    group: str
    version: int
    status: str
    approval_description: str | None
    created: datetime | None
    checkpoint_uri: str | None
    base_model: str | None
    description: str | None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def lineage(self) -> dict[str, str]:
        return read_lineage(self.properties)[0]

    @property
    def metrics(self) -> dict[str, float]:
        return read_lineage(self.properties)[1]

    @classmethod
    def from_description(cls, desc: Mapping[str, Any]) -> ModelVersion:
        containers = (desc.get("InferenceSpecification") or {}).get("Containers") or [{}]
        source = (containers[0].get("ModelDataSource") or {}).get("S3DataSource") or {}
        uri = source.get("S3Uri") or containers[0].get("ModelDataUrl")
        return cls(
            arn=str(desc["ModelPackageArn"]),
            group=str(desc.get("ModelPackageGroupName") or ""),
            version=int(desc.get("ModelPackageVersion") or 0),
            status=str(desc.get("ModelApprovalStatus") or PENDING),
            approval_description=desc.get("ApprovalDescription"),
            created=desc.get("CreationTime"),
            checkpoint_uri=str(uri).rstrip("/") if uri else None,
            base_model=(containers[0].get("BaseModel") or {}).get("HubContentName"),
            description=desc.get("ModelPackageDescription"),
            properties=dict(desc.get("CustomerMetadataProperties") or {}),
        )


def _sagemaker(settings: NovaflowSettings) -> Any:
    return get_client("sagemaker", settings)


def group_arn(name: str, settings: NovaflowSettings) -> str | None:
    """The group's ARN, or None when it does not exist (read-only)."""
    try:
        return str(
            _sagemaker(settings).describe_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
        )
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise wrap_client_error(exc, f"Describing model package group {name}") from exc


def ensure_group(name: str, settings: NovaflowSettings, *, description: str = "") -> str:
    """Describe-then-create the group; a concurrent creator's group is used, not a second one."""
    check_group_name(name)
    found = group_arn(name, settings)
    if found:
        return found
    try:
        response = _sagemaker(settings).create_model_package_group(
            ModelPackageGroupName=name,
            ModelPackageGroupDescription=description or f"novaflow: versions of {name}",
            Tags=[{"Key": "novaflow:managed", "Value": "true"}],
        )
    except ClientError as exc:
        if "already exists" in error_message(exc).lower():
            again = group_arn(name, settings)
            if again:
                return again
        raise wrap_client_error(exc, f"Creating model package group {name}") from exc
    return str(response["ModelPackageGroupArn"])


def describe_version(arn: str, settings: NovaflowSettings) -> ModelVersion:
    try:
        desc = _sagemaker(settings).describe_model_package(ModelPackageName=arn)
    except ClientError as exc:
        if is_not_found(exc):
            raise ConfigError(f"Model package version {arn} does not exist: check the ARN and region.") from None
        raise wrap_client_error(exc, f"Describing model package {arn}") from exc
    return ModelVersion.from_description(desc)


def list_versions(group: str, settings: NovaflowSettings) -> list[ModelVersion]:
    """Every version of ``group``, oldest first (an unknown group is an error naming it)."""
    if group_arn(group, settings) is None:
        raise ConfigError(f"Model package group {group} does not exist: nothing has been registered under it.")
    sm = _sagemaker(settings)
    arns: list[str] = []
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Ascending"}
    while True:
        page = sm.list_model_packages(**kwargs)
        arns.extend(item["ModelPackageArn"] for item in page.get("ModelPackageSummaryList", []))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    versions = [describe_version(arn, settings) for arn in arns]
    return sorted(versions, key=lambda v: v.version)


def find_version(group: str, job_name: str, settings: NovaflowSettings) -> ModelVersion | None:
    """The version the job ``job_name`` registered in ``group``, if any."""
    if group_arn(group, settings) is None:
        return None
    return next((v for v in list_versions(group, settings) if v.properties.get(JOB_KEY) == job_name), None)


def client_token(group: str, job_name: str) -> str:
    """A CreateModelPackage idempotency token per (group, job)."""
    return hashlib.sha256(f"{group}/{job_name}".encode()).hexdigest()[:32]


def register_checkpoint(
    group: str,
    checkpoint_uri: str,
    *,
    model: str,
    job_name: str,
    lineage: Mapping[str, object] | None = None,
    description: str | None = None,
    image: str | None = None,
    settings: NovaflowSettings,
) -> ModelVersion:
    """The version for ``job_name``'s checkpoint in ``group``: found when registered before, created otherwise."""
    if not checkpoint_uri.startswith("s3://"):
        raise ConfigError(f"Only an s3:// checkpoint can be registered, not {checkpoint_uri!r}.")
    existing = find_version(group, job_name, settings)
    if existing is not None:
        return existing
    ensure_group(group, settings)
    nova = get_model(model)
    container: dict[str, Any] = {
        "ModelDataSource": {
            "S3DataSource": {
                "S3Uri": checkpoint_uri.rstrip("/") + "/",
                "S3DataType": "S3Prefix",
                "CompressionType": "None",
            }
        },
        "BaseModel": {"HubContentName": nova.hub_name},
    }
    if image:
        container["Image"] = image
    properties = lineage_properties({"job": job_name, "model": nova.key, **(lineage or {})})
    try:
        response = _sagemaker(settings).create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=(description or f"{nova.key} trained by {job_name}")[:MAX_DESCRIPTION],
            InferenceSpecification={"Containers": [container]},
            ModelApprovalStatus=PENDING,
            CustomerMetadataProperties=fit(properties),
            ClientToken=client_token(group, job_name),
        )
    except ClientError as exc:
        raise wrap_client_error(exc, f"Registering {checkpoint_uri} in {group}") from exc
    return describe_version(str(response["ModelPackageArn"]), settings)


def annotate(arn: str, facts: Mapping[str, str], settings: NovaflowSettings) -> ModelVersion:
    """Add metadata (lineage or metrics, already prefixed) to a version; existing keys are updated, not removed."""
    current = describe_version(arn, settings)
    properties = fit(dict(facts), current.properties)
    if properties:
        try:
            _sagemaker(settings).update_model_package(ModelPackageArn=arn, CustomerMetadataProperties=properties)
        except ClientError as exc:
            raise wrap_client_error(exc, f"Recording lineage on {arn}") from exc
    return describe_version(arn, settings)


def set_approval(arn: str, status: str, reason: str, settings: NovaflowSettings) -> ModelVersion:
    """Set the version's approval status with the reason (``ApprovalDescription``)."""
    if status not in STATUSES:
        raise ConfigError(f"Unknown approval status {status!r}: use one of {', '.join(STATUSES)}.")
    try:
        _sagemaker(settings).update_model_package(
            ModelPackageArn=check_version_arn(arn),
            ModelApprovalStatus=status,
            ApprovalDescription=reason[:MAX_DESCRIPTION] or status,
        )
    except ClientError as exc:
        if is_not_found(exc):
            raise ConfigError(f"Model package version {arn} does not exist: check the ARN and region.") from None
        raise wrap_client_error(exc, f"Setting {arn} to {status}") from exc
    return describe_version(arn, settings)


def deployable_checkpoint(arn: str, settings: NovaflowSettings) -> tuple[ModelVersion, str]:
    """(version, checkpoint) of an Approved version; a rejected or pending one is never deployed."""
    version = describe_version(check_version_arn(arn), settings)
    if version.status == REJECTED:
        why = f": {version.approval_description}" if version.approval_description else ""
        raise DeployError(f"Model package {arn} is Rejected{why}; a rejected version is never deployed.")
    if version.status != APPROVED:
        raise DeployError(
            f"Model package {arn} is {version.status}: approve it first (novaflow registry approve {arn})."
        )
    if not version.checkpoint_uri or not version.checkpoint_uri.startswith("s3://"):
        raise DeployError(f"Model package {arn} has no s3:// model data to deploy.")
    return version, version.checkpoint_uri
