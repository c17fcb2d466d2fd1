"""What the dry run checks before a HyperPod job spends anything, each refusal one line with its fix.

The references check HyperPod capacity only at submit time, if at all; a job that asks for more nodes than the
restricted instance group has free waits in ``Pending`` while the team pays for the cluster, and a caller without an
EKS access entry finds out at ``helm install``. Checked here, read-only:

- the cluster exists, is ``InService`` and is orchestrated by EKS;
- it has a restricted instance group of the job's instance type with at least the job's node count free - the
  group's current count minus the nodes novaflow's own unfinished jobs hold (found by their ``managed-by`` label);
- the node count is one the HyperPod recipe publishes (its ``replicas``);
- the caller's IAM principal (STS ``GetCallerIdentity``; an assumed-role session counts as its role, as EKS maps
  it) has an EKS access entry on the cluster (``DescribeAccessEntry``) with an access policy that may create the
  job's objects in its namespace (``ListAssociatedAccessPolicies``) - refused with the ``aws eks`` commands that
  grant it - and the EKS API agrees (a ``SelfSubjectAccessReview`` for creating PyTorchJobs in the namespace);
- an RFT job needs its trainer's nodes, its vLLM generation nodes and a node for the rollout services;
- the restricted group's execution role, which the job runs as, may read the data, write the output and invoke the
  reward Lambda (IAM's policy simulator, as the SMTJ dry run asks of ``NOVAFLOW_ROLE_ARN``);
- the image is in the job's region;
- an SMHP checkpoint is evaluated on HyperPod only (:func:`smhp_checkpoint_problem`, for every platform).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from novaflow.aws import error_code, get_client
from novaflow.catalog import Method, Platform
from novaflow.errors import NovaflowError
from novaflow.jobs.hyperpod.access import AccessPolicy, allowed, grant_commands, principal_arn
from novaflow.jobs.hyperpod.backend import HyperPodBackend, job_status
from novaflow.jobs.hyperpod.cluster import HyperPodCluster
from novaflow.jobs.hyperpod.job import JOB_GROUP, JOB_PLURAL
from novaflow.jobs.hyperpod.rft import job_nodes, nodes_needed, service_images
from novaflow.jobs.records import map_status
from novaflow.recipes.hyperpod_derive import INSTANCE_TYPE_LABEL

if TYPE_CHECKING:
    from novaflow.jobs.spec import JobSpec
    from novaflow.jobs.submit import Submission
    from novaflow.settings import NovaflowSettings

Report = Callable[[str, str, str], None]
"""``report.add(field, message, fix)`` of the dry run."""
SMHP_ESCROW = re.compile(r"^s3://customer-escrow-\d{12}-smhp-[^/]+/")
IMAGE_REGION = re.compile(r"^\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/")


def smhp_checkpoint_problem(spec: JobSpec) -> str | None:
    """Why ``spec`` cannot evaluate its checkpoint where it asks to (None when it can): AWS evaluates a checkpoint
    trained on HyperPod (its escrow bucket is ``customer-escrow-<account>-smhp-...``) only on HyperPod."""
    path = spec.model_name_or_path or ""
    if spec.method is Method.EVALUATION and spec.platform is not Platform.SMHP and SMHP_ESCROW.match(path):
        return f"{path} is a HyperPod (SMHP) checkpoint, which AWS evaluates on HyperPod only"
    return None


def _nodes(job: dict[str, Any]) -> tuple[str | None, int]:
    """(instance type, nodes) a job holds: one Master plus its Worker replicas, on its affinity's type."""
    specs = (job.get("spec") or {}).get("pytorchReplicaSpecs") or {}
    nodes = sum(int((specs.get(role) or {}).get("replicas") or 0) for role in ("Master", "Worker"))
    pod = ((specs.get("Master") or {}).get("template") or {}).get("spec") or {}
    terms = (
        ((pod.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        or {}
    ).get("nodeSelectorTerms") or []
    for term in terms:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == INSTANCE_TYPE_LABEL and expression.get("values"):
                return str(expression["values"][0]), nodes
    return None, nodes


def held_nodes(
    jobs: list[dict[str, Any]], instance_type: str, *, except_job: str, rollout: dict[str, int] | None = None
) -> dict[str, int]:
    """Job name -> nodes of ``instance_type`` held by each unfinished novaflow job (other than ``except_job``);
    ``rollout`` adds an RFT job's vLLM generation nodes and its rollout services' node (job -> vLLM replicas)."""
    held: dict[str, int] = {}
    for job in jobs:
        name = str((job.get("metadata") or {}).get("name"))
        kind, nodes = _nodes(job)
        if name == except_job or kind != instance_type:
            continue
        if not map_status(job_status(job)[0]).terminal:
            generation = (rollout or {}).get(name)
            held[name] = nodes if generation is None else nodes_needed(nodes, generation)
    return held


def check_hyperpod(
    spec: JobSpec, sub: Submission, settings: NovaflowSettings, add: Report, *, simulate: bool = True
) -> None:
    """Every HyperPod problem of ``spec`` (see the module docstring), reported through ``add``; ``simulate``: ask
    IAM's policy simulator about the instance group's execution role."""
    if not spec.cluster:
        add(
            "cluster",
            "no HyperPod cluster named",
            "pass --cluster NAME (a stage's cluster) or set NOVAFLOW_HYPERPOD_CLUSTER",
        )
        return
    if sub.instance_type is None:
        return
    _check_image(spec, add)
    backend = HyperPodBackend(settings, spec.cluster, spec.namespace)
    try:
        cluster = backend.cluster
    except ClientError as exc:
        add(
            "cluster",
            f"the caller may not describe HyperPod cluster {spec.cluster} ({error_code(exc)})",
            "allow sagemaker:DescribeCluster on it (docs/hyperpod.md#iam)",
        )
        return
    except NovaflowError as exc:
        add("cluster", str(exc).rstrip("."), "create the cluster or fix the name and region")
        return
    if cluster.status != "InService":
        add(
            "cluster",
            f"HyperPod cluster {cluster.name} is {cluster.status or 'in no known state'}, not InService",
            "wait until it is InService (aws sagemaker describe-cluster) or choose another cluster",
        )
        return
    if not cluster.eks_cluster_arn:
        add("cluster", f"HyperPod cluster {cluster.name} has no EKS orchestrator", "run Nova jobs on an EKS cluster")
        return
    if not _check_access(cluster, backend.namespace, settings, add):
        return
    jobs = _reach(backend, cluster, spec, add)
    if jobs is None:
        return
    _check_capacity(cluster, sub, jobs, backend.rollout_nodes(), add)
    if simulate:
        _check_execution_role(cluster, sub, settings, add)


def _check_image(spec: JobSpec, add: Report) -> None:
    # request imports submit, which the dry run imports: only the image check needs it
    from novaflow.jobs.hyperpod.request import job_image

    try:
        image = job_image(spec)
        if spec.method is Method.RFT_LORA:
            service_images(str(spec.region))
    except NovaflowError as exc:
        add("image_uri", str(exc).split(": ", 1)[0], str(exc).split(": ", 1)[-1])
        return
    match = IMAGE_REGION.match(image)
    if not match:
        add(
            "image_uri",
            f"{image!r} is not an ECR image URI",
            "use <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>",
        )
    elif match.group("region") != spec.region:
        add(
            "image_uri",
            f"image {image} is in {match.group('region')}, the job runs in {spec.region}",
            f"use the image's copy in {spec.region} or run in {match.group('region')}",
        )


def _reach(
    backend: HyperPodBackend, cluster: HyperPodCluster, spec: JobSpec, add: Report
) -> list[dict[str, Any]] | None:
    """novaflow's jobs on the cluster, after asking the EKS API whether the caller may create jobs there."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    fix = (
        f"add an EKS access entry for your IAM principal on {cluster.eks_cluster_name} with access to namespace "
        f"{backend.namespace} (docs/hyperpod.md#access)"
    )
    try:
        jobs_api, _ = backend._api()
        body = k8s.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=k8s.V1ResourceAttributes(
                    group=JOB_GROUP, resource=JOB_PLURAL, verb="create", namespace=backend.namespace
                )
            ),
        )
        review = k8s.AuthorizationV1Api(jobs_api.api_client).create_self_subject_access_review(body)
        allowed = bool(review.status and review.status.allowed)
        if not allowed:
            add(
                "cluster",
                f"the caller may not create pytorchjobs in namespace {backend.namespace} of {cluster.name}",
                fix,
            )
            return None
        return backend.own_jobs()
    except ApiException as exc:
        add("cluster", f"the EKS API of {cluster.name} refused the caller ({exc.status} {exc.reason})", fix)
    except (ClientError, NovaflowError, OSError) as exc:
        add("cluster", f"the EKS API of {cluster.name} is not reachable ({exc})", fix)
    return None


def _check_execution_role(cluster: HyperPodCluster, sub: Submission, settings: NovaflowSettings, add: Report) -> None:
    """A HyperPod job runs as its restricted instance group's execution role, not as ``NOVAFLOW_ROLE_ARN``: it
    reads the data, writes the output and, for RFT, invokes the reward Lambda - as the SMTJ check asks of the job's
    role. A simulator that does not answer leaves the question to run time."""
    actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
    if sub.spec.reward_lambda_arn:
        actions.append("lambda:InvokeFunction")
    iam = get_client("iam", settings)
    groups = [
        g
        for g in cluster.raw.get("RestrictedInstanceGroups") or []
        if g.get("InstanceType") == sub.instance_type and g.get("ExecutionRole")
    ]
    for group in groups:
        role = str(group["ExecutionRole"])
        try:
            result = iam.simulate_principal_policy(PolicySourceArn=role, ActionNames=actions)
        except (ClientError, BotoCoreError):
            return
        denied = [
            r["EvalActionName"] for r in result.get("EvaluationResults", []) if r.get("EvalDecision") != "allowed"
        ]
        if denied:
            add(
                "cluster",
                f"execution role {role} of restricted instance group {group.get('InstanceGroupName')} of "
                f"{cluster.name} is not allowed {', '.join(denied)}",
                "attach a policy granting these actions on the data, output and reward Lambda to that role (the "
                "job runs as it)",
            )


def _check_access(cluster: HyperPodCluster, namespace: str, settings: NovaflowSettings, add: Report) -> bool:
    """The caller's principal has an access entry on the EKS cluster with a policy for ``namespace`` (False, after
    reporting, when it has not). An entry with Kubernetes groups may be granted by RBAC instead: the API's own
    review (:func:`_reach`) decides then."""
    caller = str(get_client("sts", settings).get_caller_identity()["Arn"])
    principal = principal_arn(caller)
    eks_name = cluster.eks_cluster_name
    eks = get_client("eks", settings)
    try:
        entry = eks.describe_access_entry(clusterName=eks_name, principalArn=principal)["accessEntry"]
        associated = eks.list_associated_access_policies(clusterName=eks_name, principalArn=principal)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            add(
                "cluster",
                f"the caller may not read the access entries of EKS cluster {eks_name} ({error_code(exc)})",
                "allow eks:DescribeAccessEntry and eks:ListAssociatedAccessPolicies on it (docs/hyperpod.md#iam)",
            )
            return False
        add(
            "cluster",
            f"{principal} has no EKS access entry on {eks_name} (the EKS cluster of {cluster.name}), so its API "
            "refuses the caller",
            grant_commands(eks_name, principal, namespace, str(settings.region), entry=False),
        )
        return False
    policies = [AccessPolicy.from_api(a) for a in associated.get("associatedAccessPolicies") or []]
    if entry.get("kubernetesGroups") or allowed(policies, "create", namespace):
        return True
    have = ", ".join(f"{p.policy_arn.rsplit('/', 1)[-1]} ({p.scope})" for p in policies) or "none"
    add(
        "cluster",
        f"the EKS access entry of {principal} on {eks_name} has no access policy that may create jobs in "
        f"namespace {namespace} (associated: {have})",
        grant_commands(eks_name, principal, namespace, str(settings.region), entry=True),
    )
    return False


def _check_capacity(
    cluster: HyperPodCluster,
    sub: Submission,
    jobs: list[dict[str, Any]],
    rollout: dict[str, int],
    add: Report,
) -> None:
    assert sub.instance_type is not None
    groups = cluster.restricted_groups(sub.instance_type)
    if not groups:
        have = ", ".join(f"{g.name} ({g.instance_type} x{g.current_count})" for g in cluster.restricted_groups())
        add(
            "instance_type",
            f"HyperPod cluster {cluster.name} has no restricted instance group of {sub.instance_type} "
            f"(restricted groups: {have or 'none'})",
            "add a restricted instance group of that type (Nova runs only there) or set instance_type to one it has",
        )
        return
    held = held_nodes(jobs, sub.instance_type, except_job=sub.job_name, rollout=rollout)
    total = sum(g.current_count for g in groups)
    free = total - sum(held.values())
    needed, parts = job_nodes(sub)
    if needed <= free:
        return
    names = ", ".join(g.name for g in groups)
    busy = f"; novaflow jobs hold {sum(held.values())}: {', '.join(sorted(held))}" if held else ""
    add(
        "instance_count",
        f"restricted instance group {names} of {cluster.name} has {free} free {sub.instance_type} node(s) "
        f"({total} in service{busy}), the job asks for {needed}{parts}",
        "wait for those jobs to end, lower instance_count to a published count that fits, or scale the group up",
    )
