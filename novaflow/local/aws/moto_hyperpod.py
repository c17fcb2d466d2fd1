"""HyperPod clusters in moto: the ``Orchestrator`` and ``RestrictedInstanceGroups`` moto's SageMaker drops, an ARN
with a cluster id (``cluster/<id>``, as AWS names it, which is also the cluster's log group name), and EKS clusters
whose API endpoint is the loopback Kubernetes API of :mod:`novaflow.local.aws.kube_api`.

moto 5.2.5 creates and describes SageMaker clusters but knows only ``InstanceGroups``; a Nova cluster's capacity is
its restricted instance groups, orchestrated by EKS. Both are kept beside moto's object and merged into its
``DescribeCluster`` answer in AWS's shape (``CurrentCount``/``TargetCount``/``Status`` per group).
"""

from __future__ import annotations

from typing import Any

from moto.eks import responses as eks_responses
from moto.moto_api._internal import mock_random
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ValidationError

from novaflow.local.aws import eks_access, kube_api
from novaflow.local.aws.hyperpod_clusters import EXTRA as _EXTRA

_INSTALLED = False


def _restricted(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for group in groups:
        count = int(group["InstanceCount"])
        described = {k: v for k, v in group.items() if k != "InstanceCount"}
        out.append({**described, "CurrentCount": count, "TargetCount": count, "Status": "InService"})
    return out


def _response_create_cluster(self: Any) -> Any:
    from moto.core.responses import ActionResult

    name = self._get_param("ClusterName")
    orchestrator = self._get_param("Orchestrator") or {}
    restricted = self._get_param("RestrictedInstanceGroups") or []
    if restricted and not (orchestrator.get("Eks") or {}).get("ClusterArn"):
        raise ValidationError(
            message="RestrictedInstanceGroups are supported only for clusters with an EKS orchestrator"
        )
    self.sagemaker_backend.create_cluster(
        cluster_name=name,
        instance_groups=self._get_param("InstanceGroups") or [],
        vpc_config=self._get_param("VpcConfig"),
        tags=self._get_param("Tags"),
    )
    cluster = self.sagemaker_backend.clusters[name]
    cluster.arn = cluster.arn.rsplit("/", 1)[0] + "/" + mock_random.get_random_string(12, lower_case=True)
    _EXTRA[cluster] = {"RestrictedInstanceGroups": _restricted(restricted)}
    if orchestrator:
        _EXTRA[cluster]["Orchestrator"] = orchestrator
    return ActionResult({"ClusterArn": cluster.arn})


def _describe(stock: Any) -> Any:
    def describe(self: Any) -> dict[str, Any]:
        out: dict[str, Any] = stock(self)
        out.update(_EXTRA.get(self) or {})
        return out

    return describe


def _response_create_eks_cluster(stock: Any) -> Any:
    def create_cluster(self: Any) -> Any:
        result = stock(self)
        name = self._get_param("name")
        cluster = self.eks_backend.clusters[name]
        cluster.endpoint = kube_api.register_cluster(
            name, f"http://{self.headers.get('Host')}", self.current_account, self.region
        )
        return result

    return create_cluster


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    sm_responses.SageMakerResponse.create_cluster = _response_create_cluster  # type: ignore[method-assign]
    sm_models.Cluster.describe = _describe(sm_models.Cluster.describe)  # type: ignore[method-assign]
    eks_responses.EKSResponse.create_cluster = _response_create_eks_cluster(  # type: ignore[method-assign]
        eks_responses.EKSResponse.create_cluster
    )
    eks_access.install()
    _INSTALLED = True


def reset() -> None:
    _EXTRA.clear()
    kube_api.reset()
    eks_access.reset()
