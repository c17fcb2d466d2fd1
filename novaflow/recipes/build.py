"""Build the resolved recipe for a (model, method, platform) from a packaged template plus user overrides.

Precedence follows the reference SDK: explicit overrides > a user recipe file > values novaflow fills in (name,
model, replicas, Lambda ARN) > template defaults. The result is plain data; :meth:`ResolvedRecipe.to_yaml` is the
exact text that is uploaded as the job's ``recipe`` channel, so it must be deterministic.

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
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from novaflow.catalog import Method, NovaModel, Platform, get_model
from novaflow.errors import RecipeError
from novaflow.recipes.overrides import OverrideSpec, apply_overrides, load_override_specs, resolved_value

# evaluation.task -> (strategy, metric); nova-contract §3.3.
EVAL_TASKS: dict[str, tuple[str, str]] = {
    "mmlu": ("zs_cot", "accuracy"),
    "mmlu_pro": ("zs_cot", "accuracy"),
    "bbh": ("fs_cot", "accuracy"),
    "gpqa": ("zs_cot", "accuracy"),
    "math": ("zs_cot", "exact_match"),
    "strong_reject": ("zs", "deflection"),
    "ifeval": ("zs", "accuracy"),
    "mmmu": ("zs_cot", "accuracy"),
    "gen_qa": ("gen_qa", "all"),
    "llm_judge": ("judge", "all"),
    "rubric_llm_judge": ("judge", "all"),
    "rft_eval": ("rft_eval", "all"),
}
BYOD_TASKS = frozenset({"gen_qa", "llm_judge", "rubric_llm_judge", "rft_eval"})
EVAL_MAX_NEW_TOKENS = {1: 8196, 2: 32768}
_PLACEHOLDER = re.compile(r"^\{\{(\w+)\}\}$")


def template_name(
    model: NovaModel, method: Method, platform: Platform = Platform.SMTJ, eval_task: str | None = None
) -> str:
    """The packaged template for a combination (file ``templates/<name>.yaml``)."""
    if platform is Platform.BEDROCK:
        return f"bedrock_{method.value}"
    if method is Method.EVALUATION:
        task = eval_task or "gen_qa"
        if task not in EVAL_TASKS:
            raise RecipeError(f"Unknown evaluation task {task!r}: use one of {', '.join(EVAL_TASKS)}.")
        return {
            "gen_qa": "eval_gen_qa",
            "rft_eval": "eval_rft",
            "llm_judge": "eval_llm_judge",
            "rubric_llm_judge": "eval_llm_judge",
        }.get(task, "eval_benchmark")
    return f"{method.value}_nova{model.version}"


def load_template(name: str) -> dict[str, Any]:
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
) -> ResolvedRecipe:
    """Resolve a recipe; problems (bad overrides, unfilled placeholders) are collected, not raised.

    ``mlflow`` (``mlflow_tracking_uri``, ``mlflow_experiment_name``, ``mlflow_run_name``) fills the recipe's
    ``run.mlflow_*`` fields where the template has them; empty names default to ``run_name`` as sagemaker v3 does.
    """
    nova = model if isinstance(model, NovaModel) else get_model(model)
    meth = Method.parse(method)
    plat = Platform.parse(platform)
    name = template_name(nova, meth, plat, eval_task)
    base = load_recipe_file(recipe_file) if recipe_file else load_template(name)
    task = eval_task or "gen_qa"
    strategy, metric = EVAL_TASKS.get(task, ("", ""))
    context = {
        "name": run_name,
        "model_type": nova.model_type,
        "model_name_or_path": model_name_or_path or nova.model_path,
        "replicas": replicas,
        "reward_lambda_arn": reward_lambda_arn,
        "max_new_tokens": EVAL_MAX_NEW_TOKENS[nova.version],
        "task": task,
        "strategy": strategy,
        "metric": metric,
    }
    missing: list[str] = []
    recipe = fill_placeholders(copy.deepcopy(base), context, missing)
    specs = load_override_specs(name, overrides_file)
    recipe, problems = apply_overrides(recipe, dict(overrides or {}), specs)
    fill_mlflow_fields(recipe, mlflow, run_name)
    for key in missing:
        fix = {"reward_lambda_arn": "pass the reward Lambda ARN (deploy it with `novaflow reward deploy`)"}.get(
            key, f"provide a value for {key}"
        )
        problems.append(f"recipe placeholder {{{{{key}}}}} is not filled: {fix}")
    return ResolvedRecipe(template=name, recipe=recipe, specs=specs, problems=problems)
