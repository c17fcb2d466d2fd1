"""Create a HyperPod cluster in the embedded AWS through the public API, as a team's platform engineer would:
an EKS cluster with an EKS access entry for the caller (cluster admin, what EKS grants a cluster's creator), then a
SageMaker HyperPod cluster it orchestrates, with one restricted instance group (where Nova
jobs run, with its FSx for Lustre file system) of ``N`` nodes of one instance type.

``novaflow local up --hyperpod CLUSTER:TYPE=N`` and the CLI's ``--local`` runs call :func:`create_hyperpod_cluster`
for each ``--hyperpod`` option; tests call it for their fixtures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from novaflow.errors import ConfigError
from novaflow.jobs.hyperpod.access import principal_arn

OPTION = re.compile(
    r"^(?P<name>[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?):(?P<type>ml\.[a-z0-9]+\.[a-z0-9]+)=(?P<n>\d+)$"
)
FSX = {"SizeInGiB": 1200, "PerUnitStorageThroughput": 250}
VPC = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}


@dataclass(frozen=True)
class HyperPodOption:
    name: str
    instance_type: str
    count: int

    @property
    def group_name(self) -> str:
        """``restricted-p5-48xlarge`` for ml.p5.48xlarge."""
        return "restricted-" + self.instance_type.removeprefix("ml.").replace(".", "-")


def parse_hyperpod_option(text: str) -> HyperPodOption:
    """``CLUSTER:TYPE=N`` -> the cluster to create; one line naming the option otherwise."""
    match = OPTION.match(text.strip())
    if not match or int(match.group("n")) < 1:
        raise ConfigError(
            f"--hyperpod {text!r}: expected CLUSTER:TYPE=N with N >= 1, such as nova:ml.p5.48xlarge=8 "
            "(a cluster name, an ml. instance type, the node count of its restricted instance group)."
        )
    return HyperPodOption(match.group("name"), match.group("type"), int(match.group("n")))


CREATOR_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
"""What EKS gives a cluster's creator (``bootstrapClusterCreatorAdminPermissions``): cluster-wide admin."""


def grant_caller(session: Any, url: str, eks_cluster: str) -> str:
    """An access entry for the session's principal on ``eks_cluster`` with the creator's policy, as EKS bootstraps
    a cluster's creator; returns the principal ARN."""
    caller = session.client("sts", endpoint_url=url).get_caller_identity()["Arn"]
    principal = principal_arn(caller)
    eks = session.client("eks", endpoint_url=url)
    try:
        eks.create_access_entry(clusterName=eks_cluster, principalArn=principal, type="STANDARD")
    except eks.exceptions.ResourceInUseException:
        pass
    eks.associate_access_policy(
        clusterName=eks_cluster, principalArn=principal, policyArn=CREATOR_POLICY, accessScope={"type": "cluster"}
    )
    return str(principal)


def create_hyperpod_cluster(session: Any, url: str, option: HyperPodOption, role_arn: str) -> dict[str, Any]:
    """Create the EKS cluster ``<name>-eks`` (with an access entry for the caller) and the HyperPod cluster
    ``<name>``; returns ``DescribeCluster``."""
    eks = session.client("eks", endpoint_url=url)
    sagemaker = session.client("sagemaker", endpoint_url=url)
    eks_arn = eks.create_cluster(
        name=f"{option.name}-eks",
        roleArn=role_arn,
        resourcesVpcConfig={"subnetIds": VPC["Subnets"], "securityGroupIds": VPC["SecurityGroupIds"]},
    )["cluster"]["arn"]
    grant_caller(session, url, f"{option.name}-eks")
    sagemaker.create_cluster(
        ClusterName=option.name,
        Orchestrator={"Eks": {"ClusterArn": eks_arn}},
        RestrictedInstanceGroups=[
            {
                "InstanceGroupName": option.group_name,
                "InstanceType": option.instance_type,
                "InstanceCount": option.count,
                "ExecutionRole": role_arn,
                "EnvironmentConfig": {"FSxLustreConfig": FSX},
            }
        ],
        VpcConfig=VPC,
    )
    described: dict[str, Any] = sagemaker.describe_cluster(ClusterName=option.name)
    return described
