"""The orphan sweeper: stop a training job whose flow run has been gone longer than the job could still be useful.

A crash keeps a run's jobs running (the re-run attaches to them), so a run that never comes back — re-runs
exhausted, its deployment deleted, a terminal run on a laptop that was closed — would leave its job billing until
SageMaker's own ``MaxRuntimeInSeconds`` ends it. The sweeper walks the per-run job records
(:mod:`novaflow.runs.ledger`), asks the orchestrator since when each run is gone (``gone_since``: None while the
run is alive — running, scheduled, paused, suspended), and stops a job still running whose run has been gone for
longer than the grace: by default the job's own maximum runtime, the longest any run could have meant it to last.

Orchestrator-free: the caller says what "gone" means (:mod:`flows.sweeper` asks the Prefect server).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from novaflow.aws import error_code, get_client, split_s3_uri
from novaflow.runs.ledger import ACTIVE_STATUSES, SAGEMAKER_PLATFORMS, jobs_of_run
from novaflow.settings import NovaflowSettings

RUN_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""Job records live under ``runs/<flow-run-id>/jobs/``; run names share ``runs/`` but are never UUIDs."""

GoneSince = Callable[[str, datetime], "datetime | None"]
"""``gone_since(run_id, registered)``: when the run stopped being alive, or None if it is alive."""


@dataclass(frozen=True)
class SweptJob:
    """One running job the sweeper looked at, and what it decided."""

    run_id: str
    job_name: str
    gone_seconds: float | None
    grace_seconds: float
    stopped: bool

    def line(self) -> str:
        if self.gone_seconds is None:
            return f"{self.job_name}: run {self.run_id} is alive; left running"
        verdict = "stopped" if self.stopped else "left running"
        return (
            f"{self.job_name}: run {self.run_id} gone for {self.gone_seconds:.0f} s "
            f"(grace {self.grace_seconds:.0f} s); {verdict}"
        )


def run_ids(settings: NovaflowSettings) -> list[str]:
    """The flow runs that recorded jobs (the UUID-named folders under ``<prefix>/runs/``)."""
    bucket, key = split_s3_uri(settings.s3_uri("runs"))
    found: list[str] = []
    pages = get_client("s3", settings).get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=bucket, Prefix=key + "/", Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"].rstrip("/").rsplit("/", 1)[-1]
            if RUN_ID_RE.match(name):
                found.append(name)
    return found


def sweep_orphaned_jobs(
    gone_since: GoneSince,
    settings: NovaflowSettings,
    *,
    grace_seconds: float | None = None,
    now: datetime | None = None,
) -> list[SweptJob]:
    """Stop each running SageMaker job whose run is gone for longer than the grace; report every running job."""
    now = now or datetime.now(UTC)
    sagemaker = get_client("sagemaker", settings)
    report: list[SweptJob] = []
    for run_id in run_ids(settings):
        records = [r for r in jobs_of_run(run_id, settings) if r.get("platform", "SMTJ") in SAGEMAKER_PLATFORMS]
        for record in records:
            name = record["job_name"]
            try:
                job = sagemaker.describe_training_job(TrainingJobName=name)
            except Exception as exc:
                if error_code(exc) in {"ValidationException", "ResourceNotFound"}:
                    continue  # the job is gone already
                raise
            if job["TrainingJobStatus"] not in ACTIVE_STATUSES:
                continue
            grace = float(
                grace_seconds
                if grace_seconds is not None
                else job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
            )
            registered = datetime.fromisoformat(record.get("registered") or now.isoformat())
            since = gone_since(run_id, registered)
            gone = None if since is None else (now - since).total_seconds()
            stop = gone is not None and gone > grace
            if stop:
                try:
                    sagemaker.stop_training_job(TrainingJobName=name)
                except Exception as exc:  # it finished or is stopping meanwhile
                    if error_code(exc) not in {"ValidationException", "ResourceNotFound"}:
                        raise
            report.append(SweptJob(run_id, name, gone, grace, stop))
    return report
