"""Refresh the instance table from the SageMaker Public Hub (``novaflow recipes sync``).

The hub's ``RecipeCollection`` is AWS's source of truth for supported instance types and default counts
; the packaged table (derived from the recipes repository) is only a default. Sync writes a user table file that
``--instances-file`` then uses, and never touches the packaged one.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from novaflow.aws import get_client, wrap_client_error
from novaflow.catalog import MODELS, Method
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
    table: InstanceTable, settings: NovaflowSettings | None = None, client: BaseClient | None = None
) -> tuple[InstanceTable, list[str]]:
    """A copy of ``table`` updated from the hub, and a line per change (for the user to review)."""
    sm = client or get_client("sagemaker", settings)
    changes: list[str] = []
    for model in MODELS.values():
        try:
            content = sm.describe_hub_content(HubName=HUB_NAME, HubContentType="Model", HubContentName=model.hub_name)
        except ClientError as exc:
            raise wrap_client_error(exc, f"Reading hub content {model.hub_name}") from exc
        document = json.loads(content.get("HubContentDocument") or "{}")
        for entry in document.get("RecipeCollection", []):
            method = method_of(entry)
            types = entry.get("SupportedInstanceTypes") or []
            if method is None or not entry.get("SmtjRecipeTemplateS3Uri") or not types:
                continue
            count = int(entry.get("InstanceCount") or 1)
            try:
                known = table.allowed("SMTJ", model.key, method)
            except Exception:
                known = {}
            allowed = {t: sorted(set(known.get(t, [])) | {count}) for t in types}
            new = {"default": [types[0], count], "allowed": allowed}
            if known != allowed:
                changes.append(
                    f"{model.key} {method}: {sorted(known)} -> {sorted(allowed)} (default {types[0]} x "
                    f"{count}, from {entry.get('Name')})"
                )
            table = table.with_entry("SMTJ", model.key, method, new)
    return table, changes
