"""Flat override keys (``lr``, ``max_steps``, ...) mapped onto nested recipe paths, with their allowed values.

Users think in flat names, as sagemaker v3's flat hyperparameters, the case study and the Forge SDK use them;
recipes are nested and the same leaf name lives at different paths per method (``lr`` is
``training_config.optim_config.lr`` for SFT and ``training_config.trainer.optim_config.lr`` for RFT). An explicit
path per key removes the "first leaf with that name wins" ambiguity. Validation collects every problem before
raising, because a user who fixes one typo per paid-for round trip will not thank us. Where each key's limits come
from is :mod:`novaflow.recipes.limits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novaflow.errors import RecipeError
from novaflow.recipes.package_files import read_yaml

INTERPOLATION_PREFIX = "${"


@dataclass(frozen=True)
class OverrideSpec:
    """One overridable key: where it lives and what it may be (hub override-template semantics)."""

    key: str
    path: str
    type: str
    min: float | None = None
    max: float | None = None
    enum: tuple[Any, ...] | None = None
    nullable: bool = False
    as_string: bool = False
    multiple_of: int | None = None
    names: tuple[str, ...] = ()
    """Other names a user may pass for this key (the hub's name, the full path)."""
    source: str = ""
    """Where the limits come from (``hub nova_lora_sft_2_0.learning_rate``, ``recipe <name>``, ``novaflow: ...``)."""

    def problem(self, value: Any) -> str | None:
        """None when ``value`` is allowed, else a message that says what is allowed."""
        if value is None:
            return None if self.nullable else f"{self.key} may not be null"
        kind = self.type
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
        }.get(kind, False)
        if not ok:
            return f"{self.key} must be of type {kind}, got {type(value).__name__} {value!r}"
        if self.enum is not None and value not in self.enum:
            return f"{self.key}={value!r} is not allowed; use one of {list(self.enum)}"
        if self.min is not None and value < self.min:
            return f"{self.key}={value!r} is below the minimum {self.min:g}; use a value in {self.range_text()}"
        if self.max is not None and value > self.max:
            return f"{self.key}={value!r} is above the maximum {self.max:g}; use a value in {self.range_text()}"
        if self.multiple_of and value % self.multiple_of:
            return f"{self.key}={value!r} is not a multiple of {self.multiple_of}"
        return None

    def range_text(self) -> str:
        low = "-inf" if self.min is None else format(self.min, "g")
        high = "inf" if self.max is None else format(self.max, "g")
        return f"[{low}, {high}]"

    def encode(self, value: Any) -> Any:
        """Value as written into the recipe (Bedrock SFT hyperparameters are strings)."""
        if self.as_string and value is not None:
            return format(value, "g") if isinstance(value, float) else str(value)
        return value


def load_override_specs(template: str, path: str | Path | None = None) -> dict[str, OverrideSpec]:
    raw = read_yaml("overrides.yaml", path)
    if template not in raw:
        raise RecipeError(f"No override spec for recipe template {template!r} in {path or 'overrides.yaml'}.")
    specs: dict[str, OverrideSpec] = {}
    for key, item in raw[template].items():
        enum = item.get("enum")
        specs[key] = OverrideSpec(
            key=key,
            path=item["path"],
            type=item["type"],
            min=item.get("min"),
            max=item.get("max"),
            enum=tuple(enum) if enum is not None else None,
            nullable=bool(item.get("nullable", False)),
            as_string=bool(item.get("as_string", False)),
            multiple_of=item.get("multiple_of"),
            source=str(item.get("source") or ("packaged overrides.yaml" if path is None else str(path))),
        )
    return specs


def get_path(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def coerce(spec: OverrideSpec, value: Any) -> Any:
    """CLI values arrive as strings (``lr=1e-5``); turn them into the spec's type when that is unambiguous."""
    if not isinstance(value, str) or spec.type == "str":
        if spec.type == "str" and isinstance(value, str) and value.lower() in {"null", "none"} and spec.nullable:
            return None
        if spec.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    text = value.strip()
    try:
        if spec.type == "int":
            return int(text)
        if spec.type in {"float", "number"}:
            number = float(text)
            return int(number) if spec.type == "number" and number.is_integer() and "." not in text else number
        if spec.type == "bool" and text.lower() in {"true", "false"}:
            return text.lower() == "true"
    except ValueError:
        return value
    return value


def apply_overrides(
    recipe: dict[str, Any], overrides: Mapping[str, Any], specs: Mapping[str, OverrideSpec]
) -> tuple[dict[str, Any], list[str]]:
    """Apply flat (or full-path) overrides; return the new recipe and every problem found (empty when fine)."""
    by_name = {name: spec for spec in specs.values() for name in (spec.path, *spec.names)}
    problems: list[str] = []
    for key, raw in overrides.items():
        spec = specs.get(key) or by_name.get(key) or by_name.get(key.removeprefix("recipes."))
        if spec is None:
            problems.append(f"unknown override {key!r}; allowed keys: {', '.join(sorted(specs))}")
            continue
        value = coerce(spec, raw)
        problem = spec.problem(value)
        if problem:
            problems.append(problem)
            continue
        set_path(recipe, spec.path, spec.encode(value))
    problems.extend(cross_checks(recipe, specs))
    return recipe, problems


def resolved_value(recipe: Mapping[str, Any], value: Any) -> Any:
    """Follow an ``${oc.select:path}`` interpolation the way the container's OmegaConf will."""
    if isinstance(value, str) and value.startswith("${oc.select:") and value.endswith("}"):
        return get_path(recipe, value[len("${oc.select:") : -1].split(",")[0])
    return value


def cross_checks(recipe: Mapping[str, Any], specs: Mapping[str, OverrideSpec]) -> list[str]:
    """Rules between keys: ``save_steps <= max_steps`` (as sagemaker v3 checks) and ``min_lr <= lr``."""
    problems: list[str] = []
    for low, high, fix in (
        ("save_steps", "max_steps", "set save_steps <= max_steps"),
        ("min_lr", "lr", "lower min_lr"),
    ):
        if low not in specs or high not in specs:
            continue
        try:
            small = resolved_value(recipe, get_path(recipe, specs[low].path))
            big = resolved_value(recipe, get_path(recipe, specs[high].path))
        except KeyError:
            continue
        if isinstance(small, (int, float)) and isinstance(big, (int, float)) and small > big:
            problems.append(f"{low}={small} exceeds {high}={big}; {fix}")
    return problems


def describe_overrides(recipe: Mapping[str, Any], specs: Mapping[str, OverrideSpec]) -> list[dict[str, Any]]:
    """Every overridable key with its current value and allowed range (``novaflow recipes show``)."""
    rows = []
    for key, spec in sorted(specs.items()):
        try:
            current = resolved_value(recipe, get_path(recipe, spec.path))
        except KeyError:
            current = None
        rows.append(
            {
                "key": key,
                "path": spec.path,
                "type": spec.type,
                "value": current,
                "min": spec.min,
                "max": spec.max,
                "enum": list(spec.enum) if spec.enum is not None else None,
                "multiple_of": spec.multiple_of,
                "names": list(spec.names),
                "source": spec.source,
            }
        )
    return rows
