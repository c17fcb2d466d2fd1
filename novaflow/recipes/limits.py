"""What each key of a recipe may be, and which published source says so.

Every leaf of a packaged template is overridable except the ones novaflow fills in (name, model, data, replicas,
Lambda ARNs). A key's limits come from the first source that states any, in this order:

1. ``hub``: the SageMaker Public Hub's override spec for the recipe (``novaflow/recipes/published``), which is
   also what sagemaker v3 validates against;
2. ``recipe``: the limits written in the recipe file's own comment (per instance family where it says so);
3. ``hub (HyperPod)`` / ``hub (BYOD)``: the hub spec of the same model's HyperPod recipe (RFT rollout keys) or
   bring-your-own-dataset recipe (the judge and RFT evaluations), when that spec places a parameter at the same
   path;
4. ``hub max_context_length``: the hub's sequence-length parameter, for ``training_config.max_length``;
5. ``novaflow``: novaflow's own bounds (``overrides.yaml``, section ``extra``) for keys no source constrains;
6. otherwise only the type of the template's value.

Users may name a key by its leaf (``lr``, as the case study and the Forge SDK do), by the hub's name
(``learning_rate``), or by its full path (with or without ``recipes.``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from novaflow.recipes.derive import flatten
from novaflow.recipes.overrides import OverrideSpec
from novaflow.recipes.package_files import read_yaml
from novaflow.recipes.published import Limits, PublishedRecipe, load_published

FILLED_LEAVES = frozenset(
    {
        "name",
        "model_type",
        "model_name_or_path",
        "replicas",
        "data_s3_path",
        "output_s3_path",
        "validation_data_s3_path",
        "reward_lambda_arn",
        "lambda_arn",
        "peft_scheme",
        "task",
        "strategy",
        "metric",
        "preset_reward_function",
    }
)
"""Leaves novaflow sets itself (or AWS says not to change); ``processor.lambda_arn`` stays overridable."""
OVERRIDABLE_PATHS = frozenset({"processor.lambda_arn", "evaluation.subtask"})
FIXED_PATHS = frozenset({"training_config.model.optim.name"})
HUB_TYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str"}


def _type_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) or value is None:
        return "str"
    return None


def overridable_paths(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Template leaf path -> its value, for every leaf a user may override."""
    out = {}
    for path, value in flatten(tree).items():
        leaf = path.rsplit(".", 1)[-1]
        if path in FIXED_PATHS or (leaf in FILLED_LEAVES and path not in OVERRIDABLE_PATHS):
            continue
        if isinstance(value, str) and value.startswith("{{"):
            continue
        if isinstance(value, (list, dict)):
            continue
        out[path] = value
    return out


def _sibling_parameter(recipe: PublishedRecipe, path: str) -> tuple[str, Any] | None:
    """A parameter another published recipe of the same model places at ``path`` (HyperPod, then BYOD)."""
    published = load_published()
    if recipe.technique == "EVALUATION":
        family, siblings = "BYOD", published.select(hub_model=recipe.hub_model, evaluation_task="gen_qa")
    else:
        family = "HyperPod"
        siblings = [
            r
            for r in published.select(hub_model=recipe.hub_model, technique=recipe.technique, peft=recipe.peft)
            if r.images.get("SMHP")
        ]
    for sibling in sorted(siblings, key=lambda r: r.name):
        if sibling.name != recipe.name and (param := sibling.parameter_at(path)) is not None and param.limits:
            return f"hub (HyperPod) {sibling.template}.{param.name}" if family == "HyperPod" else (
                f"hub (BYOD) {sibling.template}.{param.name}"
            ), param
    return None


def _extra(template: str) -> dict[str, dict[str, Any]]:
    return dict((read_yaml("overrides.yaml").get("extra") or {}).get(template) or {})


def derive_specs(
    template: str, tree: Mapping[str, Any], recipe: PublishedRecipe | None, instance_type: str | None = None
) -> dict[str, OverrideSpec]:
    """The override spec of every overridable key of ``tree`` when it runs as ``recipe`` (see module docstring)."""
    paths = overridable_paths(tree)
    leaves = Counter(p.rsplit(".", 1)[-1] for p in paths)
    extra = _extra(template)
    context = recipe.parameters.get("max_context_length") if recipe else None
    specs: dict[str, OverrideSpec] = {}
    for path, value in paths.items():
        leaf = path.rsplit(".", 1)[-1]
        key = leaf if leaves[leaf] == 1 else path
        names = {key, path, f"recipes.{path}"}
        hub = recipe.parameter_at(path) if recipe else None
        if hub is not None:
            names.add(hub.name)
        if path == "training_config.max_length" and context is not None:
            names.add("max_context_length")
        limits, source, words, declared = _limits(path, recipe, hub, instance_type, extra.get(path), context)
        kind = declared or _type_of(value) or "str"
        if kind == "int" and (isinstance(value, float) or _has_float_bound(limits)):
            kind = "float"
        enum = limits.enum if words is None else words
        if kind == "str" and extra.get(path, {}).get("enum") and enum is None:
            enum = tuple(extra[path]["enum"])
        specs[key] = OverrideSpec(
            key=key,
            path=path,
            type="number" if kind == "float" and type(value) is int else kind,
            min=limits.min,
            max=limits.max,
            enum=enum,
            nullable=value is None or bool(extra.get(path, {}).get("nullable")),
            multiple_of=limits.multiple_of,
            names=tuple(sorted(names - {key})),
            source=source,
        )
    return specs


def _has_float_bound(limits: Limits) -> bool:
    return any(isinstance(v, float) for v in (limits.min, limits.max))


def _limits(
    path: str,
    recipe: PublishedRecipe | None,
    hub: Any,
    instance_type: str | None,
    extra: Mapping[str, Any] | None,
    context: Any,
) -> tuple[Limits, str, tuple[Any, ...] | None, str | None]:
    """(limits, their source, word options, the declared type) for one path; see the module docstring's order."""
    hub_type = HUB_TYPES.get(hub.type) if hub is not None else None
    extra_type = str(extra["type"]) if extra and "type" in extra else None
    if recipe is not None:
        if hub is not None and hub.limits:
            return hub.limits, f"hub {recipe.template}.{hub.name}", None, hub_type
        documented = recipe.documented_at(path, instance_type)
        words = recipe.words_at(path)
        if documented or words:
            return documented, f"recipe {recipe.name}", words, hub_type or extra_type
        if sibling := _sibling_parameter(recipe, path):
            return sibling[1].limits, sibling[0], None, hub_type or HUB_TYPES.get(sibling[1].type)
        if path == "training_config.max_length" and context is not None and context.limits:
            return context.limits, f"hub {recipe.template}.max_context_length", None, "int"
    if extra:
        return Limits.of(extra), f"novaflow: {extra.get('why', 'no published limit')}", None, hub_type or extra_type
    return Limits(), "type only (no published limit)", None, hub_type or extra_type
