"""Deploy a Nova checkpoint to a SageMaker real-time endpoint and wait until it serves.

Order matters for money: the spec (tier, region, names) is validated offline first; an existing endpoint is
looked up before anything is created, so a re-run never starts a second one; resources created before a failed
``CreateEndpoint`` are removed again. An update in place that SageMaker rolls back is reported as a failure even
though the endpoint ends ``InService`` - on the old config.

Example:
    >>> deployment = deploy_sagemaker_endpoint(spec)              # doctest: +SKIP
    >>> deployment.status                                         # doctest: +SKIP
    'InService'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, wrap_client_error
from novaflow.backoff import Backoff
from novaflow.deploy.endpoint_spec import (
    DeployMode,
    EndpointSpec,
    build_endpoint_config_request,
    build_endpoint_request,
    build_model_request,
)
from novaflow.deploy.images import inference_image_uri
from novaflow.deploy.roles import ensure_execution_role
from novaflow.deploy.tags import SPEC_KEY, from_aws, is_managed, to_aws
from novaflow.deploy.waiting import SERVING_WAIT, wait_for_status
from novaflow.errors import DeployError
from novaflow.settings import NovaflowSettings, load_settings

IN_SERVICE = "InService"
ENDPOINT_FAILED = {"Failed", "UpdateRollbackFailed", "OutOfService", "Deleting"}


@dataclass
class EndpointDeployment:
    """What a deploy produced (or found): names, role, final status and what it replaced."""

    endpoint_name: str
    endpoint_arn: str
    model_name: str
    config_name: str
    role_arn: str
    role_created: bool
    status: str
    spec_hash: str
    reused: bool = False
    replaced: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EndpointStatus:
    """``describe_endpoint`` reduced to what a user or a flow decides on."""

    endpoint_name: str
    endpoint_arn: str
    status: str
    failure_reason: str | None
    config_name: str
    managed: bool
    tags: dict[str, str]


def describe_endpoint_status(name: str, settings: NovaflowSettings | None = None) -> EndpointStatus | None:
    """The endpoint's status and tags, or None when it does not exist."""
    sm = get_client("sagemaker", settings)
    try:
        desc = sm.describe_endpoint(EndpointName=name)
        tags = from_aws(sm.list_tags(ResourceArn=desc["EndpointArn"]).get("Tags", []))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise wrap_client_error(exc, f"describe endpoint {name}") from exc
    return EndpointStatus(
        endpoint_name=name,
        endpoint_arn=desc["EndpointArn"],
        status=desc["EndpointStatus"],
        failure_reason=desc.get("FailureReason"),
        config_name=desc.get("EndpointConfigName", ""),
        managed=is_managed(tags),
        tags=tags,
    )


def wait_for_endpoint(
    name: str,
    *,
    expected_config: str | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_status: Callable[[str], None] | None = None,
    settings: NovaflowSettings | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Poll ``describe_endpoint`` until InService; DeployError with SageMaker's FailureReason on failure.

    With ``expected_config`` an InService endpoint still on another config means the update was rolled back.
    """
    sm = get_client("sagemaker", settings)

    def poll() -> dict[str, Any]:
        try:
            return sm.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            raise wrap_client_error(exc, f"describe endpoint {name}") from exc

    outcome = wait_for_status(
        f"SageMaker endpoint {name}",
        poll,
        lambda d: d["EndpointStatus"],
        done={IN_SERVICE},
        failed=ENDPOINT_FAILED,
        failure_reason=lambda d: d.get("FailureReason"),
        backoff=backoff or SERVING_WAIT,
        sleep=sleep,
        clock=clock,
        on_status=on_status,
    )
    desc = outcome.value
    if expected_config and desc.get("EndpointConfigName") != expected_config:
        raise DeployError(
            f"SageMaker endpoint {name} rolled back to {desc.get('EndpointConfigName')} instead of "
            f"{expected_config}: {desc.get('FailureReason') or 'no reason given'}"
        )
    return desc, outcome.statuses


def deploy_sagemaker_endpoint(
    spec: EndpointSpec,
    *,
    mode: DeployMode | str = DeployMode.CREATE,
    wait: bool = True,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_status: Callable[[str], None] | None = None,
    settings: NovaflowSettings | None = None,
) -> EndpointDeployment:
    """Create (or update in place) the endpoint for ``spec`` and, with ``wait``, block until it is InService.

    Raises ConfigError before any AWS call when the tier or region is not supported; DeployError when the
    endpoint exists and ``mode`` is create, belongs to someone else, or fails (with SageMaker's reason).
    """
    mode = DeployMode(mode)
    settings = settings or load_settings()
    spec.validate_tier()
    inference_image_uri(settings.region)  # unsupported region: refused here, offline
    waiting = {"backoff": backoff, "sleep": sleep, "clock": clock, "on_status": on_status, "settings": settings}

    existing = describe_endpoint_status(spec.endpoint_name, settings)
    if existing is not None:
        if not existing.managed:
            raise DeployError(
                f"Endpoint {spec.endpoint_name} exists and was not created by novaflow (no "
                f"novaflow:managed tag); choose another endpoint name."
            )
        if existing.tags.get(SPEC_KEY) == spec.spec_hash() and existing.status not in ENDPOINT_FAILED:
            return _finish(
                spec,
                existing,
                role_arn="",
                role_created=False,
                reused=True,
                wait=wait,
                waiting=waiting,
                settings=settings,
            )
        if mode is DeployMode.CREATE:
            raise DeployError(
                f"Endpoint {spec.endpoint_name} already exists (status {existing.status}, config "
                f"{existing.config_name}); deploy with mode=update to replace it in place, or "
                f"delete it first (novaflow deploy delete {spec.endpoint_name})."
            )
        if existing.status != IN_SERVICE:
            raise DeployError(
                f"Endpoint {spec.endpoint_name} is {existing.status}; it can only be updated when "
                f"InService (wait, or delete it and deploy again)."
            )

    role_arn, role_created = _role_for(spec, settings)
    sm = get_client("sagemaker", settings)
    created = _create_model_and_config(sm, spec, role_arn, settings)
    try:
        if existing is None:
            sm.create_endpoint(**build_endpoint_request(spec))
        else:
            sm.update_endpoint(EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name)
            sm.add_tags(ResourceArn=existing.endpoint_arn, Tags=to_aws({SPEC_KEY: spec.spec_hash()}))
    except ClientError as exc:
        _delete_quietly(sm, created)
        raise wrap_client_error(
            exc, f"{'create' if existing is None else 'update'} endpoint {spec.endpoint_name}"
        ) from exc
    current = describe_endpoint_status(spec.endpoint_name, settings)
    if current is None:
        raise DeployError(f"Endpoint {spec.endpoint_name} vanished right after it was created.")
    deployment = _finish(
        spec,
        current,
        role_arn=role_arn,
        role_created=role_created,
        reused=False,
        wait=wait,
        waiting=waiting,
        settings=settings,
        expected_config=spec.config_name if existing else None,
    )
    if existing is not None and wait:
        deployment.replaced = _remove_replaced(sm, existing.config_name, spec)
    return deployment


def _role_for(spec: EndpointSpec, settings: NovaflowSettings) -> tuple[str, bool]:
    if spec.role_arn:
        return spec.role_arn, False
    role = ensure_execution_role(
        spec.endpoint_name,
        "sagemaker",
        checkpoint_uri=spec.checkpoint_uri,
        endpoint_name=spec.endpoint_name,
        settings=settings,
    )
    return role.arn, role.created


def _create_model_and_config(
    sm: Any, spec: EndpointSpec, role_arn: str, settings: NovaflowSettings
) -> list[tuple[str, str]]:
    """Create what is missing; return what this call created (kind, name) so a failure can undo it."""
    created: list[tuple[str, str]] = []
    steps = [
        (
            "model",
            spec.model_name,
            sm.describe_model,
            {"ModelName": spec.model_name},
            sm.create_model,
            build_model_request(spec, region=settings.region, role_arn=role_arn),
        ),
        (
            "endpoint-config",
            spec.config_name,
            sm.describe_endpoint_config,
            {"EndpointConfigName": spec.config_name},
            sm.create_endpoint_config,
            build_endpoint_config_request(spec),
        ),
    ]
    for kind, name, describe, key, create, request in steps:
        try:
            describe(**key)
            continue
        except ClientError as exc:
            if not is_not_found(exc):
                _delete_quietly(sm, created)
                raise wrap_client_error(exc, f"describe {kind} {name}") from exc
        try:
            create(**request)
        except ClientError as exc:
            _delete_quietly(sm, created)
            raise wrap_client_error(exc, f"create {kind} {name}") from exc
        created.append((kind, name))
    return created


def _delete_quietly(sm: Any, created: list[tuple[str, str]]) -> None:
    """Undo this call's creations after a failure; the original error is the one worth raising."""
    for kind, name in reversed(created):
        try:
            if kind == "model":
                sm.delete_model(ModelName=name)
            else:
                sm.delete_endpoint_config(EndpointConfigName=name)
        except ClientError:
            pass


def _finish(
    spec: EndpointSpec,
    status: EndpointStatus,
    *,
    role_arn: str,
    role_created: bool,
    reused: bool,
    wait: bool,
    waiting: dict[str, Any],
    settings: NovaflowSettings,
    expected_config: str | None = None,
) -> EndpointDeployment:
    statuses = [status.status]
    final = status.status
    if wait:
        desc, statuses = wait_for_endpoint(spec.endpoint_name, expected_config=expected_config, **waiting)
        final = desc["EndpointStatus"]
    if not role_arn:
        role_arn = _model_role(spec, settings)
    return EndpointDeployment(
        endpoint_name=spec.endpoint_name,
        endpoint_arn=status.endpoint_arn,
        model_name=spec.model_name,
        config_name=spec.config_name,
        role_arn=role_arn,
        role_created=role_created,
        status=final,
        spec_hash=spec.spec_hash(),
        reused=reused,
        statuses=statuses,
    )


def _model_role(spec: EndpointSpec, settings: NovaflowSettings) -> str:
    try:
        return str(get_client("sagemaker", settings).describe_model(ModelName=spec.model_name)["ExecutionRoleArn"])
    except ClientError:
        return spec.role_arn or ""


def _remove_replaced(sm: Any, old_config: str, spec: EndpointSpec) -> list[str]:
    """After a successful update, delete the old config and its models if novaflow made them."""
    if not old_config or old_config == spec.config_name:
        return []
    removed: list[str] = []
    try:
        desc = sm.describe_endpoint_config(EndpointConfigName=old_config)
        tags = from_aws(sm.list_tags(ResourceArn=desc["EndpointConfigArn"]).get("Tags", []))
    except ClientError:
        return removed
    if not is_managed(tags, spec.endpoint_name):
        return removed
    sm.delete_endpoint_config(EndpointConfigName=old_config)
    removed.append(f"endpoint-config {old_config}")
    for variant in desc.get("ProductionVariants", []):
        model = variant.get("ModelName")
        if not model or model == spec.model_name:
            continue
        try:
            model_arn = sm.describe_model(ModelName=model)["ModelArn"]
            if is_managed(from_aws(sm.list_tags(ResourceArn=model_arn).get("Tags", [])), spec.endpoint_name):
                sm.delete_model(ModelName=model)
                removed.append(f"model {model}")
        except ClientError:
            continue
    return removed
