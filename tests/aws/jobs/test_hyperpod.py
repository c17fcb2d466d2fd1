"""HyperPod jobs against the embedded AWS: a cluster with a restricted instance group, its EKS API on loopback, the
emulator fulfilling the PyTorchJob. Submit creates the job once (a second submit attaches), the status comes from
the job's conditions, the logs from the cluster's log group, the checkpoint from ``<output>/<job>/manifest.json``;
stop deletes the job; the dry run refuses what the cluster cannot run, each in one line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from novaflow.aws import get_client
from novaflow.catalog import Platform
from novaflow.errors import ConfigError, JobError
from novaflow.jobs.backends import get_backend
from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.hyperpod.backend import HyperPodBackend
from novaflow.jobs.logs import parse_metric_line
from novaflow.jobs.outputs import checkpoint_of
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.records import JobStatus
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.local.emulator import faults, scenario
from novaflow.recipes.published import load_published
from novaflow.settings import NovaflowSettings, load_settings


@pytest.fixture
def cluster(aws: Any) -> Iterator[dict[str, Any]]:
    """``nova``: 6 x ml.p5.48xlarge in its restricted instance group (gone with the next reset)."""
    yield aws.add_hyperpod("nova:ml.p5.48xlarge=6")


@pytest.fixture
def settings(cluster: dict[str, Any]) -> NovaflowSettings:
    return load_settings(hyperpod_cluster="nova")


def _train_uri(settings: NovaflowSettings, rows: int = 48) -> str:
    data = [scenario.converse_row("sys", f"question {i}", "yes" if i % 3 else "no") for i in range(rows)]
    return scenario.put(settings.s3_uri("data", "train.jsonl"), scenario.jsonl(data))


def _spec(settings: NovaflowSettings, **kw: Any) -> JobSpec:
    base: dict[str, Any] = {
        "platform": "hyperpod",
        "model": "nova-lite-2",
        "method": "sft_lora",
        "train_uri": _train_uri(settings),
        "overrides": {"max_steps": 4},
    }
    return JobSpec(**{**base, **kw})


def _kube(settings: NovaflowSettings) -> tuple[Any, Any]:
    return HyperPodBackend(settings)._api()


def test_describe_cluster_shows_restricted_group_and_eks_orchestrator(cluster: dict[str, Any]) -> None:
    group = cluster["RestrictedInstanceGroups"][0]
    assert (group["InstanceGroupName"], group["InstanceType"], group["CurrentCount"], group["Status"]) == (
        "restricted-p5-48xlarge",
        "ml.p5.48xlarge",
        6,
        "InService",
    )
    assert group["EnvironmentConfig"]["FSxLustreConfig"] == {"SizeInGiB": 1200, "PerUnitStorageThroughput": 250}
    eks_arn = cluster["Orchestrator"]["Eks"]["ClusterArn"]
    endpoint = get_client("eks", settings=load_settings()).describe_cluster(name=eks_arn.rsplit("/", 1)[-1])["cluster"][
        "endpoint"
    ]
    assert endpoint.startswith("http://127.0.0.1:") and endpoint.endswith("/clusters/nova-eks")
    assert cluster["ClusterArn"].rsplit("/", 1)[-1] != "nova"  # AWS names clusters by id in the ARN


def test_submit_creates_the_job_once_waits_on_its_conditions_and_finds_the_checkpoint(
    settings: NovaflowSettings,
) -> None:
    spec = _spec(settings)
    record = submit_training_job(spec, settings)
    again = submit_training_job(spec, settings)
    assert (record.attached, again.attached, again.name) == (False, True, record.name)
    assert (record.platform, record.cluster, record.namespace) == (Platform.SMHP, "nova", "kubeflow")

    jobs, core = _kube(settings)
    listed = jobs.list_namespaced_custom_object("kubeflow.org", "v1", "kubeflow", "pytorchjobs")["items"]
    assert [j["metadata"]["name"] for j in listed] == [record.name]
    job = listed[0]
    assert job["metadata"]["labels"]["novaflow.io/spec-hash"] == spec.resolve(settings).spec_hash()[:12]
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    assert pod["tolerations"][0]["key"] == "sagemaker.amazonaws.com/RestrictedNode"
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3  # 4 nodes: one master, three workers
    published = load_published().recipe("nova_lite_2_0_p5_gpu_lora_sft").images["SMHP"]["us-east-1"]
    assert pod["containers"][0]["image"] == published
    recipe = yaml.safe_load(
        core.read_namespaced_config_map(f"training-config-{record.name}", "kubeflow").data["config.yaml"]
    )
    assert recipe["run"]["name"] == record.name
    assert recipe["run"]["data_s3_path"] == spec.train_uri
    assert recipe["run"]["output_s3_path"] == settings.s3_uri("jobs")
    assert (recipe["run"]["replicas"], recipe["training_config"]["max_steps"]) == (4, 4)

    lines = []
    done = wait_for_job(
        record.name, platform="SMHP", poll_seconds=0.05, record=record, settings=settings, on_log_line=lines.append
    )
    assert done.status is JobStatus.COMPLETED
    state = get_backend("SMHP", settings).describe(record.name)
    assert state is not None and state.raw_status == "Succeeded"
    conditions = [(c["type"], c["status"]) for c in state.raw["status"]["conditions"]]
    assert conditions == [("Created", "True"), ("Running", "False"), ("Succeeded", "True")]
    steps = [m["step"] for line in lines if (m := parse_metric_line(line.message))]
    assert steps == [1, 2, 3, 4]
    assert {line.stream for line in lines} == {f"{record.name}-master-0"}
    checkpoint = checkpoint_of(done, settings)
    assert checkpoint == f"s3://customer-escrow-123456789012-smhp-local/{record.name}/outputs/checkpoints"
    bucket, key = settings.bucket, f"novaflow/jobs/{record.name}/manifest.json"
    manifest = json.loads(get_client("s3", settings=load_settings()).get_object(Bucket=bucket, Key=key)["Body"].read())
    assert manifest == {"checkpoint_s3_bucket": checkpoint}
    assert any(line.message.endswith("Saved checkpoint to " + checkpoint) for line in lines)


def test_stop_deletes_the_job_and_its_recipe(settings: NovaflowSettings) -> None:
    spec = _spec(settings)
    name = spec.resolve(settings).job_name()
    faults.stall_job(name)
    try:
        record = submit_training_job(spec, settings)
        backend = get_backend("SMHP", settings)
        state = backend.describe(record.name)
        assert state is not None and state.status is JobStatus.IN_PROGRESS
        backend.stop(record.name)
        assert backend.describe(record.name) is None
        _, core = _kube(settings)
        from kubernetes.client.exceptions import ApiException

        with pytest.raises(ApiException) as missing:
            core.read_namespaced_config_map(f"training-config-{record.name}", "kubeflow")
        assert missing.value.status == 404
        with pytest.raises(JobError, match=f"Job {record.name} does not exist on SMHP"):
            wait_for_job(record.name, platform="SMHP", poll_seconds=0.05, record=record, settings=settings)
        backend.stop(record.name)  # deleting a deleted job is not an error
    finally:
        faults.release_job(name)


def test_cpt_runs_with_the_published_hyperpod_cpt_image(settings: NovaflowSettings) -> None:
    text = [{"text": f"continued pre-training text number {i} about the platform"} for i in range(40)]
    uri = scenario.put(settings.s3_uri("data", "cpt.jsonl"), scenario.jsonl(text))
    spec = JobSpec(
        platform="SMHP", model="nova-lite-2", method="cpt", train_uri=uri, instance_count=4, overrides={"max_steps": 10}
    )
    report = dry_run(spec, settings)
    assert report.ok, report.describe()
    record = submit_training_job(spec, settings)
    jobs, _ = _kube(settings)
    job = jobs.get_namespaced_custom_object("kubeflow.org", "v1", "kubeflow", "pytorchjobs", record.name)
    image = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["image"]
    assert image == "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-HP-CPT-V2-latest"
    done = wait_for_job(record.name, platform="SMHP", poll_seconds=0.05, record=record, settings=settings)
    assert done.status is JobStatus.COMPLETED
    assert checkpoint_of(done, settings).startswith("s3://customer-escrow-123456789012-smhp-local/")


def test_dry_run_refuses_more_nodes_than_the_restricted_group_has_free(settings: NovaflowSettings) -> None:
    first = _spec(settings)
    name = first.resolve(settings).job_name()
    faults.stall_job(name)
    try:
        submit_training_job(first, settings)
        second = _spec(settings, overrides={"max_steps": 5})
        report = dry_run(second, settings)
        assert [str(p) for p in report.problems] == [
            "instance_count: restricted instance group restricted-p5-48xlarge of nova has 2 free ml.p5.48xlarge "
            f"node(s) (6 in service; novaflow jobs hold 4: {name}), the job asks for 4 -> fix: wait for those jobs "
            "to end, lower instance_count to a published count that fits, or scale the group up"
        ]
        assert dry_run(first, settings).ok  # the running job's own nodes are not counted against it
    finally:
        faults.release_job(name)
        get_backend("SMHP", settings).stop(name)


def test_dry_run_names_the_cluster_problems(settings: NovaflowSettings) -> None:
    missing = dry_run(_spec(settings, cluster="nope"), settings)
    assert [p.field for p in missing.problems] == ["cluster"]
    assert missing.problems[0].message == (
        "HyperPod cluster nope does not exist in us-east-1: check the name (--cluster / NOVAFLOW_HYPERPOD_CLUSTER) "
        "and NOVAFLOW_REGION"
    )
    wrong_type = dry_run(_spec(settings, instance_type="ml.p4d.24xlarge"), settings)
    assert [str(p) for p in wrong_type.problems] == [
        "instance_type: HyperPod cluster nova has no restricted instance group of ml.p4d.24xlarge (restricted "
        "groups: restricted-p5-48xlarge (ml.p5.48xlarge x6)) -> fix: add a restricted instance group of that type "
        "(Nova runs only there) or set instance_type to one it has"
    ]
    count = dry_run(_spec(settings, instance_count=3), settings)
    assert [str(p) for p in count.problems] == [
        "instance_count: 3 nodes is not published for nova_lite_2_0_p5_gpu_lora_sft (replicas 4, 8, 16, 32) -> fix: "
        "set instance_count to one of 4, 8, 16, 32"
    ]


def test_dry_run_refuses_to_evaluate_an_smhp_checkpoint_off_hyperpod(settings: NovaflowSettings) -> None:
    checkpoint = "s3://customer-escrow-123456789012-smhp-local/job/outputs/checkpoints"
    uri = scenario.put(
        settings.s3_uri("eval", "gen_qa.jsonl"), scenario.jsonl([scenario.gen_qa_row("s", "q", "a", "1")])
    )
    spec = JobSpec(
        platform="SMTJ", model="nova-lite-2", method="evaluation", train_uri=uri, model_name_or_path=checkpoint
    )
    problems = [str(p) for p in dry_run(spec, settings).problems]
    assert problems == [
        f"model_name_or_path: {checkpoint} is a HyperPod (SMHP) checkpoint, which AWS evaluates on HyperPod only "
        "-> fix: evaluate it with platform SMHP (--platform hyperpod --cluster NAME)"
    ]
    assert dry_run(spec.model_copy(update={"platform": Platform.SMHP}), settings).ok


def test_the_eks_api_refuses_a_request_without_an_eks_token(cluster: dict[str, Any]) -> None:
    eks_name = cluster["Orchestrator"]["Eks"]["ClusterArn"].rsplit("/", 1)[-1]
    endpoint = get_client("eks", settings=load_settings()).describe_cluster(name=eks_name)["cluster"]["endpoint"]
    for header in ({}, {"Authorization": "Bearer not-a-token"}):
        request = urllib.request.Request(
            f"{endpoint}/apis/kubeflow.org/v1/namespaces/kubeflow/pytorchjobs", headers=header
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        body = json.loads(refused.value.read())
        assert (refused.value.code, body["kind"], body["reason"]) == (401, "Status", "Unauthorized")


def test_restricted_groups_are_capacities_in_nodes(settings: NovaflowSettings) -> None:
    from novaflow.jobs.hyperpod.capacity import instance_group_of, restricted_capacities

    assert restricted_capacities("nova", settings) == {"hyperpod:nova:restricted-p5-48xlarge": 6}
    assert instance_group_of("nova", "ml.p5.48xlarge", settings) == "nova:restricted-p5-48xlarge"
    with pytest.raises(
        ConfigError, match=r"HyperPod cluster nova has no restricted instance group of ml\.g5\.48xlarge"
    ):
        instance_group_of("nova", "ml.g5.48xlarge", settings)
