"""Bedrock customization behind the same submit/wait interface, and the thin Prefect submit task."""

from __future__ import annotations

from prefect.logging import disable_run_logger

from novaflow.aws import get_client
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.settings import load_settings
from tasks.jobs import submit_job_task
from tests.aws.jobs.conftest import put_jsonl, sft_spec

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:reward"


def test_bedrock_rft_submit_attach_and_wait(aws, calls) -> None:
    train = put_jsonl("data/rft.jsonl", 120)
    spec = JobSpec(
        platform="BEDROCK",
        model="nova-lite-2",
        method="rft_lora",
        train_uri=train,
        reward_lambda_arn=LAMBDA,
        overrides={"max_epochs": 3, "number_generation": 4},
    )
    first = submit_training_job(spec, settings=load_settings())
    again = submit_training_job(spec, settings=load_settings())
    assert not first.attached and again.attached and calls.count("CreateModelCustomizationJob") == 1
    job = get_client("bedrock", settings=load_settings()).get_model_customization_job(jobIdentifier=first.name)
    assert job["customizationType"] == "REINFORCEMENT_FINE_TUNING"
    assert job["trainingDataConfig"] == {"s3Uri": train}
    done = wait_for_job(
        first.name,
        platform="BEDROCK",
        poll_seconds=0.05,
        max_poll_seconds=0.1,
        max_wait_seconds=30,
        record=first,
        settings=load_settings(),
    )
    assert done.status.value == "Completed" and done.output_model_arn


def test_submit_task_creates_then_attaches(aws) -> None:
    put_jsonl("data/train.jsonl", 40)
    with disable_run_logger():
        first = submit_job_task.fn(sft_spec(), load_settings())
        second = submit_job_task.fn(sft_spec(), load_settings())
    assert first.name == second.name and not first.attached and second.attached
