"""Whether a job can run where it is asked to: the catalog's support table (:func:`~novaflow.catalog.method_problem`)
and the regions of the published image of the job's recipe.

The vocabulary (:mod:`novaflow.catalog`) cannot answer the region question alone: training, RFT and evaluation
images are published per recipe, and the recipes import the vocabulary. So the question is asked here, one level
above both.
"""

from __future__ import annotations

from novaflow.catalog import (
    BEDROCK_REGIONS,
    SERVERLESS_REGIONS,
    Method,
    NovaModel,
    Platform,
    escrow_accounts,
    get_model,
    method_problem,
)
from novaflow.errors import RecipeError
from novaflow.recipes.service import needs_own_image, recipe_for, regions


def region_problem(
    platform: Platform,
    region: str,
    model: str | NovaModel | None = None,
    method: Method | None = None,
    eval_task: str | None = None,
) -> str | None:
    """Why a job on ``platform`` cannot run in ``region`` (None when it can).

    On SageMaker the answer is the published image table of the job's recipe (training, RFT and evaluation images
    are not in every region that hosts Nova inference); without a model and method, any Nova image will do.
    Serverless jobs run where the recipe hub lists serverless SKUs; which technique runs where is narrower and is
    checked per recipe by :mod:`novaflow.recipes.serverless`.
    """
    if platform is Platform.SERVERLESS:
        if region in SERVERLESS_REGIONS:
            return None
        return (
            f"SageMaker serverless customization of Nova is not offered in {region!r}: use one of "
            f"{', '.join(sorted(SERVERLESS_REGIONS))} (NOVAFLOW_REGION) or platform SMTJ."
        )
    if platform is Platform.BEDROCK:
        if region in BEDROCK_REGIONS:
            return None
        return (
            f"Bedrock Nova customization runs only in us-east-1, not {region}: set "
            f"NOVAFLOW_REGION=us-east-1 or use platform SMTJ."
        )
    if model is not None and method is not None and platform in (Platform.SMTJ, Platform.SMHP):
        nova = get_model(model)
        task = eval_task if method is Method.EVALUATION else None
        recipe = recipe_for(nova, method, task=task, platform=platform.value)
        where = regions(recipe, nova, platform.value)
        if not where and needs_own_image(recipe, platform.value):
            return None  # the image is the one AWS gave the account: the dry run asks for it
        if region not in where:
            on = " for HyperPod" if platform is Platform.SMHP else ""
            return (
                f"AWS publishes no {method.value} image{on} for {nova.key} in {region} ({recipe.name}): use one of "
                f"{', '.join(where)} (set NOVAFLOW_REGION)."
            )
        return None
    if region not in escrow_accounts():
        return f"Region {region!r} has no Nova customization images: use one of {', '.join(escrow_accounts())}."
    return None


def check_supported(
    model: str | NovaModel,
    method: Method,
    platform: Platform,
    region: str | None = None,
    eval_task: str | None = None,
) -> None:
    """RecipeError with the reason when the job cannot run (before anything is uploaded or paid for)."""
    problem = method_problem(model, method, platform) or (
        region_problem(platform, region, model, method, eval_task) if region else None
    )
    if problem:
        raise RecipeError(problem)
