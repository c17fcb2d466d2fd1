"""The tags that mark what novaflow created, so teardown can prove a resource is ours before deleting it.

SageMaker and IAM spell tags ``{"Key", "Value"}``; Bedrock spells them ``{"key", "value"}``. Everything novaflow
creates for a deployment carries ``novaflow:managed=true`` and ``novaflow:deployment=<name>``; nothing without
both is ever deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

MANAGED_KEY = "novaflow:managed"
DEPLOYMENT_KEY = "novaflow:deployment"
SPEC_KEY = "novaflow:spec-hash"
ESCROW_TAG_KEY = "sagemaker.amazonaws.com/forge/escrow-uri"
MAX_TAG_VALUE = 256


def novaflow_tags(deployment: str, **extra: str) -> dict[str, str]:
    """The tag map for a resource of ``deployment`` (extra keys are prefixed with ``novaflow:``)."""
    tags = {MANAGED_KEY: "true", DEPLOYMENT_KEY: deployment}
    for key, value in extra.items():
        tags[f"novaflow:{key.replace('_', '-')}"] = value
    return tags


def escrow_tag_value(checkpoint_uri: str) -> str:
    """The escrow-URI tag value: the URI itself, or its sha256 when longer than a tag value may be."""
    if len(checkpoint_uri) <= MAX_TAG_VALUE:
        return checkpoint_uri
    return hashlib.sha256(checkpoint_uri.encode()).hexdigest()


def to_aws(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """SageMaker / IAM form: ``[{"Key": k, "Value": v}]``, sorted for deterministic requests."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def to_bedrock(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """Bedrock form: ``[{"key": k, "value": v}]``, sorted."""
    return [{"key": k, "value": v} for k, v in sorted(tags.items())]


def from_aws(tags: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """A tag map from either spelling."""
    out: dict[str, str] = {}
    for tag in tags:
        key = tag.get("Key", tag.get("key"))
        value = tag.get("Value", tag.get("value", ""))
        if key is not None:
            out[key] = value
    return out


def is_managed(tags: Mapping[str, str], deployment: str | None = None) -> bool:
    """True only when novaflow's managed tag is set (and, if given, the deployment tag matches)."""
    if tags.get(MANAGED_KEY) != "true":
        return False
    return deployment is None or tags.get(DEPLOYMENT_KEY) == deployment
