"""Job records and statuses: what novaflow remembers about a submitted job, as JSON that outlives the process.

The status enum keeps Stopping/Stopped apart from Failed (the Forge SDK folds them together, so a job a user
stopped on purpose looks like a crash and a retry policy may pay for it again).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

from novaflow.catalog import Platform
from novaflow.errors import JobError


class JobStatus(str, Enum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def terminal(self) -> bool:
        return self in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED}


_RAW_STATUS = {
    "inprogress": JobStatus.IN_PROGRESS,
    "in_progress": JobStatus.IN_PROGRESS,
    "running": JobStatus.IN_PROGRESS,
    "restarting": JobStatus.IN_PROGRESS,
    "created": JobStatus.IN_PROGRESS,
    "starting": JobStatus.IN_PROGRESS,
    "executing": JobStatus.IN_PROGRESS,
    "pending": JobStatus.PENDING,
    "stopping": JobStatus.STOPPING,
    "completed": JobStatus.COMPLETED,
    "succeeded": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "stopped": JobStatus.STOPPED,
}


def map_status(raw: str) -> JobStatus:
    """Raw SageMaker / Bedrock / HyperPod status -> :class:`JobStatus`; unknown values are an error, not Failed."""
    status = _RAW_STATUS.get(raw.strip().lower())
    if status is None:
        raise JobError(
            f"Unknown job status {raw!r} reported by AWS: novaflow does not know how to treat it; please report it.",
            status=raw,
        )
    return status


class JobRecord(BaseModel):
    """One submitted job; saved as JSON next to the flow's outputs and loaded to resume watching it."""

    platform: Platform
    name: str
    arn: str | None = None
    spec_hash: str
    method: str
    model: str
    data: dict[str, str] = Field(default_factory=dict)
    output_uri: str | None = None
    recipe_uri: str | None = None
    started: datetime | None = None
    status: JobStatus = JobStatus.PENDING
    failure_reason: str | None = None
    attached: bool = Field(False, description="True when submit found the job already there and did not create it.")
    output_model_arn: str | None = None
    output_model_package_arn: str | None = Field(
        None, description="The model package version holding the trained model (serverless jobs register one)."
    )
    billable_tokens: int | None = Field(None, description="Tokens a serverless job was billed for.")
    cluster: str | None = Field(None, description="The HyperPod cluster an SMHP job runs on.")
    namespace: str | None = Field(None, description="The Kubernetes namespace of an SMHP job.")

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> JobRecord:
        source = Path(path)
        try:
            return cls.model_validate_json(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise JobError(f"Job record {source} does not exist.") from None
        except ValueError as exc:
            raise JobError(f"Job record {source} is not a valid novaflow job record: {exc}") from None
