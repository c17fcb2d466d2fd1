"""Bedrock batch inference jobs (``CreateModelInvocationJob``) behind the same describe / create / stop as every
other platform, so submit-once and :func:`novaflow.jobs.poll.wait_for_job` work on them unchanged.

Bedrock looks an invocation job up by ARN only; the backend finds it by its (hash-derived) name through
``ListModelInvocationJobs(nameContains=...)``, so a re-run attaches to the job it already paid for.
"""

from __future__ import annotations

from typing import Any

from botocore.client import BaseClient

from novaflow.aws import get_client
from novaflow.catalog import Platform
from novaflow.errors import JobError
from novaflow.jobs.backend_base import ClientBackend, JobState
from novaflow.jobs.records import JobStatus
from novaflow.settings import NovaflowSettings

STATUSES: dict[str, JobStatus] = {
    "Submitted": JobStatus.PENDING,
    "Validating": JobStatus.PENDING,
    "Scheduled": JobStatus.PENDING,
    "InProgress": JobStatus.IN_PROGRESS,
    "Stopping": JobStatus.STOPPING,
    "Completed": JobStatus.COMPLETED,
    "PartiallyCompleted": JobStatus.COMPLETED,
    "Failed": JobStatus.FAILED,
    "Expired": JobStatus.FAILED,
    "Stopped": JobStatus.STOPPED,
}
"""A partially completed job ended and wrote its outputs: its failed records are read from them, row by row."""


def invocation_status(raw: str) -> JobStatus:
    status = STATUSES.get(raw)
    if status is None:
        raise JobError(f"Unknown Bedrock batch inference status {raw!r}; novaflow does not know how to treat it.")
    return status


class InvocationJobBackend(ClientBackend):
    """Bedrock batch inference jobs, found by name."""

    platform = Platform.BEDROCK
    create_operation = "CreateModelInvocationJob"
    stopping = "Stopping Bedrock batch inference job"

    def __init__(self, settings: NovaflowSettings | None = None, client: BaseClient | None = None) -> None:
        self._client = client or get_client("bedrock", settings)

    def _arn(self, name: str) -> str | None:
        if name.startswith("arn:"):
            return name
        token: str | None = None
        while True:
            page = self._client.list_model_invocation_jobs(nameContains=name, **({"nextToken": token} if token else {}))
            for job in page.get("invocationJobSummaries", []):
                if job.get("jobName") == name:
                    return str(job["jobArn"])
            token = page.get("nextToken")
            if not token:
                return None

    def _describe(self, name: str) -> dict[str, Any] | None:
        arn = self._arn(name)
        if arn is None:
            return None
        raw: dict[str, Any] = self._client.get_model_invocation_job(jobIdentifier=arn)
        return raw

    def _state(self, name: str, raw: dict[str, Any]) -> JobState:
        return JobState(
            name=str(raw.get("jobName") or name),
            status=invocation_status(raw["status"]),
            raw_status=raw["status"],
            failure_reason=raw.get("message") if raw["status"] in {"Failed", "Expired", "Stopped"} else None,
            arn=raw.get("jobArn"),
            created=raw.get("submitTime"),
            output_uri=(raw.get("outputDataConfig") or {}).get("s3OutputDataConfig", {}).get("s3Uri"),
            raw=raw,
        )

    def create(self, request: dict[str, Any]) -> str | None:
        return self._client.create_model_invocation_job(**request).get("jobArn")

    def _stop(self, name: str) -> None:
        arn = self._arn(name)
        if arn is None:
            raise JobError(f"No Bedrock batch inference job named {name} to stop.", job_name=name)
        self._client.stop_model_invocation_job(jobIdentifier=arn)
