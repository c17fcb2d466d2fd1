"""The objects of a Nova RFT job on HyperPod: everything the recipe hub's RFT chart renders, filled for one job.

RFT on HyperPod is not one PyTorchJob: the trainer learns from rollouts that a vLLM generation StatefulSet produces,
a hub Deployment (with its NATS bootstrap Job) schedules, a three-node NATS StatefulSet carries, and the prompter
and ``rbs`` Jobs (task types ``storm_prompt_loader`` and ``storm_rbs``) feed it; the reward Lambda is named in every
one. Each service reads the same recipe with its own ``training_config.task_type`` from its own ConfigMap. The
chart's render is derived once, with placeholders, into ``published/hyperpod.json`` (``rft``; see
:mod:`novaflow.recipes.hyperpod_derive`); here it is filled with the job's values, so what novaflow creates is the
chart's render by construction, and the fidelity test renders the chart itself with the same values to hold the
derivation to it.

Node demand: every GPU pod asks for a whole node (8 GPUs): ``replicas`` trainer nodes and ``generation_replicas``
vLLM nodes; the CPU services are kept off those nodes (pod anti-affinity) and need nodes of their own. See
:func:`nodes_needed`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from novaflow.catalog import Method
from novaflow.errors import RecipeError
from novaflow.jobs.hyperpod.job import JobValues, fill, hyperpod_tables

if TYPE_CHECKING:
    from novaflow.jobs.submit import Submission

SERVICES_KEY = "rft"
VLLM_SUFFIX = "-vllm"
"""The vLLM generation StatefulSet is ``<job>-vllm`` in the chart."""


def rft_tables() -> dict[str, Any]:
    data: dict[str, Any] = hyperpod_tables()[SERVICES_KEY]
    return data


def service_images(region: str) -> dict[str, str]:
    """The RFT service images (hub, generation, NATS, Redis) the launcher names for ``region``."""
    images: dict[str, dict[str, str]] = rft_tables()["service_images"]
    if region not in images:
        raise RecipeError(
            f"AWS publishes no HyperPod RFT service images (hub, vLLM generation, NATS) in {region}: they exist in "
            f"{', '.join(sorted(images))}; run RFT on HyperPod in one of them, or on SMTJ."
        )
    return dict(images[region])


def delegates(recipe: dict[str, Any]) -> bool:
    """True when the recipe delegates rollouts (``training_config.rollout.delegate``): the chart adds Redis."""
    return ((recipe.get("training_config") or {}).get("rollout") or {}).get("delegate") is True


def service_recipe(recipe: dict[str, Any], service: str) -> str:
    """The recipe one service reads (``<job>-<service>-config``): ``run`` and ``training_config`` with the
    service's ``task_type``, as the launcher writes each service's file."""
    config = copy.deepcopy(recipe.get("training_config") or {})
    config["task_type"] = rft_tables()["task_types"][service]
    text = yaml.safe_dump(
        {"run": recipe.get("run") or {}, "training_config": config},
        sort_keys=False,
        default_flow_style=False,
        width=1000,
    )
    return text.rstrip("\n")  # the chart embeds the file in a ``|-`` block, which keeps no final newline


@dataclass(frozen=True)
class RftValues:
    """The RFT chart's values for one job: the common job values plus the rollout's sizes, images and recipes."""

    job: JobValues
    generation_replicas: int
    rollout_worker_replicas: int
    recipe: dict[str, Any] = field(hash=False)

    @property
    def delegate(self) -> bool:
        return delegates(self.recipe)

    @property
    def placeholders(self) -> dict[str, Any]:
        values = dict(self.job.placeholders)
        values.update(
            {
                "generation_replicas": self.generation_replicas,
                "rollout_worker_replicas": self.rollout_worker_replicas,
                **service_images(self.job.region),
            }
        )
        for service in rft_tables()["task_types"]:
            values[f"recipe_{service.replace('-', '_')}"] = service_recipe(self.recipe, service)
        return values


def build_rft_objects(v: RftValues) -> list[dict[str, Any]]:
    """Every object of the job, in helm's install order (the PyTorchJob last: once it exists, all do)."""
    template = rft_tables()["templates"]["delegate" if v.delegate else "standard"]
    objects: list[dict[str, Any]] = fill(template, v.placeholders)
    return objects


def object_refs(name: str) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of every object an RFT job called ``name`` may have (with Redis or not): what stop
    deletes, so nothing of the job is left running whichever variant was created."""
    refs: dict[tuple[str, str, str], None] = {}
    for template in rft_tables()["templates"].values():
        for obj in template:
            ref = (str(obj["apiVersion"]), str(obj["kind"]), str(fill(obj["metadata"]["name"], {"name": name})))
            refs[ref] = None
    return list(refs)


def is_rft_job(job: dict[str, Any]) -> bool:
    """True when a PyTorchJob is an RFT chart's trainer: it mounts the recipe the chart names after the job."""
    name = str((job.get("metadata") or {}).get("name"))
    template = next(o for o in rft_tables()["templates"]["standard"] if o["kind"] == "PyTorchJob")
    wanted = [v for v in _volumes(template) if v.get("name") == "training-config"]
    mounted = [v for v in _volumes(job) if v.get("name") == "training-config"]
    return bool(wanted) and mounted == fill(wanted, {"name": name})


def _volumes(job: dict[str, Any]) -> list[dict[str, Any]]:
    master = ((job.get("spec") or {}).get("pytorchReplicaSpecs") or {}).get("Master") or {}
    volumes: list[dict[str, Any]] = ((master.get("template") or {}).get("spec") or {}).get("volumes") or []
    return volumes


def rollout_sizes(recipe: dict[str, Any]) -> tuple[int, int]:
    """(vLLM generation replicas, rollout worker replicas) from the recipe's ``run`` block, as the launcher maps
    them onto the chart (``_map_rft_replica_config``; the chart's own defaults when the recipe leaves them out)."""
    run = recipe.get("run") or {}
    defaults = rft_tables()["chart_replicas"]
    return (
        int(run.get("generation_replicas") or defaults["generation_replicas"]),
        int(run.get("rollout_worker_replicas") or defaults["rollout_worker_replicas"]),
    )


def nodes_needed(replicas: int, generation_replicas: int) -> int:
    """The fewest nodes the job holds: one per trainer replica and per vLLM replica (each asks for all 8 GPUs of
    a node), plus at least one for the CPU services, which the chart keeps off the GPU pods' nodes."""
    return replicas + generation_replicas + 1


def job_nodes(sub: Submission) -> tuple[int, str]:
    """(nodes a job holds on its restricted group, how they add up): the node count, and for RFT its vLLM
    generation nodes and one for the rollout services besides (the dry run's capacity check and the flow's node
    slots both count this)."""
    if sub.spec.method is not Method.RFT_LORA:
        return sub.instance_count, ""
    generation, _ = rollout_sizes(sub.recipe.resolved())
    total = nodes_needed(sub.instance_count, generation)
    return total, f" ({sub.instance_count} trainer + {generation} vLLM generation + 1 for the rollout services)"
