"""Find what a job produced: the trained checkpoint (manifest.json, three layouts) and evaluation output.

AWS writes ``manifest.json`` in different places per platform and documents the evaluation tree inconsistently,
so both are found by trying each known layout and saying which ones were tried.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, split_s3_uri, wrap_client_error
from novaflow.errors import EvaluationError, JobError
from novaflow.jobs.records import JobRecord
from novaflow.registry.packages import describe_version
from novaflow.settings import NovaflowSettings

CHECKPOINT_KEYS = ("checkpoint_s3_bucket", "checkpoint_s3_path")
STEP_WISE_METRICS = "step_wise_training_metrics.csv"


def manifest_locations(output_uri: str, job_name: str) -> list[tuple[str, str]]:
    """(layout, URI) in the order they are tried: SMHP, SMTJ Serverless, SMTJ (inside output.tar.gz)."""
    base = output_uri.rstrip("/") + "/" + job_name
    return [
        ("smhp", f"{base}/manifest.json"),
        ("serverless", f"{base}/output/output/manifest.json"),
        ("smtj", f"{base}/output/output.tar.gz"),
    ]


def _get(s3: Any, uri: str) -> bytes | None:
    bucket, key = split_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise wrap_client_error(exc, f"Reading {uri}") from exc


def member_of_tar(blob: bytes, uri: str, file_name: str) -> bytes | None:
    """The bytes of the first file called ``file_name`` (at any depth) in a tar.gz, None when absent."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.rsplit("/", 1)[-1] == file_name:
                    handle = tar.extractfile(member)
                    return handle.read() if handle else None
    except (tarfile.TarError, OSError) as exc:
        raise JobError(f"{uri} is not a readable tar.gz archive: {exc}") from exc
    return None


def manifest_from_tar(blob: bytes, uri: str) -> dict[str, Any] | None:
    body = member_of_tar(blob, uri, "manifest.json")
    return None if body is None else json.loads(body)


def training_metrics_csv(output_uri: str, job_name: str, settings: NovaflowSettings) -> str | None:
    """``step_wise_training_metrics.csv`` of a finished job, if any: beside ``manifest.json`` (HyperPod) or inside
    ``output.tar.gz`` (SMTJ)."""
    s3 = get_client("s3", settings)
    beside = _get(s3, f"{output_uri.rstrip('/')}/{job_name}/{STEP_WISE_METRICS}")
    if beside is not None:
        return beside.decode("utf-8", errors="replace")
    uri = manifest_locations(output_uri, job_name)[-1][1]
    blob = _get(s3, uri)
    if blob is None:
        return None
    body = member_of_tar(blob, uri, STEP_WISE_METRICS)
    return None if body is None else body.decode("utf-8", errors="replace")


def checkpoint_from_manifest(manifest: dict[str, Any], where: str) -> str:
    for key in CHECKPOINT_KEYS:
        value = manifest.get(key)
        if isinstance(value, str) and value.startswith("s3://"):
            return value
    raise JobError(
        f"{where} has no checkpoint: expected key checkpoint_s3_bucket (or checkpoint_s3_path) "
        f"with an s3:// URI, found keys {sorted(manifest)}."
    )


def resolve_checkpoint(output_uri: str, job_name: str, settings: NovaflowSettings) -> str:
    """The escrow checkpoint URI to evaluate, deploy or continue training from."""
    s3 = get_client("s3", settings)
    tried = []
    for layout, uri in manifest_locations(output_uri, job_name):
        tried.append(uri)
        blob = _get(s3, uri)
        if blob is None:
            continue
        if layout == "smtj":
            manifest = manifest_from_tar(blob, uri)
            if manifest is None:
                raise JobError(
                    f"{uri} contains no manifest.json; the job may have failed before saving.", job_name=job_name
                )
            return checkpoint_from_manifest(manifest, f"manifest.json in {uri}")
        try:
            manifest = json.loads(blob)
        except ValueError as exc:
            raise JobError(f"{uri} is not valid JSON: {exc}", job_name=job_name) from exc
        return checkpoint_from_manifest(manifest, uri)
    listed = "\n".join(f"  - {u}" for u in tried)
    raise JobError(
        f"No manifest.json for job {job_name}; looked at:\n{listed}\nIs the job Completed and the output path right?",
        job_name=job_name,
    )


def checkpoint_of(record: JobRecord, settings: NovaflowSettings) -> str:
    """A finished job's checkpoint: from the model package version it registered (serverless), else from its
    ``manifest.json``."""
    if record.output_model_package_arn:
        uri = describe_version(record.output_model_package_arn, settings).checkpoint_uri
        if uri:
            return uri
        raise JobError(
            f"Model package {record.output_model_package_arn} of job {record.name} has no model data.",
            job_name=record.name,
        )
    if not record.output_uri:
        raise JobError(
            f"Job record {record.name} has no output_uri: load the record saved at submit time.", job_name=record.name
        )
    return resolve_checkpoint(record.output_uri, record.name, settings)


def locate_eval_output(output_uri: str, job_name: str, settings: NovaflowSettings) -> str:
    """The evaluation archive (``output.tar.gz``) or, for uncompressed layouts, the prefix holding the results."""
    s3 = get_client("s3", settings)
    base = output_uri.rstrip("/") + "/" + job_name
    archive = f"{base}/output/output.tar.gz"
    bucket, key = split_s3_uri(archive)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return archive
    except ClientError as exc:
        if not is_not_found(exc):
            raise wrap_client_error(exc, f"Checking {archive}") from exc
    tried = [archive]
    for prefix in (f"{base}/output/output/", f"{base}/eval-result/", f"{base}/"):
        tried.append(prefix)
        bucket, key = split_s3_uri(prefix)
        page = s3.list_objects_v2(Bucket=bucket, Prefix=key)
        if any(
            o["Key"].rsplit("/", 1)[-1].startswith("results_") and o["Key"].endswith(".json")
            for o in page.get("Contents", [])
        ):
            return prefix
    listed = "\n".join(f"  - {u}" for u in tried)
    raise EvaluationError(f"No evaluation output for job {job_name}; looked at:\n{listed}")
