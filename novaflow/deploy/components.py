"""Several Nova models on one SageMaker endpoint, as inference components (``deploy.target: sagemaker_ic``).

The endpoint's config names no model: it only holds instances (and the ``ExecutionRoleArn`` and network isolation
AWS requires for components). Each model - a checkpoint or a model package version - becomes a ``CreateModel`` and a
``CreateInferenceComponent`` asking for the resources its hosting tier needs: every accelerator of the instance
type (the Nova container serves one model per instance; :mod:`novaflow.deploy.hosting`). Calls name the component
(``InvokeEndpoint(InferenceComponentName=...)``); a component is added or removed without touching the others;
teardown removes the components before the endpoint (docs/inference-components.md).

The requests are the ones sagemaker v3's ``ModelBuilder`` sends for a Nova model given ``ResourceRequirements``:
an endpoint config whose variant is named after the endpoint, one component per model with its copy count.

Example:
    >>> endpoint = ComponentEndpointSpec(endpoint_name="nova-ab", instance_type="ml.g6.48xlarge", instance_count=2)
    >>> sft = ComponentSpec(component_name="nova-ab-sft", checkpoint_uri="s3://escrow/sft/outputs/checkpoints",
    ...                     environment=EndpointEnvironment(context_length=8000, max_concurrency=8))
    >>> build_inference_component_request(endpoint, sft)["Specification"]["ComputeResourceRequirements"]
    {'NumberOfAcceleratorDevicesRequired': 8, 'NumberOfCpuCoresRequired': 1, 'MinMemoryRequiredInMb': 1024}
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from novaflow.aws import get_client, is_not_found, wrap_client_error
from novaflow.backoff import Backoff, PollTimeout, poll_until
from novaflow.catalog import DEFAULT_MODEL, canonical_model
from novaflow.deploy.endpoint import describe_endpoint_status, wait_for_endpoint
from novaflow.deploy.endpoint_spec import check_checkpoint_uri, check_resource_name, derived_name
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.hosting import hosting_instance
from novaflow.deploy.images import inference_image_uri
from novaflow.deploy.roles import default_role_name, ensure_execution_role
from novaflow.deploy.tags import ESCROW_TAG_KEY, SPEC_KEY, escrow_tag_value, from_aws, is_managed, novaflow_tags, to_aws
from novaflow.deploy.teardown import Resource, delete_role
from novaflow.deploy.waiting import SERVING_WAIT, wait_for_status
from novaflow.errors import ConfigError, DeployError
from novaflow.settings import NovaflowSettings, load_settings

COMPONENT_CPUS = 1
"""CPU cores a component asks for: sagemaker v3's default when the hub's hosting config gives none."""
COMPONENT_MIN_MEMORY_MB = 1024
"""Memory floor a component asks for: v3's, which stays within what an inference component may reserve."""
COMPONENT_KEY = "novaflow:component"
IN_SERVICE = "InService"
COMPONENT_FAILED = {"Failed"}


class ComponentSpec(BaseModel):
    """One model served as an inference component."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    component_name: str = Field(description="Inference component name (letters, digits, hyphens; <= 63).")
    checkpoint_uri: str = Field(description="The model's checkpoint (manifest.json checkpoint_s3_bucket).")
    model: str = Field(DEFAULT_MODEL, description="Nova model the checkpoint was trained from (any alias).")
    environment: EndpointEnvironment = Field(default_factory=EndpointEnvironment)
    copies: int = Field(1, ge=1, le=16, description="Copies of the model (each on its own instance).")

    _check_name = field_validator("component_name")(check_resource_name)
    _check_checkpoint = field_validator("checkpoint_uri")(check_checkpoint_uri)
    _check_model = field_validator("model")(canonical_model)

    def spec_hash(self) -> str:
        payload = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def model_name(self) -> str:
        return derived_name(self.component_name, self.spec_hash())


class ComponentEndpointSpec(BaseModel):
    """The endpoint the components share: its instances and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_name: str = Field(description="SageMaker endpoint name (letters, digits, hyphens; <= 63).")
    instance_type: str = Field("ml.p5.48xlarge", description="Instance type every component runs on.")
    instance_count: int = Field(1, ge=1, le=16, description="Instances: one per component copy.")
    role_arn: str | None = Field(None, description="Execution role; created (least privilege) per model when unset.")

    _check_name = field_validator("endpoint_name")(check_resource_name)

    @property
    def variant_name(self) -> str:
        """The production variant, named after the endpoint as sagemaker v3 names it."""
        return self.endpoint_name

    def spec_hash(self) -> str:
        payload = self.model_dump(mode="json", exclude={"role_arn"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def config_name(self) -> str:
        return derived_name(self.endpoint_name, f"{self.spec_hash()}-ic")

    def tags(self) -> dict[str, str]:
        return {**novaflow_tags(self.endpoint_name), SPEC_KEY: self.spec_hash()}


def component_resources(endpoint: ComponentEndpointSpec, component: ComponentSpec) -> dict[str, int]:
    """``ComputeResourceRequirements``: the tier is checked for the instance type, then every accelerator of it."""
    component.environment.tier_for(component.model, endpoint.instance_type)
    instance = hosting_instance(endpoint.instance_type)
    return {
        "NumberOfAcceleratorDevicesRequired": instance.accelerators,
        "NumberOfCpuCoresRequired": COMPONENT_CPUS,
        "MinMemoryRequiredInMb": COMPONENT_MIN_MEMORY_MB,
    }


def check_components(endpoint: ComponentEndpointSpec, components: Sequence[ComponentSpec], existing: int = 0) -> None:
    """Offline: names distinct, every tier fits, and the instances hold every copy (``existing`` copies already run)."""
    names = [c.component_name for c in components]
    if len(set(names)) != len(names):
        raise ConfigError(f"Inference component names must differ: {', '.join(names)}.")
    for component in components:
        component_resources(endpoint, component)
    copies = existing + sum(c.copies for c in components)
    if copies > endpoint.instance_count:
        raise ConfigError(
            f"Endpoint {endpoint.endpoint_name} has {endpoint.instance_count} x {endpoint.instance_type} but its "
            f"components need {copies} (a Nova model copy takes all "
            f"{hosting_instance(endpoint.instance_type).accelerators} accelerators of one instance): raise "
            f"instance_count to {copies} or deploy fewer components."
        )


def side_by_side(
    endpoint_name: str,
    variants: Mapping[str, str],
    *,
    model: str = DEFAULT_MODEL,
    instance_type: str = "ml.p5.48xlarge",
    environment: EndpointEnvironment | None = None,
    copies: int = 1,
) -> tuple[ComponentEndpointSpec, list[ComponentSpec]]:
    """An endpoint just large enough for every variant (name -> checkpoint) as its own component, for an A/B of a
    sweep's top-k: components are named ``<endpoint>-<variant>`` (cut to fit), one instance per copy.

    Example:
        >>> endpoint, parts = side_by_side("sweep-ab", {"lr1e-5": "s3://e/a/ckpt", "lr5e-5": "s3://e/b/ckpt"},
        ...                                instance_type="ml.g6.48xlarge",
        ...                                environment=EndpointEnvironment(context_length=8000, max_concurrency=8))
        >>> endpoint.instance_count, [p.component_name for p in parts]
        (2, ['sweep-ab-lr1e-5', 'sweep-ab-lr5e-5'])
    """
    env = environment or EndpointEnvironment()
    parts = [
        ComponentSpec(
            component_name=derived_name(endpoint_name, re.sub(r"[^a-zA-Z0-9-]+", "-", variant).strip("-") or "v"),
            checkpoint_uri=checkpoint,
            model=model,
            environment=env,
            copies=copies,
        )
        for variant, checkpoint in variants.items()
    ]
    endpoint = ComponentEndpointSpec(
        endpoint_name=endpoint_name, instance_type=instance_type, instance_count=max(1, len(parts) * copies)
    )
    check_components(endpoint, parts)
    return endpoint, parts


def build_component_model_request(
    endpoint: ComponentEndpointSpec, component: ComponentSpec, *, region: str, role_arn: str
) -> dict[str, Any]:
    """``CreateModel`` of one component: the Nova inference image, the checkpoint prefix, network isolation on."""
    tags = {
        **novaflow_tags(endpoint.endpoint_name),
        COMPONENT_KEY: component.component_name,
        SPEC_KEY: component.spec_hash(),
        ESCROW_TAG_KEY: escrow_tag_value(component.checkpoint_uri),
    }
    return {
        "ModelName": component.model_name,
        "PrimaryContainer": {
            "Image": inference_image_uri(region),
            "Environment": component.environment.to_env(),
            "ModelDataSource": {
                "S3DataSource": {
                    "S3Uri": component.checkpoint_uri + "/",
                    "S3DataType": "S3Prefix",
                    "CompressionType": "None",
                }
            },
        },
        "ExecutionRoleArn": role_arn,
        "EnableNetworkIsolation": True,
        "Tags": to_aws(tags),
    }


def build_component_endpoint_config_request(endpoint: ComponentEndpointSpec, *, role_arn: str) -> dict[str, Any]:
    """``CreateEndpointConfig`` with one variant of instances and no model (components bring theirs)."""
    return {
        "EndpointConfigName": endpoint.config_name,
        "ProductionVariants": [
            {
                "VariantName": endpoint.variant_name,
                "InstanceType": endpoint.instance_type,
                "InitialInstanceCount": endpoint.instance_count,
            }
        ],
        "ExecutionRoleArn": role_arn,
        "EnableNetworkIsolation": True,
        "Tags": to_aws(endpoint.tags()),
    }


def build_inference_component_request(endpoint: ComponentEndpointSpec, component: ComponentSpec) -> dict[str, Any]:
    """``CreateInferenceComponent``: the model, the resources of its tier, its copy count."""
    tags = {**novaflow_tags(endpoint.endpoint_name), COMPONENT_KEY: component.component_name}
    return {
        "InferenceComponentName": component.component_name,
        "EndpointName": endpoint.endpoint_name,
        "VariantName": endpoint.variant_name,
        "Specification": {
            "ModelName": component.model_name,
            "ComputeResourceRequirements": component_resources(endpoint, component),
        },
        "RuntimeConfig": {"CopyCount": component.copies},
        "Tags": to_aws({**tags, SPEC_KEY: component.spec_hash()}),
    }


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    arn: str
    status: str
    model_name: str | None
    copies: int
    failure_reason: str | None = None


@dataclass
class ComponentDeployment:
    """An endpoint and the components this call made sure of."""

    endpoint_name: str
    endpoint_status: str
    components: list[ComponentStatus] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


def _sm(settings: NovaflowSettings | None) -> Any:
    return get_client("sagemaker", settings)


def describe_component(name: str, settings: NovaflowSettings | None = None) -> ComponentStatus | None:
    try:
        desc = _sm(settings).describe_inference_component(InferenceComponentName=name)
    except ClientError as exc:
        if is_not_found(exc) or "Could not find" in str(exc):
            return None
        raise wrap_client_error(exc, f"describe inference component {name}") from exc
    return ComponentStatus(
        name=name,
        arn=desc["InferenceComponentArn"],
        status=desc["InferenceComponentStatus"],
        model_name=(desc.get("Specification") or {}).get("ModelName"),
        copies=int((desc.get("RuntimeConfig") or {}).get("DesiredCopyCount", 1)),
        failure_reason=desc.get("FailureReason"),
    )


def list_components(endpoint_name: str, settings: NovaflowSettings | None = None) -> list[ComponentStatus]:
    """The endpoint's inference components, oldest first."""
    sm = _sm(settings)
    names: list[str] = []
    token: str | None = None
    while True:
        page = sm.list_inference_components(
            EndpointNameEquals=endpoint_name, SortOrder="Ascending", **({"NextToken": token} if token else {})
        )
        names += [c["InferenceComponentName"] for c in page.get("InferenceComponents", [])]
        token = page.get("NextToken")
        if not token:
            break
    found = [describe_component(n, settings) for n in names]
    return [c for c in found if c is not None]


def deploy_components(
    endpoint: ComponentEndpointSpec,
    components: Sequence[ComponentSpec],
    *,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    settings: NovaflowSettings | None = None,
) -> ComponentDeployment:
    """Create the endpoint (when missing) and every component, each InService on return.

    Everything offline is checked first (tiers, instance type, capacity, names). A component that already runs
    this exact spec is kept as it is; one with the same name and another spec is refused (remove it first).
    """
    settings = settings or load_settings()
    inference_image_uri(settings.region)
    existing = describe_endpoint_status(endpoint.endpoint_name, settings)
    running = list_components(endpoint.endpoint_name, settings) if existing is not None else []
    new = [c for c in components if c.component_name not in {r.name for r in running}]
    check_components(endpoint, new, existing=sum(r.copies for r in running))
    out = ComponentDeployment(endpoint.endpoint_name, existing.status if existing else "")
    if existing is None:
        _create_endpoint(endpoint, components, settings)
        out.created.append(f"endpoint {endpoint.endpoint_name}")
    elif not existing.managed:
        raise DeployError(
            f"Endpoint {endpoint.endpoint_name} exists and was not created by novaflow (no novaflow:managed tag); "
            "choose another endpoint name."
        )
    desc, _ = wait_for_endpoint(endpoint.endpoint_name, backoff=backoff, sleep=sleep, settings=settings)
    out.endpoint_status = desc["EndpointStatus"]
    for component in components:
        status = add_component(endpoint, component, backoff=backoff, sleep=sleep, settings=settings)
        out.components.append(status)
    return out


def _create_endpoint(
    endpoint: ComponentEndpointSpec, components: Sequence[ComponentSpec], settings: NovaflowSettings
) -> None:
    sm = _sm(settings)
    role = (
        endpoint.role_arn
        or ensure_execution_role(
            endpoint.endpoint_name,
            "sagemaker",
            checkpoint_uri=components[0].checkpoint_uri if components else settings.s3_uri("models"),
            endpoint_name=endpoint.endpoint_name,
            settings=settings,
        ).arn
    )
    try:
        sm.create_endpoint_config(**build_component_endpoint_config_request(endpoint, role_arn=role))
    except ClientError as exc:
        if "already exist" not in str(exc):
            raise wrap_client_error(exc, f"create endpoint config {endpoint.config_name}") from exc
    try:
        sm.create_endpoint(
            EndpointName=endpoint.endpoint_name,
            EndpointConfigName=endpoint.config_name,
            Tags=to_aws(endpoint.tags()),
        )
    except ClientError as exc:
        raise wrap_client_error(exc, f"create endpoint {endpoint.endpoint_name}") from exc


def add_component(
    endpoint: ComponentEndpointSpec,
    component: ComponentSpec,
    *,
    wait: bool = True,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    settings: NovaflowSettings | None = None,
) -> ComponentStatus:
    """Add one model to a running endpoint; the other components keep serving. Idempotent for the same spec."""
    settings = settings or load_settings()
    sm = _sm(settings)
    current = describe_component(component.component_name, settings)
    if current is not None:
        if current.model_name == component.model_name:
            return _wait_component(component.component_name, backoff, sleep, settings) if wait else current
        raise DeployError(
            f"Inference component {component.component_name} already serves {current.model_name}; remove it first "
            f"(novaflow deploy components remove {endpoint.endpoint_name} {component.component_name})."
        )
    check_components(
        endpoint, [component], existing=sum(c.copies for c in list_components(endpoint.endpoint_name, settings))
    )
    role = (
        endpoint.role_arn
        or ensure_execution_role(
            endpoint.endpoint_name,
            "sagemaker",
            checkpoint_uri=component.checkpoint_uri,
            role_name=default_role_name(component.component_name, "sagemaker"),
            endpoint_name=endpoint.endpoint_name,
            settings=settings,
        ).arn
    )
    request = build_component_model_request(endpoint, component, region=settings.region, role_arn=role)
    try:
        sm.describe_model(ModelName=component.model_name)
    except ClientError as exc:
        if not is_not_found(exc) and "Could not find" not in str(exc):
            raise wrap_client_error(exc, f"describe model {component.model_name}") from exc
        try:
            sm.create_model(**request)
        except ClientError as create_exc:
            raise wrap_client_error(create_exc, f"create model {component.model_name}") from create_exc
    try:
        sm.create_inference_component(**build_inference_component_request(endpoint, component))
    except ClientError as exc:
        raise wrap_client_error(exc, f"create inference component {component.component_name}") from exc
    if not wait:
        found = describe_component(component.component_name, settings)
        assert found is not None
        return found
    try:
        return _wait_component(component.component_name, backoff, sleep, settings)
    except DeployError:
        remove_component(
            endpoint.endpoint_name, component.component_name, backoff=backoff, sleep=sleep, settings=settings
        )
        raise


def _wait_component(
    name: str, backoff: Backoff | None, sleep: Callable[[float], None], settings: NovaflowSettings
) -> ComponentStatus:
    def poll() -> dict[str, Any]:
        try:
            return _sm(settings).describe_inference_component(InferenceComponentName=name)
        except ClientError as exc:
            raise wrap_client_error(exc, f"describe inference component {name}") from exc

    wait_for_status(
        f"inference component {name}",
        poll,
        lambda d: d["InferenceComponentStatus"],
        done={IN_SERVICE},
        failed=COMPONENT_FAILED,
        failure_reason=lambda d: d.get("FailureReason"),
        backoff=backoff or SERVING_WAIT,
        sleep=sleep,
    )
    found = describe_component(name, settings)
    assert found is not None
    return found


def remove_component(
    endpoint_name: str,
    component_name: str,
    *,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    settings: NovaflowSettings | None = None,
) -> list[str]:
    """Delete one component of the endpoint, then its model and role if novaflow made them; the others serve on.

    Returns what was removed. A component without novaflow's tags for this endpoint is refused, not deleted.
    """
    settings = settings or load_settings()
    sm = _sm(settings)
    current = describe_component(component_name, settings)
    if current is None:
        return []
    tags = from_aws(sm.list_tags(ResourceArn=current.arn).get("Tags", []))
    if not is_managed(tags, endpoint_name):
        raise DeployError(
            f"Inference component {component_name} was not created by novaflow for endpoint {endpoint_name}; "
            "left as it is."
        )
    try:
        sm.delete_inference_component(InferenceComponentName=component_name)
    except ClientError as exc:
        raise wrap_client_error(exc, f"delete inference component {component_name}") from exc
    removed = [f"sagemaker inference-component {component_name}"]
    try:
        poll_until(
            lambda: describe_component(component_name, settings),
            lambda found: found is None,
            backoff=backoff or Backoff(initial=10, factor=1.5, maximum=30, deadline=900),
            sleep=sleep,
        )
    except PollTimeout:
        raise DeployError(
            f"Inference component {component_name} is still deleting; its model {current.model_name} is kept "
            "until it is gone (run remove again)."
        ) from None
    if current.model_name:
        removed += _remove_model(sm, current.model_name, endpoint_name)
    role = default_role_name(component_name, "sagemaker")
    iam = get_client("iam", settings)
    try:
        role_tags = from_aws(iam.list_role_tags(RoleName=role).get("Tags", []))
    except ClientError:
        role_tags = {}
    if is_managed(role_tags, endpoint_name):
        delete_role(Resource("iam-role", role, "", role_tags), settings)
        removed.append(f"iam role {role}")
    return removed


def _remove_model(sm: Any, model_name: str, endpoint_name: str) -> list[str]:
    try:
        arn = sm.describe_model(ModelName=model_name)["ModelArn"]
        if is_managed(from_aws(sm.list_tags(ResourceArn=arn).get("Tags", [])), endpoint_name):
            sm.delete_model(ModelName=model_name)
            return [f"sagemaker model {model_name}"]
    except ClientError:
        return []
    return []
