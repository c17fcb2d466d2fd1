"""What every job backend is and says: the four verbs (:class:`JobBackend`), the state it reports
(:class:`JobState`), the part every boto3-client backend shares (:class:`ClientBackend`) and how AWS answers a
concurrent creator.

The backends themselves live in modules that import this one (:mod:`novaflow.jobs.backends` for SageMaker training
jobs on instances or serverless and Bedrock customization); submit and poll import only this module and
:func:`novaflow.jobs.backends.get_backend`, so a platform's module never imports the code that picks it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from novaflow.aws import error_message, is_not_found, wrap_client_error
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


class ClientBackend(ABC):
    """A backend over one boto3 client (``_client``, set by the subclass): what every AWS job API shares is here
    once - a job AWS answers "not found" for does not exist (``describe`` is None), and a refused stop is one
    line naming the job - and a platform says only how to read, build and stop its job."""

    platform: Platform
    create_operation: str
    stopping: str
    """How a refused stop names the job: ``"<stopping> <name>"``."""
    _client: BaseClient

    @property
    def client(self) -> BaseClient:
        return self._client

    def describe(self, name: str) -> JobState | None:
        try:
            raw = self._describe(name)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        return None if raw is None else self._state(name, raw)

    def stop(self, name: str) -> None:
        try:
            self._stop(name)
        except ClientError as exc:
            raise wrap_client_error(exc, f"{self.stopping} {name}") from exc

    @abstractmethod
    def _describe(self, name: str) -> dict[str, Any] | None:
        """The Describe*/Get* answer (None: no such job, found without asking for it)."""

    @abstractmethod
    def _state(self, name: str, raw: dict[str, Any]) -> JobState: ...

    @abstractmethod
    def _stop(self, name: str) -> None: ...


def is_already_exists(exc: BaseException) -> bool:
    """AWS's answer to a concurrent creator: SageMaker says ValidationException "... already exists"."""
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    text = error_message(exc).lower()
    return code in {"ResourceInUse", "ResourceInUseException", "ConflictException"} or (
        code == "ValidationException" and ("already exists" in text or "must be unique" in text)
    )
