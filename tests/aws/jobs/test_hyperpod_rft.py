"""RFT on HyperPod against the embedded AWS: every object of the hub's RFT chart is created through the EKS API,
the emulator trains with the reward Lambda (called through the Lambda API, as on SMTJ), the status comes from the
PyTorchJob's conditions, a second submit attaches, the rollout services go when the trainer ends, stop deletes every
object of the job; the dry run counts the
rollout's nodes and checks the caller's EKS access entry, refusing in one line with the commands that grant it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml

from novaflow.aws import clear_client_cache, get_client
from novaflow.jobs.backends import get_backend
from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.hyperpod import objects as kube_objects
from novaflow.jobs.hyperpod.backend import HyperPodBackend
from novaflow.jobs.hyperpod.rft import object_refs
from novaflow.jobs.logs import parse_metric_line
from novaflow.jobs.outputs import checkpoint_of
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.records import JobStatus
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.local.emulator import faults, scenario
from novaflow.settings import NovaflowSettings, load_settings

CHART_KINDS = {
    "ConfigMap": 7,  # one recipe per service (6) and NATS's own
    "Deployment": 1,  # the hub
    "Job": 3,  # NATS bootstrap, prompter, rbs
    "PyTorchJob": 1,
    "Secret": 1,
    "Service": 6,
    "StatefulSet": 2,  # NATS, vLLM generation
}


@pytest.fixture
def settings(aws: Any) -> Iterator[NovaflowSettings]:
    aws.add_hyperpod("nova:ml.p5.48xlarge=6")
    yield load_settings(hyperpod_cluster="nova")


@pytest.fixture
def reward_arn(settings: NovaflowSettings) -> str:
    """novaflow's label grader, deployed as ``novaflow reward deploy`` deploys it."""
    from novaflow.reward.deploy import deploy_reward_lambda

    return deploy_reward_lambda(settings=settings, poll_seconds=0.05).function_arn


def _spec(settings: NovaflowSettings, reward_arn: str, **kw: Any) -> JobSpec:
    rows = [scenario.rft_row("sys", f"is {i} even?", "yes" if i % 2 == 0 else "no", str(i)) for i in range(64)]
    uri = scenario.put(settings.s3_uri("data", "rft.jsonl"), scenario.jsonl(rows))
    base: dict[str, Any] = {
        "platform": "hyperpod",
        "model": "nova-lite-2",
        "method": "rft_lora",
        "train_uri": uri,
        "reward_lambda_arn": reward_arn,
        "overrides": {"max_steps": 5, "global_batch_size": 16},
    }
    return JobSpec(**{**base, **kw})


def _existing(settings: NovaflowSettings, name: str) -> dict[str, list[str]]:
    """Kind -> names of the job's objects the cluster has (listed per kind)."""
    api = HyperPodBackend(settings)._api_client()
    found: dict[str, list[str]] = {}
    for api_version, kind, object_name in object_refs(name):
        listing = kube_objects.call(api, "GET", kube_objects.path_of(api_version, kind, "kubeflow"))
        if any(item["metadata"]["name"] == object_name for item in listing["items"]):
            found.setdefault(kind, []).append(object_name)
    return found


@pytest.mark.slow
def test_rft_creates_the_chart_calls_the_reward_lambda_and_stop_leaves_nothing(
    settings: NovaflowSettings, reward_arn: str
) -> None:
    spec = _spec(settings, reward_arn)
    report = dry_run(spec, settings)
    assert report.ok, report.describe()
    record = submit_training_job(spec, settings)
    again = submit_training_job(spec, settings)
    assert (record.attached, again.attached, again.name) == (False, True, record.name)

    existing = _existing(settings, record.name)
    assert {kind: len(names) for kind, names in existing.items()} == CHART_KINDS
    api = HyperPodBackend(settings)._api_client()
    path = kube_objects.path_of("v1", "ConfigMap", "kubeflow", f"{record.name}-training-config")
    recipe = yaml.safe_load(kube_objects.call(api, "GET", path)["data"]["config.yaml"])
    assert recipe["training_config"]["task_type"] == "omega_rl_train"
    assert recipe["run"]["reward_lambda_arn"] == reward_arn
    assert recipe["training_config"]["rollout"]["rewards"]["api_endpoint"]["lambda_arn"] == reward_arn
    path = kube_objects.path_of("apps/v1", "StatefulSet", "kubeflow", f"{record.name}-vllm")
    assert kube_objects.call(api, "GET", path)["spec"]["replicas"] == recipe["run"]["generation_replicas"] == 2

    lines: list[Any] = []
    done = wait_for_job(
        record.name, platform="SMHP", poll_seconds=0.05, record=record, settings=settings, on_log_line=lines.append
    )
    assert done.status is JobStatus.COMPLETED, done.failure_reason
    invokes = [line for line in lines if f"Invoking reward Lambda {reward_arn} with" in line.message]
    assert invokes and {line.stream for line in lines} == {f"{record.name}-master-0"}
    steps = [(line.message, m) for line in lines if (m := parse_metric_line(line.message))]
    assert [m["step"] for _, m in steps] == [1, 2, 3, 4, 5]  # the HyperPod trainer's own step line
    assert all("] Training epoch " in text and " | train_rm_score: " in text for text, _ in steps)
    assert all({"reward_mean", "kl", "entropy", "response_length"} <= set(m) for _, m in steps)
    cluster = get_client("sagemaker", settings).describe_cluster(ClusterName="nova")
    group = f"/aws/sagemaker/Clusters/nova/{cluster['ClusterArn'].rsplit('/', 1)[-1]}"
    streams = get_client("logs", settings).describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [f"SagemakerHyperPodTrainingJob/kubeflow/{record.name}-master-0"]
    checkpoint = checkpoint_of(done, settings)
    assert checkpoint == f"s3://customer-escrow-123456789012-smhp-local/{record.name}/outputs/checkpoints"
    manifest = get_client("s3", settings).get_object(
        Bucket=settings.bucket, Key=f"novaflow/jobs/{record.name}/manifest.json"
    )
    assert json.loads(manifest["Body"].read()) == {"checkpoint_s3_bucket": checkpoint}

    # the trainer has ended: its rollout services are gone (they would keep their nodes), its PyTorchJob stays
    assert _existing(settings, record.name) == {"PyTorchJob": [record.name]}
    get_backend("SMHP", settings).stop(record.name)
    assert _existing(settings, record.name) == {}


def test_stop_deletes_every_object_of_a_running_rft_job(settings: NovaflowSettings, reward_arn: str) -> None:
    spec = _spec(settings, reward_arn)
    name = spec.resolve(settings).job_name()
    faults.stall_job(name)
    try:
        record = submit_training_job(spec, settings)
        backend = get_backend("SMHP", settings)
        state = backend.describe(record.name)
        assert state is not None and state.status is JobStatus.IN_PROGRESS
        assert sum(len(v) for v in _existing(settings, record.name).values()) == sum(CHART_KINDS.values())
        backend.stop(record.name)
        assert _existing(settings, record.name) == {}
        assert backend.describe(record.name) is None
    finally:
        faults.release_job(name)


def test_the_trainer_fails_without_its_rollout_services(settings: NovaflowSettings, reward_arn: str) -> None:
    """The emulated trainer needs the chart's services, as the real one connects to NATS, the hub and vLLM."""
    from novaflow.jobs.submit import prepare_submission

    sub = prepare_submission(_spec(settings, reward_arn), settings)
    objects = sub.request()["objects"]
    api = HyperPodBackend(settings)._api_client()
    for obj in objects:
        if obj["kind"] in ("ConfigMap", "PyTorchJob"):
            kube_objects.create(api, "kubeflow", obj)
    state = get_backend("SMHP", settings).describe(sub.job_name)
    assert state is not None and state.status is JobStatus.FAILED
    assert state.failure_reason == (
        f"The RFT trainer found no rollout services to connect to: statefulsets/{sub.job_name}-nats-server, "
        f"deployments/{sub.job_name}-hubcli, statefulsets/{sub.job_name}-vllm do not exist"
    )


def test_dry_run_counts_the_rollout_nodes(settings: NovaflowSettings, reward_arn: str) -> None:
    report = dry_run(_spec(settings, reward_arn, instance_count=4), settings)
    assert [str(p) for p in report.problems] == [
        "instance_count: restricted instance group restricted-p5-48xlarge of nova has 6 free ml.p5.48xlarge "
        "node(s) (6 in service), the job asks for 7 (4 trainer + 2 vLLM generation + 1 for the rollout services) "
        "-> fix: wait for those jobs to end, lower instance_count to a published count that fits, or scale the "
        "group up"
    ]
    odd = dry_run(_spec(settings, reward_arn, instance_count=3), settings)
    assert next(p.message for p in odd.problems if p.field == "instance_count") == (
        "3 nodes is not published for nova_lite_2_0_p5_gpu_lora_rft (replicas 2, 4, 8, 16)"
    )


def _grant(role: str, policy: str, *, entry: bool = False) -> None:
    """What a cluster admin runs: an access entry for ``role`` (with ``entry``) and ``policy`` on namespace
    kubeflow."""
    eks = boto3.client("eks")
    if entry:
        eks.create_access_entry(clusterName="nova-eks", principalArn=role)
    eks.associate_access_policy(
        clusterName="nova-eks",
        principalArn=role,
        policyArn=f"arn:aws:eks::aws:cluster-access-policy/{policy}",
        accessScope={"type": "namespace", "namespaces": ["kubeflow"]},
    )


@pytest.fixture
def outsider(settings: NovaflowSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[NovaflowSettings]:
    """Settings signing as an assumed-role session of ``outsider`` (a role with no access entry yet)."""
    iam = boto3.client("iam")
    iam.create_role(RoleName="outsider", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
    creds = boto3.client("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/outsider", RoleSessionName="alice")[
        "Credentials"
    ]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
    clear_client_cache()
    yield load_settings(hyperpod_cluster="nova")
    monkeypatch.undo()
    clear_client_cache()


def test_dry_run_refuses_a_principal_without_an_access_entry_with_the_commands(
    settings: NovaflowSettings, reward_arn: str, outsider: NovaflowSettings
) -> None:
    spec = _spec(settings, reward_arn)
    role = "arn:aws:iam::123456789012:role/outsider"
    assert [str(p) for p in dry_run(spec, outsider).problems] == [
        f"cluster: {role} has no EKS access entry on nova-eks (the EKS cluster of nova), so its API refuses the "
        "caller -> fix: aws eks create-access-entry --region us-east-1 --cluster-name nova-eks --principal-arn "
        f"{role} --type STANDARD && aws eks associate-access-policy --region us-east-1 --cluster-name nova-eks "
        f"--principal-arn {role} --policy-arn arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy "
        "--access-scope type=namespace,namespaces=kubeflow"
    ]
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:  # what EKS answers an unmapped identity
        HyperPodBackend(outsider)._api()[0].list_namespaced_custom_object(
            "kubeflow.org", "v1", "kubeflow", "pytorchjobs"
        )
    assert (refused.value.status, json.loads(refused.value.body)["message"]) == (401, "Unauthorized")

    _grant(role, "AmazonEKSViewPolicy", entry=True)
    problems = [str(p) for p in dry_run(spec, outsider).problems]
    assert problems == [
        f"cluster: the EKS access entry of {role} on nova-eks has no access policy that may create jobs in "
        "namespace kubeflow (associated: AmazonEKSViewPolicy (namespace)) -> fix: aws eks associate-access-policy "
        f"--region us-east-1 --cluster-name nova-eks --principal-arn {role} --policy-arn "
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy --access-scope type=namespace,namespaces=kubeflow"
    ]
    with pytest.raises(ApiException) as forbidden:  # viewing is allowed, creating is not
        HyperPodBackend(outsider)._api()[1].create_namespaced_config_map("kubeflow", {"metadata": {"name": "x"}})
    message = json.loads(forbidden.value.body)["message"]
    assert forbidden.value.status == 403 and re.fullmatch(
        r'configmaps is forbidden: User "arn:aws:sts::123456789012:assumed-role/outsider/alice" cannot create '
        r'resource "configmaps" in API group "" in the namespace "kubeflow"',
        message,
    )
    _grant(role, "AmazonEKSEditPolicy")
    assert dry_run(spec, outsider).ok


def test_the_cluster_creator_has_an_access_entry_in_eks_formats(settings: NovaflowSettings) -> None:
    """``novaflow local up --hyperpod`` (here ``add_hyperpod``) gives the local caller an access entry with the
    policy EKS gives a cluster's creator; the embedded EKS answers the access-entry calls as EKS does."""
    from botocore.exceptions import ClientError

    eks = get_client("eks", settings)
    caller = get_client("sts", settings).get_caller_identity()["Arn"]
    assert eks.list_access_entries(clusterName="nova-eks")["accessEntries"] == [caller]
    entry = eks.describe_access_entry(clusterName="nova-eks", principalArn=caller)["accessEntry"]
    assert re.fullmatch(
        r"arn:aws:eks:us-east-1:123456789012:access-entry/nova-eks/user/123456789012/moto/[0-9a-f-]{36}",
        entry["accessEntryArn"],
    )
    assert (entry["type"], entry["username"], entry["kubernetesGroups"]) == ("STANDARD", caller, [])
    policies = eks.list_associated_access_policies(clusterName="nova-eks", principalArn=caller)
    assert [(p["policyArn"], p["accessScope"]) for p in policies["associatedAccessPolicies"]] == [
        ("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy", {"type": "cluster"})
    ]
    role = "arn:aws:iam::123456789012:role/team/trainer"
    created = eks.create_access_entry(clusterName="nova-eks", principalArn=role)["accessEntry"]
    assert created["username"] == "arn:aws:sts::123456789012:assumed-role/trainer/{{SessionName}}"
    with pytest.raises(ClientError) as again:
        eks.create_access_entry(clusterName="nova-eks", principalArn=role)
    assert (again.value.response["Error"]["Code"], again.value.response["Error"]["Message"]) == (
        "ResourceInUseException",
        "The specified access entry resource is already in use on this cluster.",
    )
    eks.delete_access_entry(clusterName="nova-eks", principalArn=role)
    with pytest.raises(ClientError) as gone:
        eks.describe_access_entry(clusterName="nova-eks", principalArn=role)
    assert (gone.value.response["Error"]["Code"], gone.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ResourceNotFoundException",
        404,
    )
    assert gone.value.response["Error"]["Message"].startswith("The specified principalArn could not be found.")


def test_an_assumed_role_session_is_its_role() -> None:
    from novaflow.jobs.hyperpod.access import principal_arn

    assert principal_arn("arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com") == (
        "arn:aws:iam::123456789012:role/Admin"
    )
    assert principal_arn("arn:aws:iam::123456789012:user/bob") == "arn:aws:iam::123456789012:user/bob"


def test_an_rft_job_holds_its_rollout_nodes_of_the_groups_concurrency_limit(
    settings: NovaflowSettings, reward_arn: str
) -> None:
    from tasks.quotas import job_capacity

    needed = job_capacity(_spec(settings, reward_arn, cluster="nova"), settings)
    assert needed.demand is not None
    assert (needed.demand.key, needed.demand.slots, needed.demand.unit) == (
        "hyperpod:nova:restricted-p5-48xlarge",
        5,  # 2 trainer + 2 vLLM generation + 1 for the rollout services
        "nodes",
    )


def test_a_view_policy_may_list_but_not_delete(settings: NovaflowSettings, outsider: NovaflowSettings) -> None:
    from kubernetes.client.exceptions import ApiException

    role = "arn:aws:iam::123456789012:role/outsider"
    _grant(role, "AmazonEKSViewPolicy", entry=True)
    api = HyperPodBackend(outsider)._api_client()
    listed = kube_objects.call(api, "GET", kube_objects.path_of("apps/v1", "StatefulSet", "kubeflow"))
    assert listed["kind"] == "StatefulSetList"
    with pytest.raises(ApiException) as refused:
        kube_objects.delete(api, "kubeflow", "apps/v1", "StatefulSet", "x-vllm")
    assert json.loads(refused.value.body)["message"] == (
        'statefulsets.apps is forbidden: User "arn:aws:sts::123456789012:assumed-role/outsider/alice" cannot delete '
        'resource "statefulsets" in API group "apps" in the namespace "kubeflow"'
    )
    with pytest.raises(ApiException) as elsewhere:  # the policy names kubeflow only
        kube_objects.call(api, "GET", kube_objects.path_of("v1", "ConfigMap", "team-b"))
    assert elsewhere.value.status == 403


def test_dry_run_checks_the_instance_groups_role_and_the_reward_lambda(
    aws: Any, settings: NovaflowSettings, reward_arn: str
) -> None:
    """The job runs as the restricted group's execution role: it must be allowed to invoke the reward Lambda (and
    read and write the data), and the Lambda must exist - as the dry run asks of an SMTJ RFT job."""
    from novaflow.local.aws.hyperpod_setup import create_hyperpod_cluster, parse_hyperpod_option

    iam = boto3.client("iam")
    bare = iam.create_role(RoleName="bare-nodes", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
    session = boto3.Session(region_name="us-east-1")
    create_hyperpod_cluster(session, aws.url, parse_hyperpod_option("bare:ml.p5.48xlarge=6"), bare["Role"]["Arn"])
    problems = [str(p) for p in dry_run(_spec(settings, reward_arn, cluster="bare"), settings).problems]
    assert problems == [
        "cluster: execution role arn:aws:iam::123456789012:role/bare-nodes of restricted instance group "
        "restricted-p5-48xlarge of bare is not allowed s3:GetObject, s3:PutObject, s3:ListBucket, "
        "lambda:InvokeFunction -> fix: attach a policy granting these actions on the data, output and reward "
        "Lambda to that role (the job runs as it)"
    ]
    missing = reward_arn.replace("SageMaker-novaflow-reward", "SageMaker-nowhere")
    assert [str(p) for p in dry_run(_spec(settings, missing), settings).problems] == [
        f"reward_lambda_arn: function {missing} does not exist -> fix: deploy it first with `novaflow reward deploy`"
    ]


def test_a_running_rft_job_holds_its_generation_and_service_nodes(settings: NovaflowSettings, reward_arn: str) -> None:
    rft = _spec(settings, reward_arn)
    name = rft.resolve(settings).job_name()
    faults.stall_job(name)
    try:
        submit_training_job(rft, settings)
        sft = JobSpec(
            platform="hyperpod", model="nova-lite-2", method="sft_lora", train_uri=rft.train_uri, instance_count=4
        )
        assert [str(p) for p in dry_run(sft, settings).problems if p.field == "instance_count"] == [
            "instance_count: restricted instance group restricted-p5-48xlarge of nova has 1 free ml.p5.48xlarge "
            f"node(s) (6 in service; novaflow jobs hold 5: {name}), the job asks for 4 -> fix: wait for those jobs "
            "to end, lower instance_count to a published count that fits, or scale the group up"
        ]
    finally:
        faults.release_job(name)
        get_backend("SMHP", settings).stop(name)
