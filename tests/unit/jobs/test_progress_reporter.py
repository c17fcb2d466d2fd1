"""The progress artifact of a job follows its metric lines at most every PROGRESS_UPDATE_SECONDS: a log read at once
(a run resumed after its job ended) costs a couple of API calls, not one per line; every line still reaches the
run log."""

from __future__ import annotations

import logging
from uuid import uuid4

import pytest

import tasks.jobs as jobs
from novaflow.catalog import Platform
from novaflow.jobs.logs import LogLine
from novaflow.jobs.records import JobRecord


def test_a_whole_log_at_once_updates_the_progress_artifact_once_then_per_interval(monkeypatch) -> None:
    updates: list[float] = []
    monkeypatch.setattr(jobs, "get_run_logger", lambda: logging.getLogger("test-progress"))
    monkeypatch.setattr(jobs, "create_progress_artifact", lambda *a, **k: uuid4())
    monkeypatch.setattr(jobs, "update_progress_artifact", lambda artifact_id, progress: updates.append(progress))
    now = [100.0]
    record = JobRecord(platform=Platform.SMTJ, name="sft-job", spec_hash="h", method="sft_lora", model="nova-lite-2")
    reporter = jobs.ProgressReporter(record, max_steps=100, stage="sft", clock=lambda: now[0])
    for step in range(1, 101):  # the whole log in one page: no time passes
        reporter(LogLine("algo-1", step, f"iteration {step}/100 | global_step: {step} | reduced_train_loss: 0.5"))
    assert updates == [1.0]
    assert len(reporter.lines) == 100
    now[0] += jobs.PROGRESS_UPDATE_SECONDS - 0.01
    reporter(LogLine("algo-1", 101, "global_step: 50 | reduced_train_loss: 0.4"))
    assert updates == [1.0]
    now[0] += 0.01
    reporter(LogLine("algo-1", 102, "global_step: 60 | reduced_train_loss: 0.4"))
    reporter(LogLine("algo-1", 103, "not a metric line"))
    assert updates == [1.0, pytest.approx(60.0)]
