"""Emulated job durations per kind: an evaluation can be given another duration than a training job (a benchmark
models AWS's ratios with it), over the control API, and setting one duration for every job forgets them."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import jobstate, scenario

B = "s3://novaflow-local"


@pytest.fixture
def kinds(twin: object) -> Iterator[object]:
    twin.control.set_job_duration(0.2)  # type: ignore[attr-defined]
    twin.control.set_job_duration(2.5, kind="evaluation")  # type: ignore[attr-defined]
    try:
        yield twin
    finally:
        twin.control.set_job_duration(0.2)  # type: ignore[attr-defined]


def _seconds(name: str) -> float:
    job = scenario.wait(name, timeout=30)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return (job["TrainingEndTime"] - job["CreationTime"]).total_seconds()


def test_evaluation_and_training_jobs_last_their_own_durations(kinds: object) -> None:
    rows = [scenario.converse_row("Label it.", f"question {i}", "HQ") for i in range(40)]
    scenario.put(f"{B}/kinds/train.jsonl", scenario.jsonl(rows))
    scenario.put(
        f"{B}/kinds/eval/gen_qa.jsonl",
        scenario.jsonl([scenario.gen_qa_row("Label it.", f"question {i}", "HQ", str(i)) for i in range(20)]),
    )
    scenario.submit(
        "kind-sft", scenario.sft_recipe("sft", max_steps=4), f"{B}/kinds/train.jsonl", f"{B}/out", LOCAL_ROLE_ARN
    )
    scenario.submit(
        "kind-eval",
        scenario.eval_recipe("eval", "nova-lite-2/prod"),
        f"{B}/kinds/eval/",
        f"{B}/out",
        LOCAL_ROLE_ARN,
        data_type="S3Prefix",
    )
    assert _seconds("kind-eval") >= 2.5
    assert _seconds("kind-sft") < 2.5
    assert jobstate.Timing.per_kind == {"evaluation": 2.5}
    with pytest.raises(Exception, match="kind must be one of training, evaluation"):
        kinds.control.set_job_duration(1.0, kind="rft")  # type: ignore[attr-defined]
    kinds.control.set_job_duration(0.2)  # type: ignore[attr-defined]
    assert jobstate.Timing.per_kind == {}
    assert boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]


def test_an_ended_job_reports_its_billable_time(kinds: object) -> None:
    rows = [scenario.converse_row("Label it.", f"question {i}", "HQ") for i in range(40)]
    scenario.put(f"{B}/billed/train.jsonl", scenario.jsonl(rows))
    kinds.control.set_job_duration(1.5, kind="training")  # type: ignore[attr-defined]
    scenario.submit(
        "billed-sft", scenario.sft_recipe("sft", max_steps=4), f"{B}/billed/train.jsonl", f"{B}/out", LOCAL_ROLE_ARN
    )
    running = boto3.client("sagemaker").describe_training_job(TrainingJobName="billed-sft")
    assert "BillableTimeInSeconds" not in running and "TrainingTimeInSeconds" not in running
    job = scenario.wait("billed-sft", timeout=30)
    assert job["TrainingJobStatus"] == "Completed"
    wall = (job["TrainingEndTime"] - job["TrainingStartTime"]).total_seconds()
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"] >= 2  # 1.5 s, rounded up
    assert job["BillableTimeInSeconds"] - 1 < wall + 0.05
