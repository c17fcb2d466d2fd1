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

RFT has its own chart (``launcher/nova/k8s_templates/RFT``): beside the trainer's PyTorchJob it renders the
services the rollout needs - the hub (``hubcli``) Deployment and its NATS bootstrap Job, a three-node NATS
StatefulSet with its Secret, ConfigMap and Services, the prompter and ``rbs`` Jobs, the vLLM
generation StatefulSet, one recipe ConfigMap per service (the recipe with that service's ``task_type``) and, when
the recipe delegates rollouts, Redis. :func:`derive_rft` fills its ``values.yaml`` as the launcher's RFT class does
(``SMNovaK8SLauncherRFT._process_values_yaml``) and keeps every object of the render, with and without Redis. Counts
the chart prints as numbers (replicas, EFA devices) are rendered with numeric markers, so that a count the chart
quotes (an annotation) stays a string after filling (``{{x:str}}``) and one it does not stays a number.
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
RFT_CHART_DIR = "launcher/nova/k8s_templates/RFT"
RFT_TEMPLATES = (
    "training.yaml",
    "vllm-generation.yaml",
    "hub.yaml",
    "prompt-rbs.yaml",
    "nats-server.yaml",
    "training-config.yaml",
    "redis.yaml",
)
"""The launcher's RFT templates (``_copy_k8s_template``; ``redis.yaml`` only when the recipe delegates rollouts)."""
RFT_VALUES_FILE = f"{RFT_CHART_DIR}/values.yaml"
RFT_CONSTANTS_FILE = "launcher/nova/constants/rft_container_constants.py"
SOURCE_FILES = (
    JOB_TEMPLATE,
    CONFIG_TEMPLATE,
    VALUES_FILE,
    LAUNCHER_FILE,
    EFA_FILE,
    REGIONAL_FILE,
    RFT_VALUES_FILE,
    RFT_CONSTANTS_FILE,
    *(f"{RFT_CHART_DIR}/templates/{name}" for name in RFT_TEMPLATES),
)
RFT_SERVICES = ("training", "vllm-generation", "hub", "nats-bootstrap", "prompter", "rbs")
"""The services whose recipe the RFT launcher writes (``_save_hydra_config``), in its job list's order."""
RFT_IMAGES = {
    "rft_generation_image": "RFT_GENERATION_CONTAINER_IMAGE",
    "rft_storm_image": "RFT_STORM_CONTAINER_IMAGE",
    "rft_nats_server_image": "RFT_NATS_SERVER_CONTAINER_IMAGE",
    "rft_nats_reloader_image": "RFT_NATS_RELOADER_CONTAINER_IMAGE",
    "rft_redis_image": "RFT_REDIS_CONTAINER_IMAGE",
}
"""Placeholder -> the launcher's constant for the RFT service images (the trainer's is the recipe's own)."""
RFT_COUNTS = ("worker_replicas", "generation_replicas", "rollout_worker_replicas", "efa_devices")
INSTALL_ORDER = ("Secret", "ConfigMap", "Service", "Deployment", "StatefulSet", "Job")
"""Kinds in the order helm installs them (its ``InstallOrder``); other kinds (the PyTorchJob) come after."""

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
    *RFT_IMAGES,
    *(f"recipe_{service.replace('-', '_')}" for service in RFT_SERVICES),
)


def _mark(name: str) -> str:
    return f"__nf_{name}__"


def _job_values(defaults: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values, their ``trainingConfig``): a copy of a chart's defaults with what every Nova launcher fills the same
    way - the trainer image, job name, namespace, init container image and environment - as placeholders."""
    values: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(defaults)))
    config: dict[str, Any] = values["trainingConfig"]
    values["image"]["trainingImage"] = _mark("container_image")
    config["jobName"] = _mark("name")
    config["namespace"] = _mark("namespace")
    config["initContainer"]["image"] = _mark("init_container_image")
    config["envVars"] = {
        "X_AMZ_SOURCE_ACCOUNT": _mark("account_id"),
        "INSTANCE_TYPE": _mark("instance_type"),
        "AWS_REGION": _mark("region"),
    }
    return values, config


def _values(defaults: Mapping[str, Any], *, evaluation: bool, multi_node: bool) -> dict[str, Any]:
    """``values.yaml`` as the launcher fills it (``_process_values_yaml``), with placeholders for the job's values."""
    values, config = _job_values(defaults)
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


def _count_mark(name: str) -> int:
    """A number no chart value has, standing for the count ``name`` (``RFT_COUNTS``)."""
    return 987_650_000 + RFT_COUNTS.index(name)


def _unmark(tree: Any) -> Any:
    """``__nf_x__`` -> ``{{x}}`` (the hub's placeholder spelling) everywhere in a parsed document; a count marker
    the chart printed as a number -> ``{{x}}``, one it quoted -> ``{{x:str}}``."""
    if isinstance(tree, dict):
        return {_unmark(k): _unmark(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unmark(v) for v in tree]
    for name in RFT_COUNTS:
        if isinstance(tree, int) and not isinstance(tree, bool) and tree == _count_mark(name):
            return "{{" + name + "}}"
        if tree == str(_count_mark(name)):
            return "{{" + name + ":str}}"
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
        "rft": derive_rft(checkout),
    }


def _constants(source: str) -> dict[str, Any]:
    """The RFT constants module's literal assignments, with its enum members (``RFTJobType.X``) as dict keys
    replaced by their values."""
    tree = ast.parse(source)
    members = {
        f"{node.name}.{item.targets[0].id}": item.value.value
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.Assign)
        and isinstance(item.targets[0], ast.Name)
        and isinstance(item.value, ast.Constant)
    }
    out: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        value = node.value
        if isinstance(value, ast.Dict):
            out[node.targets[0].id] = {
                (k.value if isinstance(k, ast.Constant) else members.get(ast.unparse(k))): ast.literal_eval(v)
                for k, v in zip(value.keys, value.values, strict=True)
                if k is not None and isinstance(v, ast.Constant)
            }
        elif isinstance(value, ast.Constant):
            out[node.targets[0].id] = value.value
    return out


def _rft_values(defaults: Mapping[str, Any], *, delegate: bool) -> dict[str, Any]:
    """The RFT chart's ``values.yaml`` as ``SMNovaK8SLauncherRFT._process_values_yaml`` fills it for one job."""
    values, config = _job_values(defaults)
    count = _count_mark
    config["numEFADevices"] = count("efa_devices")
    for block in (config["training"]["resources"]["master"], config["training"]["resources"]["worker"]):
        for part in ("requests", "limits"):
            block[part]["vpc.amazonaws.com/efa"] = count("efa_devices")
    for part in ("requests", "limits"):
        config["vllmGeneration"]["resources"][part]["vpc.amazonaws.com/efa"] = count("efa_devices")
    config["region"] = _mark("region")
    config["requiredTolerations"] = [
        {
            "key": "sagemaker.amazonaws.com/RestrictedNode",
            "operator": "Equal",
            "value": "Worker",
            "effect": "NoSchedule",
        }
    ]
    config["customLabels"] = {MANAGED_BY_LABEL: MANAGED_BY, SPEC_HASH_LABEL: _mark("spec_hash")}
    config["vllmGeneration"]["replicas"] = count("generation_replicas")
    config["hub"]["replicas"] = count("rollout_worker_replicas")
    config["redis"]["enabled"] = delegate
    config["training"]["worker_replicas"] = count("worker_replicas")
    for service in ("training", "vllmGeneration", "hub", "prompter", "rbs", "natsServer", "redis"):
        config[service]["instanceType"] = _mark("instance_type")
    job_list = [{"jobName": f"{_mark('name')}-{service}", "serviceType": service} for service in RFT_SERVICES]
    if delegate:
        job_list.append({"jobName": f"{_mark('name')}-redis", "serviceType": "redis"})
    values["jobList"] = job_list
    values["image"]["generationImage"] = _mark("rft_generation_image")
    values["image"]["stormImage"] = _mark("rft_storm_image")
    values["image"]["natsServerImage"] = _mark("rft_nats_server_image")
    values["image"]["natsReloaderImage"] = _mark("rft_nats_reloader_image")
    values["image"]["redis"] = _mark("rft_redis_image")
    config["labelSelector"] = {
        "required": {INSTANCE_TYPE_LABEL: [_mark("instance_type")], RESTRICTED_LABEL: ["Restricted"]}
    }
    return dict(values)


def install_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``objects`` in helm's install order (stable within a kind)."""
    rank = {kind: i for i, kind in enumerate(INSTALL_ORDER)}
    return sorted(objects, key=lambda o: rank.get(str(o.get("kind")), len(INSTALL_ORDER)))


def render_rft_chart(templates: Mapping[str, str], values: Mapping[str, Any], files: dict[str, str]) -> list[Any]:
    """Every object the RFT chart renders for ``values`` (``files``: the launcher's per-service recipe files), in
    helm's install order."""
    objects: list[dict[str, Any]] = []
    for name in RFT_TEMPLATES:
        text = render(templates[name], {"Values": dict(values)}, file_text=files)
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return install_order(objects)


def derive_rft(checkout: Checkout) -> dict[str, Any]:
    """The RFT part of ``hyperpod.json``: the chart's objects (without and with Redis), the per-service task
    types, the service images per region."""
    defaults = yaml.safe_load(checkout.read(RFT_VALUES_FILE))
    templates = {name: checkout.read(f"{RFT_CHART_DIR}/templates/{name}") for name in RFT_TEMPLATES}
    files = {
        f"config/{_mark('name')}-{service}_hydra.yaml": _mark(f"recipe_{service.replace('-', '_')}")
        for service in RFT_SERVICES
    }
    constants = _constants(checkout.read(RFT_CONSTANTS_FILE))
    task_types = {**constants["RFT_JOB_TASK_TYPE_DICT"], **constants["RFT_PROMPT_RBS_TASK_TYPES"]}
    missing = [s for s in RFT_SERVICES if s not in task_types]
    if missing:
        raise ConfigError(f"{RFT_CONSTANTS_FILE}: no task type for {', '.join(missing)}; the RFT services moved")
    accounts: dict[str, str] = constants["RFT_REGION_ACCOUNT_MAP"]
    images = {
        region: {
            placeholder: constants[constant].format(account_id=account, region=region)
            for placeholder, constant in RFT_IMAGES.items()
        }
        for region, account in sorted(accounts.items())
    }
    return {
        "templates": {
            kind: _unmark(render_rft_chart(templates, _rft_values(defaults, delegate=kind == "delegate"), files))
            for kind in ("standard", "delegate")
        },
        "task_types": {service: task_types[service] for service in RFT_SERVICES},
        "chart_replicas": {
            "generation_replicas": int(defaults["trainingConfig"]["vllmGeneration"]["replicas"]),
            "rollout_worker_replicas": int(defaults["trainingConfig"]["hub"]["replicas"]),
        },
        "service_images": images,
    }
