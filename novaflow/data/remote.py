"""Submit a sharded `data prepare` (:mod:`novaflow.data.sharded`) as two SageMaker Processing jobs and fetch the result.

The input is cut into one part per instance here (:func:`novaflow.data.sharded.split_input`: the chunks a local run
reads) and the parts and ``spec.json`` go under ``<bucket>/<prefix>/prepare/<run>/``; the first job reads the parts
with the ``ShardedByS3Key`` distribution (each instance downloads its own part only) and writes one shard file per
instance under ``shards/``, the second the prepared directory under ``prepared/``, which is downloaded to
``out_dir`` and checked against its manifest. Job names carry the run id, so a job is never
submitted twice for one run; a failed job stops the run with its ``FailureReason``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from novaflow.aws import get_client, split_s3_uri, wrap_client_error
from novaflow.backoff import Backoff, PollTimeout, poll_until
from novaflow.data.filters import CurationConfig
from novaflow.data.io import upload_file_verified
from novaflow.data.prepare import PreparedDataset, load_prepared
from novaflow.data.sharded import CONTAINER, SPEC_FILE, ShardSpec, job_name, new_run_id, split_input
from novaflow.data.source import DatasetSource
from novaflow.errors import DataError
from novaflow.settings import NovaflowSettings
from novaflow.storage import local_copy

INSTANCE_TYPE = "ml.m5.2xlarge"
"""8 vCPUs and 32 GB: a shard of a few million rows, a process per vCPU; `--instance-type` picks another."""
VOLUME_GB = 50
MAX_RUNTIME = 24 * 3600
WAIT = Backoff(initial=2.0, factor=1.5, maximum=30.0, deadline=MAX_RUNTIME)


def prepare_on_sagemaker(
    source: DatasetSource,
    data_format: str,
    model: str,
    out_dir: str | Path,
    *,
    image_uri: str,
    instances: int = 2,
    instance_type: str = INSTANCE_TYPE,
    strict: bool = False,
    platform: str | None = None,
    max_length: int | None = 8192,
    curation: CurationConfig | None = None,
    workers: int | None = None,
    settings: NovaflowSettings,
    wait: Backoff = WAIT,
) -> PreparedDataset:
    """Prepare ``source`` with ``instances`` Processing instances and download the result to ``out_dir``.

    ``workers``: processes per instance (None: a process per core where a local run of the instance's share would
    use one - every input from 16 MB per instance with the filters)."""
    settings.require("bucket")
    settings.require("role_arn")
    if instances < 1:
        raise DataError(f"--instances {instances}: at least one instance")
    run = new_run_id()
    base = settings.s3_uri("prepare", run)
    spec = ShardSpec(
        source=source,
        data_format=data_format,
        model=model,
        strict=strict,
        platform=platform,
        max_length=max_length,
        curation=curation or CurationConfig(),
        workers=workers,
    )
    input_uri = _stage_parts(source, instances, f"{base}/input", settings)
    spec_uri = f"{base}/spec/{SPEC_FILE}"
    _put(spec_uri, spec.model_dump_json().encode(), settings)
    sagemaker = get_client("sagemaker", settings)
    shard = _submit(
        sagemaker,
        job_name("shard", run),
        image_uri,
        "shard",
        [_input("input", input_uri, "input", "ShardedByS3Key"), _input("spec", spec_uri, "spec")],
        f"{base}/shards",
        instances,
        instance_type,
        settings,
    )
    _wait(sagemaker, shard, wait)
    merge = _submit(
        sagemaker,
        job_name("merge", run),
        image_uri,
        "merge",
        [_input("shards", f"{base}/shards", "input"), _input("spec", spec_uri, "spec")],
        f"{base}/prepared",
        1,
        instance_type,
        settings,
    )
    _wait(sagemaker, merge, wait)
    out = Path(out_dir)
    _download(f"{base}/prepared", out, settings)
    return load_prepared(out)


def _stage_parts(source: DatasetSource, parts: int, prefix: str, settings: NovaflowSettings) -> str:
    """Cut the input into ``parts`` part files and upload them under ``prefix`` (one S3 object per instance)."""
    if not source.path.startswith("s3://") and not Path(source.path).is_file():
        raise DataError(f"{source.path}: no such file")
    with (
        local_copy(source.path, settings=settings) as path,
        tempfile.TemporaryDirectory(prefix="novaflow-parts-") as tmp,
    ):
        for part in split_input(source, path, parts, Path(tmp)):
            upload_file_verified(part, f"{prefix}/{part.name}", settings)
    return prefix


def _put(uri: str, body: bytes, settings: NovaflowSettings) -> None:
    bucket, key = split_s3_uri(uri)
    get_client("s3", settings).put_object(Bucket=bucket, Key=key, Body=body)


def _input(name: str, uri: str, local: str, distribution: str = "FullyReplicated") -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": f"{CONTAINER}/{local}",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": distribution,
            "S3CompressionType": "None",  # the API's default, spelled out as sagemaker v3 sends it
        },
    }


def _submit(
    sagemaker: Any,
    name: str,
    image_uri: str,
    step: str,
    inputs: list[dict[str, Any]],
    output_uri: str,
    instances: int,
    instance_type: str,
    settings: NovaflowSettings,
) -> str:
    request = {
        "ProcessingJobName": name,
        "RoleArn": settings.role_arn,
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": ["python", "-m", "novaflow.data.sharded"],
            "ContainerArguments": [step, "--spec", f"{CONTAINER}/spec/{SPEC_FILE}"],
        },
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "output",
                    "S3Output": {"S3Uri": output_uri, "LocalPath": f"{CONTAINER}/output", "S3UploadMode": "EndOfJob"},
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": instances, "InstanceType": instance_type, "VolumeSizeInGB": VOLUME_GB}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME},
        "Environment": {"PYTHONHASHSEED": "0"},  # every instance counts repeated prompts with the same hash
    }
    try:
        sagemaker.create_processing_job(**request)
    except Exception as exc:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            raise wrap_client_error(exc, f"processing job {name}") from None
        raise
    return name


def _wait(sagemaker: Any, name: str, wait: Backoff) -> None:
    def fetch() -> dict[str, Any]:
        return dict(sagemaker.describe_processing_job(ProcessingJobName=name))

    try:
        polled = poll_until(
            fetch, lambda d: d["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"), backoff=wait
        )
    except PollTimeout:
        raise DataError(f"processing job {name}: not finished after {wait.deadline:.0f} s; it keeps running") from None
    status = polled.value["ProcessingJobStatus"]
    if status != "Completed":
        reason = polled.value.get("FailureReason") or polled.value.get("ExitMessage") or "no reason given"
        raise DataError(f"processing job {name} {status.lower()}: {reason}")


def _download(prefix_uri: str, out: Path, settings: NovaflowSettings) -> None:
    bucket, prefix = split_s3_uri(prefix_uri.rstrip("/") + "/")
    s3 = get_client("s3", settings)
    out.mkdir(parents=True, exist_ok=True)
    found = False
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            if not relative:
                continue
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            found = True
    if not found:
        raise DataError(f"{prefix_uri}: the merge job wrote nothing")
