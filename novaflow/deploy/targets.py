"""One entry point over the three places a checkpoint can be served: a SageMaker endpoint, a Bedrock on-demand
deployment, Bedrock provisioned throughput. Flows and the CLI pick a target by name and get back one thing to
invoke and one thing to tear down, without branching on the target themselves.

Example:
    >>> served = deploy_checkpoint("sagemaker", "nova-sft", ckpt, instance_type="ml.g6.48xlarge",
    ...                            context_length=8000, max_concurrency=4)                    # doctest: +SKIP
    >>> ask(served.target, served.invoke_id, "Is this a good question?").text                # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, wrap_client_error
from novaflow.backoff import Backoff
from novaflow.catalog import DEFAULT_MODEL
from novaflow.deploy.bedrock import BedrockDeployment, BedrockMode, BedrockSpec, deploy_bedrock
from novaflow.deploy.components import (
    ComponentDeployment,
    ComponentEndpointSpec,
    ComponentSpec,
    deploy_components,
    list_components,
)
from novaflow.deploy.endpoint import EndpointDeployment, deploy_sagemaker_endpoint, describe_endpoint_status
from novaflow.deploy.endpoint_spec import DeployMode, EndpointSpec, derived_name
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.invoke import Completion, converse, converse_stream, invoke_endpoint, invoke_endpoint_stream
from novaflow.deploy.names import COMPONENT_SEPARATOR, DEFAULT_CONTEXT_LENGTH, DEFAULT_MAX_CONCURRENCY, TARGETS
from novaflow.deploy.stream import StreamResult
from novaflow.deploy.tags import from_aws, is_managed
from novaflow.errors import ConfigError, DeployError
from novaflow.settings import NovaflowSettings

Target = Literal["sagemaker", "sagemaker_ic", "bedrock_od", "bedrock_pt"]
SAGEMAKER_TARGETS = frozenset({"sagemaker", "sagemaker_ic"})


@dataclass
class Served:
    """A deployed checkpoint: where it runs, the id to invoke, and what created it."""

    target: str
    name: str
    invoke_id: str
    status: str
    details: EndpointDeployment | BedrockDeployment | ComponentDeployment

    @property
    def services(self) -> tuple[str, ...]:
        """Services teardown has to search for this deployment."""
        return teardown_services(self.target)


def teardown_services(target: str) -> tuple[str, ...]:
    check_target(target)
    return ("sagemaker", "iam") if target in SAGEMAKER_TARGETS else ("bedrock", "iam")


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise ConfigError(f"Unknown deployment target {target!r}: use one of {', '.join(TARGETS)}.")


def build_endpoint_spec(
    name: str,
    checkpoint_uri: str,
    *,
    model: str = DEFAULT_MODEL,
    instance_type: str = "ml.p5.48xlarge",
    instance_count: int = 1,
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    role_arn: str | None = None,
    **sampling: Any,
) -> EndpointSpec:
    """An endpoint spec whose tier is already checked (ConfigError naming the allowed tiers otherwise)."""
    spec = EndpointSpec(
        endpoint_name=name,
        checkpoint_uri=checkpoint_uri,
        model=model,
        instance_type=instance_type,
        instance_count=instance_count,
        role_arn=role_arn,
        environment=EndpointEnvironment(context_length=context_length, max_concurrency=max_concurrency, **sampling),
    )
    spec.validate_tier()
    return spec


def component_name(deployment: str) -> str:
    """The inference component a single-model ``sagemaker_ic`` deployment gets: ``<deployment>-model``."""
    return derived_name(deployment, "model")


def deploy_checkpoint(
    target: str,
    name: str,
    checkpoint_uri: str,
    *,
    model: str = DEFAULT_MODEL,
    instance_type: str = "ml.p5.48xlarge",
    instance_count: int = 1,
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    model_units: int = 1,
    mode: DeployMode | str = DeployMode.CREATE,
    role_arn: str | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_status: Callable[[str], None] | None = None,
    settings: NovaflowSettings,
) -> Served:
    """Deploy to ``target`` and wait until it serves; everything is validated before the first AWS call."""
    check_target(target)
    if target == "sagemaker":
        spec = build_endpoint_spec(
            name,
            checkpoint_uri,
            model=model,
            instance_type=instance_type,
            instance_count=instance_count,
            context_length=context_length,
            max_concurrency=max_concurrency,
            role_arn=role_arn,
        )
        endpoint = deploy_sagemaker_endpoint(
            spec, mode=mode, backoff=backoff, sleep=sleep, on_status=on_status, settings=settings
        )
        return Served(target, name, endpoint.endpoint_name, endpoint.status, endpoint)
    if target == "sagemaker_ic":
        component = ComponentSpec(
            component_name=component_name(name),
            checkpoint_uri=checkpoint_uri,
            model=model,
            environment=EndpointEnvironment(context_length=context_length, max_concurrency=max_concurrency),
        )
        components = deploy_components(
            ComponentEndpointSpec(
                endpoint_name=name, instance_type=instance_type, instance_count=instance_count, role_arn=role_arn
            ),
            [component],
            backoff=backoff,
            sleep=sleep,
            settings=settings,
        )
        invoke_id = f"{name}{COMPONENT_SEPARATOR}{component.component_name}"
        return Served(target, name, invoke_id, components.components[0].status, components)
    bedrock_spec = BedrockSpec(
        name=name,
        checkpoint_uri=checkpoint_uri,
        model_units=model_units,
        role_arn=role_arn,
        mode=BedrockMode.ON_DEMAND if target == "bedrock_od" else BedrockMode.PROVISIONED,
    )
    deployment = deploy_bedrock(bedrock_spec, backoff=backoff, sleep=sleep, settings=settings)
    return Served(target, name, deployment.invoke_arn, deployment.status, deployment)


def ask(
    target: str,
    invoke_id: str,
    prompt: str,
    *,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float | None = 0.0,
    stream: bool = False,
    on_text: Callable[[str], None] | None = None,
    settings: NovaflowSettings,
) -> Completion | StreamResult:
    """Invoke a deployment: SageMaker InvokeEndpoint(+WithResponseStream) or Bedrock Converse(Stream).

    ``invoke_id`` is the endpoint name (SageMaker) or the deployment / provisioned-model ARN (Bedrock).
    """
    check_target(target)
    if not invoke_id:
        raise ConfigError("Nothing to invoke: give the endpoint name or the Bedrock deployment ARN.")
    common: dict[str, Any] = {
        "system": system,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "settings": settings,
    }
    if target in SAGEMAKER_TARGETS:
        endpoint, _, component = invoke_id.partition(COMPONENT_SEPARATOR)
        if target == "sagemaker_ic" and not component:
            raise ConfigError(f"{invoke_id}: name the inference component to invoke, as <endpoint>/<component>.")
        common["inference_component"] = component or None
        if stream:
            return invoke_endpoint_stream(endpoint, prompt, on_text=on_text, **common)
        return invoke_endpoint(endpoint, prompt, **common)
    if stream:
        return converse_stream(invoke_id, prompt, on_text=on_text, **common)
    return converse(invoke_id, prompt, **common)


def resolve_invoke_id(target: str, name: str, settings: NovaflowSettings) -> str:
    """What to invoke for a deployment name: the endpoint name, or the Bedrock deployment / provisioned ARN."""
    check_target(target)
    if target == "sagemaker_ic":
        if COMPONENT_SEPARATOR in name:
            return name
        names = [c.name for c in list_components(name, settings)]
        if len(names) != 1:
            raise ConfigError(
                f"Endpoint {name} has {len(names)} inference components ({', '.join(names) or 'none'}): "
                f"invoke one as {name}{COMPONENT_SEPARATOR}<component>."
            )
        return f"{name}{COMPONENT_SEPARATOR}{names[0]}"
    if target == "sagemaker" or name.startswith("arn:"):
        return name
    return str(deployment_status(target, name, settings)["arn"])


def deployment_status(target: str, name: str, settings: NovaflowSettings) -> dict[str, Any]:
    """``{"name", "arn", "status", "failure_reason", "managed"}`` of a deployment; DeployError when missing."""
    check_target(target)
    if target in SAGEMAKER_TARGETS:
        name = name.partition(COMPONENT_SEPARATOR)[0]
        status = describe_endpoint_status(name, settings)
        if status is None:
            raise DeployError(f"SageMaker endpoint {name} does not exist.")
        return {
            "name": name,
            "arn": status.endpoint_arn,
            "status": status.status,
            "failure_reason": status.failure_reason,
            "managed": status.managed,
            "config": status.config_name,
        }
    bedrock = get_client("bedrock", settings)
    try:
        if target == "bedrock_od":
            desc = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=name)
            arn = desc["customModelDeploymentArn"]
        else:
            desc = bedrock.get_provisioned_model_throughput(provisionedModelId=name)
            arn = desc["provisionedModelArn"]
        tags = from_aws(bedrock.list_tags_for_resource(resourceARN=arn).get("tags", []))
    except ClientError as exc:
        if is_not_found(exc):
            raise DeployError(f"Bedrock {target} deployment {name} does not exist.") from None
        raise wrap_client_error(exc, f"describe Bedrock deployment {name}") from exc
    return {
        "name": name,
        "arn": arn,
        "status": desc.get("status", ""),
        "failure_reason": desc.get("failureMessage"),
        "managed": is_managed(tags),
        "model": desc.get("modelArn", ""),
    }
