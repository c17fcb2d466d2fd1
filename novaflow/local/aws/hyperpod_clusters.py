"""What moto does not keep of a HyperPod cluster (its orchestrator, its restricted instance groups), beside moto's
object: written by :mod:`novaflow.local.aws.moto_hyperpod`, read there and by the Kubernetes API
(:mod:`novaflow.local.aws.kube_api`), which finds the HyperPod cluster - and so the log group - of an EKS cluster."""

from __future__ import annotations

import weakref
from typing import Any

from moto.sagemaker import models as sm_models

EXTRA: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
"""moto's cluster object -> ``{"Orchestrator": ..., "RestrictedInstanceGroups": [...]}``."""


def hyperpod_of(account: str, region: str, eks_name: str) -> tuple[str, str] | None:
    """(name, ARN) of the HyperPod cluster orchestrated by the EKS cluster ``eks_name``."""
    backend = sm_models.sagemaker_backends[account][region]
    for cluster in backend.clusters.values():
        eks = ((EXTRA.get(cluster) or {}).get("Orchestrator") or {}).get("Eks") or {}
        if str(eks.get("ClusterArn", "")).rsplit("/", 1)[-1] == eks_name:
            return cluster.cluster_name, cluster.arn
    return None
