"""Quotas on the embedded AWS: Service Quotas serves them, CreateTrainingJob enforces them in SageMaker's words,
and a job refused for capacity waits and is submitted once (or moves to its next name after a capacity failure)."""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from novaflow.backoff import Backoff
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.reasoning import follow_data_reasoning
from novaflow.jobs.records import JobRecord
from novaflow.jobs.submit import submit_training_job
from novaflow.local.aws.quotas import quota_code
from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import scenario
from novaflow.quotas.queue import Queued, run_within_capacity
from novaflow.quotas.service_quotas import read_service_quotas, resolve_capacities
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl, sft_spec

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
CAPACITY = (
    "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
)


def _outside_job(name: str, count: int, instance_type: str = "ml.p5.48xlarge") -> None:
    """A job someone else started in the account (no recipe: it is held by a stall until stopped)."""
    boto3.client("sagemaker", config=NO_RETRY).create_training_job(
        TrainingJobName=name,
        RoleArn=LOCAL_ROLE_ARN,
        AlgorithmSpecification={"TrainingImage": scenario.IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://novaflow-local/out"},
        ResourceConfig={"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def test_service_quotas_serves_the_accounts_training_quotas_and_novaflow_reads_them(aws) -> None:
    assert aws.control.set_quotas({"ml.p5.48xlarge": 8, "ml.g5.12xlarge": 2}) == {
        "ml.p5.48xlarge": 8,
        "ml.g5.12xlarge": 2,
    }
    quotas = boto3.client("service-quotas").list_service_quotas(ServiceCode="sagemaker")["Quotas"]
    assert [(q["QuotaName"], q["Value"], q["Unit"]) for q in quotas] == [
        ("ml.g5.12xlarge for training job usage", 2.0, "None"),
        ("ml.p5.48xlarge for training job usage", 8.0, "None"),
    ]
    code = quotas[1]["QuotaCode"]
    assert code.startswith("L-") and len(code) == 10
    assert quotas[1]["QuotaArn"] == f"arn:aws:servicequotas:us-east-1:123456789012:sagemaker/{code}"
    one = boto3.client("service-quotas").get_service_quota(ServiceCode="sagemaker", QuotaCode=code)["Quota"]
    assert one["QuotaName"] == "ml.p5.48xlarge for training job usage"

    reading = read_service_quotas(settings=load_settings())
    assert reading.unavailable is None
    assert reading.book.describe() == [
        f"ml.g5.12xlarge: 2 instances (Service Quotas {quotas[0]['QuotaCode']})",
        f"ml.p5.48xlarge: 8 instances (Service Quotas {code})",
    ]
    # --quota lowers the account's quota (novaflow's share) and adds what Service Quotas does not list.
    _, notes = resolve_capacities(load_settings(), {"ml.p5.48xlarge": 4, "serverless": 2})
    assert notes == [
        f"quota ml.g5.12xlarge: 2 instances (Service Quotas {quotas[0]['QuotaCode']})",
        "quota ml.p5.48xlarge: 4 instances (--quota / wait.quotas)",
        "quota serverless: 2 jobs (--quota / wait.quotas)",
    ]


def test_create_over_quota_is_refused_as_sagemaker_refuses_it(aws) -> None:
    aws.control.set_quotas({"ml.p5.48xlarge": 4})
    aws.control.stall_job("outside-a")
    _outside_job("outside-a", 3)
    _outside_job("other-type", 8, "ml.g5.12xlarge")  # another type has no quota set: not limited
    with pytest.raises(ClientError) as info:
        _outside_job("outside-b", 2)
    assert info.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert info.value.response["Error"]["Message"] == (
        "The account-level service limit 'ml.p5.48xlarge for training job usage' is 4 Instances, with current "
        "utilization of 3 Instances and a request delta of 2 Instances. Please contact AWS support to request an "
        "increase for this limit."
    )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    _outside_job("outside-c", 1)  # exactly fills the quota
    names = {j["TrainingJobName"] for j in boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]}
    assert names == {"outside-a", "other-type", "outside-c"}


def test_a_refused_job_is_queued_then_submitted_once(aws) -> None:
    put_jsonl("data/train.jsonl", 40)
    aws.control.set_quotas({"ml.p5.48xlarge": 4})
    aws.control.stall_job("outside-holder")
    _outside_job("outside-holder", 4)  # someone else holds the whole p5 quota
    spec = sft_spec()
    queued: list[Queued] = []
    first_refusal = threading.Event()

    def on_queued(q: Queued) -> None:
        queued.append(q)
        first_refusal.set()

    def free_the_quota() -> None:
        first_refusal.wait(30)
        boto3.client("sagemaker").stop_training_job(TrainingJobName="outside-holder")

    freer = threading.Thread(target=free_the_quota)
    freer.start()
    submitted: list[int] = []

    def submit(attempt: int) -> JobRecord:
        submitted.append(attempt)
        return submit_training_job(spec, settings=load_settings())

    done = run_within_capacity(
        submit,
        lambda record: wait_for_job(
            record.name, poll_seconds=0.1, max_poll_seconds=0.2, max_wait_seconds=60, settings=load_settings()
        ),
        job=spec.resolve(load_settings()).job_name(),
        capacity="novaflow-quota-ml.p5.48xlarge",
        backoff=Backoff(initial=0.2, factor=1.5, maximum=0.5, deadline=60),
        on_queued=on_queued,
    )
    freer.join()
    assert done.status.value == "Completed"
    assert queued and queued[0].attempt == 1 and "is 4, 4 in use, this job asks for 4" in queued[0].reason
    assert submitted == list(range(len(queued) + 1))  # one submit per refusal, then the one that went through
    jobs = boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert sorted(j["TrainingJobName"] for j in jobs) == sorted(["outside-holder", done.name])


def test_a_job_failed_for_capacity_is_retried_under_its_next_name_and_a_rerun_attaches(aws) -> None:
    put_jsonl("data/train.jsonl", 40)
    spec = sft_spec()
    submitted = follow_data_reasoning(
        spec.resolve(load_settings()), settings=load_settings()
    )  # the spec as submit names it
    first, second = submitted.job_name(), submitted.job_name("r1")
    aws.control.fail_job(first, CAPACITY)  # AWS had no p5 for the first attempt
    queued: list[Queued] = []
    done = run_within_capacity(
        lambda attempt: submit_training_job(spec, settings=load_settings()),
        lambda record: wait_for_job(
            record.name, poll_seconds=0.1, max_poll_seconds=0.2, max_wait_seconds=60, settings=load_settings()
        ),
        job=first,
        capacity="novaflow-quota-ml.p5.48xlarge",
        backoff=Backoff(initial=0.1, maximum=0.2, deadline=60),
        on_queued=queued.append,
    )
    assert done.name == second and done.status.value == "Completed"
    assert [q.reason for q in queued] == [f"{first} failed before training: {CAPACITY}"]
    sm = boto3.client("sagemaker")
    statuses = {j["TrainingJobName"]: j["TrainingJobStatus"] for j in sm.list_training_jobs()["TrainingJobSummaries"]}
    assert statuses == {first: "Failed", second: "Completed"}
    again = submit_training_job(spec, settings=load_settings())  # a re-run finds the attempt that ran: no third job
    assert (again.name, again.attached) == (second, True)
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == 2


def test_the_dry_run_refuses_a_job_larger_than_the_quota(aws) -> None:
    from novaflow.jobs.dryrun import dry_run

    put_jsonl("data/train.jsonl", 40)
    aws.control.set_quotas({"ml.p5.48xlarge": 2})
    report = dry_run(sft_spec(), simulate_iam=False, settings=load_settings())
    assert not report.ok
    problem = next(p for p in report.problems if p.field == "instance_count")
    assert problem.message == (
        f"job {report.job_name} needs 4 instances of ml.p5.48xlarge but the quota is 2 (Service Quotas "
        f"{quota_code('ml.p5.48xlarge')})"
    )
    assert problem.fix == "request an increase in Service Quotas, or use fewer or other instances"
    aws.control.set_quotas({"ml.p5.48xlarge": 8})
    report = dry_run(sft_spec(), simulate_iam=False, settings=load_settings())
    assert report.ok, report.describe()
    assert f"quota ml.p5.48xlarge: 8 instances (Service Quotas {quota_code('ml.p5.48xlarge')})" in report.notes
