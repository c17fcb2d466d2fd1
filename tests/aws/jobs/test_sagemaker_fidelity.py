"""Fidelity: novaflow's CreateTrainingJob equals what sagemaker v3's ModelTrainer.from_recipe sends.

Runs only where the ``sagemaker`` extra is installed (it pulls mlflow and pins; keep it out of the shared venv).
Both requests are captured on the wire (botocore ``before-call``, JSON body) against the embedded AWS, then
compared after normalising what each side generates: the job name and the S3 key of the uploaded recipe.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from novaflow.aws import get_client
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission, submit_training_job
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


@pytest.mark.parametrize(
    ("model", "method", "train", "extra"),
    [
        ("nova-lite-2", "sft_lora", "data/train.jsonl", {}),
        ("nova-micro", "evaluation", "data/gen_qa.jsonl", {}),
        (
            "nova-lite-2",
            "rft_lora",
            "data/rft.jsonl",
            {"reward_lambda_arn": "arn:aws:lambda:us-east-1:123456789012:function:reward"},
        ),
    ],
)
def test_request_equals_sagemaker_v3(aws, monkeypatch, tmp_path, model, method, train, extra) -> None:
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

    # the SDK pins STS to the public regional endpoint, overriding AWS_ENDPOINT_URL (local-aws-moto.md §6)
    monkeypatch.setattr(session_helper, "sts_regional_endpoint", lambda region: aws.url)
    put_jsonl(train, 40)
    spec = JobSpec(
        model=model,
        method=method,
        train_uri=f"s3://novaflow-local/{train}",
        kms_key_id="alias/nova",
        subnets=("subnet-1",),
        security_group_ids=("sg-1",),
        max_runtime_seconds=7200,
        **extra,
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
    sub = prepare_submission(spec)
    request = sub.request()
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(sub.recipe.to_yaml(), encoding="utf-8")

    session = boto3.Session(region_name="us-east-1")
    session.events.register("before-call.sagemaker.CreateTrainingJob", capture(theirs))
    channel = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "train")["DataSource"]["S3DataSource"]
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
        ],
        tags=[Tag(key=t["Key"], value=t["Value"]) for t in request["Tags"]],
        sagemaker_session=Session(boto_session=session, default_bucket="novaflow-local"),
    ).with_tensorboard_output_config(TensorBoardOutputConfig(s3_output_path=spec.resolve(sub.settings).output_uri))
    trainer.train(wait=False, logs=False)

    assert len(ours) == 1 and len(theirs) == 1
    assert ours[0]["TrainingJobName"] == record.name
    assert normalise(ours[0]) == normalise(theirs[0])
    assert ours[0]["HyperParameters"]["sagemaker_recipe_local_path"] == "/opt/ml/input/data/recipe/recipe.yaml"
