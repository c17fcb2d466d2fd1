"""Derive the HyperPod job of a Nova recipe from the recipe hub's Helm chart, as its launcher renders it.

On HyperPod the recipe hub's launcher (``launcher/nova/launchers.py``) fills the chart's ``values.yaml`` - image,
job name, namespace, init container, environment, GPUs and EFA devices per instance type, ``replicas - 1`` worker
nodes, and a required node affinity on the instance type and ``Restricted`` instance group - and installs the chart
with helm. novaflow renders the same chart (:mod:`novaflow.recipes.gotemplate`) once, at refresh time, with
``{{placeholder}}`` values in the places the launcher fills, and keeps the result in
``novaflow/recipes/published/hyperpod.json`` stamped with the commit. The placeholders are the ones the hub's own
launch files use (``{{name}}``, ``{{namespace}}``, ``{{container_image}}``, ``{{init_container_image}}``,
``{{instance_type}}``) plus the values the launcher computes per job (``{{devices}}``, ``{{efa_devices}}``,
``{{worker_replicas}}`` = replicas - 1) and the label novaflow finds its own jobs by (``{{spec_hash}}``).

Four renders are kept: a training job (SFT, DPO, CPT) and an evaluation job (the launcher turns on host
networking so the evaluation can reach a reward or judge Lambda), each on one node (no ``Worker`` replica set, as
the chart omits it) and on several.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from novaflow.errors import ConfigError
from novaflow.recipes.gotemplate import render

if TYPE_CHECKING:
    from novaflow.recipes.derive import Checkout

CHART_DIR = "launcher/nova/k8s_templates/SFT"
JOB_TEMPLATE = f"{CHART_DIR}/training.yaml"
CONFIG_TEMPLATE = f"{CHART_DIR}/training-config.yaml"
VALUES_FILE = f"{CHART_DIR}/values.yaml"
LAUNCHER_FILE = "launcher/nova/launchers.py"
EFA_FILE = "launcher/efa.py"
REGIONAL_FILE = "launcher/recipe_templatization/nova/nova_regional_parameters.json"
SOURCE_FILES = (JOB_TEMPLATE, CONFIG_TEMPLATE, VALUES_FILE, LAUNCHER_FILE, EFA_FILE, REGIONAL_FILE)

RESTRICTED_LABEL = "sagemaker.amazonaws.com/instance-group-type"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
SPEC_HASH_LABEL = "novaflow.io/spec-hash"
MANAGED_BY = "novaflow"
"""Labels novaflow adds through the chart's ``customLabels``: the dry run counts the nodes its own jobs hold."""

PLACEHOLDERS = (
    "name",
    "namespace",
    "container_image",
    "init_container_image",
    "instance_type",
    "region",
    "account_id",
    "devices",
    "efa_devices",
    "worker_replicas",
    "spec_hash",
    "recipe",
)


def _mark(name: str) -> str:
    return f"__nf_{name}__"


def _values(defaults: Mapping[str, Any], *, evaluation: bool, multi_node: bool) -> dict[str, Any]:
    """``values.yaml`` as the launcher fills it (``_process_values_yaml``), with placeholders for the job's values."""
    values = yaml.safe_load(yaml.safe_dump(dict(defaults)))
    config = values["trainingConfig"]
    values["image"]["trainingImage"] = _mark("container_image")
    config["jobName"] = _mark("name")
    config["namespace"] = _mark("namespace")
    config["initContainer"]["image"] = _mark("init_container_image")
    config["envVars"] = {
        "X_AMZ_SOURCE_ACCOUNT": _mark("account_id"),
        "INSTANCE_TYPE": _mark("instance_type"),
        "AWS_REGION": _mark("region"),
    }
    config["numEFADevices"] = _mark("efa_devices")
    config["devices"] = _mark("devices")
    config["lambdaAccess"] = evaluation or bool(config.get("lambdaAccess"))
    config["worker_nodes"] = 1 if multi_node else 0
    config["processed_worker_nodes"] = _mark("worker_replicas") if multi_node else 0
    config["customLabels"] = {MANAGED_BY_LABEL: MANAGED_BY, SPEC_HASH_LABEL: _mark("spec_hash")}
    config["labelSelector"] = {
        "required": {INSTANCE_TYPE_LABEL: [_mark("instance_type")], RESTRICTED_LABEL: ["Restricted"]}
    }
    return dict(values)


def _unmark(tree: Any) -> Any:
    """``__nf_x__`` -> ``{{x}}`` (the hub's placeholder spelling) everywhere in a parsed document."""
    if isinstance(tree, dict):
        return {_unmark(k): _unmark(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unmark(v) for v in tree]
    if isinstance(tree, str):
        for name in PLACEHOLDERS:
            tree = tree.replace(_mark(name), "{{" + name + "}}")
    return tree


def render_chart(job_template: str, config_template: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The job and its ConfigMap rendered from the chart's text, parsed (what ``helm template`` would print)."""
    job = yaml.safe_load(render(job_template, {"Values": dict(values)}))
    config_map = yaml.safe_load(render(config_template, {"Values": dict(values)}, file_text=_mark("recipe")))
    return {"job": _unmark(job), "config_map": _unmark(config_map)}


def _literal(source: str, name: str) -> Any:
    """The literal a module assigns to ``name`` (the launcher's EFA tables are Python literals, not data files)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and value.args:  # set([...])
                value = value.args[0]
            return ast.literal_eval(value)
    raise ConfigError(f"{EFA_FILE}: {name} is missing; the launcher's device tables moved")


def derive_hyperpod(checkout: Checkout) -> dict[str, Any]:
    """The content of ``hyperpod.json`` for one commit of the recipes repository."""
    import json

    defaults = yaml.safe_load(checkout.read(VALUES_FILE))
    job_template = checkout.read(JOB_TEMPLATE)
    config_template = checkout.read(CONFIG_TEMPLATE)
    efa_source = checkout.read(EFA_FILE)
    regional = json.loads(checkout.read(REGIONAL_FILE))
    templates = {
        f"{kind}_{nodes}": render_chart(
            job_template,
            config_template,
            _values(defaults, evaluation=kind == "evaluation", multi_node=nodes == "multi_node"),
        )
        for kind in ("training", "evaluation")
        for nodes in ("single_node", "multi_node")
    }
    init_images = ((regional.get("all") or {}).get("k8s") or {}).get("init_container_image") or {}
    return {
        "source": {"repo": "aws/sagemaker-hyperpod-recipes", "commit": checkout.commit, "files": list(SOURCE_FILES)},
        "templates": templates,
        "init_container_images": dict(sorted((init_images.get("prod") or {}).items())),
        "efa_instances": sorted(_literal(efa_source, "efa_supported_instance")),
        "efa_devices": dict(sorted(_literal(efa_source, "instanceWithMultipleEFAs").items())),
        "gpu_devices": dict(sorted(_literal(efa_source, "INSTANCE_TO_DEVICE_COUNT").items())),
        "default_gpu_devices": 8,
    }
