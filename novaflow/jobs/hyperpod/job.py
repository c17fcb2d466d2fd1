"""The Kubernetes objects of a Nova job on HyperPod: the PyTorchJob and the ConfigMap holding its recipe.

They are what the recipe hub's launcher installs with helm for the same values (see docs/service-specs.md,
"HyperPod jobs"): the trainer tolerates the ``sagemaker.amazonaws.com/RestrictedNode`` taint and requires a node
of the instance type in a ``Restricted`` instance group (Nova runs only there); an init container prepares the
node; FSx and the node's NVMe are host paths; the recipe is mounted from a ConfigMap at ``/config``. One node is a
``Master`` replica; more nodes add ``replicas - 1`` ``Worker`` replicas. Evaluation jobs use the host network so
the evaluation can reach a Lambda. The objects are built here in code; a fidelity test fills the derived chart
render (``published/hyperpod.json``) with the same values and asserts equality, so a hub release that changes the
chart fails a test instead of silently diverging.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from novaflow.errors import RecipeError
from novaflow.recipes.hyperpod_derive import (
    INSTANCE_TYPE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RESTRICTED_LABEL,
    SPEC_HASH_LABEL,
)

JOB_GROUP = "kubeflow.org"
JOB_VERSION = "v1"
JOB_PLURAL = "pytorchjobs"
JOB_KIND = "PyTorchJob"
CONFIG_PREFIX = "training-config-"
RESTRICTED_TAINT = "sagemaker.amazonaws.com/RestrictedNode"


@cache
def hyperpod_tables() -> dict[str, Any]:
    """``published/hyperpod.json``: the derived chart renders, device tables and init container images."""
    text = resources.files("novaflow.recipes.published").joinpath("hyperpod.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _bare(instance_type: str) -> str:
    return instance_type.removeprefix("ml.")


def gpu_devices(instance_type: str, recipe: dict[str, Any]) -> int:
    """GPUs per node as the launcher asks for them: the recipe's own count, else the instance type's."""
    for section, key in (("resource_config", "devices"), ("training_config", "trainer")):
        value = (recipe.get(section) or {}).get(key)
        if isinstance(value, dict):
            value = value.get("devices")
        if value:
            return int(value)
    tables = hyperpod_tables()
    return int(tables["gpu_devices"].get(_bare(instance_type), tables["default_gpu_devices"]))


def efa_devices(instance_type: str) -> int:
    """EFA interfaces per node: 0 without EFA, the launcher's table for multi-EFA types, else 1."""
    tables = hyperpod_tables()
    bare = _bare(instance_type)
    if bare not in tables["efa_instances"]:
        return 0
    return int(tables["efa_devices"].get(bare, 1))


def init_container_image(region: str) -> str:
    images: dict[str, str] = hyperpod_tables()["init_container_images"]
    if region not in images:
        raise RecipeError(
            f"AWS publishes no HyperPod init container image in {region}: it exists in {', '.join(sorted(images))}; "
            "set NOVAFLOW_REGION to one of them."
        )
    return images[region]


@dataclass(frozen=True)
class JobValues:
    """Everything that varies between two Nova jobs on HyperPod (the chart's values)."""

    name: str
    namespace: str
    image: str
    init_image: str
    instance_type: str
    region: str
    account_id: str
    replicas: int
    spec_hash: str
    recipe_yaml: str
    evaluation: bool
    devices: int
    efa: int

    @property
    def placeholders(self) -> dict[str, Any]:
        """The derived template's placeholder -> value (what the fidelity test fills the chart render with)."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "container_image": self.image,
            "init_container_image": self.init_image,
            "instance_type": self.instance_type,
            "region": self.region,
            "account_id": self.account_id,
            "devices": self.devices,
            "efa_devices": self.efa,
            "worker_replicas": self.replicas - 1,
            "spec_hash": self.spec_hash,
            "recipe": self.recipe_yaml,
        }


def labels(spec_hash: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, SPEC_HASH_LABEL: spec_hash}


def _pod(v: JobValues) -> dict[str, Any]:
    env = [
        {"name": "AWS_REGION", "value": v.region},
        {"name": "INSTANCE_TYPE", "value": v.instance_type},
        {"name": "X_AMZ_SOURCE_ACCOUNT", "value": v.account_id},
    ]
    ca_mount: dict[str, Any] = {"mountPath": "/etc/kubernetes/pki/ca.crt", "name": "k8s-ca-cert", "readOnly": True}
    mounts: list[dict[str, Any]] = [
        {"mountPath": "/sagemaker/fsx/main", "name": "fsx-path-main"},
        {"mountPath": "/config", "name": "training-config"},
        {"mountPath": "/dev/shm", "name": "dshm"},
        {"mountPath": "/var/log/aws/clusters", "name": "logs"},
        {"mountPath": "/sagemaker/fsx/output_artifacts", "name": "fsx-path-output-artifacts"},
        {"mountPath": "/tmp", "name": "tmp-storage"},
    ]
    volumes: list[dict[str, Any]] = [
        {"hostPath": {"path": "/sagemaker/fsx/main", "type": "DirectoryOrCreate"}, "name": "fsx-path-main"},
        {"hostPath": {"path": "/sagemaker/fsx/init", "type": "DirectoryOrCreate"}, "name": "fsx-path-init"},
        {"configMap": {"name": CONFIG_PREFIX + v.name}, "name": "training-config"},
        {"emptyDir": {"medium": "Memory"}, "name": "dshm"},
        {"hostPath": {"path": "/var/log/aws/clusters", "type": "DirectoryOrCreate"}, "name": "logs"},
        {
            "hostPath": {"path": "/sagemaker/fsx/output_artifacts", "type": "DirectoryOrCreate"},
            "name": "fsx-path-output-artifacts",
        },
        {"hostPath": {"path": "/opt/dlami/nvme", "type": "Directory"}, "name": "tmp-storage"},
    ]
    if v.evaluation:
        mounts.append(ca_mount)
        volumes.append({"hostPath": {"path": "/etc/kubernetes/pki/ca.crt", "type": "File"}, "name": "k8s-ca-cert"})
    resources_ = {"nvidia.com/gpu": v.devices, "vpc.amazonaws.com/efa": v.efa}
    spec: dict[str, Any] = {
        "tolerations": [{"effect": "NoSchedule", "key": RESTRICTED_TAINT, "operator": "Equal", "value": "Worker"}],
    }
    if v.evaluation:
        spec.update({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"})
    spec["initContainers"] = [
        {
            "env": env,
            "image": v.init_image,
            "imagePullPolicy": "Always",
            "name": "init-container",
            "volumeMounts": [
                {"mountPath": "/sagemaker/fsx/init", "name": "fsx-path-init"},
                {"mountPath": "/config", "name": "training-config"},
                {"mountPath": "/var/log/aws/clusters", "name": "logs"},
                ca_mount,
            ],
        }
    ]
    spec["containers"] = [
        {
            "env": env,
            "image": v.image,
            "imagePullPolicy": "Always",
            "name": "pytorch",
            "resources": {"limits": dict(resources_), "requests": dict(resources_)},
            "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}},
            "volumeMounts": mounts,
        }
    ]
    spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [v.instance_type]},
                            {"key": RESTRICTED_LABEL, "operator": "In", "values": ["Restricted"]},
                        ]
                    }
                ]
            }
        }
    }
    spec["volumes"] = volumes
    return {"metadata": {"labels": labels(v.spec_hash)}, "spec": spec}


def build_job(v: JobValues) -> dict[str, Any]:
    """The PyTorchJob novaflow creates for ``v``."""
    replica_specs: dict[str, Any] = {"Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": _pod(v)}}
    if v.replicas > 1:
        replica_specs["Worker"] = {"replicas": v.replicas - 1, "restartPolicy": "OnFailure", "template": _pod(v)}
    return {
        "apiVersion": f"{JOB_GROUP}/{JOB_VERSION}",
        "kind": JOB_KIND,
        "metadata": {
            "labels": {"app": v.name, **labels(v.spec_hash)},
            "name": v.name,
            "namespace": v.namespace,
        },
        "spec": {"pytorchReplicaSpecs": replica_specs},
    }


def build_config_map(v: JobValues) -> dict[str, Any]:
    """The ConfigMap the job mounts at ``/config``: the resolved recipe as ``config.yaml``."""
    return {
        "apiVersion": "v1",
        "data": {"config.yaml": v.recipe_yaml},
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_PREFIX + v.name},
    }


def fill(template: Any, values: dict[str, Any]) -> Any:
    """A derived chart render with its ``{{placeholders}}`` replaced (a whole-string placeholder keeps the type;
    ``{{x:str}}``, a count the chart quoted, is always text)."""
    if isinstance(template, dict):
        return {k: fill(item, values) for k, item in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    if isinstance(template, str):
        for key, value in values.items():
            template = template.replace("{{" + key + ":str}}", str(value))
            marker = "{{" + key + "}}"
            if template == marker:
                return value
            template = template.replace(marker, str(value))
    return template


def rendered(v: JobValues) -> dict[str, Any]:
    """The chart render for ``v`` from the derived data (kind, node count), placeholders filled."""
    kind = "evaluation" if v.evaluation else "training"
    nodes = "multi_node" if v.replicas > 1 else "single_node"
    return dict(fill(hyperpod_tables()["templates"][f"{kind}_{nodes}"], v.placeholders))
