"""Idempotent submit against the embedded AWS: one job per spec, across calls and processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml
from botocore.stub import Stubber

from novaflow.aws import get_client
from novaflow.errors import JobError
from novaflow.jobs.backends import SageMakerBackend
from novaflow.jobs.reasoning import follow_data_reasoning
from novaflow.jobs.submit import submit_training_job
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl, sft_spec


def jobs_named(prefix: str) -> list[str]:
    page = get_client("sagemaker", settings=load_settings()).list_training_jobs(NameContains=prefix, MaxResults=100)
    return [j["TrainingJobName"] for j in page["TrainingJobSummaries"]]


def test_same_spec_twice_creates_one_job_and_uploads_recipe(aws, calls) -> None:
    put_jsonl("data/train.jsonl", 40)
    spec = sft_spec()
    first = submit_training_job(spec, settings=load_settings())
    second = submit_training_job(spec, settings=load_settings())
    assert not first.attached and second.attached and first.name == second.name
    assert calls.count("CreateTrainingJob") == 1
    assert jobs_named(first.name) == [first.name]
    described = get_client("sagemaker", settings=load_settings()).describe_training_job(TrainingJobName=first.name)
    assert described["HyperParameters"]["sagemaker_recipe_local_path"] == "/opt/ml/input/data/recipe/recipe.yaml"
    key = f"novaflow/recipes/{first.name}/recipe.yaml"
    recipe = yaml.safe_load(
        get_client("s3", settings=load_settings()).get_object(Bucket="novaflow-local", Key=key)["Body"].read()
    )
    assert recipe["run"]["name"] == first.name and recipe["training_config"]["max_steps"] == 4
    assert recipe["training_config"]["save_steps"] == 4  # interpolation resolved as sagemaker v3 does
    assert first.recipe_uri == f"s3://novaflow-local/{key}"


def test_second_process_attaches_instead_of_creating(aws) -> None:
    put_jsonl("data/train.jsonl", 40)
    record = submit_training_job(sft_spec(), settings=load_settings())
    code = (
        "from tests.aws.jobs.conftest import sft_spec; from novaflow.jobs.submit import submit_training_job; "
        "from novaflow.settings import load_settings; "
        "print(submit_training_job(sft_spec(), load_settings()).model_dump_json())"
    )
    env = {**os.environ, **aws.env}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=os.getcwd(), check=True
    )
    other = json.loads(out.stdout.strip().splitlines()[-1])
    assert other["name"] == record.name and other["attached"] is True
    assert jobs_named(record.name) == [record.name]


def test_concurrent_creator_already_exists_is_treated_as_attach(aws) -> None:
    import botocore.session

    sm = botocore.session.get_session().create_client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=aws.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    spec = sft_spec()
    with Stubber(sm) as stub:
        stub.add_client_error("describe_training_job", "ValidationException", "Requested resource not found.", 400)
        stub.add_client_error(
            "create_training_job",
            "ValidationException",
            "Training job names must be unique within an AWS account and region, and a training "
            "job with this name already exists",
            400,
        )
        stub.add_response(
            "describe_training_job",
            {
                "TrainingJobName": "x",
                "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/x",
                "TrainingJobStatus": "InProgress",
                "SecondaryStatus": "Starting",
                "AlgorithmSpecification": {"TrainingInputMode": "File"},
                "ModelArtifacts": {"S3ModelArtifacts": "s3://b"},
                "ResourceConfig": {"InstanceType": "ml.p5.48xlarge", "InstanceCount": 4, "VolumeSizeInGB": 30},
                "StoppingCondition": {"MaxRuntimeInSeconds": 1},
                "CreationTime": 0,
            },
        )
        record = submit_training_job(
            spec, backend=SageMakerBackend(client=sm, settings=load_settings()), settings=load_settings()
        )
        stub.assert_no_pending_responses()
    assert record.attached and record.status.value == "InProgress"


def wait_status(name: str, wanted: str, timeout: float = 20) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        d = get_client("sagemaker", settings=load_settings()).describe_training_job(TrainingJobName=name)
        if d["TrainingJobStatus"] == wanted:
            return d
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {wanted}")


def test_failed_job_is_resubmitted_only_with_explicit_flag(aws, calls) -> None:
    put_jsonl("data/train.jsonl", 40)
    spec = sft_spec()
    first = submit_training_job(spec, settings=load_settings())
    aws.control.fail_job(first.name, "AlgorithmError: CUDA out of memory")
    wait_status(first.name, "Failed")
    with pytest.raises(
        JobError,
        match=r"already exists and is Failed: AlgorithmError: CUDA out of memory\. .*"
        r"retry_failed=True",
    ) as info:
        submit_training_job(spec, settings=load_settings())
    assert info.value.failure_reason == "AlgorithmError: CUDA out of memory"
    assert calls.count("CreateTrainingJob") == 1
    retry = submit_training_job(spec, retry_failed=True, settings=load_settings())
    submitted = follow_data_reasoning(
        spec.resolve(load_settings()), settings=load_settings()
    )  # reasoning_enabled=false: plain rows
    assert retry.name == submitted.job_name("r1") and submitted.overrides["reasoning_enabled"] is False
    assert not retry.attached and calls.count("CreateTrainingJob") == 2
    again = submit_training_job(spec, retry_failed=True, settings=load_settings())
    assert again.name == retry.name and again.attached and calls.count("CreateTrainingJob") == 2


def test_force_new_creates_a_separate_job(aws) -> None:
    put_jsonl("data/train.jsonl", 40)
    a = submit_training_job(sft_spec(), settings=load_settings())
    b = submit_training_job(sft_spec(), force_new=True, settings=load_settings())
    assert a.name != b.name and b.name.startswith(a.name + "-n") and not b.attached
