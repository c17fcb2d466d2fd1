"""What every job backend is and says: the four verbs (:class:`JobBackend`), the state it reports
(:class:`JobState`) and how AWS answers a concurrent creator.

The backends themselves live in modules that import this one (:mod:`novaflow.jobs.backends` for SageMaker training
jobs on instances or serverless and Bedrock customization); submit and poll import only this module and
:func:`novaflow.jobs.backends.get_backend`, so a platform's module never imports the code that picks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from novaflow.aws import error_message
from novaflow.catalog import Platform
from novaflow.jobs.records import JobStatus


@dataclass
class JobState:
    """What a platform says about a job right now."""

    name: str
    status: JobStatus
    raw_status: str
    failure_reason: str | None = None
    secondary_status: str | None = None
    arn: str | None = None
    created: datetime | None = None
    output_model_arn: str | None = None
    output_uri: str | None = None
    output_model_package_arn: str | None = None
    """Serverless: the model package version the job registered its model as."""
    billable_tokens: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class JobBackend(Protocol):
    platform: Platform
    create_operation: str

    @property
    def client(self) -> BaseClient: ...

    def describe(self, name: str) -> JobState | None:
        """The job's state, or None when no job has that name."""

    def create(self, request: dict[str, Any]) -> str | None:
        """Create the job; return its ARN. Raise ``ClientError`` unchanged (submit interprets it)."""

    def stop(self, name: str) -> None: ...


def is_already_exists(exc: BaseException) -> bool:
    """AWS's answer to a concurrent creator: SageMaker says ValidationException "... already exists"."""
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    text = error_message(exc).lower()
    return code in {"ResourceInUse", "ResourceInUseException", "ConflictException"} or (
        code == "ValidationException" and ("already exists" in text or "must be unique" in text)
    )
