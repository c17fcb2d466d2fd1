"""Bedrock batch inference jobs (``CreateModelInvocationJob`` / Get / List / Stop), which moto 5.2.5 lacks.

Requests and responses have the botocore model's shapes; a job moves Submitted -> InProgress -> Completed
(``PartiallyCompleted`` when some records failed, ``Failed`` when all did) as the emulator
(:mod:`novaflow.local.emulator.bedrock_batch`) answers its records from the input in S3 and writes the outputs
where Bedrock writes them. A repeated create with the same ``clientRequestToken`` returns the first job, as AWS
does; a custom model is refused with a ``ValidationException`` (docs/batch-inference.md#on-bedrock).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from moto.bedrock import responses as br_responses
from moto.bedrock.exceptions import ResourceNotFoundException
from moto.core.exceptions import ServiceException

from novaflow.local.emulator.bedrock_batch import BatchJob, start

TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})


class ConflictException(ServiceException):
    code = "ConflictException"


class ValidationException(ServiceException):
    """moto's Bedrock ValidationException replaces the message with a generic one; AWS names the problem."""

    code = "ValidationException"


@dataclass
class InvocationJob:
    """One batch inference job; ``fields`` is what Get answers, updated by the emulator thread under the lock."""

    fields: dict[str, Any]
    stop_requested: threading.Event = field(default_factory=threading.Event)

    @property
    def arn(self) -> str:
        return str(self.fields["jobArn"])


_LOCK = threading.Lock()
_JOBS: dict[str, InvocationJob] = {}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _identifier(path: str, prefix: str, suffix: str = "") -> str:
    raw = path.split("?", 1)[0]
    raw = raw[raw.index(prefix) + len(prefix) :]
    if suffix and raw.endswith(suffix):
        raw = raw[: -len(suffix)]
    return unquote(unquote(raw))


def find(identifier: str) -> InvocationJob:
    with _LOCK:
        for job in _JOBS.values():
            if identifier in (job.arn, job.fields["jobName"]):
                return job
    raise ResourceNotFoundException(f"Model invocation job {identifier} not found")


def update(job: InvocationJob, **changes: Any) -> None:
    """Change what Get answers (the emulator's progress); a finished job does not change any more."""
    with _LOCK:
        if job.fields["status"] in TERMINAL and "status" in changes:
            return
        job.fields.update(changes, lastModifiedTime=_now())
        if changes.get("status") in TERMINAL:
            job.fields["endTime"] = job.fields["lastModifiedTime"]


def _custom(model_id: str) -> bool:
    return ":custom-model" in model_id or ":provisioned-model" in model_id or ":imported-model" in model_id


def create_model_invocation_job(self: Any) -> Any:
    params = json.loads(self.body or "{}")
    for key in ("jobName", "roleArn", "modelId", "inputDataConfig", "outputDataConfig"):
        if key not in params:
            raise ValidationException(
                f"1 validation error detected: Value null at '{key}' failed to satisfy constraint"
            )
    token = params.get("clientRequestToken")
    model_id = str(params["modelId"])
    with _LOCK:
        for job in _JOBS.values():
            if token and job.fields.get("clientRequestToken") == token:
                return 200, {"Content-Type": "application/json"}, json.dumps({"jobArn": job.arn})
            if job.fields["jobName"] == params["jobName"]:
                raise ConflictException(f"A model invocation job with the name {params['jobName']} already exists.")
    if _custom(model_id):
        raise ValidationException(f"Batch inference does not support the custom model {model_id}.")
    arn = f"arn:aws:bedrock:{self.region}:{self.current_account}:model-invocation-job/{uuid.uuid4().hex[:12]}"
    now = _now()
    job = InvocationJob(
        {
            "jobArn": arn,
            "jobName": params["jobName"],
            "modelId": model_id,
            "roleArn": params["roleArn"],
            "status": "Submitted",
            "submitTime": now,
            "lastModifiedTime": now,
            "inputDataConfig": params["inputDataConfig"],
            "outputDataConfig": params["outputDataConfig"],
            "timeoutDurationInHours": params.get("timeoutDurationInHours", 24),
            "modelInvocationType": params.get("modelInvocationType", "InvokeModel"),
            **({"clientRequestToken": token} if token else {}),
            **({"vpcConfig": params["vpcConfig"]} if params.get("vpcConfig") else {}),
        }
    )
    with _LOCK:
        _JOBS[arn] = job
    host = self.headers.get("Host") or self.headers.get("host") or ""
    start(BatchJob(dict(job.fields), lambda **changes: update(job, **changes), job.stop_requested), f"http://{host}")
    return 200, {"Content-Type": "application/json"}, json.dumps({"jobArn": arn})


def get_model_invocation_job(self: Any) -> str:
    job = find(_identifier(self.path, "/model-invocation-job/"))
    with _LOCK:
        return json.dumps(dict(job.fields))


def stop_model_invocation_job(self: Any) -> str:
    job = find(_identifier(self.path, "/model-invocation-job/", "/stop"))
    with _LOCK:
        status = job.fields["status"]
    if status in TERMINAL:
        raise ValidationException(f"The job {job.arn} is {status} and cannot be stopped.")
    job.stop_requested.set()
    update(job, status="Stopping")
    return json.dumps({})


def list_model_invocation_jobs(self: Any) -> str:
    params = self._get_params()
    prefix = f"arn:aws:bedrock:{self.region}:{self.current_account}:"
    with _LOCK:
        items = [dict(j.fields) for j in _JOBS.values() if j.arn.startswith(prefix)]
    if params.get("nameContains"):
        items = [i for i in items if params["nameContains"] in i["jobName"]]
    if params.get("statusEquals"):
        items = [i for i in items if i["status"] == params["statusEquals"]]
    items.sort(key=lambda i: (i["submitTime"], i["jobName"]), reverse=params.get("sortOrder") != "Ascending")
    start = int(params.get("nextToken") or 0)
    end = start + int(params.get("maxResults") or 1000)
    page: dict[str, Any] = {"invocationJobSummaries": items[start:end]}
    if end < len(items):
        page["nextToken"] = str(end)
    return json.dumps(page)


def install() -> None:
    resp = br_responses.BedrockResponse
    for func in (
        create_model_invocation_job,
        get_model_invocation_job,
        stop_model_invocation_job,
        list_model_invocation_jobs,
    ):
        setattr(resp, func.__name__, func)


def reset() -> None:
    with _LOCK:
        for job in _JOBS.values():
            job.stop_requested.set()
        _JOBS.clear()
