"""Fidelity on HyperPod: the recipe novaflow puts in the job's ConfigMap equals the recipe sagemaker v3's
``_train_hyperpod`` resolves for the same job, and the image, instance type, node count and namespace equal the
override parameters v3 hands the hyperpod CLI.

v3 reads the hub's HyperPod payload template (``HpEksPayloadTemplateS3Uri``, served by the embedded AWS from the
derived tables), renders its ``{{placeholders}}`` with the override spec's defaults, the trainer's hyperparameters
and the run fields, writes the recipe into the hyperpod CLI's recipe folder and runs ``hyperpod start-job``. Here
the CLI is a stub: ``subprocess.run`` is captured and the written recipe read back. Both sides get the same data,
output, nodes and the hyperparameters novaflow chose where they differ from the hub's defaults.

RFT too: v3's ``RLVRTrainer`` runs on HyperPod, and its recipe equals novaflow's. And every object novaflow creates
for an RFT job equals the hub's RFT chart rendered straight from the mirror with the values the hub's launcher wrote
in its own test baseline, set to the job's (the SFT job's equality with its chart is in test_hyperpod_job.py).

Normalised before comparing: the job name (v3 appends a timestamp, novaflow hashes the spec) and, with no tracking
URI, the MLflow names (v3 keeps the hub's example names, novaflow leaves them empty; inert without a URI). That the
job object equals the chart render is checked in tests/unit/jobs/test_hyperpod_job.py.

Runs where the ``sagemaker`` extra is installed (``.ci/run`` runs it in its own venv, as test_sagemaker_fidelity).
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from novaflow.jobs.hyperpod.request import hyperpod_recipe, job_image
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.recipes.derive import flatten, load_recipe_yaml
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl

sagemaker = pytest.importorskip("sagemaker")

CASES = [
    # (novaflow model, method, v3 trainer, training type, hub model)
    ("nova-lite-2", "sft_lora", "SFTTrainer", "LORA", "nova-textgeneration-lite-v2"),
    ("nova-lite-2", "sft_full", "SFTTrainer", "FULL", "nova-textgeneration-lite-v2"),
    ("nova-micro", "dpo_lora", "DPOTrainer", "LORA", "nova-textgeneration-micro"),
    ("nova-lite-2", "cpt", "CPTTrainer", None, "nova-textgeneration-lite-v2"),  # the published HyperPod CPT image
    ("nova-lite-2", "rft_lora", "RLVRTrainer", "LORA", "nova-textgeneration-lite-v2"),  # v3 runs RLVR on HyperPod
]
REWARD = "arn:aws:lambda:us-east-1:123456789012:function:SageMaker-novaflow-reward"


@pytest.fixture(autouse=True)
def no_sdk_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    from sagemaker.core.telemetry import telemetry_logging

    for name in ("_send_telemetry_request", "_send_telemetry_request_sync"):
        if hasattr(telemetry_logging, name):
            monkeypatch.setattr(telemetry_logging, name, lambda *args, **kwargs: None)


@pytest.fixture
def hyperpod_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, list[list[str]]]:
    """A stand-in for the hyperpod CLI: its package folder (v3 writes the recipe there) and the commands run."""
    package = types.ModuleType("hyperpod_cli")
    package.__file__ = str(tmp_path / "hyperpod_cli" / "__init__.py")
    monkeypatch.setitem(sys.modules, "hyperpod_cli", package)
    commands: list[list[str]] = []

    def run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(list(cmd))
        return subprocess.CompletedProcess(cmd, 0, stdout="NAME: v3-job\n", stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    return tmp_path / "hyperpod_cli", commands


def _normalised(recipe: dict[str, Any]) -> dict[str, Any]:
    flat = flatten(recipe)
    flat["run.name"] = "<name>"
    if not flat.get("run.mlflow_tracking_uri"):
        for key in ("run.mlflow_experiment_name", "run.mlflow_run_name"):
            flat[key] = "<unused without a tracking URI>"
    return flat


@pytest.mark.parametrize(("model", "method", "trainer_name", "training_type", "hub_model"), CASES)
def test_recipe_and_cli_overrides_equal_sagemaker_v3(
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
    hyperpod_cli: Any,
    model: str,
    method: str,
    trainer_name: str,
    training_type: str,
    hub_model: str,
) -> None:
    import sagemaker.train as v3
    from sagemaker.core.helper import session_helper
    from sagemaker.core.training.configs import HyperPodCompute

    monkeypatch.setattr(session_helper, "sts_regional_endpoint", lambda region: aws.url)
    aws.add_hyperpod("nova:ml.p5.48xlarge=16")
    settings = load_settings(hyperpod_cluster="nova")
    train = put_jsonl("data/hp-train.jsonl", 40)
    rft = method == "rft_lora"
    reward = {"reward_lambda_arn": REWARD} if rft else {}
    spec = JobSpec(platform="HYPERPOD", model=model, method=method, train_uri=train, **reward)
    sub = prepare_submission(spec, settings)
    ours = hyperpod_recipe(sub, sub.job_name)

    typed: dict[str, Any] = {"training_type": training_type} if training_type else {}
    if rft:
        typed.update(custom_reward_function=REWARD, skip_reward_validation=True)
    trainer = getattr(v3, trainer_name)(
        model=hub_model,
        **typed,
        compute=HyperPodCompute(
            cluster_name="nova", instance_type=sub.instance_type, node_count=sub.instance_count, namespace="kubeflow"
        ),
        training_dataset=train,
        s3_output_path=sub.spec.output_uri,
        accept_eula=True,
    )
    published = sub.recipe.published
    assert published is not None
    for name, parameter in published.parameters.items():  # novaflow's deliberate choices, given to v3 as the user's
        value = next(
            (ours_value for path in parameter.paths if (ours_value := flatten(ours).get(path)) is not None), None
        )
        if name not in {"name", "replicas", "data_s3_path", "output_s3_path"} and value is not None:
            if value != parameter.default and hasattr(trainer.hyperparameters, name):
                setattr(trainer.hyperparameters, name, value)
    assert trainer.train(wait=False) == "v3-job"

    folder, commands = hyperpod_cli
    assert [c[:2] for c in commands] == [["hyperpod", "connect-cluster"], ["hyperpod", "start-job"]]
    start = commands[1]
    assert start[start.index("--namespace") + 1] == sub.spec.namespace == "kubeflow"
    overrides = json.loads(start[start.index("--override-parameters") + 1])
    assert overrides == {"instance_type": sub.instance_type, "container": job_image(sub.spec)}
    written = list(folder.rglob("*.yaml"))
    assert len(written) == 1
    theirs = load_recipe_yaml(written[0].read_text(encoding="utf-8"))
    assert _normalised(ours) == _normalised(theirs)


MIRROR = Path("/work/.mirror/aws+sagemaker-hyperpod-recipes/repo")
RFT_BASELINE = "tests/nova_k8s_workflow/k8s_baseline_artifacts/without_launch_json/nova-lite-rft/k8s_templates"


@pytest.mark.skipif(not MIRROR.exists(), reason="no local mirror of aws/sagemaker-hyperpod-recipes")
def test_rft_objects_equal_the_chart_rendered_with_the_launchers_values(aws: Any) -> None:
    """Every object novaflow creates for an RFT job equals the hub's RFT chart rendered directly (by the
    interpreter, from the mirror at the tables' commit) with the values the hub's own launcher wrote in its test
    baseline, set to this job's: name, namespace, images, nodes, labels, and the per-service recipe files."""
    import copy

    import yaml

    from novaflow.jobs.hyperpod.request import job_values, rft_values
    from novaflow.jobs.hyperpod.rft import service_recipe
    from novaflow.recipes.derive import open_checkout
    from novaflow.recipes.hyperpod_derive import RFT_CHART_DIR, RFT_SERVICES, RFT_TEMPLATES, render_rft_chart
    from novaflow.recipes.published import load_published

    checkout = open_checkout(MIRROR)
    if checkout.commit != load_published().commit:
        pytest.skip(f"mirror is at {checkout.commit}, the tables at {load_published().commit}")
    aws.add_hyperpod("nova:ml.p5.48xlarge=16")
    settings = load_settings(hyperpod_cluster="nova")
    spec = JobSpec(
        platform="HYPERPOD",
        model="nova-lite-2",
        method="rft_lora",
        train_uri=put_jsonl("data/hp-rft.jsonl", 40),
        reward_lambda_arn=REWARD,
        instance_count=4,
    )
    sub = prepare_submission(spec, settings)
    ours = sub.request()["objects"]
    v = rft_values(job_values(sub, sub.job_name, "123456789012"))
    job = v.job

    values = yaml.safe_load(checkout.read(f"{RFT_BASELINE}/values.yaml"))
    config = values["trainingConfig"]
    config.update(
        jobName=job.name,
        namespace=job.namespace,
        region=job.region,
        alias=None,  # the launcher's cluster config fields novaflow has no counterpart for
        nodeType=None,
        serviceAccountName=None,
        customLabels={"app.kubernetes.io/managed-by": "novaflow", "novaflow.io/spec-hash": job.spec_hash},
        envVars={"X_AMZ_SOURCE_ACCOUNT": job.account_id, "INSTANCE_TYPE": job.instance_type, "AWS_REGION": job.region},
    )
    config["initContainer"]["image"] = job.init_image
    config["labelSelector"]["required"]["node.kubernetes.io/instance-type"] = [job.instance_type]
    config["training"].update(replicas=job.replicas, worker_replicas=job.replicas - 1)
    config["vllmGeneration"]["replicas"] = v.generation_replicas
    config["hub"]["replicas"] = v.rollout_worker_replicas
    for block in (*config["training"]["resources"].values(), config["vllmGeneration"]["resources"]):
        for part in ("requests", "limits"):
            block[part]["vpc.amazonaws.com/efa"] = job.efa
    images = {k.removeprefix("rft_").removesuffix("_image"): img for k, img in v.placeholders.items() if "image" in k}
    values["image"].update(
        trainingImage=job.image,
        generationImage=images["generation"],
        stormImage=images["storm"],
        natsServerImage=images["nats_server"],
        natsReloaderImage=images["nats_reloader"],
        redis=images["redis"],
    )
    values["jobList"] = [
        {**copy.deepcopy(entry), "jobName": entry["jobName"].replace("nova-lite-rft", job.name)}
        for entry in values["jobList"]
    ]
    files = {f"config/{job.name}-{s}_hydra.yaml": service_recipe(v.recipe, s) + "\n" for s in RFT_SERVICES}
    templates = {name: checkout.read(f"{RFT_CHART_DIR}/templates/{name}") for name in RFT_TEMPLATES}
    chart = render_rft_chart(templates, values, files)
    assert [(o["kind"], o["metadata"]["name"]) for o in ours] == [(o["kind"], o["metadata"]["name"]) for o in chart]
    assert ours == chart
