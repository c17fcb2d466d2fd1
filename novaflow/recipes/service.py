"""Which published recipe serves a novaflow job, and what that recipe allows: instances, regions, images, tasks.

novaflow names a job by model, method and (for evaluation) task; AWS publishes one recipe per model, technique and
instance family (``nova_micro_1_0_g5_g6_48x_gpu_lora_sft``). This module is the bridge, read from the derived tables
in :mod:`novaflow.recipes.published`: the API other modules use for "the spec of recipe X for model M".

Rules that are not in any one recipe file:

* instance counts come from the recipe's ``replicas`` spec; when the SageMaker-training-job recipe has none, from
  the HyperPod recipe of the same model and technique (as sagemaker v3 validates instance counts);
* evaluation tasks map to recipe families: BYOD ``gen_qa``, the text and multi-modal benchmarks, the LLM judge
  (``llm_judge`` on Nova 1, ``rubric_llm_judge`` on Nova 2) and ``rft_eval``;
* the LLM-judge and RFT-evaluation recipes publish no image table: they run in the evaluation image the model's
  bring-your-own-dataset recipe lists.

Example:
    >>> recipe = recipe_for(get_model("nova-micro"), "sft_lora", instance_type="ml.g5.48xlarge")
    >>> recipe.name, instance_counts(recipe)
    ('nova_micro_1_0_g5_g6_48x_gpu_lora_sft', (1,))
"""

from __future__ import annotations

from dataclasses import dataclass

from novaflow.catalog import Method, NovaModel
from novaflow.errors import RecipeError
from novaflow.recipes.package_files import read_yaml
from novaflow.recipes.published import PublishedRecipe, load_published

TECHNIQUES: dict[str, tuple[str, bool]] = {
    "sft_lora": ("SFT", True),
    "sft_full": ("SFT", False),
    "rft_lora": ("RLVR", True),
    "rft_full": ("RLVR", False),
    "dpo_lora": ("DPO", True),
    "dpo_full": ("DPO", False),
    "cpt": ("CPT", False),
    "evaluation": ("EVALUATION", False),
}
"""novaflow method -> the hub's customization technique and whether it is LoRA."""


@dataclass(frozen=True)
class EvalTask:
    """An evaluation task as novaflow names it, and the recipe family, strategy and metric AWS runs it with."""

    name: str
    family: str
    strategy: str
    metric: str
    needs_data: bool
    needs_lambda: bool = False


BENCHMARKS: dict[str, tuple[str, str]] = {
    "mmlu": ("zs_cot", "accuracy"),
    "mmlu_pro": ("zs_cot", "accuracy"),
    "bbh": ("fs_cot", "accuracy"),
    "gpqa": ("zs_cot", "accuracy"),
    "math": ("zs_cot", "exact_match"),
    "strong_reject": ("zs", "deflection"),
    "ifeval": ("zs", "accuracy"),
}
"""Text benchmarks and the strategy/metric each uses (AWS Nova evaluation guide)."""
MULTI_MODAL_BENCHMARKS: dict[str, tuple[str, str]] = {"mmmu": ("zs_cot", "accuracy")}


def method_name(method: Method | str) -> str:
    return method.value if isinstance(method, Method) else str(method)


def eval_tasks(model: NovaModel) -> dict[str, EvalTask]:
    """Evaluation tasks AWS publishes a recipe for on ``model`` (the judge differs per Nova version)."""
    families = {r.evaluation_task for r in _candidates(model, "EVALUATION", False)}
    tasks: dict[str, EvalTask] = {}
    if "gen_qa" in families:
        tasks["gen_qa"] = EvalTask("gen_qa", "gen_qa", "gen_qa", "all", needs_data=True)
    if "text_benchmark" in families:
        tasks.update({n: EvalTask(n, "text_benchmark", s, m, needs_data=False) for n, (s, m) in BENCHMARKS.items()})
    if "multi_modal_benchmark" in families:
        tasks.update(
            {n: EvalTask(n, "multi_modal_benchmark", s, m, False) for n, (s, m) in MULTI_MODAL_BENCHMARKS.items()}
        )
    for judge in ("llm_judge", "rubric_llm_judge"):
        if judge in families:
            tasks[judge] = EvalTask(judge, judge, "judge", "all", needs_data=True)
    if "rft_eval" in families:
        tasks["rft_eval"] = EvalTask("rft_eval", "rft_eval", "rft_eval", "all", needs_data=True, needs_lambda=True)
    return tasks


def judge_task(model: NovaModel) -> str:
    """The LLM-as-judge task of ``model``'s Nova version: ``llm_judge`` (Nova 1) or ``rubric_llm_judge`` (Nova 2)."""
    tasks = eval_tasks(model)
    for name in ("rubric_llm_judge", "llm_judge"):
        if name in tasks:
            return name
    raise RecipeError(f"AWS publishes no LLM-as-judge evaluation recipe for {model.key}")


def eval_task(model: NovaModel, name: str | None) -> EvalTask:
    """The task called ``name`` for ``model``; ``judge`` means the judge of the model's Nova version."""
    tasks = eval_tasks(model)
    wanted = name or "gen_qa"
    if wanted == "judge":
        wanted = judge_task(model)
    if wanted not in tasks:
        raise RecipeError(
            f"Evaluation task {wanted!r} is not published for {model.key}: use one of {', '.join(tasks)}."
        )
    return tasks[wanted]


def _candidates(model: NovaModel, technique: str, peft: bool, family: str | None = None) -> list[PublishedRecipe]:
    found = load_published().select(hub_model=model.hub_name, technique=technique)
    if technique == "EVALUATION":
        return [r for r in found if family is None or r.evaluation_task == family]
    return [r for r in found if r.peft == peft]


def _runs_on(recipe: PublishedRecipe, platform: str) -> bool:
    """SMTJ: the recipe lists a training-job image, or (judge / RFT evaluation) its model's BYOD recipe does, or
    it is a CPT recipe (published for HyperPod only; novaflow runs it as a training job with the image you name)."""
    if recipe.images.get(platform):
        return True
    if platform == "SMTJ" and recipe.technique == "CPT":
        return bool(recipe.images.get("SMHP"))
    return platform == "SMTJ" and recipe.technique == "EVALUATION" and not recipe.templated


CPT_IMAGE_PROBLEM = (
    "AWS publishes no SageMaker training job image for CPT (the recipe hub lists CPT images for HyperPod only): "
    "set image_uri to the CPT training image AWS gave your account, or run CPT on HyperPod."
)


def needs_own_image(recipe: PublishedRecipe, platform: str = "SMTJ") -> bool:
    """True when AWS publishes no image for ``recipe`` on ``platform`` and the job needs the user's ``image_uri``."""
    return platform == "SMTJ" and recipe.technique == "CPT" and not recipe.images.get(platform)


def recipes_for(
    model: NovaModel, method: Method | str, platform: str = "SMTJ", task: str | None = None
) -> list[PublishedRecipe]:
    """Every published recipe that runs ``method`` for ``model`` on ``platform`` (one per instance family)."""
    name = method_name(method)
    if name not in TECHNIQUES:
        raise RecipeError(f"Unknown method {name!r}: use one of {', '.join(TECHNIQUES)}.")
    technique, peft = TECHNIQUES[name]
    family = eval_task(model, task).family if technique == "EVALUATION" else None
    found = [r for r in _candidates(model, technique, peft, family) if _runs_on(r, platform)]
    return sorted(found, key=lambda r: r.name)


def recipe_for(
    model: NovaModel,
    method: Method | str,
    *,
    instance_type: str | None = None,
    platform: str = "SMTJ",
    task: str | None = None,
) -> PublishedRecipe:
    """The published recipe for this job; with an instance type, the one whose instance list has it."""
    found = recipes_for(model, method, platform, task)
    what = f"{method_name(method)}{f' ({task})' if task else ''} of {model.key} on {platform}"
    if not found:
        raise RecipeError(f"AWS publishes no recipe for {what}.")
    if instance_type is None:
        chosen = _chosen_instance(model, method_name(method))
        return next((r for r in found if chosen in r.instance_types), found[0])
    for recipe in found:
        if instance_type in recipe.instance_types:
            return recipe
    allowed = sorted({t for r in found for t in r.instance_types})
    raise RecipeError(f"instance type {instance_type} is not published for {what}; use one of {', '.join(allowed)}")


def _chosen_instance(model: NovaModel, method: str) -> str | None:
    """novaflow's default instance type for a job (``instances.yaml``), if it names one."""
    chosen = (read_yaml("instances.yaml").get("SMTJ", {}).get(model.key) or {}).get(method)
    return str(chosen[0]) if chosen else None


def hyperpod_sibling(recipe: PublishedRecipe) -> PublishedRecipe | None:
    """The HyperPod recipe of the same model, technique and PEFT choice (sagemaker v3 validates counts with it)."""
    if recipe.technique == "EVALUATION":
        return None
    siblings = [
        r
        for r in load_published().select(hub_model=recipe.hub_model, technique=recipe.technique, peft=recipe.peft)
        if r.name != recipe.name and r.images.get("SMHP") and r.templated
    ]
    same_type = [r for r in siblings if set(r.instance_types) & set(recipe.instance_types)]
    return sorted(same_type or siblings, key=lambda r: r.name)[0] if (same_type or siblings) else None


EVAL_COUNTS = (1, 2, 4, 8, 16)
"""Instance counts for evaluation jobs: the recipes only say the count is modifiable on training jobs."""


def instance_counts(recipe: PublishedRecipe) -> tuple[int, ...]:
    """Allowed instance counts (= ``run.replicas``) for a recipe, from its own spec or its HyperPod sibling's."""
    if recipe.technique == "EVALUATION":
        return EVAL_COUNTS
    for source in (recipe, hyperpod_sibling(recipe)):
        if source is None:
            continue
        replicas = source.parameters.get("replicas")
        if replicas is not None and replicas.enum:
            return tuple(int(c) for c in replicas.enum)
    documented = recipe.documented_at("run.replicas")
    if documented.enum:
        return tuple(int(c) for c in documented.enum)
    return (int(recipe.instance_count or 1),)


def default_count(recipe: PublishedRecipe) -> int:
    """The hub's default count, else the recipe file's own when allowed, else the HyperPod sibling's default."""
    counts = instance_counts(recipe)
    replicas = recipe.parameters.get("replicas")
    if replicas is not None and replicas.default in counts:
        return int(replicas.default)
    own = int(recipe.instance_count or 1)
    if own in counts:
        return own
    sibling = hyperpod_sibling(recipe)
    replicas = sibling.parameters.get("replicas") if sibling else None
    if replicas is not None and replicas.default in counts:
        return int(replicas.default)
    return min(counts)


def eval_image_recipe(model: NovaModel) -> PublishedRecipe:
    """The bring-your-own-dataset recipe, whose image table the judge and RFT-evaluation recipes use."""
    found = _candidates(model, "EVALUATION", False, "gen_qa")
    if not found:
        raise RecipeError(f"AWS publishes no evaluation recipe for {model.key}")
    return found[0]


def image_table(recipe: PublishedRecipe, model: NovaModel, platform: str = "SMTJ") -> dict[str, str]:
    """Region -> container image of ``recipe`` on ``platform``."""
    table = dict(recipe.images.get(platform) or {})
    if not table and platform == "SMTJ" and recipe.technique == "EVALUATION":
        table = dict(eval_image_recipe(model).images.get(platform) or {})
    return table


def regions(recipe: PublishedRecipe, model: NovaModel, platform: str = "SMTJ") -> list[str]:
    """Regions where AWS publishes the recipe's image for ``platform``, sorted."""
    return sorted(image_table(recipe, model, platform))


def image_uri(recipe: PublishedRecipe, model: NovaModel, region: str, platform: str = "SMTJ") -> str:
    """The container image for ``recipe`` in ``region``; the error names the regions where it exists."""
    if needs_own_image(recipe, platform):
        raise RecipeError(CPT_IMAGE_PROBLEM)
    table = image_table(recipe, model, platform)
    if region not in table:
        where = ", ".join(sorted(table)) or "no region"
        raise RecipeError(
            f"AWS publishes no {platform} image for {recipe.name} in {region}: it exists in {where}; set "
            f"NOVAFLOW_REGION to one of them."
        )
    return table[region]


def instance_table(model: NovaModel, method: Method | str, task: str | None = None) -> dict[str, tuple[int, ...]]:
    """Instance type -> allowed counts for a job, over every recipe that serves it on SMTJ."""
    out: dict[str, tuple[int, ...]] = {}
    for recipe in recipes_for(model, method, "SMTJ", task):
        for instance_type in recipe.instance_types:
            out.setdefault(instance_type, instance_counts(recipe))
    return out
