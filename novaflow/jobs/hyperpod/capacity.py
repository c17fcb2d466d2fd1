"""A HyperPod cluster's restricted instance groups as capacities (slots = nodes), for the quota queue.

The sweeps issue turns every fixed amount the account has into a Prefect global concurrency limit, so that jobs
queue for it instead of failing at AWS. A restricted instance group is such an amount: a Nova job of N nodes holds
N of its nodes until it ends. :func:`restricted_capacities` reads them, keyed as the quota module keys HyperPod
capacities (``hyperpod:<cluster>:<group>``), and :func:`instance_group_of` names the group a job draws on (what the
quota module's ``demand_of(..., instance_group=...)`` takes). The live check against nodes already held - by jobs
novaflow did not start too - stays in the dry run (:mod:`novaflow.jobs.hyperpod.checks`).
"""

from __future__ import annotations

from novaflow.errors import ConfigError
from novaflow.jobs.hyperpod.cluster import describe_cluster
from novaflow.settings import NovaflowSettings

KEY_PREFIX = "hyperpod"


def capacity_key(cluster: str, group: str) -> str:
    return f"{KEY_PREFIX}:{cluster}:{group}"


def restricted_capacities(cluster: str, settings: NovaflowSettings) -> dict[str, int]:
    """``hyperpod:<cluster>:<group>`` -> the group's nodes in service, for every restricted instance group."""
    return {
        capacity_key(cluster, g.name): g.current_count for g in describe_cluster(cluster, settings).restricted_groups()
    }


def instance_group_of(cluster: str, instance_type: str, settings: NovaflowSettings) -> str:
    """``<cluster>:<group>``: the restricted instance group of ``instance_type`` a job on ``cluster`` runs in (the
    largest, when there are several: the scheduler may place the job in any of them)."""
    groups = describe_cluster(cluster, settings).restricted_groups(instance_type)
    if not groups:
        raise ConfigError(
            f"HyperPod cluster {cluster} has no restricted instance group of {instance_type}: add one or choose "
            "another instance type."
        )
    return f"{cluster}:{max(groups, key=lambda g: g.current_count).name}"
