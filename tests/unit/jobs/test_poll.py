"""Polling with controlled status progressions and throttling bursts (botocore Stubber; no real time passes)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import botocore.session
import pytest
from botocore.stub import Stubber

from novaflow.backoff import Backoff
from novaflow.errors import AwsError, JobError
from novaflow.jobs.backends import SageMakerBackend
from novaflow.jobs.logs import LogLine
from novaflow.jobs.poll import wait_for_job
from tests.unit.fake_clock import FakeClock

NAME = "nova-lite-2-sft-lora-abc"


class FakeTailer:
    job_name = NAME

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches = list(batches)

    def poll(self) -> list[LogLine]:
        return [LogLine("s", 0, m) for m in (self.batches.pop(0) if self.batches else [])]


def describe(status: str, reason: str | None = None) -> dict:
    out = {
        "TrainingJobName": NAME,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{NAME}",
        "TrainingJobStatus": status,
        "SecondaryStatus": "Training",
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/o"},
        "ResourceConfig": {"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
    }
    if reason:
        out["FailureReason"] = reason
    return out


_SESSION = botocore.session.get_session()
"""One session for the module: it parses the SageMaker model once, so each test's client costs milliseconds."""


@pytest.fixture
def client():
    c = _SESSION.create_client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(c) as stub:
        c.stub = stub  # type: ignore[attr-defined]
        yield c
        stub.assert_no_pending_responses()


def run(client, clock: FakeClock, tailer: FakeTailer | None = None, **kw):
    return wait_for_job(
        NAME,
        backend=SageMakerBackend(client=client),
        tailer=tailer or FakeTailer([]),
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(0),
        **kw,
    )


def test_progression_to_completed_with_backoff_and_cap(client) -> None:
    for status in ["InProgress"] * 5 + ["Completed"]:
        client.stub.add_response("describe_training_job", describe(status), {"TrainingJobName": NAME})
    clock = FakeClock()
    lines: list[str] = []
    record = run(
        client,
        clock,
        FakeTailer([["step 1"], [], ["step 2"]]),
        poll_seconds=10,
        max_poll_seconds=20,
        on_log_line=lambda line: lines.append(line.message),
    )
    assert record.status.value == "Completed" and record.arn.endswith(NAME)
    assert len(clock.sleeps) == 5 and lines == ["step 1", "step 2"]
    nominal = [10, 15, 20, 20, 20]  # 10 * 1.5**n capped at 20
    assert all(0.8 * n <= s <= 1.2 * n for s, n in zip(clock.sleeps, nominal, strict=True))
    assert len(set(clock.sleeps)) == 5  # jitter: no two equal delays


def test_failed_raises_with_reason_and_log_tail(client) -> None:
    client.stub.add_response("describe_training_job", describe("InProgress"), {"TrainingJobName": NAME})
    client.stub.add_response(
        "describe_training_job", describe("Failed", "AlgorithmError: CUDA out of memory"), {"TrainingJobName": NAME}
    )
    tail = [f"line {i}" for i in range(30)]
    with pytest.raises(JobError) as info:
        run(client, FakeClock(), FakeTailer([tail[:25], tail[25:]]), log_tail_lines=20)
    err = info.value
    assert err.status == "Failed" and err.failure_reason == "AlgorithmError: CUDA out of memory"
    assert err.log_tail == tail[10:]
    assert str(err).startswith(
        f"Job {NAME} failed: AlgorithmError: CUDA out of memory.\n  last log lines:\n    line 20"
    )


def test_stopped_is_not_failed(client) -> None:
    for status in ("Stopping", "Stopped"):
        client.stub.add_response("describe_training_job", describe(status), {"TrainingJobName": NAME})
    with pytest.raises(JobError, match=r"was stopped .* not failed") as info:
        run(client, FakeClock())
    assert info.value.status == "Stopped"
    assert str(info.value) == f"Job {NAME} was stopped (by a user or its stopping condition), not failed."


def test_throttling_burst_is_survived(client) -> None:
    for _ in range(5):
        client.stub.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded", 400)
    client.stub.add_client_error("describe_training_job", "InternalServerError", "oops", 500)
    client.stub.add_response("describe_training_job", describe("Completed"), {"TrainingJobName": NAME})
    clock = FakeClock()
    assert run(client, clock, poll_seconds=1).status.value == "Completed"
    assert len(clock.sleeps) == 6


def test_non_retryable_error_is_raised_at_once(client) -> None:
    client.stub.add_client_error("describe_training_job", "AccessDeniedException", "no", 400)
    with pytest.raises(AwsError, match=r"AccessDeniedException") as info:
        run(client, FakeClock())
    assert info.value.code == "AccessDeniedException"


def test_missing_job_is_an_error(client) -> None:
    client.stub.add_client_error("describe_training_job", "ValidationException", "Requested resource not found.", 400)
    with pytest.raises(JobError, match=f"Job {NAME} does not exist on SMTJ"):
        run(client, FakeClock())


def test_deadline_stops_the_job_when_asked(client) -> None:
    for _ in range(3):
        client.stub.add_response("describe_training_job", describe("InProgress"), {"TrainingJobName": NAME})
    client.stub.add_response("stop_training_job", {}, {"TrainingJobName": NAME})
    clock = FakeClock()
    with pytest.raises(JobError, match=r"did not finish within 100 s .*stop requested") as info:
        run(client, clock, poll_seconds=40, max_wait_seconds=100, stop_on_deadline=True)
    assert info.value.status == "Stopping" and clock.now == pytest.approx(100)


def test_deadline_without_stop_leaves_job_running(client) -> None:
    client.stub.add_response("describe_training_job", describe("InProgress"), {"TrainingJobName": NAME})
    client.stub.add_response("describe_training_job", describe("InProgress"), {"TrainingJobName": NAME})
    with pytest.raises(JobError, match=r"left running"):
        run(client, FakeClock(), poll_seconds=50, max_wait_seconds=10)


def test_backoff_formula() -> None:
    b = Backoff(initial=2, factor=2, maximum=10, jitter=0)
    assert [b.delay(n, random.Random(0)) for n in range(5)] == [2, 4, 8, 10, 10]
