"""Deploy a Nova checkpoint on Amazon Bedrock: a custom model, then an on-demand deployment or provisioned
throughput (docs/inference.md#bedrock).

A custom model takes long to create and is billed for storage, so one that already exists for the same
checkpoint (found by the escrow-URI tag, chosen deterministically - the Forge SDK once picked an arbitrary one)
is reused. Creation requests carry a client token derived from the spec, so a retried call cannot create twice.

Example:
    >>> deployment = deploy_bedrock(BedrockSpec(name="nova-sft-od", checkpoint_uri=ckpt))   # doctest: +SKIP
    >>> converse(deployment.invoke_arn, "Is this a good question?").text                      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from novaflow.aws import get_client, is_not_found, wrap_client_error
from novaflow.backoff import Backoff
from novaflow.deploy.endpoint_spec import check_checkpoint_uri, check_resource_name
from novaflow.deploy.roles import ensure_execution_role
from novaflow.deploy.tags import (
    ESCROW_TAG_KEY,
    escrow_tag_value,
    from_aws,
    is_managed,
    novaflow_tags,
    to_bedrock,
)
from novaflow.deploy.waiting import SERVING_WAIT, wait_for_status
from novaflow.errors import DeployError
from novaflow.settings import NovaflowSettings, load_settings


class BedrockMode(str, Enum):
    """On-demand (pay per token) or provisioned throughput (pay per hour per model unit)."""

    ON_DEMAND = "on-demand"
    PROVISIONED = "provisioned"


class BedrockSpec(BaseModel):
    """A checkpoint served by Bedrock under a deployment (or provisioned model) name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Deployment / provisioned model name (letters, digits, hyphens; <= 63).")
    checkpoint_uri: str = Field(description="Escrow checkpoint prefix from manifest.json.")
    mode: BedrockMode = BedrockMode.ON_DEMAND
    model_units: int = Field(1, ge=1, description="Model units for provisioned throughput.")
    role_arn: str | None = Field(None, description="Role Bedrock reads the checkpoint with; created when unset.")

    _check_name = field_validator("name")(check_resource_name)
    _check_checkpoint = field_validator("checkpoint_uri")(check_checkpoint_uri)

    def token(self, what: str) -> str:
        """Idempotency token for one creation request of this spec."""
        raw = f"{what}|{self.name}|{self.checkpoint_uri}|{self.mode.value}|{self.model_units}"
        return hashlib.sha256(raw.encode()).hexdigest()[:64]

    @property
    def custom_model_name(self) -> str:
        suffix = hashlib.sha256(self.checkpoint_uri.encode()).hexdigest()[:8]
        return f"{self.name[:54].rstrip('-')}-{suffix}"


@dataclass
class BedrockDeployment:
    """What a Bedrock deploy produced: the ARN to invoke is ``invoke_arn``."""

    name: str
    mode: BedrockMode
    custom_model_arn: str
    custom_model_reused: bool
    invoke_arn: str
    status: str
    role_arn: str
    role_created: bool
    reused: bool = False


def find_custom_model(checkpoint_uri: str, settings: NovaflowSettings | None = None) -> str | None:
    """ARN of an existing, not-failed custom model tagged with this checkpoint; novaflow's own first, then the
    oldest (then by ARN), so the choice is the same on every run."""
    bedrock = get_client("bedrock", settings)
    wanted = escrow_tag_value(checkpoint_uri.rstrip("/"))
    candidates: list[tuple[int, Any, str]] = []
    token: str | None = None
    try:
        while True:
            page = bedrock.list_custom_models(**({"nextToken": token} if token else {}))
            for summary in page.get("modelSummaries", []):
                arn = summary["modelArn"]
                tags = from_aws(bedrock.list_tags_for_resource(resourceARN=arn).get("tags", []))
                if tags.get(ESCROW_TAG_KEY) != wanted:
                    continue
                if bedrock.get_custom_model(modelIdentifier=arn).get("modelStatus") == "Failed":
                    continue
                candidates.append((0 if is_managed(tags) else 1, summary.get("creationTime"), arn))
            token = page.get("nextToken")
            if not token:
                break
    except ClientError as exc:
        raise wrap_client_error(exc, "look up custom models by checkpoint tag") from exc
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], str(c[1]), c[2]))
    return candidates[0][2]


def deploy_bedrock(
    spec: BedrockSpec,
    *,
    wait: bool = True,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    settings: NovaflowSettings | None = None,
) -> BedrockDeployment:
    """Custom model (reused or created, waited Active), then the deployment (waited Active / InService).

    An existing deployment of the same name is reused when novaflow made it for this checkpoint's model and
    refused otherwise - Bedrock deployments are not updated in place here.
    """
    settings = settings or load_settings()
    bedrock = get_client("bedrock", settings)
    backoff = backoff or SERVING_WAIT
    waiting: dict[str, Any] = {"backoff": backoff, "sleep": sleep, "clock": clock}

    existing = _existing_deployment(bedrock, spec)
    model_arn = find_custom_model(spec.checkpoint_uri, settings)
    if existing is not None:
        tags = from_aws(bedrock.list_tags_for_resource(resourceARN=existing["arn"]).get("tags", []))
        if not is_managed(tags, spec.name) or existing["modelArn"] != model_arn:
            raise DeployError(
                f"Bedrock {spec.mode.value} deployment {spec.name} already exists for another model "
                f"or was not created by novaflow; delete it first or choose another name."
            )
        status = _wait_deployment(bedrock, spec, existing["arn"], wait, waiting)
        return BedrockDeployment(
            spec.name, spec.mode, model_arn, True, existing["arn"], status, spec.role_arn or "", False, reused=True
        )

    role_arn, role_created = spec.role_arn or "", False
    if spec.role_arn is None:
        role = ensure_execution_role(spec.name, "bedrock", checkpoint_uri=spec.checkpoint_uri, settings=settings)
        role_arn, role_created = role.arn, role.created
    reused = model_arn is not None
    try:
        if model_arn is None:
            request: dict[str, Any] = {
                "modelName": spec.custom_model_name,
                "roleArn": role_arn,
                "modelSourceConfig": {"s3DataSource": {"s3Uri": spec.checkpoint_uri}},
                "modelTags": to_bedrock(
                    {**novaflow_tags(spec.name), ESCROW_TAG_KEY: escrow_tag_value(spec.checkpoint_uri)}
                ),
                "clientRequestToken": spec.token("custom-model"),
            }
            if settings.kms_key_id:
                request["modelKmsKeyArn"] = settings.kms_key_id
            model_arn = bedrock.create_custom_model(**request)["modelArn"]
        if wait:
            wait_for_status(
                f"Bedrock custom model {model_arn}",
                lambda: bedrock.get_custom_model(modelIdentifier=model_arn),
                lambda d: d.get("modelStatus", "Active"),
                done={"Active"},
                failed={"Failed"},
                failure_reason=lambda d: d.get("failureMessage"),
                **waiting,
            )
        resource_tags = to_bedrock(novaflow_tags(spec.name))
        if spec.mode is BedrockMode.ON_DEMAND:
            arn = bedrock.create_custom_model_deployment(
                modelDeploymentName=spec.name,
                modelArn=model_arn,
                tags=resource_tags,
                description=f"novaflow deployment of {spec.checkpoint_uri}"[:200],
                clientRequestToken=spec.token("deployment"),
            )["customModelDeploymentArn"]
        else:
            arn = bedrock.create_provisioned_model_throughput(
                modelUnits=spec.model_units,
                provisionedModelName=spec.name,
                modelId=model_arn,
                tags=resource_tags,
                clientRequestToken=spec.token("provisioned"),
            )["provisionedModelArn"]
    except ClientError as exc:
        raise wrap_client_error(exc, f"Bedrock deploy {spec.name}") from exc
    status = _wait_deployment(bedrock, spec, arn, wait, waiting)
    return BedrockDeployment(spec.name, spec.mode, model_arn, reused, arn, status, role_arn, role_created)


def _existing_deployment(bedrock: Any, spec: BedrockSpec) -> dict[str, str] | None:
    try:
        if spec.mode is BedrockMode.ON_DEMAND:
            page = bedrock.list_custom_model_deployments(nameContains=spec.name)
            for item in page.get("modelDeploymentSummaries", []):
                if item.get("customModelDeploymentName") == spec.name:
                    return {"arn": item["customModelDeploymentArn"], "modelArn": item.get("modelArn", "")}
            return None
        desc = bedrock.get_provisioned_model_throughput(provisionedModelId=spec.name)
        return {"arn": desc["provisionedModelArn"], "modelArn": desc.get("modelArn", "")}
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise wrap_client_error(exc, f"look up Bedrock deployment {spec.name}") from exc


def _wait_deployment(bedrock: Any, spec: BedrockSpec, arn: str, wait: bool, waiting: dict[str, Any]) -> str:
    if spec.mode is BedrockMode.ON_DEMAND:

        def poll() -> dict[str, Any]:
            return bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)

        done = {"Active"}
    else:

        def poll() -> dict[str, Any]:
            return bedrock.get_provisioned_model_throughput(provisionedModelId=arn)

        done = {"InService"}
    if not wait:
        return str(poll().get("status", ""))
    try:
        outcome = wait_for_status(
            f"Bedrock {spec.mode.value} deployment {spec.name}",
            poll,
            lambda d: d.get("status", ""),
            done=done,
            failed={"Failed"},
            failure_reason=lambda d: d.get("failureMessage"),
            **waiting,
        )
    except ClientError as exc:
        raise wrap_client_error(exc, f"wait for Bedrock deployment {spec.name}") from exc
    return outcome.status
