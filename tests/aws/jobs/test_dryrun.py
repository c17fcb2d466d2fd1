"""Dry run: all problems at once, each with a fix, and no mutating AWS call."""

from __future__ import annotations

import json

from novaflow.aws import get_client
from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl, stub_role

READ_ONLY = ("Describe", "Get", "List", "Head", "Simulate")


def assert_read_only(calls: list[str]) -> None:
    assert calls, "the dry run made no AWS call at all"
    mutating = [c for c in calls if not c.startswith(READ_ONLY)]
    assert mutating == []


def test_bad_configuration_lists_every_problem_with_a_fix(aws, calls) -> None:
    put_jsonl("data/small.jsonl", 10)
    get_client("iam", settings=load_settings()).create_role(
        RoleName="wrong-trust",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    calls.clear()
    spec = JobSpec(
        model="nova-lite-2",
        method="rft_lora",
        train_uri="s3://novaflow-local/data/small.jsonl",
        validation_uri="s3://novaflow-local/data/missing.jsonl",
        instance_type="ml.g5.12xlarge",
        reward_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:reward:live",
        role_arn="arn:aws:iam::123456789012:role/wrong-trust",
        overrides={"lr": 5.0, "number_generation": 1, "max_steps": 6, "save_steps": 7},
        output_uri="s3://no-such-bucket-xyz/out",
    )
    report = dry_run(spec, simulate_iam=False, settings=load_settings())
    fields = [p.field for p in report.problems]
    assert fields == [
        "overrides",
        "overrides",
        "overrides",
        "instance",
        "reward_lambda_arn",
        "validation",
        "output_uri",
        "role_arn",
    ]
    text = report.describe()
    assert "lr=5.0 is above the maximum 0.001" in text
    assert "number_generation=1 is below the minimum 2" in text
    assert "save_steps=7 exceeds max_steps=6" in text
    assert (
        "instance: instance type ml.g5.12xlarge is not allowed for rft_lora of nova-lite-2 on SMTJ -> fix: "
        "use one of ml.p5.48xlarge, ml.p5en.48xlarge"
    ) in text
    assert "not a Lambda function ARN -> fix: use arn:aws:lambda:<region>:<account>:function:<name>" in text
    assert "s3://novaflow-local/data/missing.jsonl does not exist -> fix: upload the data first" in text
    assert "role wrong-trust does not trust sagemaker.amazonaws.com -> fix: add sagemaker.amazonaws.com" in text
    assert all(p.fix for p in report.problems)
    assert not report.ok and report.request is None
    assert_read_only(calls)


def test_good_configuration_passes_with_cost_estimate_and_request(aws, calls) -> None:
    put_jsonl("data/train.jsonl", 40)
    calls.clear()
    spec = JobSpec(
        model="nova-lite-2",
        method="sft_lora",
        train_uri="s3://novaflow-local/data/train.jsonl",
        max_runtime_seconds=7200,
    )
    report = dry_run(spec, simulate_iam=False, settings=load_settings())
    assert report.problems == [], report.describe()
    assert report.request["TrainingJobName"] == report.job_name
    assert report.cost.total == round(4 * 2.0 * 55.04, 2)
    assert report.cost.describe().startswith("ESTIMATE (upper bound at MaxRuntimeInSeconds): 4 x ml.p5.48xlarge x 2 h")
    assert "as of 2026-05-01" in report.cost.describe()
    assert dry_run(spec, simulate_iam=False, expected_hours=0.5, settings=load_settings()).cost.total == round(
        4 * 0.5 * 55.04, 2
    )
    assert_read_only(calls)
    assert "CreateTrainingJob" not in calls and "PutObject" not in calls


def test_too_few_rows_for_the_batch_and_existing_job_note(aws, calls) -> None:
    put_jsonl("data/train.jsonl", 20)
    spec = JobSpec(
        model="nova-lite-2",
        method="sft_lora",
        train_uri="s3://novaflow-local/data/train.jsonl",
        overrides={"global_batch_size": 32},
    )
    record = submit_training_job(spec, settings=load_settings())
    spec = spec.model_copy(update={"overrides": {"global_batch_size": 64}})
    calls.clear()
    report = dry_run(spec, simulate_iam=False, settings=load_settings())
    assert [str(p) for p in report.problems] == [
        "train: s3://novaflow-local/data/train.jsonl has 20 rows, fewer than global_batch_size=64 -> fix: provide "
        "at least 64 rows or lower global_batch_size"
    ]
    assert_read_only(calls)
    same = dry_run(
        spec.model_copy(update={"overrides": {"global_batch_size": 32}}), simulate_iam=False, settings=load_settings()
    )
    assert same.job_name == record.name
    assert f"job {record.name} already exists (InProgress); submit would attach to it" in same.notes


def test_iam_simulation_denials_are_problems(aws) -> None:
    from botocore.stub import Stubber

    from novaflow.jobs.dryrun import DryRunReport, _check_role
    from novaflow.settings import load_settings

    iam = get_client("iam", settings=load_settings())
    role = "arn:aws:iam::123456789012:role/exec"
    spec = JobSpec(
        model="nova-lite-2",
        method="rft_lora",
        role_arn=role,
        train_uri="s3://b/k",
        reward_lambda_arn="arn:aws:lambda:us-east-1:123456789012:function:r",
    )
    report = DryRunReport(job_name="j")
    decisions = {
        "s3:GetObject": "allowed",
        "s3:PutObject": "implicitDeny",
        "s3:ListBucket": "allowed",
        "lambda:InvokeFunction": "explicitDeny",
    }
    with Stubber(iam) as stub:
        stub_role(stub, role, decisions)
        _check_role(spec, load_settings(), report, simulate=True)
    assert [str(p) for p in report.problems] == [
        "role_arn: role exec is not allowed s3:PutObject, lambda:InvokeFunction -> fix: attach a policy granting "
        "these actions on the data, output and Lambda resources"
    ]
