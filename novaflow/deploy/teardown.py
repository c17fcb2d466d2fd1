"""Remove everything novaflow created for a deployment - and nothing else.

Ownership is proven by tags (``novaflow:managed=true`` and ``novaflow:deployment=<name>``), read from AWS at
teardown time; a resource with the right name but without the tags is left alone and reported as kept. The
inventory (what exists) is collected separately from the plan (what to delete, in which order) so the plan is a
pure function that can be tested and shown (``dry_run``) before anything is deleted. Running it twice is safe:
resources that are already gone count as gone, not as errors.

Example:
    >>> report = teardown("nova-sft")          # doctest: +SKIP
    >>> report.removed                          # doctest: +SKIP
    ['sagemaker endpoint nova-sft', 'sagemaker endpoint-config nova-sft-1a2b3c4d-config', ...]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import error_message, get_client, is_not_found, wrap_client_error
from novaflow.backoff import Backoff, PollTimeout, poll_until
from novaflow.deploy.tags import from_aws, is_managed
from novaflow.settings import NovaflowSettings

# Deletion order: what serves traffic first, then what it was built from, roles last.
KIND_ORDER = (
    "bedrock-provisioned-throughput",
    "bedrock-deployment",
    "sagemaker-inference-component",
    "sagemaker-endpoint",
    "sagemaker-endpoint-config",
    "sagemaker-model",
    "bedrock-custom-model",
    "iam-role",
)
ROLE_PREFIX = "novaflow-"
SERVICES = ("sagemaker", "bedrock", "iam")


@dataclass(frozen=True)
class Resource:
    """One resource found in the account, with its tags and, for custom models, who still uses it."""

    kind: str
    name: str
    arn: str
    tags: dict[str, str]
    used_by: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind.replace('-', ' ', 1)} {self.name}"


@dataclass
class TeardownPlan:
    """Resources to delete in order, and resources kept with the reason."""

    delete: list[Resource] = field(default_factory=list)
    kept: list[tuple[Resource, str]] = field(default_factory=list)


@dataclass
class TeardownReport:
    """What teardown did: removed, already gone, kept (not ours / still in use) and failed (with the error)."""

    deployment: str | None
    removed: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """True when every resource that was found and ours is gone and every service could be listed."""
        return not self.failed and not self.unlisted


def plan_teardown(inventory: list[Resource], deployment: str | None) -> TeardownPlan:
    """Pick the resources novaflow made for ``deployment`` (all novaflow deployments when None) and order them.

    Custom models are shared: a deployment may reuse one another deployment created for the same checkpoint.
    A novaflow custom model is deleted once nothing that survives this teardown uses it, if it was made for
    this deployment or one of this deployment's Bedrock deployments used it; otherwise it is kept.
    """
    plan = TeardownPlan()
    models: list[Resource] = []
    for res in inventory:
        if not is_managed(res.tags):
            plan.kept.append((res, "not tagged novaflow:managed=true"))
        elif res.kind == "bedrock-custom-model":
            models.append(res)
        elif not is_managed(res.tags, deployment):
            plan.kept.append((res, f"belongs to deployment {res.tags.get('novaflow:deployment', '?')}"))
        else:
            plan.delete.append(res)
    deleting = {r.arn for r in plan.delete}
    for res in models:
        survivors = [u for u in res.used_by if u not in deleting]
        related = is_managed(res.tags, deployment) or any(u in deleting for u in res.used_by)
        if survivors:
            plan.kept.append((res, f"still used by {', '.join(survivors)}"))
        elif related:
            plan.delete.append(res)
        else:
            plan.kept.append((res, f"belongs to deployment {res.tags.get('novaflow:deployment', '?')}"))
    plan.delete.sort(key=lambda r: (KIND_ORDER.index(r.kind), r.name))
    return plan


def teardown(
    deployment: str | None,
    *,
    dry_run: bool = False,
    services: tuple[str, ...] = SERVICES,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    settings: NovaflowSettings,
) -> TeardownReport:
    """Delete what novaflow created for ``deployment`` (None: for every novaflow deployment); report it.

    ``services`` limits the search (e.g. ``("sagemaker", "iam")`` for an endpoint-only deployment). Failures to
    list a service or delete a resource are collected, not raised, so one stuck resource (or a missing Bedrock
    permission) does not keep the others - and their bill - alive; check ``report.ok``.
    """
    report = TeardownReport(deployment=deployment, dry_run=dry_run)
    inventory = collect_inventory(deployment, settings, services=services, unlisted=report.unlisted)
    plan = plan_teardown(inventory, deployment)
    report.kept = [f"{res.label} ({why})" for res, why in plan.kept if _named_like(res, deployment)]
    if dry_run:
        report.removed = [res.label for res in plan.delete]
        return report
    backoff = backoff or Backoff(initial=5, factor=1.5, maximum=30, deadline=900)
    components_deleted = False
    for res in plan.delete:
        if res.kind != "sagemaker-inference-component" and components_deleted:
            # An endpoint (and a model) is deleted only once its components are gone, as AWS asks.
            components_deleted = False
            busy = _wait_components_gone(plan, settings, backoff, sleep)
            if busy is not None:
                report.failed.append(busy)
                break
        if res.kind == "bedrock-custom-model":
            busy = _wait_unused(res, settings, backoff, sleep)
            if busy is not None:
                report.failed.append(busy)
                continue
        try:
            _DELETERS[res.kind](res, settings)
        except ClientError as exc:
            if is_not_found(exc):
                report.already_gone.append(res.label)
            else:
                report.failed.append(f"{res.label}: {exc.response.get('Error', {}).get('Code')}: {error_message(exc)}")
            continue
        report.removed.append(res.label)
        components_deleted = components_deleted or res.kind == "sagemaker-inference-component"
    return report


def _wait_components_gone(
    plan: TeardownPlan, settings: NovaflowSettings, backoff: Backoff, sleep: Callable[[float], None]
) -> str | None:
    """Wait (bounded) until the deleted inference components no longer exist; why not, when the deadline passes."""
    sm = get_client("sagemaker", settings)
    names = [r.name for r in plan.delete if r.kind == "sagemaker-inference-component"]

    def remaining() -> list[str]:
        left = []
        for name in names:
            try:
                sm.describe_inference_component(InferenceComponentName=name)
            except ClientError:
                continue
            left.append(name)
        return left

    try:
        poll_until(remaining, lambda left: not left, backoff=backoff, sleep=sleep)
    except PollTimeout as exc:
        left = ", ".join(exc.last.value) if isinstance(exc.last.value, list) else "?"
        return (
            f"inference components {left} still deleting after {exc.last.elapsed:.0f} s; the endpoint and models "
            "are kept - run teardown again once they are gone."
        )
    return None


def _named_like(res: Resource, deployment: str | None) -> bool:
    """Only mention kept resources that look related; an account has many resources that are not ours."""
    return deployment is None or deployment in res.name or res.tags.get("novaflow:deployment") == deployment


# -- inventory ------------------------------------------------------------------------------------------


def collect_inventory(
    deployment: str | None,
    settings: NovaflowSettings,
    *,
    services: tuple[str, ...] = SERVICES,
    unlisted: list[str] | None = None,
) -> list[Resource]:
    """Every SageMaker endpoint/config/model, Bedrock deployment/throughput/custom model and novaflow-named
    IAM role that could belong to ``deployment``, with its tags.

    A service that cannot be listed is noted in ``unlisted`` (raised when that is None) and the others are
    still collected.
    """
    unknown = set(services) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown teardown services {sorted(unknown)}; choose from {SERVICES}")
    contains = deployment[:40] if deployment else None
    listers: dict[str, Callable[[], list[Resource]]] = {
        "sagemaker": lambda: _sagemaker(contains, settings),
        "bedrock": lambda: _bedrock(settings),
        "iam": lambda: _roles(settings),
    }
    found: list[Resource] = []
    for service in services:
        try:
            found.extend(listers[service]())
        except ClientError as exc:
            if unlisted is None:
                raise wrap_client_error(exc, f"list {service} resources for teardown") from exc
            unlisted.append(f"{service}: {exc.response.get('Error', {}).get('Code')}: {error_message(exc)[:200]}")
    return found


def _pages(
    call: Callable[..., dict[str, Any]], key: str, cursor: str = "NextToken", **kwargs: Any
) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = call(**kwargs, **({cursor: token} if token else {}))
        yield from page.get(key, [])
        token = page.get(cursor)
        if not token:
            return


def _sagemaker(contains: str | None, settings: NovaflowSettings) -> list[Resource]:
    # Names of everything novaflow creates for an endpoint start with (a cut of) the endpoint name, so a
    # NameContains filter of its first 40 characters cannot miss one of ours; tags still decide.
    sm = get_client("sagemaker", settings)
    filters = {"NameContains": contains} if contains else {}
    listings = (
        ("sagemaker-endpoint", sm.list_endpoints, "Endpoints", "EndpointName", "EndpointArn"),
        (
            "sagemaker-endpoint-config",
            sm.list_endpoint_configs,
            "EndpointConfigs",
            "EndpointConfigName",
            "EndpointConfigArn",
        ),
        ("sagemaker-model", sm.list_models, "Models", "ModelName", "ModelArn"),
    )
    found: list[Resource] = []
    for kind, call, key, name_key, arn_key in listings:
        for item in _pages(call, key, **filters):
            tags = from_aws(sm.list_tags(ResourceArn=item[arn_key]).get("Tags", []))
            found.append(Resource(kind, item[name_key], item[arn_key], tags))
    found += _inference_components(sm, contains, {r.name for r in found if r.kind == "sagemaker-model"})
    return found


def _inference_components(sm: Any, contains: str | None, models: set[str]) -> list[Resource]:
    """Inference components on the deployment's endpoints, and their models (named after the component, so the
    endpoint-name filter above cannot find them)."""
    found: list[Resource] = []
    for item in _pages(sm.list_inference_components, "InferenceComponents"):
        if contains and contains not in item["EndpointName"]:
            continue
        arn = item["InferenceComponentArn"]
        found.append(
            Resource(
                "sagemaker-inference-component",
                item["InferenceComponentName"],
                arn,
                from_aws(sm.list_tags(ResourceArn=arn).get("Tags", [])),
            )
        )
        try:
            desc = sm.describe_inference_component(InferenceComponentName=item["InferenceComponentName"])
            model = (desc.get("Specification") or {}).get("ModelName")
            if model and model not in models:
                model_arn = sm.describe_model(ModelName=model)["ModelArn"]
                tags = from_aws(sm.list_tags(ResourceArn=model_arn).get("Tags", []))
                found.append(Resource("sagemaker-model", model, model_arn, tags))
                models.add(model)
        except ClientError:
            continue
    return found


def _bedrock(settings: NovaflowSettings) -> list[Resource]:
    br = get_client("bedrock", settings)
    users: dict[str, list[str]] = {}
    found: list[Resource] = []
    deployments = (
        (
            "bedrock-deployment",
            br.list_custom_model_deployments,
            "modelDeploymentSummaries",
            "customModelDeploymentName",
            "customModelDeploymentArn",
        ),
        (
            "bedrock-provisioned-throughput",
            br.list_provisioned_model_throughputs,
            "provisionedModelSummaries",
            "provisionedModelName",
            "provisionedModelArn",
        ),
    )
    for kind, call, key, name_key, arn_key in deployments:
        for item in _pages(call, key, cursor="nextToken"):
            arn = item[arn_key]
            users.setdefault(item.get("modelArn", ""), []).append(arn)
            found.append(Resource(kind, item[name_key], arn, _bedrock_tags(br, arn)))
    for item in _pages(br.list_custom_models, "modelSummaries", cursor="nextToken"):
        arn = item["modelArn"]
        found.append(
            Resource(
                "bedrock-custom-model",
                item["modelName"],
                arn,
                _bedrock_tags(br, arn),
                used_by=tuple(users.get(arn, ())),
            )
        )
    return found


def _bedrock_tags(br: Any, arn: str) -> dict[str, str]:
    """Tags, or none when they cannot be read: a resource whose ownership cannot be proven is kept."""
    try:
        return from_aws(br.list_tags_for_resource(resourceARN=arn).get("tags", []))
    except ClientError:
        return {}


def _roles(settings: NovaflowSettings) -> list[Resource]:
    iam = get_client("iam", settings)
    found: list[Resource] = []
    for role in _pages(iam.list_roles, "Roles", cursor="Marker"):
        if not role["RoleName"].startswith(ROLE_PREFIX):
            continue
        tags = from_aws(iam.list_role_tags(RoleName=role["RoleName"]).get("Tags", []))
        found.append(Resource("iam-role", role["RoleName"], role["Arn"], tags))
    return found


# -- deleters -------------------------------------------------------------------------------------------


def delete_role(res: Resource, settings: NovaflowSettings) -> None:
    """IAM refuses to delete a role with policies or instance profiles attached: detach everything first."""
    iam = get_client("iam", settings)
    for policy in _pages(iam.list_attached_role_policies, "AttachedPolicies", cursor="Marker", RoleName=res.name):
        iam.detach_role_policy(RoleName=res.name, PolicyArn=policy["PolicyArn"])
    for name in _pages(iam.list_role_policies, "PolicyNames", cursor="Marker", RoleName=res.name):
        iam.delete_role_policy(RoleName=res.name, PolicyName=name)
    for profile in _pages(iam.list_instance_profiles_for_role, "InstanceProfiles", cursor="Marker", RoleName=res.name):
        iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=res.name)
    iam.delete_role(RoleName=res.name)


def _wait_unused(
    res: Resource, settings: NovaflowSettings, backoff: Backoff, sleep: Callable[[float], None]
) -> str | None:
    """A custom model cannot be deleted while its deployments are still deleting; wait (bounded) for them.

    Returns why the model must be left for now (the deadline passed while something still used it), or None
    to go on with the delete. If listing the users fails, the delete is attempted anyway and its error is what
    gets reported.
    """
    br = get_client("bedrock", settings)

    def users() -> list[str] | None:
        try:
            deployments = br.list_custom_model_deployments(modelArnEquals=res.arn).get("modelDeploymentSummaries", [])
            throughputs = br.list_provisioned_model_throughputs(modelArnEquals=res.arn).get(
                "provisionedModelSummaries", []
            )
        except ClientError:
            return None
        return [
            *(
                f"bedrock deployment {d.get('customModelDeploymentName')}"
                for d in deployments
                if d.get("modelArn") == res.arn
            ),
            *(
                f"bedrock provisioned-throughput {p.get('provisionedModelName')}"
                for p in throughputs
                if p.get("modelArn") == res.arn
            ),
        ]

    try:
        poll_until(users, lambda found: not found, backoff=backoff, sleep=sleep)
    except PollTimeout as exc:
        still = ", ".join(exc.last.value) if isinstance(exc.last.value, list) else "?"
        return (
            f"{res.label}: still used by {still} after {exc.last.elapsed:.0f} s (deadline {backoff.deadline:.0f} s); "
            "not deleted - run teardown again once they are gone."
        )
    return None


_DELETERS: dict[str, Callable[[Resource, NovaflowSettings], None]] = {
    "sagemaker-endpoint": lambda r, s: get_client("sagemaker", s).delete_endpoint(EndpointName=r.name),
    "sagemaker-endpoint-config": lambda r, s: get_client("sagemaker", s).delete_endpoint_config(
        EndpointConfigName=r.name
    ),
    "sagemaker-model": lambda r, s: get_client("sagemaker", s).delete_model(ModelName=r.name),
    "bedrock-deployment": lambda r, s: get_client("bedrock", s).delete_custom_model_deployment(
        customModelDeploymentIdentifier=r.arn
    ),
    "bedrock-provisioned-throughput": lambda r, s: get_client("bedrock", s).delete_provisioned_model_throughput(
        provisionedModelId=r.arn
    ),
    "bedrock-custom-model": lambda r, s: get_client("bedrock", s).delete_custom_model(modelIdentifier=r.arn),
    "iam-role": delete_role,
    "sagemaker-inference-component": lambda r, s: get_client("sagemaker", s).delete_inference_component(
        InferenceComponentName=r.name
    ),
}
