"""The quota domain: settings, capacities, SageMaker's refusal read back, the queue's waiting and its deadline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from novaflow.aws import is_retryable
from novaflow.backoff import Backoff
from novaflow.errors import ConfigError, JobError
from novaflow.quotas.capacity import Capacity, CapacityBook, Demand, book_from_mapping, demand_of, parse_quota_items
from novaflow.quotas.queue import CapacityWaitTimeout, Queued, run_within_capacity
from novaflow.quotas.refusals import is_capacity_failure, limit_refusal_of, parse_limit_refusal
from novaflow.quotas.service_quotas import training_quota_type
from novaflow.settings import load_settings
from tests.unit.fake_clock import FakeClock

REFUSAL = (
    "The account-level service limit 'ml.p5.48xlarge for training job usage' is 8 Instances, with current "
    "utilization of 6 Instances and a request delta of 4 Instances. Please contact AWS support to request an "
    "increase for this limit."
)
CAPACITY = (
    "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
)


def test_quota_items_parse_and_bad_ones_name_the_setting_and_item() -> None:
    assert parse_quota_items(["ml.p5.48xlarge=8", " serverless = 2 ", ""], where="--quota") == {
        "ml.p5.48xlarge": 8,
        "serverless": 2,
    }
    with pytest.raises(ConfigError, match=r"^--quota: 'p5=8' is not TYPE=N; use an instance type such as"):
        parse_quota_items(["p5=8"], where="--quota")
    with pytest.raises(
        ConfigError, match=r"^--quota: 'ml.p5.48xlarge=eight': the quota must be a whole number of instances$"
    ):
        parse_quota_items(["ml.p5.48xlarge=eight"], where="--quota")
    with pytest.raises(ConfigError, match="cannot be negative"):
        parse_quota_items(["ml.p5.48xlarge=-1"], where="--quota")


def test_novaflow_quotas_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVAFLOW_QUOTAS", "ml.p5.48xlarge=8,serverless=2")
    assert load_settings().quotas == {"ml.p5.48xlarge": 8, "serverless": 2}
    monkeypatch.setenv("NOVAFLOW_QUOTAS", "ml.p5.48xlarge")
    with pytest.raises(ConfigError, match=r"^Setting 'quotas' is malformed \(NOVAFLOW_QUOTAS: 'ml.p5.48xlarge' is not"):
        load_settings()


def test_a_setting_lowers_the_account_quota_but_never_raises_it() -> None:
    account = CapacityBook(
        [
            Capacity("ml.p5.48xlarge", 8, "instances", "Service Quotas L-1"),
            Capacity("ml.g5.12xlarge", 2, "instances", "Service Quotas L-2"),
        ]
    )
    merged = account.merged(book_from_mapping({"ml.p5.48xlarge": 4, "ml.g5.12xlarge": 6, "serverless": 3}, "settings"))
    assert merged.describe() == [
        "ml.g5.12xlarge: 2 instances (Service Quotas L-2)",
        "ml.p5.48xlarge: 4 instances (settings)",
        "serverless: 3 jobs (settings)",
    ]


def test_demand_per_platform_and_a_job_larger_than_its_quota() -> None:
    assert demand_of("SMTJ", "ml.p5.48xlarge", 4) == Demand("ml.p5.48xlarge", 4, "instances")
    assert demand_of("SERVERLESS", None, 1) == Demand("serverless", 1, "jobs")
    assert demand_of("BEDROCK", None, 1) is None
    book = book_from_mapping({"ml.p5.48xlarge": 2}, "--quota")
    assert book.problem(Demand("ml.p5.48xlarge", 2), "sft-1") is None
    assert book.problem(Demand("ml.p5.48xlarge", 4), "sft-1") == (
        "job sft-1 needs 4 instances of ml.p5.48xlarge but the quota is 2 (--quota): request an increase in "
        "Service Quotas, or use fewer or other instances"
    )
    assert book.problem(Demand("ml.g5.12xlarge", 99), "eval-1") is None  # no quota known: not limited by novaflow


def test_training_quota_names() -> None:
    assert training_quota_type("ml.p5.48xlarge for training job usage") == "ml.p5.48xlarge"
    assert training_quota_type("ml.p5.48xlarge for endpoint usage") is None
    assert training_quota_type("Number of instances across all training jobs") is None


def test_sagemakers_refusal_is_read_back() -> None:
    refusal = parse_limit_refusal(REFUSAL)
    assert (refusal.quota, refusal.limit, refusal.utilization, refusal.delta) == (
        "ml.p5.48xlarge for training job usage",
        8,
        6,
        4,
    )
    assert refusal.describe() == "quota 'ml.p5.48xlarge for training job usage' is 8, 6 in use, this job asks for 4"
    exc = ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": REFUSAL}}, "CreateTrainingJob")
    assert limit_refusal_of(exc) == refusal
    assert not is_retryable(exc)  # not a task retry's business: the queue waits for the quota (minutes to hours)
    other = ClientError({"Error": {"Code": "ValidationException", "Message": REFUSAL}}, "CreateTrainingJob")
    assert limit_refusal_of(other) is None
    assert is_capacity_failure(CAPACITY)
    assert not is_capacity_failure("AlgorithmError: CUDA out of memory")
    assert not is_capacity_failure(None)


def _limit_exceeded() -> ClientError:
    return ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": REFUSAL}}, "CreateTrainingJob")


def test_refused_then_submitted_once_with_backoff_and_queued_lines() -> None:
    clock = FakeClock()
    attempts: list[int] = []
    waited: list[str] = []
    queued: list[Queued] = []

    def submit(attempt: int) -> str:
        attempts.append(attempt)
        if len(attempts) < 3:
            raise _limit_exceeded()
        return "job-a"

    def wait(record: str) -> str:
        waited.append(record)
        return record + ":Completed"

    result = run_within_capacity(
        submit,
        wait,
        job="job-a",
        capacity="novaflow-quota-ml.p5.48xlarge",
        backoff=Backoff(initial=10, factor=2, maximum=300, deadline=3600),
        on_queued=queued.append,
        clock=clock,
        sleep=clock.sleep,
        now=lambda: datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    )
    assert result == "job-a:Completed"
    assert attempts == [0, 1, 2] and waited == ["job-a"] and clock.sleeps == [10, 20]
    assert [q.describe() for q in queued] == [
        "job job-a queued on quota novaflow-quota-ml.p5.48xlarge since 2026-12-07 09:00:00 UTC: CreateTrainingJob "
        "refused: quota 'ml.p5.48xlarge for training job usage' is 8, 6 in use, this job asks for 4",
        "job job-a still queued (attempt 2) on quota novaflow-quota-ml.p5.48xlarge since 2026-12-07 09:00:00 UTC: "
        "CreateTrainingJob refused: quota 'ml.p5.48xlarge for training job usage' is 8, 6 in use, this job asks for 4",
    ]


def test_a_job_failed_for_capacity_is_submitted_again_and_other_failures_fail() -> None:
    clock = FakeClock()
    names = ["job-a", "job-a-r1"]
    submitted: list[str] = []

    def submit(attempt: int) -> str:
        submitted.append(names[attempt])
        return names[attempt]

    def wait(record: str) -> str:
        if record == "job-a":
            raise JobError("failed", job_name=record, status="Failed", failure_reason=CAPACITY)
        return record

    result = run_within_capacity(
        submit, wait, job="job-a", capacity="q", backoff=Backoff(initial=5, deadline=60), clock=clock, sleep=clock.sleep
    )
    assert (result, submitted, clock.sleeps) == ("job-a-r1", ["job-a", "job-a-r1"], [5])

    def broken(record: str) -> str:
        raise JobError("failed", job_name=record, status="Failed", failure_reason="AlgorithmError: boom")

    with pytest.raises(JobError, match=r"^failed$"):
        run_within_capacity(submit, broken, job="b", capacity="q", backoff=Backoff(), clock=clock, sleep=clock.sleep)


def test_the_queue_gives_up_at_its_deadline_in_one_line() -> None:
    clock = FakeClock()

    def submit(attempt: int) -> str:
        raise _limit_exceeded()

    with pytest.raises(CapacityWaitTimeout) as info:
        run_within_capacity(
            submit,
            lambda r: r,
            job="job-a",
            capacity="novaflow-quota-ml.p5.48xlarge",
            backoff=Backoff(initial=600, factor=2, maximum=1800, deadline=3600),
            clock=clock,
            sleep=clock.sleep,
            now=lambda: datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        )
    assert clock.sleeps == [600, 1200, 1800]
    assert str(info.value) == (
        "job job-a was queued on quota novaflow-quota-ml.p5.48xlarge since 2026-12-07 09:00:00 UTC and still had no "
        "capacity after 1.00 h (wait.max_wait_hours): CreateTrainingJob refused: quota 'ml.p5.48xlarge for training "
        "job usage' is 8, 6 in use, this job asks for 4; nothing of it is running - raise the quota in Service "
        "Quotas, free it, or run again later"
    )
    assert "\n" not in str(info.value)


def test_a_second_kind_of_capacity_plugs_in_as_a_source() -> None:
    """A HyperPod cluster's restricted instance group is a capacity in nodes beside the account's quotas."""
    from novaflow.quotas.service_quotas import resolve_capacities

    class Cluster:
        def read(self) -> CapacityBook:
            return CapacityBook([Capacity("hyperpod:team-a:rig-p5", 6, "nodes", "HyperPod team-a free nodes")])

    book, notes = resolve_capacities(load_settings(), {"ml.p5.48xlarge": 8}, read_account=False, sources=[Cluster()])
    assert notes == [
        "quota hyperpod:team-a:rig-p5: 6 nodes (HyperPod team-a free nodes)",
        "quota ml.p5.48xlarge: 8 instances (--quota / wait.quotas)",
    ]
    demand = demand_of("SMHP", "ml.p5.48xlarge", 8, instance_group="team-a:rig-p5")
    assert demand == Demand("hyperpod:team-a:rig-p5", 8, "nodes")
    assert demand.limit_name == "novaflow-quota-hyperpod:team-a:rig-p5"
    assert book.problem(demand, "cpt-1") == (
        "job cpt-1 needs 8 nodes of hyperpod:team-a:rig-p5 but the quota is 6 (HyperPod team-a free nodes): free or "
        "add nodes in the instance group, or ask for fewer"
    )
