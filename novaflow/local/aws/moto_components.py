"""SageMaker inference components, which moto 5.2.5 lacks: Create / Describe / List / Delete, their statuses, and
invocation by component name.

An endpoint hosts components when its config's production variant names no model and the config carries an
``ExecutionRoleArn`` (what AWS requires); each component names its model, the compute it needs and its copy count.
A component goes Creating -> InService, or Failed when the endpoint's instances lack the accelerators it asks for
(counted from EC2's instance type data, which moto ships); Deleting -> gone. ``InvokeEndpoint`` with
``InferenceComponentName`` is answered by the component's own model (:mod:`novaflow.local.emulator.serving`)
(docs/inference-components.md#offline).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses

COMPONENT_MODEL = "sagemaker::inference_component"
COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"


class ComponentValidationException(ServiceException):
    code = "ValidationException"


class FakeInferenceComponent:
    """One inference component; ``tags`` is a list so moto's AddTags / ListTags work on its ARN."""

    def __init__(self, account: str, region: str, request: dict[str, Any], endpoint: Any) -> None:
        self.name: str = request["InferenceComponentName"]
        self.arn = f"arn:aws:sagemaker:{region}:{account}:inference-component/{self.name}"
        self.endpoint_name: str = endpoint.endpoint_name
        self.endpoint_arn: str = endpoint.arn
        self.variant_name: str = request.get("VariantName") or ""
        self.specification: dict[str, Any] = dict(request.get("Specification") or {})
        self.copies = int((request.get("RuntimeConfig") or {}).get("CopyCount", 1))
        self.tags: list[dict[str, str]] = list(request.get("Tags") or [])
        self.created: datetime = utcnow()
        self.modified: datetime = self.created
        self.failure_reason: str | None = None
        self.state = ManagedState(COMPONENT_MODEL, [("Creating", "InService")])
        self.deleting: ManagedState | None = None

    @property
    def status(self) -> str:
        if self.deleting is not None:
            return "Deleting"
        return "Failed" if self.failure_reason else str(self.state.status)

    def advance(self) -> None:
        (self.deleting or self.state).advance()

    @property
    def gone(self) -> bool:
        return self.deleting is not None and self.deleting.status == "Deleted"

    def model_name(self) -> str | None:
        return self.specification.get("ModelName")

    def describe(self) -> dict[str, Any]:
        current = self.copies if self.status == "InService" else 0
        out: dict[str, Any] = {
            "InferenceComponentName": self.name,
            "InferenceComponentArn": self.arn,
            "EndpointName": self.endpoint_name,
            "EndpointArn": self.endpoint_arn,
            "VariantName": self.variant_name,
            "Specification": self.specification,
            "RuntimeConfig": {"DesiredCopyCount": self.copies, "CurrentCopyCount": current},
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "InferenceComponentStatus": self.status,
        }
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "CreationTime": self.created,
            "InferenceComponentArn": self.arn,
            "InferenceComponentName": self.name,
            "EndpointArn": self.endpoint_arn,
            "EndpointName": self.endpoint_name,
            "VariantName": self.variant_name,
            "InferenceComponentStatus": self.status,
            "LastModifiedTime": self.modified,
        }


_LOCK = threading.Lock()
_COMPONENTS: dict[str, FakeInferenceComponent] = {}
"""By ARN (which holds account, region and name)."""


def _prefix(backend: Any) -> str:
    return f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:inference-component/"


def _settled(backend: Any) -> list[FakeInferenceComponent]:
    """This account and region's components, with deleted ones dropped (a read moves deletions on)."""
    with _LOCK:
        found = [c for a, c in _COMPONENTS.items() if a.startswith(_prefix(backend))]
        for component in found:
            if component.gone:
                _COMPONENTS.pop(component.arn, None)
        return [c for c in found if not c.gone]


def find_component(backend: Any, name: str) -> FakeInferenceComponent | None:
    return next((c for c in _settled(backend) if c.name == name), None)


def component_checkpoint(backend: Any, component: FakeInferenceComponent) -> str | None:
    """The model data the component serves: its model's ``ModelDataSource`` (or ``ModelDataUrl``)."""
    model = backend._models.get(component.model_name() or "")
    container = (getattr(model, "primary_container", None) or {}) if model is not None else {}
    source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
    uri = source.get("S3Uri") or container.get("ModelDataUrl")
    return str(uri) if uri else None


def _accelerators(instance_type: str) -> int:
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    info = INSTANCE_TYPES.get(instance_type.removeprefix("ml."), {})
    return sum(int(g.get("Count", 0)) for g in (info.get("GpuInfo") or {}).get("Gpus", []))


def _capacity_problem(backend: Any, component: FakeInferenceComponent, variant: dict[str, Any]) -> str | None:
    """Why the variant's instances cannot hold the component's copies besides the components already there."""
    per_instance = _accelerators(str(variant.get("InstanceType", "")))
    count = int(variant.get("InitialInstanceCount") or 1)
    need = int(
        (component.specification.get("ComputeResourceRequirements") or {}).get("NumberOfAcceleratorDevicesRequired", 0)
    )
    if not need:
        return None
    used = sum(
        int((c.specification.get("ComputeResourceRequirements") or {}).get("NumberOfAcceleratorDevicesRequired", 0))
        * c.copies
        for c in _settled(backend)
        if c.endpoint_name == component.endpoint_name and c.status in ("Creating", "InService")
    )
    free = per_instance * count - used
    if need * component.copies > free or need > per_instance:
        return (
            f"Insufficient capacity: inference component {component.name} needs {need} accelerator device(s) for "
            f"each of {component.copies} copy(ies); endpoint {component.endpoint_name} has {max(free, 0)} free on "
            f"{count} x {variant.get('InstanceType')} ({per_instance} each)."
        )
    return None


def create_inference_component(self: Any) -> ActionResult:
    backend = self.sagemaker_backend
    request = {
        k: self._get_param(k)
        for k in ("InferenceComponentName", "EndpointName", "VariantName", "Specification", "RuntimeConfig", "Tags")
    }
    name, endpoint_name = request["InferenceComponentName"], request["EndpointName"]
    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = sm_models.FakeEndpoint.arn_formatter(endpoint_name, backend.account_id, backend.region_name)
        raise ComponentValidationException(f'Could not find endpoint "{arn}".')
    if find_component(backend, name) is not None:
        raise ComponentValidationException(f'Inference component "{_prefix(backend)}{name}" already exists.')
    config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    variants = list(getattr(config, "production_variants", None) or [])
    variant = next((v for v in variants if v.get("VariantName") == request["VariantName"]), None)
    if variant is None:
        raise ComponentValidationException(
            f'Variant "{request["VariantName"]}" is not a production variant of endpoint "{endpoint_name}".'
        )
    if variant.get("ModelName") or not getattr(config, "execution_role_arn", None):
        raise ComponentValidationException(
            f'Endpoint "{endpoint_name}" cannot host inference components: its endpoint config must name no model '
            "in the production variant and must have an ExecutionRoleArn."
        )
    model_name = (request["Specification"] or {}).get("ModelName")
    model = backend._models.get(model_name or "")
    if model is None:
        arn = f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:model/{model_name}"
        raise ComponentValidationException(f'Could not find model "{arn}".')
    if bool(getattr(model, "enable_network_isolation", False)) != bool(
        getattr(config, "enable_network_isolation", False)
    ):
        raise ComponentValidationException(
            f'EnableNetworkIsolation of model "{model_name}" does not match endpoint config '
            f'"{endpoint.endpoint_config_name}".'
        )
    component = FakeInferenceComponent(backend.account_id, backend.region_name, request, endpoint)
    component.failure_reason = _capacity_problem(backend, component, variant)
    with _LOCK:
        _COMPONENTS[component.arn] = component
    return ActionResult({"InferenceComponentArn": component.arn})


def _component_or_error(backend: Any, name: str) -> FakeInferenceComponent:
    component = find_component(backend, name)
    if component is None:
        raise ComponentValidationException(f'Could not find inference component "{_prefix(backend)}{name}".')
    return component


def describe_inference_component(self: Any) -> ActionResult:
    component = _component_or_error(self.sagemaker_backend, self._get_param("InferenceComponentName"))
    out = component.describe()
    component.advance()  # counted after the read: "manual, times N" shows each status N times
    return ActionResult(out)


def delete_inference_component(self: Any) -> EmptyResult:
    component = _component_or_error(self.sagemaker_backend, self._get_param("InferenceComponentName"))
    component.deleting = ManagedState(COMPONENT_MODEL, [("Deleting", "Deleted")])
    component.modified = utcnow()
    return EmptyResult()


def list_inference_components(self: Any) -> ActionResult:
    params = {
        k: self._get_param(k)
        for k in (
            "EndpointNameEquals",
            "VariantNameEquals",
            "StatusEquals",
            "NameContains",
            "SortOrder",
            "MaxResults",
            "NextToken",
        )
    }
    items = _settled(self.sagemaker_backend)
    if params["EndpointNameEquals"]:
        items = [c for c in items if c.endpoint_name == params["EndpointNameEquals"]]
    if params["VariantNameEquals"]:
        items = [c for c in items if c.variant_name == params["VariantNameEquals"]]
    if params["NameContains"]:
        items = [c for c in items if params["NameContains"] in c.name]
    summaries = [c.summary() for c in items]
    for component in items:
        component.advance()
    if params["StatusEquals"]:
        summaries = [s for s in summaries if s["InferenceComponentStatus"] == params["StatusEquals"]]
    summaries.sort(
        key=lambda s: (s["CreationTime"], s["InferenceComponentName"]), reverse=params["SortOrder"] != "Ascending"
    )
    start = int(params["NextToken"] or 0)
    end = start + int(params["MaxResults"] or 10)
    page: dict[str, Any] = {"InferenceComponents": summaries[start:end]}
    if end < len(summaries):
        page["NextToken"] = str(end)
    return ActionResult(page)


def _create_endpoint_config(original: Callable[..., Any]) -> Callable[..., Any]:
    """Keep ``ExecutionRoleArn`` and ``EnableNetworkIsolation`` (stock moto drops them): components need both."""

    def create_endpoint_config(self: Any) -> Any:
        result = original(self)
        config = self.sagemaker_backend.endpoint_configs.get(self._get_param("EndpointConfigName"))
        if config is not None:
            if self._get_param("ExecutionRoleArn"):
                config.execution_role_arn = self._get_param("ExecutionRoleArn")
            if self._get_param("EnableNetworkIsolation") is not None:
                config.enable_network_isolation = bool(self._get_param("EnableNetworkIsolation"))
        return result

    return create_endpoint_config


def _without_empty_capture(original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS leaves ``DataCaptureConfig`` out when none was set; stock moto answers ``{}``, which SDKs that validate
    the shape (sagemaker v3's resources) refuse."""

    def describe(self: Any) -> Any:
        result = original(self)
        body = getattr(result, "result", None)
        if isinstance(body, dict) and body.get("DataCaptureConfig") == {}:
            body.pop("DataCaptureConfig")
        return result

    return describe


def _create_model(original: Callable[..., Any]) -> Callable[..., Any]:
    """Keep the model's ``EnableNetworkIsolation`` (stock moto always says False): a component must match its endpoint
    config's."""

    def create_model(self: Any) -> Any:
        result = original(self)
        model = self.sagemaker_backend._models.get(self._get_param("ModelName"))
        if model is not None:
            model.enable_network_isolation = bool(self._get_param("EnableNetworkIsolation"))
        return result

    return create_model


def _validate_production_variants(original: Callable[..., Any]) -> Callable[..., Any]:
    """A variant without a model is how an endpoint for inference components is configured."""

    def validate_production_variants(self: Any, production_variants: list[dict[str, Any]]) -> None:
        original(self, [v for v in production_variants if v.get("ModelName")])

    return validate_production_variants


def _resource_from_arn(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_resource_from_arn(self: Any, arn: str) -> Any:
        if ":inference-component/" in arn:
            component = find_component(self, arn.rsplit("/", 1)[-1])
            if component is None:
                raise ComponentValidationException(f'Could not find inference component "{arn}".')
            return component
        return original(self, arn)

    return get_resource_from_arn


def install() -> None:
    """Install the inference component patches (idempotent)."""
    resp = sm_responses.SageMakerResponse
    if getattr(resp, "_novaflow_components", False):
        return
    for func in (
        create_inference_component,
        describe_inference_component,
        delete_inference_component,
        list_inference_components,
    ):
        setattr(resp, func.__name__, func)
    resp.create_endpoint_config = _create_endpoint_config(resp.create_endpoint_config)  # type: ignore[method-assign]
    resp.create_model = _create_model(resp.create_model)  # type: ignore[method-assign]
    resp.describe_endpoint_config = _without_empty_capture(resp.describe_endpoint_config)  # type: ignore[method-assign]
    resp.describe_endpoint = _without_empty_capture(resp.describe_endpoint)  # type: ignore[method-assign]
    backend = sm_models.SageMakerModelBackend
    backend.validate_production_variants = _validate_production_variants(  # type: ignore[method-assign]
        backend.validate_production_variants
    )
    backend._get_resource_from_arn = _resource_from_arn(backend._get_resource_from_arn)  # type: ignore[method-assign]
    state_manager.register_default_transition(COMPONENT_MODEL, {"progression": "immediate"})
    resp._novaflow_components = True  # type: ignore[attr-defined]


def reset() -> None:
    with _LOCK:
        _COMPONENTS.clear()
