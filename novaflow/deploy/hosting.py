"""What each Nova hosting instance type has (accelerators, vCPUs, memory), derived from EC2's
``DescribeInstanceTypes`` into ``hosting_instances.json`` by ``scripts/derive_hosting_instances.py``.

The hosting tiers (:mod:`novaflow.deploy.tiers`) are measured per instance: the Nova container serves one model
on all of an instance's accelerators. So an inference component of a Nova model asks for every accelerator of the
instance type it runs on, and an endpoint needs one instance per component copy.

Example:
    >>> hosting_instance("ml.g6.48xlarge").accelerators
    8
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from novaflow.deploy.tiers import SUPPORTED_TIERS
from novaflow.errors import ConfigError

TABLE_PATH = Path(__file__).with_name("hosting_instances.json")


@dataclass(frozen=True)
class HostingInstance:
    name: str
    accelerators: int
    vcpus: int
    memory_mib: int


def hosting_instance_types() -> list[str]:
    """Every instance type a Nova hosting tier names, sorted."""
    return sorted({name for tiers in SUPPORTED_TIERS.values() for name in tiers})


@cache
def _table() -> dict[str, HostingInstance]:
    raw = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    return {name: HostingInstance(name, **values) for name, values in raw["instances"].items()}


def hosting_instance(instance_type: str) -> HostingInstance:
    found = _table().get(instance_type)
    if found is None:
        raise ConfigError(
            f"{instance_type} is not a Nova hosting instance type: choose one of {', '.join(sorted(_table()))}."
        )
    return found
