"""Instance tables and the price table: packaged defaults that a user file can replace.

AWS changes allowed instance types and counts more often than we release, so every table is plain YAML shipped
as package data and every loader takes an optional path to the user's edited copy.

Example:
    >>> table = load_instance_table()
    >>> table.default("SMTJ", "nova-lite-2", "sft_lora")
    ('ml.p5.48xlarge', 4)
    >>> table.allowed("SMTJ", "nova-micro", "sft_lora")["ml.g5.48xlarge"]
    [1]
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from novaflow.catalog import MODELS
from novaflow.errors import RecipeError
from novaflow.recipes.package_files import read_yaml
from novaflow.recipes.service import TECHNIQUES, default_count, instance_table, recipes_for


@dataclass(frozen=True)
class InstanceTable:
    """``platform -> model -> method -> {default: [type, count], allowed: {type: [counts]}}``."""

    data: dict[str, Any]
    source: str = "packaged"

    def _entry(self, platform: str, model: str, method: str) -> dict[str, Any]:
        entry = self.data.get(platform, {}).get(model, {}).get(method)
        if not entry:
            raise RecipeError(
                f"No instance table entry for {method} of {model} on {platform} (in {self.source}): "
                f"add one to your instances file or run `novaflow recipes sync`."
            )
        return entry

    def default(self, platform: str, model: str, method: str) -> tuple[str, int]:
        instance_type, count = self._entry(platform, model, method)["default"]
        return str(instance_type), int(count)

    def allowed(self, platform: str, model: str, method: str) -> dict[str, list[int]]:
        return {str(k): [int(c) for c in v] for k, v in self._entry(platform, model, method)["allowed"].items()}

    def check(self, platform: str, model: str, method: str, instance_type: str, count: int) -> str | None:
        """None when allowed, else the problem with the allowed choices (the fix)."""
        allowed = self.allowed(platform, model, method)
        if instance_type not in allowed:
            return (
                f"instance type {instance_type} is not allowed for {method} of {model} on {platform}; "
                f"use one of {', '.join(sorted(allowed))}"
            )
        if count not in allowed[instance_type]:
            return (
                f"instance count {count} is not allowed for {method} of {model} on {instance_type}; "
                f"use one of {allowed[instance_type]}"
            )
        return None

    def with_entry(self, platform: str, model: str, method: str, entry: dict[str, Any]) -> InstanceTable:
        data = yaml.safe_load(yaml.safe_dump(self.data))
        data.setdefault(platform, {}).setdefault(model, {})[method] = entry
        return InstanceTable(data, self.source)


def load_instance_table(path: str | Path | None = None) -> InstanceTable:
    """A user's table file, or the published instance types and counts with novaflow's default per job."""
    if path:
        return InstanceTable(read_yaml("instances.yaml", path), str(path))
    return InstanceTable(copy.deepcopy(_published_table()), "the published recipes")


@cache
def _published_table() -> dict[str, Any]:
    defaults = read_yaml("instances.yaml").get("SMTJ", {})
    out: dict[str, Any] = {}
    for key, model in MODELS.items():
        for method in TECHNIQUES:
            found = recipes_for(model, method)
            if not found:
                continue
            allowed = {t: list(c) for t, c in instance_table(model, method).items()}
            chosen = defaults.get(key, {}).get(method) or [found[0].instance_types[0], default_count(found[0])]
            out.setdefault(key, {})[method] = {"default": list(chosen), "allowed": allowed}
    return {"SMTJ": out}


@dataclass(frozen=True)
class CostEstimate:
    """instance-hours x price; an estimate from a dated, editable table, never a quote."""

    instance_type: str
    instance_count: int
    hours: float
    price_per_hour: float | None
    currency: str
    as_of: str
    basis: str
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float | None:
        if self.price_per_hour is None:
            return None
        return round(self.instance_count * self.hours * self.price_per_hour, 2)

    def describe(self) -> str:
        if self.total is None:
            return (
                f"Cost estimate unavailable: no price for {self.instance_type} in the price table "
                f"(as of {self.as_of}); add it to your prices file."
            )
        return (
            f"ESTIMATE ({self.basis}): {self.instance_count} x {self.instance_type} x {self.hours:g} h x "
            f"{self.price_per_hour:.2f} {self.currency}/h = {self.total:,.2f} {self.currency} "
            f"(price table as of {self.as_of}; edit it for your region and discounts)"
        )


@dataclass(frozen=True)
class PriceTable:
    prices: dict[str, float]
    currency: str
    as_of: str
    region: str

    def estimate(self, instance_type: str, instance_count: int, hours: float, *, basis: str) -> CostEstimate:
        return CostEstimate(
            instance_type, instance_count, hours, self.prices.get(instance_type), self.currency, self.as_of, basis
        )


def load_price_table(path: str | Path | None = None) -> PriceTable:
    raw = read_yaml("prices.yaml", path)
    return PriceTable(
        {str(k): float(v) for k, v in raw["per_instance_hour"].items()},
        str(raw["currency"]),
        str(raw["as_of"]),
        str(raw.get("region", "")),
    )
