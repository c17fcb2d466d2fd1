"""What a Nova job on HyperPod is made of: the published HyperPod recipe, its instances, image and job objects.

The recipe is the hub's HyperPod recipe of the model and method (its defaults, its published ``replicas``), with
``run.name``, ``run.data_s3_path``, ``run.validation_data_s3_path`` and ``run.output_s3_path`` filled as sagemaker
v3's ``_train_hyperpod`` passes them to the hyperpod CLI. The image is the recipe's published HyperPod image for the
region (CPT included: the hub publishes CPT images for HyperPod only) unless the spec names one.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

import yaml

from novaflow.aws import get_client
from novaflow.catalog import Method
from novaflow.errors import RecipeError
from novaflow.jobs.hyperpod.job import (
    JobValues,
    build_config_map,
    build_job,
    efa_devices,
    gpu_devices,
    init_container_image,
)
from novaflow.jobs.hyperpod.rft import RftValues, build_rft_objects, rollout_sizes
from novaflow.jobs.spec import HASH_CHARS, JobSpec
from novaflow.recipes.published import PublishedRecipe
from novaflow.recipes.service import _chosen_instance, default_count, image_uri, instance_counts, recipe_for

if TYPE_CHECKING:
    from novaflow.jobs.submit import Submission

K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PLATFORM = "SMHP"


def hyperpod_recipe_of(spec: JobSpec) -> PublishedRecipe:
    """The published HyperPod recipe for the spec (its instance type, when named)."""
    task = spec.eval_task if spec.method is Method.EVALUATION else None
    return recipe_for(spec.nova, spec.method, instance_type=spec.instance_type, platform=PLATFORM, task=task)


def hyperpod_instances(spec: JobSpec, *, strict: bool = True) -> tuple[str, int]:
    """(instance type, node count): the spec's, else novaflow's default type if the recipe runs on it, else the
    recipe's first; the count must be one the HyperPod recipe publishes (its ``replicas``)."""
    recipe = hyperpod_recipe_of(spec)
    chosen = _chosen_instance(spec.nova, spec.method.value)
    instance_type = spec.instance_type or (chosen if chosen in recipe.instance_types else recipe.instance_types[0])
    count = spec.instance_count or default_count(recipe)
    allowed = instance_counts(recipe)
    if strict and count not in allowed:
        raise RecipeError(
            f"instance_count {count} is not published for {recipe.name} on HyperPod: use one of "
            f"{', '.join(str(c) for c in allowed)} (the recipe's replicas)."
        )
    return instance_type, count


def hyperpod_recipe(sub: Submission, name: str) -> dict[str, Any]:
    """The recipe as the job reads it from its ConfigMap: the data and output paths are in ``run``."""
    recipe = copy.deepcopy(sub.recipe.resolved())
    run = recipe.setdefault("run", {})
    published = sub.recipe.published
    for path, value in (published.defaults if published else {}).items():
        key = path.removeprefix("run.")
        if path.startswith("run.") and "." not in key and key not in run:
            run[key] = copy.deepcopy(value)  # HyperPod-only run fields (named validation sets) as published
    run["name"] = name
    run["replicas"] = sub.instance_count
    if sub.spec.train_uri:
        run["data_s3_path"] = sub.spec.train_uri
    if sub.spec.validation_uri:
        run["validation_data_s3_path"] = sub.spec.validation_uri
    if sub.spec.output_uri:
        run["output_s3_path"] = sub.spec.output_uri
    return recipe


def job_image(spec: JobSpec) -> str:
    return spec.image_uri or image_uri(hyperpod_recipe_of(spec), spec.nova, str(spec.region), PLATFORM)


def caller_account(sub: Submission) -> str:
    return str(get_client("sts", sub.settings).get_caller_identity()["Account"])


def job_values(sub: Submission, name: str, account_id: str) -> JobValues:
    if not K8S_NAME.match(name):
        raise RecipeError(
            f"Job name {name} is not a valid Kubernetes name (lowercase letters, digits and '-'): use a lowercase "
            "name_prefix."
        )
    assert sub.instance_type is not None
    recipe = hyperpod_recipe(sub, name)
    return JobValues(
        name=name,
        namespace=str(sub.spec.namespace or sub.settings.hyperpod_namespace),
        image=job_image(sub.spec),
        init_image=init_container_image(str(sub.spec.region)),
        instance_type=sub.instance_type,
        region=str(sub.spec.region),
        account_id=account_id,
        replicas=sub.instance_count,
        spec_hash=sub.spec.spec_hash()[:HASH_CHARS],
        recipe_yaml=yaml.safe_dump(recipe, sort_keys=False, default_flow_style=False, width=1000),
        evaluation=sub.spec.method is Method.EVALUATION,
        devices=gpu_devices(sub.instance_type, recipe),
        efa=efa_devices(sub.instance_type),
    )


def rft_values(values: JobValues) -> RftValues:
    """The RFT chart's values: the rollout's sizes from the recipe's ``run`` block (published defaults unless set)."""
    recipe = yaml.safe_load(values.recipe_yaml)
    generation, rollout_workers = rollout_sizes(recipe)
    return RftValues(job=values, generation_replicas=generation, rollout_worker_replicas=rollout_workers, recipe=recipe)


def build_hyperpod_request(sub: Submission, name: str) -> dict[str, Any]:
    """``{"objects": [...]}``: every object of the job called ``name``, in the order they are created (the
    PyTorchJob last: a re-run that finds it attaches)."""
    values = job_values(sub, name, caller_account(sub))
    if sub.spec.method is Method.RFT_LORA:
        return {"objects": build_rft_objects(rft_values(values))}
    return {"objects": [build_config_map(values), build_job(values)]}
