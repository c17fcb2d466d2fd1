"""Fidelity: novaflow's CreateTrainingJob equals what sagemaker v3 (``sagemaker-train``, the reference SDK) sends.

Every SageMaker-training-job method novaflow builds (read from the catalog's support table, so a newly built
method such as DPO is covered the day it ships), on each model generation, and every evaluation family (gen_qa,
a benchmark, the judge of each Nova version, rft_eval). For each, v3's ``ModelTrainer.from_recipe`` gets the
recipe novaflow resolved and the same compute, network, output and data settings; both requests are captured on
the wire (botocore ``before-call``, JSON body) against the embedded AWS and compared after normalising what each
side generates: the job name and the S3 key of the uploaded recipe.

Runs only where the ``sagemaker`` extra is installed (it pulls mlflow and pins; keep it out of the shared venv):
``.ci/run`` runs it in its own venv and fails when it is skipped.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from novaflow.aws import get_client
from novaflow.catalog import MODELS, SUPPORT, Method, Platform, get_model
from novaflow.jobs.reasoning import follow_data_reasoning
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission, submit_training_job
from novaflow.recipes.service import eval_task, eval_tasks, judge_task
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl

sagemaker = pytest.importorskip("sagemaker")


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    out["TrainingJobName"] = "<name>"
    for channel in out["InputDataConfig"]:
        if channel["ChannelName"] == "recipe":
            source = channel["DataSource"]["S3DataSource"]
            assert source["S3Uri"].endswith("/recipe.yaml")
            source["S3Uri"] = "<recipe.yaml>"
    return out


LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:reward"
DATA = {"sft": "data/train.jsonl", "rft": "data/rft.jsonl", "eval": "data/gen_qa.jsonl", None: None}


def fidelity_cases() -> list[tuple[str, str, str | None]]:
    """(model, method, evaluation task): every built SMTJ method on one model of each Nova version it runs on."""
    cases: list[tuple[str, str, str | None]] = []
    for method, support in SUPPORT.items():
        if not support.built or Platform.SMTJ not in support.platforms:
            continue
        for version in (1, 2):
            models = sorted(m for m in support.models if MODELS[m].version == version)
            if not models:
                continue
            if method is Method.EVALUATION:
                model = get_model(models[0])
                tasks = eval_tasks(model)
                picked = ["gen_qa", "mmlu", judge_task(model)] + (["rft_eval"] if "rft_eval" in tasks else [])
                cases.extend((model.key, method.value, task) for task in picked)
            else:
                cases.append((models[0], method.value, None))
    return cases


CASES = fidelity_cases()


def test_the_cases_cover_every_built_smtj_method() -> None:
    methods = {m for _, m, _ in CASES}
    assert {"sft_lora", "sft_full", "rft_lora", "evaluation"} <= methods
    assert methods == {m.value for m, s in SUPPORT.items() if s.built and Platform.SMTJ in s.platforms}
    assert {t for _, _, t in CASES} >= {"gen_qa", "mmlu", "llm_judge", "rubric_llm_judge", "rft_eval"}


@pytest.mark.parametrize(("model", "method", "task"), CASES, ids=[f"{m}-{meth}-{t or ''}" for m, meth, t in CASES])
def test_request_equals_sagemaker_v3(aws, monkeypatch, tmp_path, model, method, task) -> None:
    from sagemaker.core.helper import session_helper
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.shapes import S3DataSource, Tag
    from sagemaker.train.configs import (
        Compute,
        InputData,
        Networking,
        OutputDataConfig,
        StoppingCondition,
        TensorBoardOutputConfig,
    )
    from sagemaker.train.model_trainer import ModelTrainer

    # the SDK pins STS to the public regional endpoint, overriding AWS_ENDPOINT_URL: point it at the embedded AWS
    monkeypatch.setattr(session_helper, "sts_regional_endpoint", lambda region: aws.url)
    # and reports usage to a public S3 URL of its own: a test must not leave the machine
    from sagemaker.core.telemetry import telemetry_logging

    monkeypatch.setattr(telemetry_logging, "_send_telemetry_request", lambda *args, **kwargs: None)
    meth = Method(method)
    needs = eval_task(get_model(model), task).needs_data if meth is Method.EVALUATION else True
    kind = "eval" if meth is Method.EVALUATION else meth.data_format.value
    train = DATA[kind] if needs else None
    if train:
        put_jsonl(train, 40)
    needs_lambda = meth is Method.RFT_LORA or task == "rft_eval"
    spec = JobSpec(
        model=model,
        method=method,
        eval_task=task,
        train_uri=f"s3://novaflow-local/{train}" if train else None,
        reward_lambda_arn=LAMBDA if needs_lambda else None,
        kms_key_id="alias/nova",
        subnets=("subnet-1",),
        security_group_ids=("sg-1",),
        max_runtime_seconds=7200,
    )
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []

    def capture(into: list[dict[str, Any]]):
        return lambda params, **_: into.append(json.loads(params["body"]))

    sm = get_client("sagemaker")
    hook = capture(ours)
    sm.meta.events.register("before-call.sagemaker.CreateTrainingJob", hook)
    try:
        record = submit_training_job(spec)
    finally:
        sm.meta.events.unregister("before-call.sagemaker.CreateTrainingJob", hook)
    sub = prepare_submission(follow_data_reasoning(spec.resolve(load_settings())))
    request = sub.request()
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(sub.recipe.to_yaml(), encoding="utf-8")

    session = boto3.Session(region_name="us-east-1")
    session.events.register("before-call.sagemaker.CreateTrainingJob", capture(theirs))
    channels = [c["DataSource"]["S3DataSource"] for c in request["InputDataConfig"] if c["ChannelName"] == "train"]
    trainer = ModelTrainer.from_recipe(
        training_recipe=str(recipe_file),
        compute=Compute(instance_type=sub.instance_type, instance_count=sub.instance_count),
        networking=Networking(subnets=["subnet-1"], security_group_ids=["sg-1"]),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=7200),
        output_data_config=OutputDataConfig(
            s3_output_path=spec.resolve(sub.settings).output_uri, kms_key_id="alias/nova"
        ),
        base_job_name="nova-fidelity",
        role=sub.spec.role_arn,
        training_image=request["AlgorithmSpecification"]["TrainingImage"],
        input_data_config=[
            InputData(
                channel_name="train",
                data_source=S3DataSource(
                    s3_uri=channel["S3Uri"],
                    s3_data_type=channel["S3DataType"],
                    s3_data_distribution_type="FullyReplicated",
                ),
            )
            for channel in channels
        ],
        tags=[Tag(key=t["Key"], value=t["Value"]) for t in request["Tags"]],
        sagemaker_session=Session(boto_session=session, default_bucket="novaflow-local"),
    ).with_tensorboard_output_config(TensorBoardOutputConfig(s3_output_path=spec.resolve(sub.settings).output_uri))
    trainer.train(wait=False, logs=False)

    assert len(ours) == 1 and len(theirs) == 1
    assert ours[0]["TrainingJobName"] == record.name
    assert normalise(ours[0]) == normalise(theirs[0])
    assert ours[0]["HyperParameters"]["sagemaker_recipe_local_path"] == "/opt/ml/input/data/recipe/recipe.yaml"
