"""A HyperPod cluster's restricted instance groups as capacities (slots = nodes), for the quota queue.

The sweeps issue turns every fixed amount the account has into a Prefect global concurrency limit, so that jobs
queue for it instead of failing at AWS. A restricted instance group is such an amount: a Nova job of N nodes holds
N of its nodes until it ends. :func:`restricted_capacities` reads them, keyed as the quota module keys HyperPod
capacities (:func:`novaflow.quotas.capacity.hyperpod_key`), and :func:`instance_group_of` names the group a job
draws on (what ``demand_of(..., instance_group=...)`` takes); ``tasks.quotas.job_capacity`` merges both into the
run's capacities, so HyperPod jobs queue for nodes. The live check against nodes already held stays in the dry run
(:mod:`novaflow.jobs.hyperpod.checks`).
"""

from __future__ import annotations

from novaflow.errors import ConfigError
from novaflow.jobs.hyperpod.cluster import describe_cluster
from novaflow.quotas.capacity import hyperpod_key
from novaflow.settings import NovaflowSettings


def restricted_capacities(cluster: str, settings: NovaflowSettings) -> dict[str, int]:
    """``hyperpod:<cluster>:<group>`` -> the group's nodes in service, for every restricted instance group."""
    return {
        hyperpod_key(cluster, g.name): g.current_count for g in describe_cluster(cluster, settings).restricted_groups()
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
