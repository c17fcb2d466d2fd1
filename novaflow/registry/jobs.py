"""A finished training job's model as a registry version, whatever platform trained it.

A serverless job registered its model itself (``OutputModelPackageArn``): novaflow adds the lineage to that
version. A training job on instances or a Bedrock job leaves a checkpoint: novaflow registers it. Either way the
version records the data it was trained on (URIs and the sha256 novaflow stored when it uploaded them), the hash
of the resolved recipe or hyperparameters, the job, the flow run, and the model it started from - so a version
found in the console months later says how to make it again.

Example:
    >>> version = register_job_model(record, spec, "novaflow-case-study-nova-lite-2", checkpoint,
    ...                              stage="sft", flow_run="0b8c...")                       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib

from botocore.exceptions import ClientError

from novaflow.aws import get_client, split_s3_uri
from novaflow.deploy.images import inference_image_uri
from novaflow.errors import ConfigError
from novaflow.jobs.records import JobRecord
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.registry.lineage import lineage_properties
from novaflow.registry.packages import ModelVersion, annotate, register_checkpoint
from novaflow.settings import NovaflowSettings


def data_sha256(uri: str, settings: NovaflowSettings) -> str | None:
    """The sha256 novaflow recorded on upload (object metadata), when the object has one."""
    try:
        bucket, key = split_s3_uri(uri)
        head = get_client("s3", settings).head_object(Bucket=bucket, Key=key)
    except (ClientError, ValueError):
        return None
    value = (head.get("Metadata") or {}).get("sha256")
    return str(value) if value else None


def recipe_sha256(spec: JobSpec, settings: NovaflowSettings) -> str:
    """The sha256 of what configured the job: its uploaded recipe, or its hyperparameters (serverless)."""
    text = prepare_submission(spec, settings, strict=False).recipe.to_yaml()
    return hashlib.sha256(text.encode()).hexdigest()


def lineage_of(
    record: JobRecord,
    spec: JobSpec,
    *,
    stage: str,
    flow_run: str | None = None,
    settings: NovaflowSettings,
) -> dict[str, object]:
    """What the version should say about where it came from."""
    facts: dict[str, object] = {
        "stage": stage,
        "job": record.name,
        "method": spec.method.value,
        "platform": spec.platform.value,
        "model": spec.model,
        "spec-hash": record.spec_hash[:32],
        "recipe:sha256": recipe_sha256(spec, settings),
        "source": spec.model_name_or_path or spec.nova.model_path,
        "flow-run": flow_run,
    }
    for channel, uri in spec.data_channels().items():
        facts[f"data:{channel}"] = uri
        facts[f"data:{channel}:sha256"] = data_sha256(uri, settings)
    return facts


def register_job_model(
    record: JobRecord,
    spec: JobSpec,
    group: str,
    checkpoint: str,
    *,
    stage: str,
    flow_run: str | None = None,
    settings: NovaflowSettings,
) -> ModelVersion:
    """The version holding the job's model, with its lineage (created for SMTJ/Bedrock, annotated for serverless)."""
    facts = lineage_of(record, spec, stage=stage, flow_run=flow_run, settings=settings)
    if record.output_model_package_arn:
        return annotate(record.output_model_package_arn, lineage_properties(facts), settings)
    image = _inference_image(settings.region)
    return register_checkpoint(
        group,
        checkpoint,
        model=spec.model,
        job_name=record.name,
        lineage={k: v for k, v in facts.items() if k != "job"},
        description=f"{stage}: {spec.method.value} of {spec.model} by job {record.name} on {spec.platform.value}",
        image=image,
        settings=settings,
    )


def _inference_image(region: str) -> str | None:
    try:
        return inference_image_uri(region)
    except ConfigError:
        return None
