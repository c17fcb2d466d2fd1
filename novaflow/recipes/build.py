"""Build the resolved recipe for a (model, method, platform) from a packaged template plus user overrides.

Precedence follows sagemaker v3 (and the Forge SDK before it): explicit overrides > a user recipe file > values
novaflow fills in (name, model, replicas, Lambda ARN) > novaflow's few deliberate defaults (``choices.yaml``) >
the published defaults of the recipe that serves the model and instance (:mod:`novaflow.recipes.service`) > the
template's own values. The result is plain data; :meth:`ResolvedRecipe.to_yaml` is the exact text that is uploaded
as the job's ``recipe`` channel, so it must be deterministic.

Example:
    >>> r = build_recipe("nova-lite-2", "sft_lora", run_name="demo", replicas=4, overrides={"lr": 2e-5})
    >>> r.recipe["training_config"]["optim_config"]["lr"]
    2e-05
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from novaflow.catalog import Method, NovaModel, Platform, get_model
from novaflow.errors import RecipeError
from novaflow.recipes.limits import derive_specs, overridable_paths
from novaflow.recipes.overrides import (
    OverrideSpec,
    apply_overrides,
    get_path,
    load_override_specs,
    resolved_value,
    set_path,
)
from novaflow.recipes.package_files import read_yaml
from novaflow.recipes.published import PublishedRecipe
from novaflow.recipes.service import EvalTask, eval_task, recipe_for

_PLACEHOLDER = re.compile(r"^\{\{(\w+)\}\}$")
EVAL_TEMPLATES = {
    "gen_qa": "eval_gen_qa",
    "text_benchmark": "eval_benchmark",
    "multi_modal_benchmark": "eval_benchmark",
    "llm_judge": "eval_llm_judge",
    "rubric_llm_judge": "eval_rubric_llm_judge",
    "rft_eval": "eval_rft",
}


def template_name(
    model: NovaModel, method: Method, platform: Platform = Platform.SMTJ, eval_task_name: str | None = None
) -> str:
    """The packaged template for a combination (file ``templates/<name>.yaml``)."""
    if platform is Platform.BEDROCK:
        return f"bedrock_{method.value}"
    if method is Method.EVALUATION:
        task = eval_task(model, eval_task_name)
        return f"{EVAL_TEMPLATES[task.family]}_nova{model.version}"
    if platform is Platform.SMHP and method is Method.RFT_LORA:
        return f"{method.value}_nova{model.version}_smhp"  # the hub's HyperPod RFT recipe has its own shape
    return f"{method.value}_nova{model.version}"


@cache
def _choices() -> dict[str, Any]:
    return dict(read_yaml("choices.yaml") or {})


def choices_for(template: str) -> dict[str, Any]:
    """novaflow's deliberate defaults for ``template``: path -> value (see ``choices.yaml`` for the reasons)."""
    raw = {**(_choices().get("*") or {}), **(_choices().get(template) or {})}
    return {path: item["value"] for path, item in raw.items()}


def published_default(recipe: PublishedRecipe, path: str) -> tuple[bool, Any]:
    """(found, value): the hub spec's default for ``path``, else the recipe file's value."""
    if path in recipe.interpolations:
        return False, None
    hub = recipe.parameter_at(path)
    if hub is not None and hub.default is not None:
        return True, hub.default
    if path in recipe.defaults:
        return True, recipe.defaults[path]
    return False, None


def apply_defaults(tree: dict[str, Any], template: str, recipe: PublishedRecipe | None) -> dict[str, Any]:
    """Every overridable key set to novaflow's choice, else the published recipe's default, else kept."""
    chosen = choices_for(template)
    for path, value in overridable_paths(tree).items():
        if isinstance(value, str) and value.startswith("${"):
            continue
        if path in chosen:
            set_path(tree, path, chosen[path])
            continue
        if recipe is not None:
            found, default = published_default(recipe, path)
            if found:
                set_path(tree, path, default)
    return tree


def load_template(name: str) -> dict[str, Any]:
    return copy.deepcopy(_template(name))


@cache
def _template(name: str) -> dict[str, Any]:
    path = resources.files("novaflow.recipes").joinpath("templates", f"{name}.yaml")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"No recipe template {name!r} is packaged with novaflow.") from None


def load_recipe_file(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"Recipe file {path} does not exist.") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"Recipe file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"Recipe file {path} must hold a mapping with a 'run' block.")
    return data


@dataclass
class ResolvedRecipe:
    """A recipe ready to upload, plus what it was built from."""

    template: str
    recipe: dict[str, Any]
    specs: dict[str, OverrideSpec]
    problems: list[str] = field(default_factory=list)
    published: PublishedRecipe | None = None
    """The hub recipe this job runs as (None on Bedrock)."""

    def resolved(self) -> dict[str, Any]:
        """The recipe with ``${oc.select:...}`` interpolations resolved, as sagemaker v3 uploads it."""
        return resolve_interpolations(self.recipe, self.recipe)

    def to_yaml(self) -> str:
        """The exact ``recipe.yaml`` uploaded as the job's recipe channel (deterministic)."""
        return yaml.safe_dump(self.resolved(), sort_keys=False, default_flow_style=False, width=1000)

    def raise_for_problems(self) -> None:
        if self.problems:
            listed = "\n".join(f"  - {p}" for p in self.problems)
            raise RecipeError(f"Recipe {self.template} has {len(self.problems)} problem(s):\n{listed}")


def resolve_interpolations(tree: Any, root: dict[str, Any]) -> Any:
    if isinstance(tree, dict):
        return {k: resolve_interpolations(v, root) for k, v in tree.items()}
    if isinstance(tree, list):
        return [resolve_interpolations(v, root) for v in tree]
    try:
        return resolved_value(root, tree)
    except KeyError:
        raise RecipeError(f"Recipe interpolation {tree!r} points at a missing key.") from None


def fill_placeholders(tree: Any, context: Mapping[str, Any], missing: list[str]) -> Any:
    """Replace ``'{{key}}'`` strings with typed values; record placeholders nobody filled."""
    if isinstance(tree, dict):
        return {k: fill_placeholders(v, context, missing) for k, v in tree.items()}
    if isinstance(tree, list):
        return [fill_placeholders(v, context, missing) for v in tree]
    if isinstance(tree, str):
        match = _PLACEHOLDER.match(tree)
        if match:
            key = match.group(1)
            if context.get(key) is None:
                if key not in missing:
                    missing.append(key)
                return tree
            return context[key]
    return tree


MLFLOW_FIELDS = ("mlflow_tracking_uri", "mlflow_experiment_name", "mlflow_run_name")


def fill_mlflow_fields(recipe: dict[str, Any], mlflow: Mapping[str, str | None] | None, run_name: str) -> None:
    """Point the training container at a tracking server, in the recipes whose ``run`` block has the fields.

    The hub's SMTJ RFT recipe has none; nothing is added to it (an unknown key could fail the container's recipe
    validation), and novaflow logs that stage's curves from its CloudWatch logs instead.
    """
    uri = (mlflow or {}).get("mlflow_tracking_uri")
    run = recipe.get("run")
    if not uri or not isinstance(run, dict) or "mlflow_tracking_uri" not in run:
        return
    run["mlflow_tracking_uri"] = uri
    for key in MLFLOW_FIELDS[1:]:
        run[key] = (mlflow or {}).get(key) or run_name


def build_recipe(
    model: str | NovaModel,
    method: str | Method,
    *,
    run_name: str,
    platform: str | Platform = Platform.SMTJ,
    replicas: int = 1,
    model_name_or_path: str | None = None,
    reward_lambda_arn: str | None = None,
    eval_task: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    recipe_file: str | Path | None = None,
    overrides_file: str | Path | None = None,
    mlflow: Mapping[str, str | None] | None = None,
    instance_type: str | None = None,
) -> ResolvedRecipe:
    """Resolve a recipe; problems (bad overrides, unfilled placeholders) are collected, not raised.

    ``mlflow`` (``mlflow_tracking_uri``, ``mlflow_experiment_name``, ``mlflow_run_name``) fills the recipe's
    ``run.mlflow_*`` fields where the template has them; empty names default to ``run_name`` as sagemaker v3 does.
    """
    nova = model if isinstance(model, NovaModel) else get_model(model)
    meth = Method.parse(method)
    plat = Platform.parse(platform)
    task = _task(nova, meth, eval_task)
    name = template_name(nova, meth, plat, task.name if task else None)
    published = _published(nova, meth, plat, task, instance_type)
    base = load_recipe_file(recipe_file) if recipe_file else load_template(name)
    context = {
        "name": run_name,
        "model_type": nova.model_type,
        "model_name_or_path": model_name_or_path or nova.model_path,
        "replicas": replicas,
        "reward_lambda_arn": reward_lambda_arn,
        "task": task.name if task else None,
        "strategy": task.strategy if task else None,
        "metric": task.metric if task else None,
    }
    missing: list[str] = []
    recipe = fill_placeholders(copy.deepcopy(base), context, missing)
    if not recipe_file:
        recipe = apply_defaults(recipe, name, published)
    specs = _specs(name, base, published, instance_type, overrides_file, plat)
    recipe, problems = apply_overrides(recipe, dict(overrides or {}), specs)
    fill_mlflow_fields(recipe, mlflow, run_name)
    for key in missing:
        fix = {"reward_lambda_arn": "pass the reward Lambda ARN (deploy it with `novaflow reward deploy`)"}.get(
            key, f"provide a value for {key}"
        )
        problems.append(f"recipe placeholder {{{{{key}}}}} is not filled: {fix}")
    return ResolvedRecipe(template=name, recipe=recipe, specs=specs, problems=problems, published=published)


def _task(nova: NovaModel, method: Method, name: str | None) -> EvalTask | None:
    return eval_task(nova, name) if method is Method.EVALUATION else None


def _published(
    nova: NovaModel, method: Method, platform: Platform, task: EvalTask | None, instance_type: str | None
) -> PublishedRecipe | None:
    """The hub recipe for the job on SageMaker; an unpublished instance type falls back to the default recipe
    (the instance check then reports it with the published choices)."""
    if platform not in (Platform.SMTJ, Platform.SMHP):
        return None
    task_name = task.name if task else None
    try:
        return recipe_for(nova, method, instance_type=instance_type, task=task_name, platform=platform.value)
    except RecipeError:
        return recipe_for(nova, method, task=task_name, platform=platform.value)


def _specs(
    name: str,
    base: dict[str, Any],
    published: PublishedRecipe | None,
    instance_type: str | None,
    overrides_file: str | Path | None,
    platform: Platform,
) -> dict[str, OverrideSpec]:
    if platform is Platform.BEDROCK:
        return load_override_specs(name, overrides_file)
    specs = derive_specs(name, base, published, instance_type)
    if overrides_file and name in (read_yaml("overrides.yaml", overrides_file) or {}):
        specs.update(load_override_specs(name, overrides_file))
    return specs


def default_value(recipe: ResolvedRecipe, key: str) -> Any:
    """The current value of override ``key`` in a resolved recipe (interpolations followed)."""
    spec = recipe.specs[key]
    return resolved_value(recipe.recipe, get_path(recipe.recipe, spec.path))
