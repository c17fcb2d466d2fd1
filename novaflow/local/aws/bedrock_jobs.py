"""The bookkeeping Bedrock's job kinds share, written once: a table of jobs and the List* filters and pages.

Model customization jobs (:mod:`novaflow.local.aws.moto_bedrock`) and model invocation (batch inference) jobs
(:mod:`novaflow.local.aws.moto_invocation_jobs`) follow the same rules on AWS: a create repeated with the same
``clientRequestToken`` returns the first job, a new job under a name already taken is a ``ConflictException``, a job
is found by its ARN or its name (URL-encoded in the path), a finished job cannot be stopped, and the List* calls
filter, sort (newest first unless ``sortOrder`` is ``Ascending``) and page the same way. What differs per kind (the
fields, how the status moves) stays in the job objects, which only need the few members of :class:`BedrockJob`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import unquote

from moto.bedrock.exceptions import ResourceNotFoundException
from moto.core.exceptions import ServiceException


class ConflictException(ServiceException):
    code = "ConflictException"


class ValidationException(ServiceException):
    """moto's Bedrock ValidationException replaces the message with a generic one; AWS names the problem."""

    code = "ValidationException"


class BedrockJob(Protocol):
    """What the table needs of a job; the job kind decides its fields and how its status moves."""

    @property
    def arn(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def token(self) -> str | None: ...

    @property
    def status(self) -> str: ...

    def describe(self) -> dict[str, Any]:
        """What Get* answers."""
        ...

    def summary(self) -> dict[str, Any]:
        """The job's entry in List* (reading it does not move the status on)."""
        ...

    def stop(self) -> None:
        """Start stopping the job (it is not finished: the table checked)."""
        ...


J = TypeVar("J", bound=BedrockJob)


class JobTable(Generic[J]):
    """The jobs of one kind keyed by ARN, with one lock (re-entrant: a job's ``stop`` may update it under it)."""

    def __init__(self, label: str, conflict: str, terminal: frozenset[str], *, list_key: str, created_key: str) -> None:
        self.label = label
        self.conflict = conflict
        self.terminal = terminal
        self.list_key = list_key
        self.created_key = created_key
        self.lock = threading.RLock()
        self._jobs: dict[str, J] = {}

    def create(self, name: str, token: str | None, make: Callable[[], J]) -> J:
        """The job that ``token`` already created, or a new one from ``make`` (ConflictException if ``name`` is
        taken); ``make`` runs under the lock, so two equal requests cannot both create."""
        with self.lock:
            for job in self._jobs.values():
                if token and job.token == token:
                    return job
                if job.name == name:
                    raise ConflictException(self.conflict.format(name=name))
            job = make()
            self._jobs[job.arn] = job
            return job

    def find(self, identifier: str) -> J:
        """The job by ARN or name; ``identifier`` as it stands in the request path (URL-encoded, maybe twice)."""
        identifier = decode(identifier)
        with self.lock:
            for job in self._jobs.values():
                if identifier in (job.arn, job.name):
                    return job
        raise ResourceNotFoundException(f"{self.label} {identifier} not found")

    def describe(self, identifier: str) -> dict[str, Any]:
        job = self.find(identifier)
        with self.lock:
            return job.describe()

    def stop(self, identifier: str) -> None:
        """Stop a job still running; a finished one is refused with a ValidationException, as AWS does."""
        job = self.find(identifier)
        with self.lock:
            status = job.status
            if status in self.terminal:
                raise ValidationException(f"The job {job.arn} is {status} and cannot be stopped.")
            job.stop()

    def list_page(self, params: dict[str, Any], region: str, account: str) -> dict[str, Any]:
        """The List* answer for this account and region's jobs (see :func:`filter_page`; the creation-time
        bounds are ``<created_key>Before`` / ``<created_key>After``)."""
        prefix = f"arn:aws:bedrock:{region}:{account}:"
        with self.lock:
            items = [job.summary() for job in self._jobs.values() if job.arn.startswith(prefix)]
        before, after = f"{self.created_key}Before", f"{self.created_key}After"
        page, token = filter_page(
            params, items, name_key="jobName", created_key=self.created_key, before=before, after=after
        )
        return page_body(self.list_key, page, token)

    def arns(self, prefix: str) -> list[str]:
        with self.lock:
            return [a for a in self._jobs if a.startswith(prefix)]

    def jobs(self) -> Iterator[J]:
        with self.lock:
            return iter(list(self._jobs.values()))

    def clear(self) -> None:
        with self.lock:
            self._jobs.clear()


def decode(path_part: str) -> str:
    """An identifier from a request path: boto3 URL-encodes an ARN, and the server's routing may encode it again."""
    return unquote(unquote(path_part))


def now() -> str:
    return datetime.now(UTC).isoformat()


def filter_page(
    params: dict[str, Any], items: list[dict[str, Any]], *, name_key: str, created_key: str, before: str, after: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The List* filters, sort and pagination AWS applies (statusEquals, nameContains, modelArnEquals, the
    creation-time bounds, newest first unless sortOrder is Ascending, maxResults / nextToken)."""
    if params.get("statusEquals"):
        items = [i for i in items if i["status"] == params["statusEquals"]]
    if params.get("nameContains"):
        items = [i for i in items if params["nameContains"] in i[name_key]]
    if params.get("modelArnEquals"):
        items = [i for i in items if i["modelArn"] == decode(params["modelArnEquals"])]
    if params.get(before):
        items = [i for i in items if _when(i[created_key]) < _when(params[before])]
    if params.get(after):
        items = [i for i in items if _when(i[created_key]) > _when(params[after])]
    items.sort(key=lambda i: (_when(i[created_key]), i[name_key]), reverse=params.get("sortOrder") != "Ascending")
    start = int(params.get("nextToken") or 0)
    end = start + int(params.get("maxResults") or 1000)
    return items[start:end], (str(end) if end < len(items) else None)


def page_body(key: str, page: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    """A List* response: the page under ``key``, and ``nextToken`` only when there is more."""
    return {key: page, **({"nextToken": token} if token else {})}


def _when(value: str) -> datetime:
    stamp = datetime.fromisoformat(decode(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
