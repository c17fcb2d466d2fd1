"""Close moto 5.2.5's Bedrock gaps: ARN lookups, job and model status, imports, deployments, Converse.

Stock moto leaves customization jobs InProgress forever, cannot find a job by ARN (the ARN arrives URL-encoded),
ignores ``clientRequestToken``, reports an ``outputModelArn`` that is not the custom model's ARN, and has no
custom-model import, on-demand deployment, provisioned throughput or Converse. novaflow's Bedrock deployer polls
each of these, so they are added with AWS's request and response shapes and state-managed statuses (models
``bedrock::*``, default ``immediate``). Customization jobs are kept in a
:class:`~novaflow.local.aws.bedrock_tables.BedrockTable`, as are batch inference jobs, deployments and
provisioned throughputs. Deployments and
provisioned throughputs are listable and carry the tags given at creation (teardown proves ownership by them),
through moto's own tagger: its ARN check is widened to include them. Converse answers from the emulated model
behind the deployment (:mod:`novaflow.local.emulator.serving`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from moto.bedrock import models as br_models
from moto.bedrock import responses as br_responses
from moto.bedrock.exceptions import ResourceNotFoundException
from moto.bedrockruntime import responses as rt_responses
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState

from novaflow.local.aws.bedrock_tables import BedrockTable, ConflictException, Listing, decode, now
from novaflow.local.emulator import serving

JOB_MODEL = "bedrock::model_customization_job"
CUSTOM_MODEL = "bedrock::custom_model"
DEPLOYMENT_MODEL = "bedrock::custom_model_deployment"
THROUGHPUT_MODEL = "bedrock::provisioned_model_throughput"

_StockJob = br_models.ModelCustomizationJob
_StockCreateJob = br_responses.BedrockResponse.create_model_customization_job
_StockListArns = br_models.BedrockBackend._list_arns
_StockCustomModel = br_models.CustomModel


class ManagedResource:
    """A Bedrock resource moto lacks (custom-model deployment, provisioned throughput): its stored fields and a
    state-managed status (Creating, then ready); each kind names its fields in the class attributes."""

    arn_key: ClassVar[str]
    arn_kind: ClassVar[str]
    name_key: ClassVar[str]
    state_model: ClassVar[str]
    ready: ClassVar[str]
    summary_keys: ClassVar[dict[str, str]]
    """Each List* summary field and the stored field it shows."""

    def __init__(self, fields: dict[str, Any], token: str | None) -> None:
        self.fields = fields
        self.token = token
        self._state = ManagedState(self.state_model, [("Creating", self.ready)])

    @property
    def arn(self) -> str:
        return str(self.fields[self.arn_key])

    @property
    def name(self) -> str:
        return str(self.fields[self.name_key])

    @property
    def status(self) -> str:
        return str(self._state.status)

    def describe(self) -> dict[str, Any]:
        """What Get* answers: the stored fields without empty ones, plus the status (which then moves on)."""
        out = {k: v for k, v in {**self.fields, "status": self._state.status}.items() if v is not None}
        self._state.advance()
        return out

    def summary(self) -> dict[str, Any]:
        shown = {out: self.fields[key] for out, key in self.summary_keys.items() if self.fields.get(key) is not None}
        return {**shown, "status": self.status}


class Deployment(ManagedResource):
    arn_key = "customModelDeploymentArn"
    arn_kind = "custom-model-deployment"
    name_key = "modelDeploymentName"
    state_model = DEPLOYMENT_MODEL
    ready = "Active"
    summary_keys: ClassVar[dict[str, str]] = {
        "customModelDeploymentArn": "customModelDeploymentArn",
        "customModelDeploymentName": "modelDeploymentName",
        "modelArn": "modelArn",
        "createdAt": "createdAt",
        "lastUpdatedAt": "lastUpdatedAt",
    }


class Throughput(ManagedResource):
    arn_key = "provisionedModelArn"
    arn_kind = "provisioned-model"
    name_key = "provisionedModelName"
    state_model = THROUGHPUT_MODEL
    ready = "InService"
    summary_keys: ClassVar[dict[str, str]] = {
        key: key
        for key in (
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
    }


DEPLOYMENTS: BedrockTable[Deployment] = BedrockTable(
    "Custom model deployment",
    "Custom model deployment {name} already exists",
    Listing("modelDeploymentSummaries", "customModelDeploymentName", "createdAt", "createdBefore", "createdAfter"),
)
THROUGHPUTS: BedrockTable[Throughput] = BedrockTable(
    "Provisioned model",
    "Provisioned model {name} already exists",
    Listing(
        "provisionedModelSummaries", "provisionedModelName", "creationTime", "creationTimeBefore", "creationTimeAfter"
    ),
)


def _arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:bedrock:{region}:{account}:{kind}/{name}"


ON_CUSTOMIZATION_JOB_READ: list[Callable[[Any, dict[str, Any]], None]] = []
"""Called with (customization job, the answer) before a GetModelCustomizationJob answer leaves: the EventBridge
emitter sends a status change's event first, as AWS has by the time anyone can read the new status."""


class ManagedCustomizationJob(_StockJob):
    """A customization job whose status progresses and whose outputModelArn is the custom model's ARN; kept in
    :data:`CUSTOMIZATION_JOBS` (the members :class:`~novaflow.local.aws.bedrock_tables.Job` asks for)."""

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
        for hook in ON_CUSTOMIZATION_JOB_READ:
            hook(self, out)
        self._state.advance()
        return out

    @property
    def arn(self) -> str:
        return self.job_arn

    @property
    def name(self) -> str:
        return self.job_name

    @property
    def token(self) -> str | None:
        return self.client_request_token

    def describe(self) -> dict[str, Any]:
        return self.to_dict()

    def summary(self) -> dict[str, Any]:
        return {
            "jobArn": self.job_arn,
            "baseModelArn": self.base_model_arn,
            "jobName": self.job_name,
            "status": self.status,
            "lastModifiedTime": self.last_modified_time,
            "creationTime": self.creation_time,
            "endTime": self.end_time,
            "customModelArn": self.output_model_arn,
            "customModelName": self.custom_model_name,
            "customizationType": self.customization_type,
        }

    def stop(self) -> None:
        self.status = "Stopped"


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


CUSTOMIZATION_JOBS: BedrockTable[ManagedCustomizationJob] = BedrockTable(
    "Model customization job",
    "Model customization job {name} already exists",
    Listing("modelCustomizationJobSummaries", "jobName", "creationTime", "creationTimeBefore", "creationTimeAfter"),
    frozenset({"Completed", "Failed", "Stopped"}),
)


def _find_model(backend: Any, identifier: str) -> Any:
    identifier = decode(identifier)
    for model in backend.custom_models.values():
        if identifier in (model.model_name, model.model_arn):
            return model
    raise ResourceNotFoundException(f"Custom model {identifier} not found")


# -- control plane handlers (BedrockResponse methods) ------------------------------------------------------
def create_model_customization_job(self: Any) -> str:
    """moto's create (validation, the job's custom model, tags), once per ``clientRequestToken`` and name."""
    params = json.loads(self.body or "{}")

    def make() -> ManagedCustomizationJob:
        _StockCreateJob(self)
        job: ManagedCustomizationJob = self.bedrock_backend.model_customization_jobs[params["jobName"]]
        return job

    job, _ = CUSTOMIZATION_JOBS.create(params.get("jobName", ""), params.get("clientRequestToken"), make)
    return json.dumps({"jobArn": job.arn})


def get_model_customization_job(self: Any) -> str:
    return json.dumps(CUSTOMIZATION_JOBS.describe(self.path.split("/")[-1]))


def stop_model_customization_job(self: Any) -> str:
    CUSTOMIZATION_JOBS.stop(self.path.split("/")[-2])
    return json.dumps({})


def list_model_customization_jobs(self: Any) -> str:
    return json.dumps(CUSTOMIZATION_JOBS.list_page(self._get_params(), self.region, self.current_account))


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


R = TypeVar("R", bound=ManagedResource)


def _create_resource(
    self: Any, table: BedrockTable[R], kind: type[R], params: dict[str, Any], name: str, fields: dict[str, Any]
) -> str:
    """Store a new deployment or throughput (once per ``clientRequestToken``), tag it, and return its ARN."""

    def make() -> R:
        arn = _arn(self.region, self.current_account, kind.arn_kind, uuid.uuid4().hex[:12])
        return kind({kind.arn_key: arn, kind.name_key: name, **fields}, params.get("clientRequestToken"))

    item, created = table.create(name, params.get("clientRequestToken"), make)
    if created and params.get("tags"):
        self.bedrock_backend.tag_resource(item.arn, params["tags"])
    return item.arn


def _delete_resource(self: Any, table: BedrockTable[R]) -> str:
    item = table.delete(self.path.split("/")[-1])
    self.bedrock_backend.tagger.delete_all_tags_for_resource(item.arn)
    return json.dumps({})


def create_custom_model_deployment(self: Any) -> Any:
    params = json.loads(self.body or "{}")
    _find_model(self.bedrock_backend, params["modelArn"])
    fields = {
        "modelArn": params["modelArn"],
        "createdAt": now(),
        "lastUpdatedAt": now(),
        "description": params.get("description"),
    }
    arn = _create_resource(self, DEPLOYMENTS, Deployment, params, params["modelDeploymentName"], fields)
    return 202, {"Content-Type": "application/json"}, json.dumps({"customModelDeploymentArn": arn})


def get_custom_model_deployment(self: Any) -> str:
    return json.dumps(DEPLOYMENTS.describe(self.path.split("/")[-1]))


def delete_custom_model_deployment(self: Any) -> str:
    return _delete_resource(self, DEPLOYMENTS)


def list_custom_model_deployments(self: Any) -> str:
    return json.dumps(DEPLOYMENTS.list_page(self._get_params(), self.region, self.current_account))


def list_provisioned_model_throughputs(self: Any) -> str:
    return json.dumps(THROUGHPUTS.list_page(self._get_params(), self.region, self.current_account))


def _list_arns(self: Any) -> list[str]:
    """moto's taggable ARNs plus this account/region's deployments and provisioned throughputs."""
    prefix = f"arn:aws:bedrock:{self.region_name}:{self.account_id}:"
    return [*_StockListArns(self), *DEPLOYMENTS.arns(prefix), *THROUGHPUTS.arns(prefix)]


def create_provisioned_model_throughput(self: Any) -> Any:
    params = json.loads(self.body or "{}")
    model_id = params["modelId"]
    if model_id.startswith("arn:") and ":custom-model/" in model_id:
        _find_model(self.bedrock_backend, model_id)
    fields = {
        "modelArn": model_id,
        "desiredModelArn": model_id,
        "foundationModelArn": model_id,
        "modelUnits": params["modelUnits"],
        "desiredModelUnits": params["modelUnits"],
        "creationTime": now(),
        "lastModifiedTime": now(),
        "commitmentDuration": params.get("commitmentDuration"),
    }
    arn = _create_resource(self, THROUGHPUTS, Throughput, params, params["provisionedModelName"], fields)
    return 201, {"Content-Type": "application/json"}, json.dumps({"provisionedModelArn": arn})


def get_provisioned_model_throughput(self: Any) -> str:
    return json.dumps(THROUGHPUTS.describe(self.path.split("/")[-1]))


def delete_provisioned_model_throughput(self: Any) -> str:
    return _delete_resource(self, THROUGHPUTS)


# -- runtime -------------------------------------------------------------------------------------------------
def checkpoint_for_model_id(account: str, region: str, model_id: str) -> str | None:
    """The checkpoint behind a deployment, provisioned model or custom model id (None: the base model)."""
    model_id = decode(model_id)
    serving = DEPLOYMENTS.lookup(model_id) or THROUGHPUTS.lookup(model_id)
    if serving is not None:
        model_id = serving.fields["modelArn"]
    backend = br_models.bedrock_backends[account][region]
    for model in backend.custom_models.values():
        if model_id in (model.model_name, model.model_arn) and isinstance(model, ManagedCustomModel):
            return model.checkpoint_uri()
    return None


def converse(self: Any) -> Any:
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
        create_model_customization_job,
        get_model_customization_job,
        stop_model_customization_job,
        list_model_customization_jobs,
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
    CUSTOMIZATION_JOBS.clear()
    DEPLOYMENTS.clear()
    THROUGHPUTS.clear()
