"""The embedded account's SageMaker training quotas: served by Service Quotas and enforced by CreateTrainingJob.

Stock moto's Service Quotas knows only VPC quotas and its SageMaker creates any number of jobs. Here the account
has the quotas a test or ``novaflow local up --quota TYPE=N`` gives it (none by default: an unset type is not
limited, as in moto), listed by ``ListServiceQuotas(ServiceCode=sagemaker)`` under SageMaker's quota names, and a
``CreateTrainingJob`` that would put more instances of a type to work than its quota is refused as SageMaker
refuses it: error code ``ResourceLimitExceeded``, the quota's name, its value, the instances in use and the
request (docs/quotas.md#the-refusal). Instances are in use while their job is InProgress or Stopping.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from moto.core.exceptions import JsonRESTError, ServiceException
from moto.sagemaker import models as sm_models
from moto.servicequotas import models as sq_models
from moto.servicequotas import responses as sq_responses

SERVICE_CODE = "sagemaker"
SERVICE_NAME = "Amazon SageMaker"
HOLDING_STATUSES = ("InProgress", "Stopping")

_QUOTAS: dict[str, int] = {}
_LOCK = threading.Lock()


class ResourceLimitExceeded(ServiceException):
    """SageMaker's refusal of a job over the account's quota (JSON protocol, HTTP 400)."""

    code = "ResourceLimitExceeded"


def quota_name(instance_type: str) -> str:
    return f"{instance_type} for training job usage"


def quota_code(instance_type: str) -> str:
    """A stable ``L-XXXXXXXX`` code per quota (AWS's codes are opaque; ours are a hash of the name)."""
    return "L-" + hashlib.sha1(quota_name(instance_type).encode(), usedforsecurity=False).hexdigest()[:8].upper()


def set_quotas(values: Mapping[str, int]) -> dict[str, int]:
    """Set (or with a negative value, remove) the quota of each instance type; returns all quotas now set."""
    with _LOCK:
        for instance_type, value in values.items():
            if not instance_type.startswith("ml."):
                raise ValueError(f"{instance_type!r} is not an ML instance type such as ml.p5.48xlarge")
            if int(value) < 0:
                _QUOTAS.pop(instance_type, None)
            else:
                _QUOTAS[instance_type] = int(value)
        return dict(_QUOTAS)


def quotas() -> dict[str, int]:
    with _LOCK:
        return dict(_QUOTAS)


def clear() -> None:
    with _LOCK:
        _QUOTAS.clear()


def _quota_object(instance_type: str, value: int, account: str, region: str) -> dict[str, Any]:
    code = quota_code(instance_type)
    return {
        "ServiceCode": SERVICE_CODE,
        "ServiceName": SERVICE_NAME,
        "QuotaArn": f"arn:aws:servicequotas:{region}:{account}:{SERVICE_CODE}/{code}",
        "QuotaCode": code,
        "QuotaName": quota_name(instance_type),
        "Value": float(value),
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


def in_use(backend: Any, instance_type: str) -> int:
    """Instances of ``instance_type`` held by the account's jobs right now."""
    used = 0
    for job in list(backend.training_jobs.values()):
        config = getattr(job, "resource_config", None) or {}
        if config.get("InstanceType") != instance_type:
            continue
        if job.training_job_status in HOLDING_STATUSES:
            used += int(config.get("InstanceCount") or 1)
    return used


def refusal_message(instance_type: str, limit: int, used: int, delta: int) -> str:
    """SageMaker's words for a job over quota (as its API answers them)."""
    return (
        f"The account-level service limit '{quota_name(instance_type)}' is {limit} Instances, with current "
        f"utilization of {used} Instances and a request delta of {delta} Instances. Please contact AWS support "
        "to request an increase for this limit."
    )


def check_training_quota(backend: Any, resource_config: Mapping[str, Any] | None) -> None:
    """Refuse a job whose instances do not fit in its type's quota next to the jobs already running."""
    if not resource_config:
        return  # serverless: the service sizes the job
    instance_type = str(resource_config.get("InstanceType") or "")
    delta = int(resource_config.get("InstanceCount") or 1)
    limit = quotas().get(instance_type)
    if limit is None:
        return
    used = in_use(backend, instance_type)
    if used + delta > limit:
        raise ResourceLimitExceeded(refusal_message(instance_type, limit, used, delta))


_LIMIT_LOCK = threading.Lock()
"""Check-then-create under one lock, so two concurrent requests cannot both fit in the last free instances."""


def _create_training_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_training_job(self: Any, training_job_name: str, *args: Any, **kwargs: Any) -> Any:
        with _LIMIT_LOCK:
            if training_job_name not in self.training_jobs:  # a duplicate name is refused as such, not for quota
                check_training_quota(self, kwargs.get("resource_config"))
            return original(self, training_job_name, *args, **kwargs)

    create_training_job._novaflow_quota = True  # type: ignore[attr-defined]
    return create_training_job


class NoSuchResource(JsonRESTError):
    def __init__(self, code: str) -> None:
        super().__init__(
            "NoSuchResourceException", f"The request failed because the specified quota {code} does not exist."
        )


def list_service_quotas(self: Any, service_code: str) -> list[dict[str, Any]]:
    if service_code != SERVICE_CODE:
        return list(sq_models.ServiceQuotasBackend.list_aws_default_service_quotas(self, service_code))
    return [_quota_object(t, v, self.account_id, self.region_name) for t, v in sorted(quotas().items())]


def get_service_quota(original: Callable[..., Any]) -> Callable[..., Any]:
    def get(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
        if service_code != SERVICE_CODE:
            return dict(original(self, service_code, quota_code))
        for quota in list_service_quotas(self, service_code):
            if quota["QuotaCode"] == quota_code:
                return quota
        raise NoSuchResource(quota_code)

    return get


def _response_list_service_quotas(self: Any) -> str:
    import json

    params = json.loads(self.body)
    found = self.backend.list_service_quotas(str(params.get("ServiceCode")))
    return json.dumps({"Quotas": found})


def install() -> None:
    """Install the quota patches into this process (idempotent)."""
    backend = sm_models.SageMakerModelBackend
    if not getattr(backend.create_training_job, "_novaflow_quota", False):
        backend.create_training_job = _create_training_job(backend.create_training_job)  # type: ignore[method-assign]
    sq = sq_models.ServiceQuotasBackend
    if not hasattr(sq, "list_service_quotas"):
        sq.list_service_quotas = list_service_quotas  # type: ignore[attr-defined]
        sq.get_service_quota = get_service_quota(sq.get_service_quota)  # type: ignore[method-assign]
        sq_responses.ServiceQuotasResponse.list_service_quotas = _response_list_service_quotas  # type: ignore[attr-defined]


def route(body: dict[str, Any]) -> dict[str, Any]:
    """``POST /moto-api/ext/quotas`` with ``{"quotas": {"ml.p5.48xlarge": 8}}``; answers every quota now set."""
    values = body.get("quotas")
    if not isinstance(values, dict):
        raise ValueError('expected {"quotas": {"<instance type>": <instances>}}')
    return {"quotas": set_quotas({str(k): int(v) for k, v in values.items()})}
