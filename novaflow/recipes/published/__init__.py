"""The service's own tables, as published in aws/sagemaker-hyperpod-recipes and derived by ``recipes/derive.py``.

``recipes.json`` holds every Nova recipe novaflow offers a family of (SFT, DPO, RLVR, CPT, evaluation): its model,
technique, instance types and count, the defaults and documented limits written in the recipe file, and the
override spec the SageMaker Public Hub serves for it. ``images.json`` holds the container image per recipe, platform
and region, the serverless regions, and the inference image per region. Both record the commit they came from;
``scripts/derive_service_specs.py`` regenerates them and ``novaflow recipes sync`` refreshes from a real account.

This module only reads the tables. Which recipe serves a novaflow model and method is decided in
:mod:`novaflow.recipes.service`.

Example:
    >>> recipe = load_published().recipes["nova_lite_2_0_p5_gpu_lora_sft"]
    >>> recipe.parameter("learning_rate").max
    1
    >>> sorted(recipe.regions("SMTJ"))
    ['ap-northeast-1', 'us-east-1', 'us-west-2']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from novaflow.errors import ConfigError

TABLE_FILES = ("recipes.json", "images.json")
HUB_TYPES = {"integer": "int", "float": "float", "boolean": "bool", "string": "str"}


@dataclass(frozen=True)
class Limits:
    """What a value may be: a type plus optional range, enum and step. Empty limits accept anything of the type."""

    min: float | None = None
    max: float | None = None
    enum: tuple[Any, ...] | None = None
    multiple_of: int | None = None

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Limits:
        enum = raw.get("enum")
        return cls(raw.get("min"), raw.get("max"), tuple(enum) if enum is not None else None, raw.get("multiple_of"))

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.min, self.max, self.enum, self.multiple_of))


@dataclass(frozen=True)
class Parameter:
    """One override parameter of the hub's spec for a recipe (hub names: ``learning_rate``, ``lora_alpha``...)."""

    name: str
    type: str
    required: bool
    default: Any
    limits: Limits
    paths: tuple[str, ...]

    @property
    def min(self) -> float | None:
        return self.limits.min

    @property
    def max(self) -> float | None:
        return self.limits.max

    @property
    def enum(self) -> tuple[Any, ...] | None:
        return self.limits.enum


@dataclass(frozen=True)
class PublishedRecipe:
    """One recipe file of the hub with everything novaflow needs to know to build and check a job from it."""

    name: str
    file: str
    kind: str
    display_name: str
    hub_model: str | None
    model_type: str
    nova_version: int
    technique: str
    peft: bool
    evaluation_task: str | None
    instance_types: tuple[str, ...]
    instance_count: int | None
    templated: bool
    template: str | None
    defaults: Mapping[str, Any]
    interpolations: Mapping[str, str]
    documented: Mapping[str, Mapping[str, Any]]
    parameters: Mapping[str, Parameter]
    images: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    serverless_regions: tuple[str, ...] = ()

    def parameter(self, name: str) -> Parameter:
        try:
            return self.parameters[name]
        except KeyError:
            raise ConfigError(f"recipe {self.name} has no hub parameter {name!r}") from None

    def parameter_at(self, path: str) -> Parameter | None:
        """The hub parameter that fills ``path`` in this recipe, if the hub places one there."""
        return next((p for p in self.parameters.values() if path in p.paths), None)

    def documented_at(self, path: str, instance_type: str | None = None) -> Limits:
        """Limits the recipe file's comment states for ``path`` (per instance family where it says so)."""
        raw = self.documented.get(path) or {}
        if "by_family" in raw:
            family = instance_family(instance_type or (self.instance_types[0] if self.instance_types else ""))
            picked = raw["by_family"].get(family) or {}
            return Limits.of({**picked, "multiple_of": raw.get("multiple_of")})
        return Limits.of(raw)

    def words_at(self, path: str) -> tuple[str, ...] | None:
        """Word options a comment lists for ``path`` (``low/high``), lower-cased."""
        words = (self.documented.get(path) or {}).get("words")
        return tuple(w.lower() for w in words) if words else None

    def regions(self, platform: str) -> frozenset[str]:
        """Regions where AWS publishes this recipe's container image for ``platform`` (SMTJ or SMHP)."""
        return frozenset(self.images.get(platform, {}))

    def image(self, platform: str, region: str) -> str | None:
        return self.images.get(platform, {}).get(region)


def instance_family(instance_type: str) -> str:
    """``ml.p5en.48xlarge`` -> ``p5en``."""
    return instance_type.removeprefix("ml.").split(".", 1)[0]


@dataclass(frozen=True)
class Published:
    """All tables, with where they came from."""

    repo: str
    commit: str
    recipes: Mapping[str, PublishedRecipe]
    inference_images: Mapping[str, str]

    def recipe(self, name: str) -> PublishedRecipe:
        """The spec of the hub recipe called ``name`` (``nova_lite_2_0_p5_gpu_lora_sft``)."""
        try:
            return self.recipes[name]
        except KeyError:
            raise ConfigError(
                f"no published recipe {name!r} in the tables derived from {self.repo}@{self.commit[:12]}"
            ) from None

    def select(self, **wanted: Any) -> list[PublishedRecipe]:
        """Recipes whose attributes equal every keyword (``hub_model=..., technique="SFT", peft=True``)."""
        return [r for r in self.recipes.values() if all(getattr(r, k) == v for k, v in wanted.items())]


def _parameter(name: str, raw: Mapping[str, Any]) -> Parameter:
    return Parameter(
        name=name,
        type=HUB_TYPES.get(str(raw.get("type")), str(raw.get("type"))),
        required=bool(raw.get("required", False)),
        default=raw.get("default"),
        limits=Limits.of(raw),
        paths=tuple(raw.get("paths") or ()),
    )


def _read(name: str, directory: str | Path | None) -> Any:
    try:
        if directory:
            text = (Path(directory) / name).read_text(encoding="utf-8")
        else:
            text = resources.files("novaflow.recipes.published").joinpath(name).read_text(encoding="utf-8")
        return json.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"published table {name} is missing in {directory or 'the package'}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"published table {name} in {directory or 'the package'} is not valid JSON: {exc}") from None


def parse_tables(recipes_doc: Mapping[str, Any], images_doc: Mapping[str, Any]) -> Published:
    images = images_doc.get("training", {})
    out: dict[str, PublishedRecipe] = {}
    for name, raw in recipes_doc["recipes"].items():
        regional = images.get(name, {})
        out[name] = PublishedRecipe(
            name=name,
            file=raw["file"],
            kind=raw["kind"],
            display_name=raw["display_name"],
            hub_model=raw.get("hub_model"),
            model_type=raw["model_type"],
            nova_version=int(raw["nova_version"]),
            technique=raw["technique"],
            peft=bool(raw["peft"]),
            evaluation_task=raw.get("evaluation_task"),
            instance_types=tuple(raw.get("instance_types") or ()),
            instance_count=raw.get("instance_count"),
            templated=bool(raw.get("templated")),
            template=raw.get("template"),
            defaults=raw.get("defaults") or {},
            interpolations=raw.get("interpolations") or {},
            documented=raw.get("documented") or {},
            parameters={k: _parameter(k, v) for k, v in (raw.get("overrides") or {}).items()},
            images={p: dict(regional.get(p) or {}) for p in ("SMTJ", "SMHP")},
            serverless_regions=tuple(regional.get("serverless_regions") or ()),
        )
    source = recipes_doc.get("source") or {}
    return Published(
        repo=str(source.get("repo", "")),
        commit=str(source.get("commit", "")),
        recipes=out,
        inference_images=dict(images_doc.get("inference") or {}),
    )


@cache
def _load(directory: str | None) -> Published:
    return parse_tables(_read("recipes.json", directory), _read("images.json", directory))


def load_published(directory: str | Path | None = None) -> Published:
    """The packaged tables, or a directory of refreshed ones (``novaflow recipes sync --out DIR``)."""
    return _load(str(directory) if directory else None)
