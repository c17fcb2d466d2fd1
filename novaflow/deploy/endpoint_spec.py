"""What a SageMaker Nova endpoint is made of, and the exact CreateModel / CreateEndpointConfig / CreateEndpoint
requests for it (docs/inference.md#sagemaker-endpoint), built offline so they can be validated and shown before
spending.

Model and endpoint-config names carry a hash of the spec: an update in place needs new names, and a re-run of
the same spec finds its own resources instead of creating duplicates.

Example:
    >>> spec = EndpointSpec(endpoint_name="nova-sft", checkpoint_uri="s3://escrow/job/outputs/checkpoints",
    ...                     instance_type="ml.g6.48xlarge",
    ...                     environment=EndpointEnvironment(context_length=8000, max_concurrency=8))
    >>> build_model_request(spec, region="us-east-1", role_arn="arn:aws:iam::123456789012:role/r")["ModelName"]
    'nova-sft-...'
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from novaflow.catalog import DEFAULT_MODEL, canonical_model
from novaflow.deploy.environment import EndpointEnvironment
from novaflow.deploy.images import inference_image_uri
from novaflow.deploy.tags import ESCROW_TAG_KEY, SPEC_KEY, escrow_tag_value, novaflow_tags, to_aws
from novaflow.deploy.tiers import Tier

NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_NAME = 63
VARIANT_NAME = "primary"


def check_resource_name(value: str) -> str:
    """SageMaker and Bedrock deployment names: letters, digits, hyphens, <= 63 characters."""
    if not NAME_RE.match(value):
        raise ValueError("must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit")
    return value


def check_checkpoint_uri(value: str) -> str:
    """An ``s3://bucket/prefix`` checkpoint, returned without trailing slashes (callers add exactly one)."""
    if not value.startswith("s3://") or len(value) <= 5 or value[5] == "/":
        raise ValueError("must be an s3:// URI of the checkpoint prefix (manifest.json checkpoint_s3_bucket)")
    return value.rstrip("/")


class DeployMode(str, Enum):
    """``create`` fails when the endpoint exists (unless it already runs this exact spec);
    ``update`` switches an existing novaflow endpoint to a new endpoint config with ``UpdateEndpoint``."""

    CREATE = "create"
    UPDATE = "update"


class EndpointSpec(BaseModel):
    """A Nova model served from a training checkpoint on a SageMaker real-time endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_name: str = Field(description="SageMaker endpoint name (letters, digits, hyphens; <= 63).")
    checkpoint_uri: str = Field(description="Escrow checkpoint prefix from manifest.json (checkpoint_s3_bucket).")
    model: str = Field(DEFAULT_MODEL, description="Nova model the checkpoint was trained from (any alias).")
    instance_type: str = Field("ml.p5.48xlarge", description="Hosting instance type (must have a tier).")
    instance_count: int = Field(1, ge=1, le=16, description="Initial instance count of the variant.")
    environment: EndpointEnvironment = Field(default_factory=EndpointEnvironment)
    role_arn: str | None = Field(None, description="Execution role; created (least privilege) when unset.")

    _check_name = field_validator("endpoint_name")(check_resource_name)
    _check_checkpoint = field_validator("checkpoint_uri")(check_checkpoint_uri)

    _check_model = field_validator("model")(canonical_model)

    def validate_tier(self) -> Tier:
        """The tier this spec fits; ConfigError naming the allowed tiers. Offline."""
        return self.environment.tier_for(self.model, self.instance_type)

    def spec_hash(self) -> str:
        """8 hex characters identifying everything that shapes the deployed model (not the role)."""
        payload = self.model_dump(exclude={"role_arn"}, mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def model_name(self) -> str:
        return derived_name(self.endpoint_name, self.spec_hash())

    @property
    def config_name(self) -> str:
        return derived_name(self.endpoint_name, f"{self.spec_hash()}-config")

    def tags(self) -> dict[str, str]:
        return {**novaflow_tags(self.endpoint_name), SPEC_KEY: self.spec_hash()}


def derived_name(base: str, suffix: str) -> str:
    """``<base>-<suffix>`` within SageMaker's 63 characters (the base is cut, never the suffix)."""
    room = MAX_NAME - len(suffix) - 1
    return f"{base[:room].rstrip('-')}-{suffix}"


def build_model_request(spec: EndpointSpec, *, region: str, role_arn: str) -> dict[str, Any]:
    """``CreateModel``: inference image of the region, checkpoint as an uncompressed S3 prefix ending in ``/``,
    network isolation on (the container needs no internet; the checkpoint comes from S3)."""
    tags = {**spec.tags(), ESCROW_TAG_KEY: escrow_tag_value(spec.checkpoint_uri)}
    return {
        "ModelName": spec.model_name,
        "PrimaryContainer": {
            "Image": inference_image_uri(region),
            "Environment": spec.environment.to_env(),
            "ModelDataSource": {
                "S3DataSource": {
                    "S3Uri": spec.checkpoint_uri + "/",
                    "S3DataType": "S3Prefix",
                    "CompressionType": "None",
                }
            },
        },
        "ExecutionRoleArn": role_arn,
        "EnableNetworkIsolation": True,
        "Tags": to_aws(tags),
    }


def build_endpoint_config_request(spec: EndpointSpec) -> dict[str, Any]:
    """``CreateEndpointConfig`` with one variant serving the model."""
    return {
        "EndpointConfigName": spec.config_name,
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": spec.model_name,
                "InitialInstanceCount": spec.instance_count,
                "InstanceType": spec.instance_type,
            }
        ],
        "Tags": to_aws(spec.tags()),
    }


def build_endpoint_request(spec: EndpointSpec) -> dict[str, Any]:
    """``CreateEndpoint`` pointing at the spec's endpoint config."""
    return {"EndpointName": spec.endpoint_name, "EndpointConfigName": spec.config_name, "Tags": to_aws(spec.tags())}
