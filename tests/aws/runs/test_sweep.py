"""The orphan sweeper on the embedded AWS: a running job whose run is gone longer than the grace is stopped; a job
of a live run, of a run gone for less than the grace, or already finished, is left alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3

from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import scenario
from novaflow.runs.ledger import register_job
from novaflow.runs.sweep import sweep_orphaned_jobs
from novaflow.settings import load_settings


def _job(name: str, max_runtime: int) -> None:
    boto3.client("sagemaker").create_training_job(
        TrainingJobName=name,
        RoleArn=LOCAL_ROLE_ARN,
        AlgorithmSpecification={"TrainingImage": scenario.IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://novaflow-local/out"},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime},
    )


def _status(name: str) -> str:
    return str(boto3.client("sagemaker").describe_training_job(TrainingJobName=name)["TrainingJobStatus"])


def test_only_the_job_of_a_run_gone_longer_than_its_max_runtime_is_stopped(aws) -> None:
    now = datetime.now(UTC)
    runs = {kind: str(uuid.uuid4()) for kind in ("alive", "gone-long", "gone-briefly")}
    gone = {runs["alive"]: None, runs["gone-long"]: now - timedelta(hours=3), runs["gone-briefly"]: now}
    for kind, run_id in runs.items():
        aws.control.stall_job(f"sweep-{kind}")
        _job(f"sweep-{kind}", max_runtime=7200)
        register_job(run_id, f"sweep-{kind}", stage="sft", settings=load_settings())
    asked: list[tuple[str, datetime]] = []

    def gone_since(run_id: str, registered: datetime) -> datetime | None:
        asked.append((run_id, registered))
        return gone.get(run_id)

    try:
        swept = {s.job_name: s for s in sweep_orphaned_jobs(gone_since, load_settings(), now=now)}
        mine = {name: s for name, s in swept.items() if name.startswith("sweep-")}
        assert {n: s.stopped for n, s in mine.items()} == {
            "sweep-alive": False,
            "sweep-gone-long": True,
            "sweep-gone-briefly": False,
        }
        assert mine["sweep-gone-long"].line() == (
            f"sweep-gone-long: run {runs['gone-long']} gone for 10800 s (grace 7200 s); stopped"
        )
        assert mine["sweep-alive"].line() == f"sweep-alive: run {runs['alive']} is alive; left running"
        assert _status("sweep-gone-long") in {"Stopping", "Stopped"}
        assert _status("sweep-alive") == _status("sweep-gone-briefly") == "InProgress"
        assert all(abs((now - registered).total_seconds()) < 60 for _, registered in asked)

        # an explicit grace shorter than the absence stops the briefly-gone run's job too; nothing is stopped twice
        again = sweep_orphaned_jobs(gone_since, load_settings(), grace_seconds=0, now=now + timedelta(seconds=5))
        stopped = sorted(s.job_name for s in again if s.stopped and s.job_name.startswith("sweep-"))
        assert stopped == ["sweep-gone-briefly"]
    finally:
        for kind in runs:
            aws.control.release_job(f"sweep-{kind}")
