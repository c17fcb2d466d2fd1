"""A HyperPod cluster as novaflow reaches it: SageMaker ``DescribeCluster``, then its EKS API with a signed token.

No kubectl, helm or hyperpod binary: the cluster's orchestrator is ``Orchestrator.Eks.ClusterArn``; EKS
``DescribeCluster`` gives the API endpoint and its certificate authority; the bearer token is what
``aws eks get-token`` prints - a presigned STS ``GetCallerIdentity`` URL carrying the ``x-k8s-aws-id`` header
(the EKS cluster name), base64url-encoded without padding behind ``k8s-aws-v1.``. EKS maps the signing identity
to Kubernetes permissions through the cluster's access entries, so the token is signed with the run's own
credentials (the same boto3 session every other call uses). See docs/hyperpod.md.
"""

from __future__ import annotations

import base64
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, wrap_client_error
from novaflow.errors import ConfigError
from novaflow.settings import NovaflowSettings

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the token format, not a secret
K8S_AWS_ID_HEADER = "x-k8s-aws-id"
TOKEN_LIFETIME_SECONDS = 60
"""The presigned URL's expiry, as ``aws eks get-token`` signs it; EKS accepts the token for 15 minutes."""
TOKEN_REFRESH_SECONDS = 600
RESTRICTED_INSTANCE_GROUP = "Restricted"


@dataclass(frozen=True)
class InstanceGroup:
    """One instance group of a cluster: restricted groups are where Nova jobs run."""

    name: str
    instance_type: str
    current_count: int
    target_count: int
    restricted: bool


@dataclass(frozen=True)
class HyperPodCluster:
    name: str
    arn: str
    status: str
    eks_cluster_arn: str | None
    groups: tuple[InstanceGroup, ...]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def cluster_id(self) -> str:
        """The id in the ARN (``.../cluster/<id>``): the second part of the cluster's log group name."""
        return self.arn.rsplit("/", 1)[-1]

    @property
    def log_group(self) -> str:
        return f"/aws/sagemaker/Clusters/{self.name}/{self.cluster_id}"

    @property
    def eks_cluster_name(self) -> str:
        if not self.eks_cluster_arn:
            raise ConfigError(
                f"HyperPod cluster {self.name} is not orchestrated by EKS (no Orchestrator.Eks.ClusterArn): Nova "
                "jobs run only on EKS-orchestrated HyperPod clusters; create one with an EKS orchestrator."
            )
        return self.eks_cluster_arn.rsplit("/", 1)[-1]

    def restricted_groups(self, instance_type: str | None = None) -> list[InstanceGroup]:
        return [g for g in self.groups if g.restricted and (instance_type is None or g.instance_type == instance_type)]


def _groups(raw: dict[str, Any]) -> tuple[InstanceGroup, ...]:
    out = []
    for key, restricted in (("InstanceGroups", False), ("RestrictedInstanceGroups", True)):
        for group in raw.get(key) or []:
            out.append(
                InstanceGroup(
                    name=str(group.get("InstanceGroupName")),
                    instance_type=str(group.get("InstanceType")),
                    current_count=int(group.get("CurrentCount") or 0),
                    target_count=int(group.get("TargetCount") or group.get("CurrentCount") or 0),
                    restricted=restricted,
                )
            )
    return tuple(out)


def describe_cluster(name: str, settings: NovaflowSettings) -> HyperPodCluster:
    """The cluster called ``name``; a missing cluster is one line naming it and the region."""
    try:
        raw = get_client("sagemaker", settings).describe_cluster(ClusterName=name)
    except ClientError as exc:
        if is_not_found(exc) or "not found" in str(exc).lower():
            raise ConfigError(
                f"HyperPod cluster {name} does not exist in {settings.region}: check the name "
                "(--cluster / NOVAFLOW_HYPERPOD_CLUSTER) and NOVAFLOW_REGION."
            ) from None
        raise wrap_client_error(exc, f"Describing HyperPod cluster {name}") from exc
    eks = ((raw.get("Orchestrator") or {}).get("Eks") or {}).get("ClusterArn")
    return HyperPodCluster(name, raw["ClusterArn"], raw.get("ClusterStatus", ""), eks, _groups(raw), raw)


@dataclass(frozen=True)
class EksEndpoint:
    name: str
    endpoint: str
    certificate_authority: str
    """Base64 PEM, as EKS returns it."""


def describe_eks(name: str, settings: NovaflowSettings) -> EksEndpoint:
    try:
        raw = get_client("eks", settings).describe_cluster(name=name)["cluster"]
    except ClientError as exc:
        raise wrap_client_error(exc, f"Describing EKS cluster {name}") from exc
    return EksEndpoint(
        name, str(raw.get("endpoint") or ""), str((raw.get("certificateAuthority") or {}).get("data") or "")
    )


def _lift_header(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if K8S_AWS_ID_HEADER in params:
        context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)


def _add_header(request: Any, **_: Any) -> None:
    if K8S_AWS_ID_HEADER in request.context:
        request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]


def eks_token(eks_cluster_name: str, settings: NovaflowSettings) -> str:
    """A bearer token for the EKS API, as ``aws eks get-token --cluster-name`` makes it."""
    sts = get_client("sts", settings)
    events = sts.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", _lift_header, unique_id="novaflow-k8s-aws-id")
    events.register("before-sign.sts.GetCallerIdentity", _add_header, unique_id="novaflow-k8s-aws-id-sign")
    url = sts.generate_presigned_url(
        "get_caller_identity",
        Params={K8S_AWS_ID_HEADER: eks_cluster_name},
        ExpiresIn=TOKEN_LIFETIME_SECONDS,
        HttpMethod="GET",
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class KubeConnection:
    """A Kubernetes API client for one cluster, its token renewed before EKS stops accepting it."""

    def __init__(self, cluster: HyperPodCluster, settings: NovaflowSettings) -> None:
        self.cluster = cluster
        self.settings = settings
        self.eks = describe_eks(cluster.eks_cluster_name, settings)
        self._client: Any = None
        self._signed_at = 0.0
        self._ca_file: Any = None

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` (the dependency is the ``hyperpod`` extra, imported on first use)."""
        try:
            from kubernetes import client as k8s
        except ImportError:
            raise ConfigError("HyperPod jobs need the Kubernetes client: pip install 'novaflow[hyperpod]'.") from None
        if self._client is not None and time.monotonic() - self._signed_at < TOKEN_REFRESH_SECONDS:
            return self._client
        config = k8s.Configuration()
        config.host = self.eks.endpoint
        if self.eks.certificate_authority and self.eks.endpoint.startswith("https://"):
            self._ca_file = tempfile.NamedTemporaryFile(prefix="novaflow-eks-ca-", suffix=".pem")
            self._ca_file.write(base64.b64decode(self.eks.certificate_authority))
            self._ca_file.flush()
            config.ssl_ca_cert = self._ca_file.name
        config.api_key = {"authorization": eks_token(self.eks.name, self.settings)}
        config.api_key_prefix = {"authorization": "Bearer"}
        self._client = k8s.ApiClient(config)
        self._signed_at = time.monotonic()
        return self._client
