"""The emulator's one log writer, read back from CloudWatch byte for byte in each job kind's group and stream."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from novaflow.jobs.agent_rft import LOG_GROUP as AGENT_GROUP
from novaflow.local.emulator import aws_io, joblog
from novaflow.local.emulator.hyperpod_jobs import ClusterPlace, HyperPodJobLog
from novaflow.local.emulator.joblog import LOG_GROUP, JobLog

# CloudWatch refuses events older than 14 days, so the clock is frozen at a recent whole second plus 0.5
NOW = int(time.time()) + 0.5
MS = int(NOW * 1000)
STAMP = datetime.fromtimestamp(int(NOW), tz=UTC).strftime("%Y-%m-%d %H:%M:%S") + ",500"
EPOCH = int(NOW)


def _events(url: str, group: str, stream: str) -> list[tuple[int, str]]:
    logs = aws_io.client("logs", url)
    found = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    return [(e["timestamp"], e["message"]) for e in found]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(joblog.time, "time", lambda: NOW)


@pytest.mark.usefixtures("frozen")
def test_training_job_lines_in_the_training_jobs_group(aws: Any) -> None:
    log = JobLog(aws.url, "job-7")
    log.line("Starting training")
    log.line("out of memory", level="ERROR")
    log.flush()
    assert (LOG_GROUP, log.stream) == ("/aws/sagemaker/TrainingJobs", f"job-7/algo-1-{EPOCH}")
    assert _events(aws.url, LOG_GROUP, log.stream) == [
        (MS, f"[{STAMP}] [INFO] Starting training"),
        (MS, f"[{STAMP}] [ERROR] out of memory"),
    ]


@pytest.mark.usefixtures("frozen")
def test_agent_rft_lines_in_their_own_group(aws: Any) -> None:
    log = JobLog(aws.url, "mtrl-1", "us-east-1", group=AGENT_GROUP)
    log.line("(RolloutTrainer) step:1")
    log.flush()
    assert AGENT_GROUP == "/aws/sagemaker/Job/AgentRFT"
    assert _events(aws.url, AGENT_GROUP, f"mtrl-1/algo-1-{EPOCH}") == [
        (MS, f"[{STAMP}] [INFO] (RolloutTrainer) step:1")
    ]


@pytest.mark.usefixtures("frozen")
def test_hyperpod_lines_name_their_pod_and_its_escrow_bucket(aws: Any) -> None:
    place = ClusterPlace(aws.url, "123456789012", "us-east-1", "/aws/sagemaker/Clusters/c/abc", "kubeflow")
    log = HyperPodJobLog(place, "job-3-master-0")
    log.line("Saved checkpoint to s3://customer-escrow-123456789012-smtj-local/job-3/outputs/checkpoints")
    log.flush()
    assert _events(aws.url, place.log_group, "SagemakerHyperPodTrainingJob/kubeflow/job-3-master-0") == [
        (
            MS,
            f"[job-3-master-0] [{STAMP}] [INFO] "
            "Saved checkpoint to s3://customer-escrow-123456789012-smhp-local/job-3/outputs/checkpoints",
        )
    ]


def test_lines_are_sent_in_batches_of_fifty(aws: Any) -> None:
    log = JobLog(aws.url, "job-8")
    for i in range(51):
        log.line(f"line {i}")
    assert [m for _, m in _events(aws.url, LOG_GROUP, log.stream)][-1].endswith("] [INFO] line 49")
    log.flush()
    assert len(_events(aws.url, LOG_GROUP, log.stream)) == 51
