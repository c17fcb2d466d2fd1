"""Close moto 5.2.5's gaps in the SageMaker model registry, where novaflow's lineage and approvals live.

Stock moto replaces a version's ``CustomerMetadataProperties`` and ``ApprovalDescription`` with nothing when an
``UpdateModelPackage`` does not name them (AWS keeps them, and merges new metadata keys into the old ones), leaves
a new version without an approval status (AWS: ``PendingManualApproval``), overwrites a model package group whose
name is reused (AWS refuses), and ignores ``ClientToken`` (AWS answers a repeated create with the version the
token already made). Each of these would let a test pass that fails on AWS, so they are fixed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.sagemaker import models as sm_models
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.utils import arn_formatter

PENDING = "PendingManualApproval"


def _create_group(original: Callable[..., str]) -> Callable[..., str]:
    def create_model_package_group(self: Any, model_package_group_name: str, *args: Any, **kwargs: Any) -> str:
        if model_package_group_name in self.model_package_groups:
            arn = arn_formatter("model-package-group", model_package_group_name, self.account_id, self.region_name)
            raise ValidationError(f"Model Package Group already exists: {arn}")
        return original(self, model_package_group_name, *args, **kwargs)

    return create_model_package_group


def _create_package(original: Callable[..., str]) -> Callable[..., str]:
    def create_model_package(self: Any, **kwargs: Any) -> str:
        token = kwargs.get("client_token")
        group = kwargs.get("model_package_group_name")
        if token:
            for package in self.model_packages.values():
                if package.client_token == token and package.model_package_group_name == group:
                    return str(package.arn)
        if group and kwargs.get("model_approval_status") is None:
            kwargs["model_approval_status"] = PENDING
        return original(self, **kwargs)

    return create_model_package


def update_model_package(
    self: Any,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str] | None,
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    """UpdateModelPackage as AWS: only what the request names changes; metadata keys merge."""
    name = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
    package = self.model_packages.get(name)
    if package is None:
        raise ValidationError(f"Model package {model_package_arn} not found")
    if model_approval_status is not None:
        package.set_model_approval_status(model_approval_status)
    if approval_description is not None:
        package.approval_description = approval_description
    if customer_metadata_properties:
        merged = dict(package.customer_metadata_properties or {})
        merged.update(customer_metadata_properties)
        package.customer_metadata_properties = merged
    for key in customer_metadata_properties_to_remove or []:
        (package.customer_metadata_properties or {}).pop(key, None)
    if additional_inference_specifications_to_add:
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
    package.modifications_done()
    return str(package.arn)


def install() -> None:
    """Install the registry patches into this process (idempotent)."""
    backend = sm_models.SageMakerModelBackend
    if backend.update_model_package is update_model_package:
        return
    backend.create_model_package_group = _create_group(backend.create_model_package_group)  # type: ignore[method-assign]
    backend.create_model_package = _create_package(backend.create_model_package)  # type: ignore[method-assign]
    backend.update_model_package = update_model_package  # type: ignore[method-assign]
