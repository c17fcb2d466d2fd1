"""The packaged recipes against the service's published spec (novaflow/recipes/published, derived from
aws/sagemaker-hyperpod-recipes): every offered job, on every published instance family, must carry exactly the
published keys, defaults, enums and ranges - or a documented exception (``choices.yaml``, ``TEMPLATE_OMISSIONS``)."""

from __future__ import annotations

from typing import Any

import pytest

from novaflow.catalog import SUPPORT, Method, Platform, get_model
from novaflow.recipes.build import build_recipe, choices_for, load_template, published_default
from novaflow.recipes.derive import flatten
from novaflow.recipes.limits import overridable_paths
from novaflow.recipes.overrides import get_path, resolved_value
from novaflow.recipes.package_files import read_yaml
from novaflow.recipes.published import PublishedRecipe, load_published
from novaflow.recipes.service import (
    default_count,
    eval_tasks,
    instance_counts,
    needs_own_image,
    recipes_for,
    regions,
)
from novaflow.recipes.tables import load_instance_table

LAMBDA = "arn:aws:lambda:us-east-1:111122223333:function:reward"
TEMPLATE_OMISSIONS = {
    "run.validation_data_s3_path_list": "named validation sets are a HyperPod feature; SMTJ takes one channel",
    "processor.preset_reward_function": "the recipe says not to modify it; novaflow leaves it empty (Nova 2 gen_qa)",
}
"""Published recipe keys the packaged templates leave out, and why."""


def offered_jobs() -> list[tuple[str, Method, str | None]]:
    """Every SMTJ job novaflow builds: model, method, evaluation task."""
    jobs = []
    for method, support in SUPPORT.items():
        if not support.built or Platform.SMTJ not in support.platforms:
            continue
        for model in sorted(support.models):
            tasks = list(eval_tasks(get_model(model))) if method is Method.EVALUATION else [None]
            jobs.extend((model, method, task) for task in tasks)
    return sorted(jobs, key=lambda j: (j[0], j[1].value, j[2] or ""))


def offered_recipes() -> list[tuple[str, Method, str | None, PublishedRecipe]]:
    out = []
    for model, method, task in offered_jobs():
        for recipe in recipes_for(get_model(model), method, task=task):
            out.append((model, method, task, recipe))
    return out


CASES = offered_recipes()
IDS = [f"{m}-{meth.value}-{t or ''}-{r.name}" for m, meth, t, r in CASES]


def build(model: str, method: Method, task: str | None, recipe: PublishedRecipe):
    return build_recipe(
        model,
        method,
        run_name="spec-check",
        eval_task=task,
        instance_type=recipe.instance_types[0],
        replicas=default_count(recipe),
        reward_lambda_arn=LAMBDA,
    )


@pytest.mark.parametrize(("model", "method", "task", "recipe"), CASES, ids=IDS)
def test_defaults_and_limits_equal_the_published_spec(
    model: str, method: Method, task: str | None, recipe: PublishedRecipe
) -> None:
    built = build(model, method, task, recipe)
    assert built.published == recipe
    assert built.problems == []
    chosen = choices_for(built.template)
    for key, spec in built.specs.items():
        value = resolved_value(built.recipe, get_path(built.recipe, spec.path))
        found, published = published_default(recipe, spec.path)
        if spec.path in chosen:
            assert value == chosen[spec.path]
        elif found:
            assert value == published, f"{key}: {value!r} is not the published default {published!r}"
        assert spec.problem(value) is None, f"the default of {key} fails its own spec: {spec.problem(value)}"
        hub = recipe.parameter_at(spec.path)
        if hub is not None and hub.limits:
            assert (spec.min, spec.max, spec.enum) == (hub.min, hub.max, hub.enum), key
            assert spec.source == f"hub {recipe.template}.{hub.name}"
            assert hub.name in (spec.key, *spec.names)
        elif recipe.documented_at(spec.path, recipe.instance_types[0]):
            limits = recipe.documented_at(spec.path, recipe.instance_types[0])
            assert (spec.min, spec.max, spec.enum, spec.multiple_of) == (
                limits.min,
                limits.max,
                limits.enum,
                limits.multiple_of,
            ), key
            assert spec.source == f"recipe {recipe.name}"


@pytest.mark.parametrize(("model", "method", "task", "recipe"), CASES, ids=IDS)
def test_templates_carry_every_published_key(
    model: str, method: Method, task: str | None, recipe: PublishedRecipe
) -> None:
    built = build(model, method, task, recipe)
    ours = set(flatten(built.recipe))
    theirs = set(recipe.defaults)
    missing = sorted(theirs - ours - set(TEMPLATE_OMISSIONS))
    assert missing == [], f"{built.template} lacks published keys of {recipe.name}"
    extra = sorted(p for p in set(overridable_paths(load_template(built.template))) - theirs)
    assert extra == [], f"{built.template} has keys {recipe.name} does not publish"


def test_every_choice_is_used_valid_and_different_from_what_aws_publishes() -> None:
    raw = read_yaml("choices.yaml")
    for template, items in raw.items():
        for path, item in items.items():
            assert item["why"].strip(), f"{template} {path} has no reason"
            served = [(m, meth, t, r) for m, meth, t, r in CASES if template in ("*", build(m, meth, t, r).template)]
            assert served, f"choice for unknown template {template}"
            differs = False
            for m, meth, t, r in served:
                built = build(m, meth, t, r)
                spec = next((s for s in built.specs.values() if s.path == path), None)
                if template == "*" and spec is None:
                    continue  # a choice for every template that has the key
                assert spec is not None, f"{template}: {path} is not an overridable key"
                assert spec.problem(item["value"]) is None
                differs |= published_default(r, path) != (True, item["value"])
            assert differs, f"{template} {path}: the choice equals the published default; drop it"


JOBS = sorted({(m, meth) for m, meth, _, _ in CASES}, key=lambda j: (j[0], j[1].value))


@pytest.mark.parametrize(("model", "method"), JOBS, ids=[f"{m}-{meth.value}" for m, meth in JOBS])
def test_default_instance_is_published_with_an_allowed_count(model: str, method: Method) -> None:
    table = load_instance_table()
    instance_type, count = table.default("SMTJ", model, method.value)
    found = [r for r in recipes_for(get_model(model), method) if instance_type in r.instance_types]
    assert found, f"{instance_type} is not published for {model} {method.value}"
    assert count in instance_counts(found[0])
    assert table.allowed("SMTJ", model, method.value)[instance_type] == list(instance_counts(found[0]))


def test_templates_state_the_published_defaults_of_their_default_recipe() -> None:
    """The template files read as the recipe they run as: a value there is the default recipe's value."""
    seen: set[str] = set()
    wrong: list[str] = []
    for model, method, task, recipe in CASES:
        built = build(model, method, task, recipe)
        if built.template in seen:
            continue
        defaults = load_instance_table().default("SMTJ", model, method.value)[0]
        if defaults not in recipe.instance_types:
            continue
        seen.add(built.template)
        template = load_template(built.template)
        chosen = choices_for(built.template)
        for path, value in overridable_paths(template).items():
            if isinstance(value, str) and value.startswith("${"):
                continue
            found, published = published_default(recipe, path)
            expected: Any = chosen.get(path, published if found else value)
            if value != expected:
                wrong.append(f"{built.template} {path}: {value!r}, published {expected!r} ({recipe.name})")
    assert wrong == []
    assert len(seen) >= 9


def test_regions_and_images_are_the_published_ones() -> None:
    published = load_published()
    assert published.commit == "263199555b2e1f8eb9b17459892e440f3242b5d9"
    for model, method, _, recipe in CASES:
        where = regions(recipe, get_model(model))
        if method is Method.CPT:  # published for HyperPod only: the job runs in the image you name
            assert where == [] and needs_own_image(recipe) and recipe.images["SMHP"], recipe.name
            continue
        assert where == ["ap-northeast-1", "us-east-1", "us-west-2"], recipe.name
        assert "eu-west-2" not in where
    assert sorted(published.inference_images) == ["ap-northeast-1", "eu-west-2", "us-east-1", "us-west-2"]


def test_judge_variant_per_version() -> None:
    assert "llm_judge" in eval_tasks(get_model("nova-lite")) and "rubric_llm_judge" not in eval_tasks(
        get_model("nova-lite")
    )
    assert "rubric_llm_judge" in eval_tasks(get_model("nova-lite-2")) and "llm_judge" not in eval_tasks(
        get_model("nova-lite-2")
    )
    assert "mmmu" not in eval_tasks(get_model("nova-micro"))  # text only
