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
from typing import Any

from moto.bedrock import responses as br_responses

from novaflow.local.aws.bedrock_tables import BedrockTable, Listing, ValidationException, decode, now
from novaflow.local.emulator.bedrock_batch import BatchJob, start

TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})


@dataclass
class InvocationJob:
    """One batch inference job; ``fields`` is what Get answers, updated by the emulator thread under the lock."""

    fields: dict[str, Any]
    stop_requested: threading.Event = field(default_factory=threading.Event)

    @property
    def arn(self) -> str:
        return str(self.fields["jobArn"])

    @property
    def name(self) -> str:
        return str(self.fields["jobName"])

    @property
    def token(self) -> str | None:
        return self.fields.get("clientRequestToken")

    @property
    def status(self) -> str:
        return str(self.fields["status"])

    def describe(self) -> dict[str, Any]:
        return dict(self.fields)

    def summary(self) -> dict[str, Any]:
        return dict(self.fields)

    def stop(self) -> None:
        self.stop_requested.set()
        update(self, status="Stopping")


JOBS: BedrockTable[InvocationJob] = BedrockTable(
    "Model invocation job",
    "A model invocation job with the name {name} already exists.",
    Listing("invocationJobSummaries", "jobName", "submitTime", "submitTimeBefore", "submitTimeAfter"),
    TERMINAL,
)


def _identifier(path: str, prefix: str, suffix: str = "") -> str:
    raw = path.split("?", 1)[0]
    raw = raw[raw.index(prefix) + len(prefix) :]
    if suffix and raw.endswith(suffix):
        raw = raw[: -len(suffix)]
    return decode(raw)


def update(job: InvocationJob, **changes: Any) -> None:
    """Change what Get answers (the emulator's progress); a finished job does not change any more."""
    with JOBS.lock:
        if job.fields["status"] in TERMINAL and "status" in changes:
            return
        job.fields.update(changes, lastModifiedTime=now())
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

    def make() -> InvocationJob:
        if _custom(model_id):
            raise ValidationException(f"Batch inference does not support the custom model {model_id}.")
        arn = f"arn:aws:bedrock:{self.region}:{self.current_account}:model-invocation-job/{uuid.uuid4().hex[:12]}"
        stamp = now()
        job = InvocationJob(
            {
                "jobArn": arn,
                "jobName": params["jobName"],
                "modelId": model_id,
                "roleArn": params["roleArn"],
                "status": "Submitted",
                "submitTime": stamp,
                "lastModifiedTime": stamp,
                "inputDataConfig": params["inputDataConfig"],
                "outputDataConfig": params["outputDataConfig"],
                "timeoutDurationInHours": params.get("timeoutDurationInHours", 24),
                "modelInvocationType": params.get("modelInvocationType", "InvokeModel"),
                **({"clientRequestToken": token} if token else {}),
                **({"vpcConfig": params["vpcConfig"]} if params.get("vpcConfig") else {}),
            }
        )
        return job

    job, created = JOBS.create(params["jobName"], token, make)
    if created:  # a new job, not the one a repeated token names
        host = self.headers.get("Host") or self.headers.get("host") or ""
        start(
            BatchJob(dict(job.fields), lambda **changes: update(job, **changes), job.stop_requested), f"http://{host}"
        )
    return 200, {"Content-Type": "application/json"}, json.dumps({"jobArn": job.arn})


def get_model_invocation_job(self: Any) -> str:
    return json.dumps(JOBS.describe(_identifier(self.path, "/model-invocation-job/")))


def stop_model_invocation_job(self: Any) -> str:
    JOBS.stop(_identifier(self.path, "/model-invocation-job/", "/stop"))
    return json.dumps({})


def list_model_invocation_jobs(self: Any) -> str:
    return json.dumps(JOBS.list_page(self._get_params(), self.region, self.current_account))


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
    with JOBS.lock:
        for job in JOBS.items():
            job.stop_requested.set()
        JOBS.clear()
