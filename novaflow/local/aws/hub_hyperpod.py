"""The HyperPod payload template the public hub serves per recipe (``HpEksPayloadTemplateS3Uri``).

It is the recipe hub's launch output for HyperPod: the chart's rendered documents, the ConfigMap first (its
``config.yaml`` is the recipe with a ``{{parameter}}`` wherever the hub's override spec fills a value), then the
PyTorchJob. sagemaker v3's ``_train_hyperpod`` reads the recipe and the trainer image out of it; novaflow's fidelity
test gives v3 this file from the embedded AWS. The recipe is rebuilt from the derived tables (the recipe file's
values and the override spec's paths), the job from the derived chart render with this region's image.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from novaflow.jobs.hyperpod.job import fill, hyperpod_tables
from novaflow.recipes.hyperpod_derive import MANAGED_BY_LABEL, SPEC_HASH_LABEL
from novaflow.recipes.published import PublishedRecipe


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def templated_recipe(recipe: PublishedRecipe) -> dict[str, Any]:
    """The recipe file's values with ``{{parameter}}`` at every path of it the hub's override spec fills (and the
    run fields the launcher adds)."""
    tree: dict[str, Any] = {}
    for path, value in recipe.defaults.items():
        _set(tree, path, value)
    for name, parameter in recipe.parameters.items():
        for path in parameter.paths:
            if path in recipe.defaults or path.startswith("run."):  # a template's other spellings stay out
                _set(tree, path, "{{" + name + "}}")
    return tree


def _pytorch_first(job: Any) -> Any:
    """The container's ``name`` before its ``image``, as helm prints the chart (v3 reads the image there); the
    labels novaflow adds to its own jobs are not the hub's."""
    if isinstance(job, dict):
        if job.get("name") == "pytorch" and "image" in job:
            rest = {k: _pytorch_first(v) for k, v in job.items() if k not in ("name", "image")}
            return {"name": "pytorch", "image": job["image"], **rest}
        return {k: _pytorch_first(v) for k, v in job.items() if k not in (MANAGED_BY_LABEL, SPEC_HASH_LABEL)}
    if isinstance(job, list):
        return [_pytorch_first(v) for v in job]
    return job


def payload_template(recipe: PublishedRecipe, region: str) -> str:
    kind = "evaluation" if recipe.technique == "EVALUATION" else "training"
    rendered = hyperpod_tables()["templates"][f"{kind}_multi_node"]
    image = (recipe.images.get("SMHP") or {}).get(region, "{{container_image}}")
    job = _pytorch_first(fill(rendered["job"], {"container_image": image}))
    config = yaml.safe_dump(templated_recipe(recipe), sort_keys=False, default_flow_style=False, width=1000)
    return (
        "---\n# Source: sagemaker-training/templates/training-config.yaml\napiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: training-config-{{name}}\ndata:\n  config.yaml: |-\n"
        + textwrap.indent(config.rstrip("\n"), "    ")
        + "\n---\n# Source: sagemaker-training/templates/training.yaml\n"
        + yaml.safe_dump(job, sort_keys=False, default_flow_style=False, width=1000)
    )
