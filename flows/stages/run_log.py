"""What a run did, for its summary, report and MLflow: every stage with its start and end, jobs, locations, costs.

The stages of a graph run side by side and write here from several threads: each writes its own keys, and the
timings come in through :meth:`RunLog.record` from the one runner, so no two writers touch one entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger

from novaflow.data.report import DataReport
from novaflow.data.splits import SplitReport
from novaflow.deploy.gate import GateDecision
from novaflow.jobs.records import JobRecord
from novaflow.jobs.series import TrainingSeries
from novaflow.jobs.spec import JobSpec
from novaflow.registry.packages import ModelVersion
from novaflow.reward.verify import RewardVerification
from novaflow.runs.graph import Clock, StageTiming
from novaflow.tracking.mlflow import MlflowRun
from novaflow.tracking.records import job_params
from tasks.tracking import track_stage_task


@dataclass
class StageRecord:
    """One stage as the summary shows it: offsets from the run's start, and a short detail."""

    stage: str
    start: float
    end: float
    detail: str = ""
    status: str = "completed"

    def __post_init__(self) -> None:
        # Offsets kept to the millisecond, once: the summary, the report's timeline and the flow's result then
        # print the same numbers (rounding 8.4500x to 8.450 and then to one decimal gave 8.4 beside 8.5).
        self.start, self.end = round(self.start, 3), round(self.end, 3)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class RunLog:
    """What the run did, for the markdown summary: stages with times, jobs, S3 locations, cost estimates."""

    run_name: str
    stages: list[StageRecord] = field(default_factory=list)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    costs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    specs: dict[str, JobSpec] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    """Stage key -> a short line for the summary (the data URIs, the reward kind)."""
    split: SplitReport | None = None
    data: dict[str, DataReport] = field(default_factory=dict)
    curves: dict[str, TrainingSeries] = field(default_factory=dict)
    reward: RewardVerification | None = None
    gate: GateDecision | None = None
    model_package_version: str | None = None
    """Set by a stage that registers a model package (serverless); shown in the report and tagged in MLflow."""
    versions: dict[str, ModelVersion] = field(default_factory=dict)
    """Training stage -> its model package version (latest known state: status, approval reason, metrics)."""
    tracker: MlflowRun | None = None
    clock: Clock = field(default_factory=Clock)

    @property
    def wall_seconds(self) -> float:
        """From the run's start to the end of its last stage (stages overlap: not the sum of their times)."""
        return max((s.end for s in self.stages), default=0.0)

    def timeline(self) -> list[StageTiming]:
        return [StageTiming(s.stage, s.start, s.end, s.status) for s in self.stages]

    def started(self, key: str) -> None:
        get_run_logger().info("stage %s: started", key)

    def record(self, timing: StageTiming) -> None:
        """A stage ended (the graph runner calls this as each one does)."""
        rec = StageRecord(timing.key, timing.start, timing.end, self.details.get(timing.key, ""), timing.status)
        self.stages.append(rec)
        get_run_logger().info(
            "stage %s: %s, %.1f s (from %.1f s to %.1f s)%s",
            rec.stage,
            rec.status,
            rec.seconds,
            rec.start,
            rec.end,
            f"; {rec.detail}" if rec.detail else "",
        )

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """A step the flow runs itself, outside the graph (the report at the end)."""
        start = self.clock.now()
        self.started(name)
        status = "failed"
        try:
            yield
            status = "completed"
        finally:
            self.record(StageTiming(name, start, self.clock.now(), status))

    def track(self, stage: str, **logged: Any) -> None:
        """Log a finished stage as a nested MLflow run (nothing when tracking is off or has given up)."""
        if self.tracker is not None and self.tracker.active:
            track_stage_task(self.tracker, stage, **logged)

    def track_job(self, stage: str, record: JobRecord, outputs: dict[str, str], **logged: Any) -> None:
        """A job's stage: which job ran on what (and what it produced), plus its metrics or curves."""
        params = job_params(record, self.specs.get(stage)) | outputs
        self.track(stage, params=params, tags={"novaflow.job_name": record.name}, **logged)
