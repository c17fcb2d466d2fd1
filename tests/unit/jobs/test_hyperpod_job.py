"""HyperPod without AWS: the job novaflow builds equals the recipe hub's chart render (the derived template, filled
with the same values), the EKS token has the shape ``aws eks get-token`` prints, the job's conditions map to a
status, the platform's names parse."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from novaflow.catalog import Platform, method_problem
from novaflow.jobs.hyperpod.backend import job_status
from novaflow.jobs.hyperpod.cluster import eks_token
from novaflow.jobs.hyperpod.job import build_config_map, build_job, efa_devices, gpu_devices, hyperpod_tables, rendered
from novaflow.jobs.hyperpod.request import job_values
from novaflow.jobs.records import JobStatus, map_status
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.settings import load_settings

SETTINGS = {"bucket": "novaflow-test", "hyperpod_cluster": "nova", "region": "us-east-1"}


@pytest.mark.parametrize(
    ("model", "method", "count"),
    [
        ("nova-lite-2", "sft_lora", None),  # 4 nodes: Master + 3 Workers
        ("nova-lite-2", "sft_full", 8),
        ("nova-micro", "dpo_lora", None),
        ("nova-lite-2", "cpt", None),
        ("nova-lite-2", "evaluation", None),  # one node, host network for the Lambda
        ("nova-pro", "sft_lora", None),
    ],
)
def test_the_job_equals_the_hub_chart_render_for_the_same_values(model: str, method: str, count: int | None) -> None:
    settings = load_settings(**SETTINGS)
    spec = JobSpec(
        platform="HYPERPOD", model=model, method=method, train_uri="s3://d/train.jsonl", instance_count=count
    )
    sub = prepare_submission(spec, settings)
    values = job_values(sub, sub.job_name, "123456789012")
    chart = rendered(values)
    assert build_job(values) == chart["job"]
    assert build_config_map(values) == chart["config_map"]
    assert ("Worker" in build_job(values)["spec"]["pytorchReplicaSpecs"]) == (sub.instance_count > 1)


def test_the_derived_template_is_stamped_and_sizes_p5_as_the_launcher_does() -> None:
    tables = hyperpod_tables()
    assert tables["source"]["repo"] == "aws/sagemaker-hyperpod-recipes" and len(tables["source"]["commit"]) == 40
    assert (gpu_devices("ml.p5.48xlarge", {}), efa_devices("ml.p5.48xlarge")) == (8, 32)
    assert (gpu_devices("ml.g5.12xlarge", {}), efa_devices("ml.g5.12xlarge")) == (4, 1)
    assert gpu_devices("ml.p5.48xlarge", {"training_config": {"trainer": {"devices": 4}}}) == 4


def test_the_eks_token_is_a_presigned_get_caller_identity_signing_the_cluster_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # the real STS host (signing needs no network)
    token = eks_token("nova-eks", load_settings(**SETTINGS))
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parsed = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    assert parsed.netloc == "sts.us-east-1.amazonaws.com"
    assert (query["Action"], query["X-Amz-Expires"]) == ("GetCallerIdentity", "60")
    assert query["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]


def _condition(kind: str, status: str, at: str, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "lastTransitionTime": at, "message": message}


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([], ("Pending", None, 0)),
        ([_condition("Created", "True", "t1")], ("Created", "", 0)),
        ([_condition("Created", "True", "t1"), _condition("Running", "True", "t2")], ("Running", "", 0)),
        (
            [
                _condition("Created", "True", "t1"),
                _condition("Running", "False", "t2"),
                _condition("Restarting", "True", "t3", "replica master-0 restarted"),
            ],
            ("Restarting", "replica master-0 restarted", 1),
        ),
        (
            [
                _condition("Created", "True", "t1"),
                _condition("Running", "False", "t2"),
                _condition("Failed", "True", "t3", "pytorch exited with code 1"),
            ],
            ("Failed", "pytorch exited with code 1", 0),
        ),
    ],
)
def test_status_comes_from_the_latest_true_condition(conditions: list[dict[str, Any]], expected: tuple) -> None:
    assert job_status({"status": {"conditions": conditions}}) == expected


def test_condition_types_map_to_novaflow_statuses() -> None:
    assert [map_status(s) for s in ("Created", "Running", "Restarting", "Succeeded", "Failed", "Pending")] == [
        JobStatus.IN_PROGRESS,
        JobStatus.IN_PROGRESS,
        JobStatus.IN_PROGRESS,
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.PENDING,
    ]


def test_hyperpod_is_a_platform_name_and_runs_rft_for_nova_2_only() -> None:
    assert Platform.parse("hyperpod") is Platform.SMHP and Platform.parse("SMHP") is Platform.SMHP
    from novaflow.catalog import Method

    assert method_problem("nova-lite-2", Method.RFT_LORA, Platform.SMHP) is None
    assert method_problem("nova-lite", Method.RFT_LORA, Platform.SMHP) == (
        "rft_lora is not supported for nova-lite on SMHP: RFT is only supported on Nova 2.0 (nova-lite-2)."
    )


def test_the_hyperpod_option_is_cluster_type_count_or_one_line_saying_so() -> None:
    from novaflow.errors import ConfigError
    from novaflow.local.aws.hyperpod_setup import parse_hyperpod_option

    option = parse_hyperpod_option("nova:ml.p5.48xlarge=8")
    assert (option.name, option.instance_type, option.count, option.group_name) == (
        "nova",
        "ml.p5.48xlarge",
        8,
        "restricted-p5-48xlarge",
    )
    for bad in ("nova", "nova:p5.48xlarge=8", "nova:ml.p5.48xlarge=0", "nova:ml.p5.48xlarge=x"):
        with pytest.raises(ConfigError) as err:
            parse_hyperpod_option(bad)
        assert str(err.value) == (
            f"--hyperpod {bad!r}: expected CLUSTER:TYPE=N with N >= 1, such as nova:ml.p5.48xlarge=8 (a cluster "
            "name, an ml. instance type, the node count of its restricted instance group)."
        )


def _rft_objects(region: str = "us-east-1") -> tuple[str, list[dict[str, Any]]]:
    from novaflow.jobs.hyperpod.request import rft_values
    from novaflow.jobs.hyperpod.rft import build_rft_objects

    settings = load_settings(**{**SETTINGS, "region": region})
    spec = JobSpec(
        platform="HYPERPOD",
        model="nova-lite-2",
        method="rft_lora",
        train_uri="s3://d/rft.jsonl",
        reward_lambda_arn=f"arn:aws:lambda:{region}:123456789012:function:reward",
        instance_count=4,
    )
    sub = prepare_submission(spec, settings)
    return sub.job_name, build_rft_objects(rft_values(job_values(sub, sub.job_name, "123456789012")))


def test_the_rft_objects_keep_the_charts_types_and_give_each_service_its_task() -> None:
    import yaml

    from novaflow.jobs.hyperpod.rft import is_rft_job, object_refs

    name, objects = _rft_objects()
    by = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    hub = by[("Deployment", f"{name}-hubcli")]
    assert (hub["spec"]["replicas"], hub["metadata"]["annotations"]["worker_replicas"]) == (1, "1")
    assert by[("StatefulSet", f"{name}-vllm")]["spec"]["replicas"] == 2
    trainer = by[("PyTorchJob", name)]
    assert trainer["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3  # 4 trainer nodes
    assert is_rft_job(trainer) and objects[-1] is trainer  # created last
    tasks = {
        n.removeprefix(f"{name}-").removesuffix("-config"): yaml.safe_load(o["data"]["config.yaml"])
        for (kind, n), o in by.items()
        if kind == "ConfigMap" and "config.yaml" in (o.get("data") or {})
    }
    assert {service: r["training_config"]["task_type"] for service, r in tasks.items()} == {
        "training": "omega_rl_train",
        "vllm-generation": "storm_gen_vllm",
        "hub": "storm_hub",
        "nats-bootstrap": "storm_nats_bootstrap",
        "prompter": "storm_prompt_loader",
        "rbs": "storm_rbs",
    }
    assert {r["run"]["reward_lambda_arn"] for r in tasks.values()} == {
        "arn:aws:lambda:us-east-1:123456789012:function:reward"
    }
    images = {c["image"] for o in objects for c in _containers(o)}
    assert "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-HP-RFT-STORM-V2-latest" in images
    assert {(kind, n) for _, kind, n in object_refs(name)} >= set(by)  # stop knows every object


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    pods = [spec.get("template")] + [r.get("template") for r in (spec.get("pytorchReplicaSpecs") or {}).values()]
    return [c for pod in pods if pod for c in (pod.get("spec") or {}).get("containers") or []]


def test_rft_on_hyperpod_refuses_a_region_without_the_service_images() -> None:
    from novaflow.errors import RecipeError

    with pytest.raises(RecipeError, match=r"AWS publishes no HyperPod RFT service images \(hub, vLLM generation, "):
        _rft_objects("us-west-2")


def test_the_hyperpod_rft_recipe_has_bounds_for_its_own_keys() -> None:
    from novaflow.recipes.build import build_recipe

    recipe = build_recipe(
        "nova-lite-2",
        "rft_lora",
        run_name="x",
        platform="SMHP",
        reward_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        overrides={"temperature": 0.7, "refit_freq": 2, "generation_replicas": 0},
    )
    assert recipe.problems == ["generation_replicas=0 is below the minimum 1; use a value in [1, inf]"]
    assert recipe.resolved()["training_config"]["rollout"]["generator"]["temperature"] == 0.7
