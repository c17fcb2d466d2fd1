"""Life cycle of an emulated SageMaker training job: what ``describe_training_job`` shows while the emulator works.

Kept outside moto's objects because moto serialises every instance attribute of a SageMaker object into the API
response; an extra attribute would leak into ``describe_*`` output. The status a caller sees is the *earlier* of
two clocks: the emulator's real progress (it cannot be Completed before its outputs exist and the configured
minimum duration has passed) and the state-manager transition for ``sagemaker::training_job`` (so a test can hold
a job in each secondary status for N describes).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.moto_api._internal.managed_state_model import ManagedState

TRAINING_JOB_MODEL = "sagemaker::training_job"
STAGES = ("Starting", "Downloading", "Training", "Uploading", "Completed")
STAGE_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
}
DEFAULT_JOB_SECONDS = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


JOB_KINDS = ("training", "evaluation")
"""The kinds of job whose emulated duration can be set apart: on AWS an evaluation is far shorter than a training
job, and a benchmark of what overlaps what must be able to say by how much."""


def _kind_seconds_from_env() -> dict[str, float]:
    out: dict[str, float] = {}
    for kind in JOB_KINDS:
        value = os.environ.get(f"NOVAFLOW_LOCAL_{kind.upper()}_JOB_SECONDS")
        if value:
            out[kind] = float(value)
    return out


class Timing:
    """The minimum wall-clock duration of an emulated job (real jobs take minutes; tests want ~1 s): ``seconds``
    for every job, or per kind (``NOVAFLOW_LOCAL_TRAINING_JOB_SECONDS``, ``NOVAFLOW_LOCAL_EVALUATION_JOB_SECONDS``)."""

    seconds: float = float(os.environ.get("NOVAFLOW_LOCAL_JOB_SECONDS", DEFAULT_JOB_SECONDS))
    per_kind: dict[str, float] = _kind_seconds_from_env()

    @classmethod
    def for_kind(cls, kind: str) -> float:
        """The duration of a job the emulator fulfils as ``kind`` (``eval`` or a training method)."""
        return cls.per_kind.get("evaluation" if kind == "eval" else "training", cls.seconds)

    @classmethod
    def set(cls, seconds: float, kind: str | None = None) -> None:
        """Without ``kind``: every job, forgetting per-kind values; with it: that kind's jobs only."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        if kind is None:
            cls.seconds = seconds
            cls.per_kind = {}
        elif kind in JOB_KINDS:
            cls.per_kind = {**cls.per_kind, kind: seconds}
        else:
            raise ValueError(f"kind must be one of {', '.join(JOB_KINDS)}, got {kind!r}")


@dataclass
class JobRun:
    """Progress of one emulated training job, written by the emulator thread and read by describe calls."""

    name: str
    created: float = field(default_factory=time.monotonic)
    stage: str = "Starting"
    done: bool = False
    failure_reason: str | None = None
    stop_requested: bool = False
    stopping_shown: bool = False
    worker_exited: bool = False
    exited_at: datetime | None = None
    min_seconds: float = field(default_factory=lambda: Timing.seconds)
    released: threading.Event = field(default_factory=threading.Event)
    history: list[tuple[str, datetime]] = field(default_factory=lambda: [("Starting", _now())])
    end_time: datetime | None = None
    final_metrics: list[dict[str, Any]] = field(default_factory=list)
    output_model_package_arn: str | None = None
    """Serverless fine-tuning: the model package version the job registered (shown once Completed)."""
    billable_tokens: int | None = None
    """Serverless jobs: the tokens the job processed (``BillableTokenCount``), counted by the worker."""
    managed: ManagedState = field(
        default_factory=lambda: ManagedState(TRAINING_JOB_MODEL, list(itertools.pairwise(STAGES)))
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.released.set()

    # -- written by the emulator ---------------------------------------------------------------------
    def enter(self, stage: str) -> None:
        with self.lock:
            if self.stage != stage and self.failure_reason is None and not self.stop_requested:
                self.stage = stage
                if STAGES.index(stage) > STAGES.index(self.history[-1][0]) and stage != "Completed":
                    self._record(stage)

    def finish(self) -> None:
        with self.lock:
            self.done = True

    def fail(self, reason: str) -> None:
        with self.lock:
            if self.failure_reason is None and not self.stop_requested and not self._completed_locked():
                self.failure_reason = reason
                self._record("Failed")
                self.end_time = _now()

    def exited(self) -> None:
        with self.lock:
            self.worker_exited = True
            self.exited_at = _now()

    def should_stop(self) -> bool:
        """True when the worker must abandon the job (stopped or failed)."""
        return self.stop_requested or self.failure_reason is not None

    # -- read by describe ------------------------------------------------------------------------------
    def request_stop(self) -> str | None:
        """Stop an InProgress job; returns the blocking status when the job is not InProgress."""
        status, _ = self.status()
        if status != "InProgress":
            return status
        with self.lock:
            self.stop_requested = True
            self._record("Stopping")
        self.released.set()
        return None

    def status(self) -> tuple[str, str]:
        """(TrainingJobStatus, SecondaryStatus) right now."""
        with self.lock:
            if self.failure_reason is not None:
                # As on AWS, the status turns terminal once the container has exited - after its last log lines
                # are written - so a poller that sees Failed can read why in the log.
                if self.worker_exited:
                    return "Failed", "Failed"
                return "InProgress", self.stage
            if self.stop_requested:
                if self.stopping_shown and self.worker_exited:
                    if self.history[-1][0] != "Stopped":
                        self._record("Stopped")
                        self.end_time = _now()
                    return "Stopped", "Stopped"
                self.stopping_shown = True
                return "Stopping", "Stopping"
            stage = self._effective_stage_locked()
            if stage == "Completed":
                if self.history[-1][0] != "Completed":
                    # When the job ended, not when someone first asked: its work was done and its minimum duration
                    # over (instance-time and quota accounting read TrainingEndTime), never before a stage shown.
                    ended = max(
                        self.exited_at or _now(),
                        self.history[0][1] + timedelta(seconds=self.min_seconds),
                        self.history[-1][1],
                    )
                    self.history.append(("Completed", min(ended, _now())))
                    self.end_time = self.history[-1][1]
                return "Completed", "Completed"
            if self.history[-1][0] != stage and STAGES.index(stage) > STAGES.index(self.history[-1][0]):
                self._record(stage)
            return "InProgress", stage

    def _completed_locked(self) -> bool:
        return self.history[-1][0] == "Completed"

    def _effective_stage_locked(self) -> str:
        work = self.stage
        if self.done and self.worker_exited and time.monotonic() - self.created >= self.min_seconds:
            work = "Completed"
        managed = self.managed.status or STAGES[0]
        return STAGES[min(STAGES.index(work), STAGES.index(managed))]

    def _record(self, stage: str) -> None:
        self.history.append((stage, _now()))

    def transitions(self) -> list[dict[str, Any]]:
        """``SecondaryStatusTransitions`` as AWS shows them (each with StartTime, EndTime once left)."""
        with self.lock:
            out = []
            for i, (stage, start) in enumerate(self.history):
                item: dict[str, Any] = {
                    "Status": stage,
                    "StartTime": start,
                    "StatusMessage": STAGE_MESSAGES.get(stage, stage),
                }
                if i + 1 < len(self.history):
                    item["EndTime"] = self.history[i + 1][1]
                elif stage in {"Completed", "Failed", "Stopped"}:
                    item["EndTime"] = start
                out.append(item)
            return out


_RUNS: dict[str, JobRun] = {}
_RUNS_LOCK = threading.Lock()


def register(arn: str, run: JobRun) -> None:
    with _RUNS_LOCK:
        _RUNS[arn] = run


def get(arn: str) -> JobRun | None:
    return _RUNS.get(arn)


def find_by_name(name: str) -> JobRun | None:
    with _RUNS_LOCK:
        for arn, run in _RUNS.items():
            if arn.endswith(f":training-job/{name}"):
                return run
    return None


def clear() -> None:
    """Forget every run (after ``/moto-api/reset``); stops their workers at their next checkpoint."""
    with _RUNS_LOCK:
        runs = list(_RUNS.values())
        _RUNS.clear()
    for run in runs:
        with run.lock:
            run.stop_requested = True
        run.released.set()
