"""Refresh the instance table from the SageMaker Public Hub (``novaflow recipes sync``).

The hub's ``RecipeCollection`` on a real account is what the service offers today: instance types and default counts
per recipe, and its image. The packaged tables are derived from the recipes repository at one commit; sync writes a
user table file that ``--instances-file`` then uses (never the packaged one) and says where the account's hub has
moved on from the packaged tables, so they can be re-derived (``scripts/derive_service_specs.py``).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from novaflow.aws import get_client, wrap_client_error
from novaflow.catalog import MODELS, Method
from novaflow.errors import RecipeError
from novaflow.recipes.published import load_published
from novaflow.recipes.tables import InstanceTable
from novaflow.settings import NovaflowSettings

HUB_NAME = "SageMakerPublicHub"


def method_of(entry: dict[str, Any]) -> str | None:
    """The novaflow method a hub recipe entry serves, or None for ones novaflow does not build."""
    if entry.get("IsSubscriptionModel") or "datamix" in str(entry.get("Name", "")):
        return None
    if entry.get("Type") == "Evaluation":
        byod = "bring your own dataset" in str(entry.get("DisplayName", "")).lower()
        return Method.EVALUATION.value if byod else None
    technique = entry.get("CustomizationTechnique")
    lora = bool(entry.get("Peft"))
    if technique == "SFT":
        return (Method.SFT_LORA if lora else Method.SFT_FULL).value
    if technique == "RLVR" and lora:
        return Method.RFT_LORA.value
    return None


def sync_instance_table(
    table: InstanceTable, settings: NovaflowSettings, client: BaseClient | None = None
) -> tuple[InstanceTable, list[str]]:
    """A copy of ``table`` updated from the hub, and a line per change (for the user to review)."""
    sm = client or get_client("sagemaker", settings)
    region = sm.meta.region_name
    changes: list[str] = []
    merged: dict[tuple[str, str], dict[str, set[int]]] = {}
    first: dict[tuple[str, str], tuple[str, int, str]] = {}
    for model in MODELS.values():
        try:
            content = sm.describe_hub_content(HubName=HUB_NAME, HubContentType="Model", HubContentName=model.hub_name)
        except ClientError as exc:
            raise wrap_client_error(exc, f"Reading hub content {model.hub_name}") from exc
        document = json.loads(content.get("HubContentDocument") or "{}")
        for entry in document.get("RecipeCollection", []):
            changes.extend(published_drift(entry, region))
            method = method_of(entry)
            types = entry.get("SupportedInstanceTypes") or []
            if method is None or not entry.get("SmtjRecipeTemplateS3Uri") or not types:
                continue
            count = int(entry.get("InstanceCount") or 1)
            try:
                known = table.allowed("SMTJ", model.key, method)
            except RecipeError:
                known = {}
            found = merged.setdefault((model.key, method), {})
            for instance_type in types:
                found.setdefault(instance_type, set(known.get(instance_type, []))).add(count)
            first.setdefault((model.key, method), (types[0], count, str(entry.get("Name"))))
    for (key, method), found in merged.items():
        allowed = {t: sorted(c) for t, c in found.items()}
        try:
            known = table.allowed("SMTJ", key, method)
            default = list(table.default("SMTJ", key, method))
        except RecipeError:
            known, default = {}, []
        instance_type, count, name = first[(key, method)]
        if not default or default[0] not in allowed or default[1] not in allowed[default[0]]:
            default = [instance_type, count]
        if known != allowed:
            changes.append(
                f"{key} {method}: {sorted(known)} -> {sorted(allowed)} (default {default[0]} x {default[1]}, "
                f"from {name})"
            )
        table = table.with_entry("SMTJ", key, method, {"default": default, "allowed": allowed})
    return table, changes


def published_drift(entry: dict[str, Any], region: str) -> list[str]:
    """Where a hub recipe entry differs from the packaged tables (types, SMTJ image in ``region``)."""
    published = load_published()
    recipe = published.recipes.get(str(entry.get("Name")))
    if recipe is None:
        return []
    where = f"packaged tables ({published.repo}@{published.commit[:12]})"
    lines = []
    types = list(entry.get("SupportedInstanceTypes") or [])
    if types and sorted(types) != sorted(recipe.instance_types):
        lines.append(
            f"hub recipe {recipe.name}: instance types {sorted(types)}, {where} {sorted(recipe.instance_types)}"
        )
    image = entry.get("SmtjImageUri")
    if image and recipe.image("SMTJ", region) not in (None, image):
        lines.append(f"hub recipe {recipe.name}: image {image} in {region}, {where} {recipe.image('SMTJ', region)}")
    return lines
