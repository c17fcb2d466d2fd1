"""The account's quotas as Prefect limits, on the session's Prefect server and the embedded AWS.

Four SFT jobs of 4 p5 instances each, started at once under an account quota of 8: the Prefect limit read from
Service Quotas lets two run at a time, so the embedded AWS never has to refuse one, and the jobs' own start and
end times show at most 8 instances in use at any moment (and 8 at some moment: the quota is used, not wasted).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import boto3
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.task_runners import ThreadPoolTaskRunner

from novaflow.errors import JobError
from novaflow.jobs.records import JobRecord
from novaflow.jobs.spec import JobSpec
from novaflow.quotas.capacity import Capacity
from novaflow.settings import load_settings
from tasks.jobs import submit_job_task, wait_job_task
from tasks.quotas import ensure_quota_limit, forget_capacities, job_capacity, quota_slots, run_job_within_quota
from tests.aws.jobs.conftest import put_jsonl
from tests.flows.helpers import FAST_WAIT, logs_of, training_jobs

pytestmark = [pytest.mark.flow, pytest.mark.slow]


@pytest.fixture
def quota_account(aws: object) -> Iterator[object]:
    aws.control.set_quotas({"ml.p5.48xlarge": 8})  # type: ignore[attr-defined]
    aws.control.set_job_duration(1.0)  # type: ignore[attr-defined]
    forget_capacities()
    try:
        yield aws
    finally:
        aws.control.set_job_duration(0.2)  # type: ignore[attr-defined]
        forget_capacities()


@task
def _stage(name: str, lr: float, train_uri: str) -> JobRecord:
    """A stage's job as every stage runs it: under its quota, submitted (again after a refusal), waited on."""
    spec = JobSpec(model="nova-lite-2", method="sft_lora", overrides={"lr": lr, "max_steps": 4}, train_uri=train_uri)
    settings = load_settings()
    return run_job_within_quota(
        name,
        spec,
        settings,
        quotas={},
        submit=lambda attempt: submit_job_task(spec, settings, capacity_attempt=attempt),
        wait=lambda record: wait_job_task(record, spec=spec, poll_seconds=0.2, max_poll_seconds=0.5, settings=settings),
        poll_seconds=FAST_WAIT.poll_seconds,
        max_poll_seconds=FAST_WAIT.max_poll_seconds,
        max_wait_hours=FAST_WAIT.max_wait_hours,
    )


@flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
def _four_sft_jobs(train_uri: str) -> list[str]:
    futures = [_stage.submit(f"sft-{i}", lr, train_uri) for i, lr in enumerate((1e-5, 2e-5, 3e-5, 4e-5))]
    return [f.result().name for f in futures]


def _peak_instances(names: list[str]) -> int:
    sm = boto3.client("sagemaker")
    events: list[tuple[datetime, int]] = []
    for name in names:
        job = sm.describe_training_job(TrainingJobName=name)
        count = job["ResourceConfig"]["InstanceCount"]
        events += [(job["TrainingStartTime"], count), (job["TrainingEndTime"], -count)]
    peak = current = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        current += delta
        peak = max(peak, current)
    return peak


def test_jobs_of_one_type_never_use_more_instances_than_the_quota(quota_account: object) -> None:
    train_uri = put_jsonl("quota-test/train.jsonl", 40)
    state = _four_sft_jobs(train_uri, return_state=True)
    assert state.is_completed(), state.message
    names = state.result()
    assert len(set(names)) == 4
    assert sorted(j["TrainingJobName"] for j in training_jobs()) == sorted(names)  # one job each, none refused
    assert {j["TrainingJobStatus"] for j in training_jobs()} == {"Completed"}
    assert _peak_instances(names) == 8
    logs = logs_of(state.state_details.flow_run_id)
    assert not any("queued on quota" in line for line in logs)
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("novaflow-quota-ml.p5.48xlarge")
    assert (limit.limit, limit.active_slots) == (8, 0)


def test_a_limit_set_by_hand_wins_and_novaflows_own_follows_the_quota() -> None:
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="novaflow-quota-ml.g5.12xlarge", limit=1)
        )
        assert ensure_quota_limit(Capacity("ml.g5.12xlarge", 8, "instances", "test")) == 1
        assert client.read_global_concurrency_limit_by_name("novaflow-quota-ml.g5.12xlarge").limit == 1

        own = "novaflow-quota-ml.g6.12xlarge"
        assert ensure_quota_limit(Capacity("ml.g6.12xlarge", 4, "instances", "test")) == 4  # created
        assert ensure_quota_limit(Capacity("ml.g6.12xlarge", 6, "instances", "test")) == 6  # the quota was raised
        assert client.read_global_concurrency_limit_by_name(own).limit == 6
        client.update_global_concurrency_limit(own, GlobalConcurrencyLimitUpdate(limit=3))  # a person lowers it
        assert ensure_quota_limit(Capacity("ml.g6.12xlarge", 10, "instances", "test")) == 3
        assert client.read_global_concurrency_limit_by_name(own).limit == 3


def test_a_job_larger_than_its_limit_is_refused_in_one_line(quota_account: object) -> None:
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="novaflow-quota-ml.p5en.48xlarge", limit=1)
        )
    spec = JobSpec(
        model="nova-lite-2",
        method="sft_lora",
        instance_type="ml.p5en.48xlarge",
        train_uri="s3://novaflow-local/quota-test/train.jsonl",
    )
    needed = job_capacity(spec, load_settings(), {"ml.p5en.48xlarge": 8})
    assert needed.demand is not None and needed.demand.slots > 1
    with pytest.raises(JobError) as info, quota_slots(needed):
        pass
    assert str(info.value) == (
        f"Job {needed.job} needs {needed.demand.slots} instances of ml.p5en.48xlarge but the Prefect limit "
        "novaflow-quota-ml.p5en.48xlarge has 1 slots: raise the limit (or the quota), or use fewer instances."
    )


@flow
def _one_sft_job(train_uri: str) -> str:
    return _stage.fn("sft", 5e-5, train_uri).name


def test_a_job_refused_for_quota_is_queued_then_submitted_once(quota_account: object) -> None:
    import threading
    import time

    from novaflow.local.aws.server import LOCAL_ROLE_ARN
    from novaflow.local.emulator import scenario

    aws = quota_account
    aws.control.set_quotas({"ml.p5.48xlarge": 4})  # type: ignore[attr-defined]
    aws.control.stall_job("someone-elses-job")  # type: ignore[attr-defined]
    sm = boto3.client("sagemaker")
    sm.create_training_job(  # outside novaflow: the whole p5 quota, held until it is stopped
        TrainingJobName="someone-elses-job",
        RoleArn=LOCAL_ROLE_ARN,
        AlgorithmSpecification={"TrainingImage": scenario.IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://novaflow-local/out"},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 4, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    train_uri = put_jsonl("quota-test/train.jsonl", 40)

    def stop_it_later() -> None:
        time.sleep(4)
        sm.stop_training_job(TrainingJobName="someone-elses-job")

    stopper = threading.Thread(target=stop_it_later)
    stopper.start()
    state = _one_sft_job(train_uri, return_state=True)
    stopper.join()
    assert state.is_completed(), state.message
    name = state.result()
    logs = logs_of(state.state_details.flow_run_id)
    queued = [line for line in logs if "queued on quota novaflow-quota-ml.p5.48xlarge since" in line]
    assert queued and queued[0].startswith(f"sft: job {name} queued on quota novaflow-quota-ml.p5.48xlarge since ")
    assert queued[0].endswith(
        "CreateTrainingJob refused: quota 'ml.p5.48xlarge for training job usage' is 4, 4 in use, this job asks for 4"
    )
    assert sorted(j["TrainingJobName"] for j in training_jobs()) == sorted(["someone-elses-job", name])
