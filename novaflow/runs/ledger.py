"""A per-run record in S3 of the training jobs a flow run submitted or attached to.

Cancellation and crash hooks may run in another process than the one that submitted (the Prefect runner), and a
re-run after a crash attaches to jobs that an earlier run created. Job tags cannot carry the run id (a tag would
change the spec hash and so the idempotent name), so each run keeps its own list under
``<prefix>/runs/<run-id>/jobs/<job-name>.json`` and the hooks stop what is listed there and still running.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from novaflow.aws import error_code, get_client, split_s3_uri
from novaflow.jobs.invocation_jobs import InvocationJobBackend
from novaflow.settings import NovaflowSettings

ACTIVE_STATUSES = frozenset({"InProgress"})
SAGEMAKER_PLATFORMS = frozenset({"SMTJ", "SERVERLESS"})
"""Platforms whose jobs are SageMaker training jobs (stopped with StopTrainingJob); serverless jobs are too."""


def _run_prefix(settings: NovaflowSettings, run_id: str) -> tuple[str, str]:
    bucket, key = split_s3_uri(settings.s3_uri("runs", run_id, "jobs"))
    return bucket, key + "/"


def register_job(
    run_id: str, job_name: str, *, platform: str = "SMTJ", stage: str = "", settings: NovaflowSettings
) -> None:
    """Remember that run ``run_id`` owns ``job_name`` (idempotent)."""
    bucket, prefix = _run_prefix(settings, run_id)
    body = {"job_name": job_name, "platform": platform, "stage": stage, "registered": datetime.now(UTC).isoformat()}
    get_client("s3", settings).put_object(
        Bucket=bucket, Key=f"{prefix}{job_name}.json", Body=json.dumps(body).encode(), ContentType="application/json"
    )


def jobs_of_run(run_id: str, settings: NovaflowSettings) -> list[dict[str, str]]:
    """The jobs run ``run_id`` registered, oldest first."""
    bucket, prefix = _run_prefix(settings, run_id)
    s3 = get_client("s3", settings)
    records: list[dict[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            records.append(json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    return sorted(records, key=lambda r: r.get("registered", ""))


BEDROCK_BATCH = "BEDROCK_BATCH"
"""The ledger's platform for a Bedrock batch inference job (``CreateModelInvocationJob``)."""


def _stop_invocation_job(name: str, settings: NovaflowSettings) -> list[str]:
    backend = InvocationJobBackend(settings)
    state = backend.describe(name)
    if state is None or state.status.terminal or state.raw_status == "Stopping":
        return []
    backend.stop(name)
    return [name]


def stop_jobs_of_run(run_id: str, settings: NovaflowSettings) -> list[str]:
    """Stop every SageMaker job (on instances or serverless) and Bedrock batch inference job of the run that is still
    running; returns the names.

    Jobs that already finished, or vanished, are left alone: the hook must be safe to run twice.
    """
    sagemaker = get_client("sagemaker", settings)
    stopped: list[str] = []
    for record in jobs_of_run(run_id, settings):
        if record.get("platform") == BEDROCK_BATCH:
            stopped += _stop_invocation_job(record["job_name"], settings)
            continue
        if record.get("platform", "SMTJ") not in SAGEMAKER_PLATFORMS:
            continue
        name = record["job_name"]
        try:
            status = sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
            if status in ACTIVE_STATUSES:
                sagemaker.stop_training_job(TrainingJobName=name)
                stopped.append(name)
        except Exception as exc:  # a job that is gone or already stopping is not an error here
            if error_code(exc) not in {"ValidationException", "ResourceNotFound"}:
                raise
    return stopped
