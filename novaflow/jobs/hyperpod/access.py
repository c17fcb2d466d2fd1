"""Who may reach a HyperPod cluster's EKS API: the caller's IAM principal and its EKS access entry.

EKS authenticates the token's signer (STS ``GetCallerIdentity`` with the presigned URL), maps an assumed-role
session (``arn:aws:sts::<account>:assumed-role/<role>/<session>``) to its role (``arn:aws:iam::<account>:role/<role>``)
and looks the role (or IAM user) up in the cluster's access entries; without one the API answers ``401``. The entry's
associated access policies, each scoped to the cluster or to namespaces, decide what it may do; without one covering
the job's namespace, ``403``. The dry run (:mod:`novaflow.jobs.hyperpod.checks`) asks EKS the same questions
before anything is created, and says which ``aws eks`` commands grant the access. See docs/hyperpod.md#access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]+)/.+$")
POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
WRITE_POLICIES = ("AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy", "AmazonEKSEditPolicy")
"""Access policies that may create and delete the objects of a Nova job (the Edit policy is the least of them)."""
READ_POLICIES = ("AmazonEKSViewPolicy",)
READ_VERBS = frozenset({"get", "list", "watch"})
SUGGESTED_POLICY = POLICY_PREFIX + "AmazonEKSEditPolicy"


def principal_arn(caller_arn: str) -> str:
    """The principal an access entry names for ``caller_arn``: an assumed-role session's role, else the ARN.

    EKS maps the session to its role ARN without the role's path, which an access entry must match."""
    match = ASSUMED_ROLE.match(caller_arn)
    if not match:
        return caller_arn
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


@dataclass(frozen=True)
class AccessPolicy:
    """One associated access policy: its ARN and scope (``cluster``, or ``namespace`` with the namespaces)."""

    policy_arn: str
    scope: str
    namespaces: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> AccessPolicy:
        scope = raw.get("accessScope") or {}
        return cls(str(raw.get("policyArn", "")), str(scope.get("type", "")), tuple(scope.get("namespaces") or ()))

    def covers(self, namespace: str) -> bool:
        return self.scope == "cluster" or namespace in self.namespaces

    def allows(self, verb: str, namespace: str) -> bool:
        """True when the policy lets its principal ``verb`` a Nova job's objects in ``namespace``."""
        name = self.policy_arn.removeprefix(POLICY_PREFIX)
        if not self.covers(namespace):
            return False
        return name in WRITE_POLICIES or (name in READ_POLICIES and verb in READ_VERBS)


def allowed(policies: list[AccessPolicy], verb: str, namespace: str) -> bool:
    return any(p.allows(verb, namespace) for p in policies)


def grant_commands(eks_cluster: str, principal: str, namespace: str, region: str, *, entry: bool) -> str:
    """The ``aws eks`` commands that give ``principal`` what a Nova job needs in ``namespace``."""
    associate = (
        f"aws eks associate-access-policy --region {region} --cluster-name {eks_cluster} --principal-arn {principal} "
        f"--policy-arn {SUGGESTED_POLICY} --access-scope type=namespace,namespaces={namespace}"
    )
    if not entry:
        return (
            f"aws eks create-access-entry --region {region} --cluster-name {eks_cluster} --principal-arn {principal} "
            f"--type STANDARD && {associate}"
        )
    return associate
