"""Close moto 5.2.5's Bedrock gaps: ARN lookups, job and model status, imports, deployments, Converse.

Stock moto leaves customization jobs InProgress forever, cannot find a job by ARN (the ARN arrives URL-encoded),
reports an ``outputModelArn`` that is not the custom model's ARN, and has no custom-model import, on-demand
deployment, provisioned throughput or Converse. novaflow's Bedrock deployer polls each of these, so they are
added with AWS's request and response shapes and state-managed statuses (models ``bedrock::*``, default
``immediate``). Deployments and provisioned throughputs are listable and carry the tags given at creation
(teardown proves ownership by them), through moto's own tagger: its ARN check is widened to include them.
Converse answers from the emulated model behind the deployment (:mod:`novaflow.local.serving`).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from moto.bedrock import models as br_models
from moto.bedrock import responses as br_responses
from moto.bedrock.exceptions import ResourceNotFoundException
from moto.bedrockruntime import responses as rt_responses
from moto.core.exceptions import ServiceException
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState

JOB_MODEL = "bedrock::model_customization_job"
CUSTOM_MODEL = "bedrock::custom_model"
DEPLOYMENT_MODEL = "bedrock::custom_model_deployment"
THROUGHPUT_MODEL = "bedrock::provisioned_model_throughput"

_StockJob = br_models.ModelCustomizationJob
_StockListArns = br_models.BedrockBackend._list_arns
_StockCustomModel = br_models.CustomModel
_LOCK = threading.Lock()
_DEPLOYMENTS: dict[str, dict[str, Any]] = {}
_THROUGHPUTS: dict[str, dict[str, Any]] = {}
_STATES: dict[str, ManagedState] = {}


class ConflictException(ServiceException):
    code = "ConflictException"


def _iso() -> str:
    return datetime.now(UTC).isoformat()


def _arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:bedrock:{region}:{account}:{kind}/{name}"


class ManagedCustomizationJob(_StockJob):
    """A customization job whose status progresses and whose outputModelArn is the custom model's ARN."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output_model_name = self.custom_model_name
        self.output_model_arn = _arn(self.region_name, self.account_id, "custom-model", self.custom_model_name)
        self._state = ManagedState(JOB_MODEL, [("InProgress", "Completed")])
        self.failure_message = None  # type: ignore[assignment]  # AWS omits it for a job that did not fail

    @property
    def status(self) -> str:
        return self._state.status or "InProgress"

    @status.setter
    def status(self, value: str) -> None:
        if hasattr(self, "_state"):
            self._state.status = value

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        self._state.advance()
        return out


ManagedCustomizationJob.__module__ = "moto.bedrock.models"


class ManagedCustomModel(_StockCustomModel):
    """A custom model with ``modelStatus`` (Creating -> Active) and, when imported, its ``modelSourceConfig``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_source_config: dict[str, Any] | None = None
        self._state = ManagedState(CUSTOM_MODEL, [("Creating", "Active")])

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["modelStatus"] = self._state.status
        self._state.advance()
        if self.model_source_config:
            out["modelSourceConfig"] = self.model_source_config
        return out

    def checkpoint_uri(self) -> str | None:
        source = (self.model_source_config or {}).get("s3DataSource") or {}
        return source.get("s3Uri")


ManagedCustomModel.__module__ = "moto.bedrock.models"


def _identifier(path_part: str) -> str:
    return unquote(unquote(path_part))


def _find_job(backend: Any, identifier: str) -> Any:
    identifier = _identifier(identifier)
    for job in backend.model_customization_jobs.values():
        if identifier in (job.job_name, job.job_arn):
            return job
    raise ResourceNotFoundException(f"Model customization job {identifier} not found")


def _find_model(backend: Any, identifier: str) -> Any:
    identifier = _identifier(identifier)
    for model in backend.custom_models.values():
        if identifier in (model.model_name, model.model_arn):
            return model
    raise ResourceNotFoundException(f"Custom model {identifier} not found")


def _status(key: str, model_name: str, transitions: list[tuple[str | None, str]]) -> ManagedState:
    with _LOCK:
        state = _STATES.get(key)
        if state is None:
            state = _STATES[key] = ManagedState(model_name, transitions)
    return state


# -- control plane handlers (BedrockResponse methods) ------------------------------------------------------
def get_model_customization_job(self: Any) -> str:
    job = _find_job(self.bedrock_backend, self.path.split("/")[-1])
    return json.dumps(job.to_dict())


def stop_model_customization_job(self: Any) -> str:
    job = _find_job(self.bedrock_backend, self.path.split("/")[-2])
    job.status = "Stopped"
    return json.dumps({})


def get_custom_model(self: Any) -> str:
    return json.dumps(_find_model(self.bedrock_backend, self.path.split("/")[-1]).to_dict())


def delete_custom_model(self: Any) -> str:
    model = _find_model(self.bedrock_backend, self.path.split("/")[-1])
    del self.bedrock_backend.custom_models[model.model_name]
    self.bedrock_backend.tagger.delete_all_tags_for_resource(model.model_arn)
    return json.dumps({})


def create_custom_model(self: Any) -> Any:
    params = json.loads(self.body or "{}")
    backend = self.bedrock_backend
    name = params["modelName"]
    if name in backend.custom_models:
        raise ConflictException(f"Custom model {name} already exists")
    model = ManagedCustomModel(
        name,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        self.region,
        self.current_account,
        "IMPORTED",
        params.get("modelKmsKeyArn"),
        None,
        None,
    )
    model.model_source_config = params.get("modelSourceConfig") or params.get("customModelDataSource")
    backend.custom_models[name] = model
    if params.get("modelTags"):
        backend.tag_resource(model.model_arn, params["modelTags"])
    return 202, {"Content-Type": "application/json"}, json.dumps({"modelArn": model.model_arn})


def create_custom_model_deployment(self: Any) -> Any:
    params = json.loads(self.body or "{}")
    name = params["modelDeploymentName"]
    _find_model(self.bedrock_backend, params["modelArn"])
    with _LOCK:
        if any(d["modelDeploymentName"] == name for d in _DEPLOYMENTS.values()):
            raise ConflictException(f"Custom model deployment {name} already exists")
        arn = _arn(self.region, self.current_account, "custom-model-deployment", uuid.uuid4().hex[:12])
        _DEPLOYMENTS[arn] = {
            "customModelDeploymentArn": arn,
            "modelDeploymentName": name,
            "modelArn": params["modelArn"],
            "createdAt": _iso(),
            "lastUpdatedAt": _iso(),
            "description": params.get("description"),
        }
    _status(arn, DEPLOYMENT_MODEL, [("Creating", "Active")])
    _tag_new(self.bedrock_backend, arn, params.get("tags"))
    return 202, {"Content-Type": "application/json"}, json.dumps({"customModelDeploymentArn": arn})


def _find_deployment(identifier: str) -> dict[str, Any]:
    identifier = _identifier(identifier)
    with _LOCK:
        for arn, item in _DEPLOYMENTS.items():
            if identifier in (arn, item["modelDeploymentName"]):
                return item
    raise ResourceNotFoundException(f"Custom model deployment {identifier} not found")


def get_custom_model_deployment(self: Any) -> str:
    item = _find_deployment(self.path.split("/")[-1])
    state = _status(item["customModelDeploymentArn"], DEPLOYMENT_MODEL, [("Creating", "Active")])
    out = {k: v for k, v in {**item, "status": state.status}.items() if v is not None}
    state.advance()
    return json.dumps(out)


def delete_custom_model_deployment(self: Any) -> str:
    item = _find_deployment(self.path.split("/")[-1])
    with _LOCK:
        _DEPLOYMENTS.pop(item["customModelDeploymentArn"], None)
    self.bedrock_backend.tagger.delete_all_tags_for_resource(item["customModelDeploymentArn"])
    return json.dumps({})


def list_custom_model_deployments(self: Any) -> str:
    with _LOCK:
        items = [
            {
                "customModelDeploymentArn": d["customModelDeploymentArn"],
                "customModelDeploymentName": d["modelDeploymentName"],
                "modelArn": d["modelArn"],
                "createdAt": d["createdAt"],
                "lastUpdatedAt": d["lastUpdatedAt"],
            }
            for d in _DEPLOYMENTS.values()
            if _in_backend(self, d["customModelDeploymentArn"])
        ]
    for item in items:
        item["status"] = _status(item["customModelDeploymentArn"], DEPLOYMENT_MODEL, [("Creating", "Active")]).status
    page, token = _filter_page(
        self._get_params(),
        items,
        name_key="customModelDeploymentName",
        created_key="createdAt",
        before="createdBefore",
        after="createdAfter",
    )
    return json.dumps({"modelDeploymentSummaries": page, **({"nextToken": token} if token else {})})


def list_provisioned_model_throughputs(self: Any) -> str:
    keys = (
        "provisionedModelArn",
        "provisionedModelName",
        "modelArn",
        "desiredModelArn",
        "foundationModelArn",
        "modelUnits",
        "desiredModelUnits",
        "commitmentDuration",
        "creationTime",
        "lastModifiedTime",
    )
    with _LOCK:
        items = [
            {k: t[k] for k in keys if t.get(k) is not None}
            for t in _THROUGHPUTS.values()
            if _in_backend(self, t["provisionedModelArn"])
        ]
    for item in items:
        item["status"] = _status(item["provisionedModelArn"], THROUGHPUT_MODEL, [("Creating", "InService")]).status
    page, token = _filter_page(
        self._get_params(),
        items,
        name_key="provisionedModelName",
        created_key="creationTime",
        before="creationTimeBefore",
        after="creationTimeAfter",
    )
    return json.dumps({"provisionedModelSummaries": page, **({"nextToken": token} if token else {})})


def _in_backend(response: Any, arn: str) -> bool:
    return arn.startswith(f"arn:aws:bedrock:{response.region}:{response.current_account}:")


def _filter_page(
    params: dict[str, Any], items: list[dict[str, Any]], *, name_key: str, created_key: str, before: str, after: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The List* filters, sort and pagination AWS applies (statusEquals, nameContains, modelArnEquals, the
    creation-time bounds, sortBy CreationTime, maxResults / nextToken)."""
    if params.get("statusEquals"):
        items = [i for i in items if i["status"] == params["statusEquals"]]
    if params.get("nameContains"):
        items = [i for i in items if params["nameContains"] in i[name_key]]
    if params.get("modelArnEquals"):
        items = [i for i in items if i["modelArn"] == _identifier(params["modelArnEquals"])]
    if params.get(before):
        items = [i for i in items if _when(i[created_key]) < _when(params[before])]
    if params.get(after):
        items = [i for i in items if _when(i[created_key]) > _when(params[after])]
    items.sort(key=lambda i: (_when(i[created_key]), i[name_key]), reverse=params.get("sortOrder") != "Ascending")
    start = int(params.get("nextToken") or 0)
    size = int(params.get("maxResults") or 1000)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def _when(value: str) -> datetime:
    stamp = datetime.fromisoformat(_identifier(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _tag_new(backend: Any, arn: str, tags: list[dict[str, str]] | None) -> None:
    if tags:
        backend.tag_resource(arn, tags)


def _list_arns(self: Any) -> list[str]:
    """moto's taggable ARNs plus this account/region's deployments and provisioned throughputs."""
    prefix = f"arn:aws:bedrock:{self.region_name}:{self.account_id}:"
    with _LOCK:
        extra = [a for a in [*_DEPLOYMENTS, *_THROUGHPUTS] if a.startswith(prefix)]
    return [*_StockListArns(self), *extra]


def create_provisioned_model_throughput(self: Any) -> Any:
    params = json.loads(self.body or "{}")
    name = params["provisionedModelName"]
    model_id = params["modelId"]
    if model_id.startswith("arn:") and ":custom-model/" in model_id:
        _find_model(self.bedrock_backend, model_id)
    with _LOCK:
        if any(t["provisionedModelName"] == name for t in _THROUGHPUTS.values()):
            raise ConflictException(f"Provisioned model {name} already exists")
        arn = _arn(self.region, self.current_account, "provisioned-model", uuid.uuid4().hex[:12])
        _THROUGHPUTS[arn] = {
            "provisionedModelArn": arn,
            "provisionedModelName": name,
            "modelArn": model_id,
            "desiredModelArn": model_id,
            "foundationModelArn": model_id,
            "modelUnits": params["modelUnits"],
            "desiredModelUnits": params["modelUnits"],
            "creationTime": _iso(),
            "lastModifiedTime": _iso(),
            "commitmentDuration": params.get("commitmentDuration"),
        }
    _status(arn, THROUGHPUT_MODEL, [("Creating", "InService")])
    _tag_new(self.bedrock_backend, arn, params.get("tags"))
    return 201, {"Content-Type": "application/json"}, json.dumps({"provisionedModelArn": arn})


def _find_throughput(identifier: str) -> dict[str, Any]:
    identifier = _identifier(identifier)
    with _LOCK:
        for arn, item in _THROUGHPUTS.items():
            if identifier in (arn, item["provisionedModelName"]):
                return item
    raise ResourceNotFoundException(f"Provisioned model {identifier} not found")


def get_provisioned_model_throughput(self: Any) -> str:
    item = _find_throughput(self.path.split("/")[-1])
    state = _status(item["provisionedModelArn"], THROUGHPUT_MODEL, [("Creating", "InService")])
    out = {k: v for k, v in {**item, "status": state.status}.items() if v is not None}
    state.advance()
    return json.dumps(out)


def delete_provisioned_model_throughput(self: Any) -> str:
    item = _find_throughput(self.path.split("/")[-1])
    with _LOCK:
        _THROUGHPUTS.pop(item["provisionedModelArn"], None)
    self.bedrock_backend.tagger.delete_all_tags_for_resource(item["provisionedModelArn"])
    return json.dumps({})


# -- runtime -------------------------------------------------------------------------------------------------
def checkpoint_for_model_id(account: str, region: str, model_id: str) -> str | None:
    """The checkpoint behind a deployment, provisioned model or custom model id (None: the base model)."""
    model_id = _identifier(model_id)
    with _LOCK:
        deployment = next((d for a, d in _DEPLOYMENTS.items() if model_id in (a, d["modelDeploymentName"])), None)
        throughput = next((t for a, t in _THROUGHPUTS.items() if model_id in (a, t["provisionedModelName"])), None)
    if deployment is not None:
        model_id = deployment["modelArn"]
    elif throughput is not None:
        model_id = throughput["modelArn"]
    backend = br_models.bedrock_backends[account][region]
    for model in backend.custom_models.values():
        if model_id in (model.model_name, model.model_arn) and isinstance(model, ManagedCustomModel):
            return model.checkpoint_uri()
    return None


def converse(self: Any) -> Any:
    from novaflow.local import serving

    model_id = self._get_param("modelId")
    host = self.headers.get("Host") or ""
    reply = serving.converse_reply(
        self._get_param("system"),
        self._get_param("messages") or [],
        checkpoint_for_model_id(self.current_account, self.region, model_id),
        f"http://{host}",
    )
    return 200, {"Content-Type": "application/json"}, json.dumps(reply)


def converse_stream(self: Any) -> Any:
    from moto.core.eventstream import EventStreamEncoder

    from novaflow.local import serving

    model_id = self._get_param("modelId")
    host = self.headers.get("Host") or ""
    reply = serving.converse_reply(
        self._get_param("system"),
        self._get_param("messages") or [],
        checkpoint_for_model_id(self.current_account, self.region, model_id),
        f"http://{host}",
    )
    text = reply["output"]["message"]["content"][0]["text"]
    words = text.split(" ")
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for i, word in enumerate(words):
        events.append(
            (
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"text": word + (" " if i + 1 < len(words) else "")}},
            )
        )
    events += [
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": reply["stopReason"]}),
        ("metadata", {"usage": reply["usage"], "metrics": reply["metrics"]}),
    ]
    encoder = EventStreamEncoder()
    body = b"".join(
        encoder.encode_message(
            {":event-type": name, ":content-type": "application/json", ":message-type": "event"},
            json.dumps(payload).encode(),
        )
        for name, payload in events
    )
    return 200, {"Content-Type": "application/vnd.amazon.eventstream"}, body


def install() -> None:
    """Install the Bedrock patches (idempotent)."""
    if br_models.ModelCustomizationJob is ManagedCustomizationJob:
        return
    br_models.ModelCustomizationJob = ManagedCustomizationJob  # type: ignore[misc]
    br_models.CustomModel = ManagedCustomModel  # type: ignore[misc]
    br_models.BedrockBackend._list_arns = _list_arns  # type: ignore[method-assign]
    resp = br_responses.BedrockResponse
    for func in (
        get_model_customization_job,
        stop_model_customization_job,
        get_custom_model,
        delete_custom_model,
        create_custom_model,
        create_custom_model_deployment,
        get_custom_model_deployment,
        delete_custom_model_deployment,
        list_custom_model_deployments,
        create_provisioned_model_throughput,
        get_provisioned_model_throughput,
        delete_provisioned_model_throughput,
        list_provisioned_model_throughputs,
    ):
        setattr(resp, func.__name__, func)
    rt_responses.BedrockRuntimeResponse.converse = converse  # type: ignore[attr-defined]
    rt_responses.BedrockRuntimeResponse.converse_stream = converse_stream  # type: ignore[attr-defined]
    for name in (JOB_MODEL, CUSTOM_MODEL, DEPLOYMENT_MODEL, THROUGHPUT_MODEL):
        state_manager.register_default_transition(name, {"progression": "immediate"})


def reset() -> None:
    with _LOCK:
        _DEPLOYMENTS.clear()
        _THROUGHPUTS.clear()
        _STATES.clear()
