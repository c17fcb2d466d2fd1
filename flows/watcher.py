"""The resumer of suspended runs: a run in ``wait.mode: suspend`` suspends itself while its job runs (it holds no
worker, no pod, no slot); this resumes it when every job it registered has ended.

``novaflow watch`` runs :func:`resume_ready_runs` in a loop (and the ``watch-suspended-runs`` flow does it once,
for a schedule or a deployment). It asks the Prefect server for the suspended runs of novaflow's job-submitting
flows, reads each run's job ledger on S3 (:mod:`novaflow.runs.ledger`), describes the jobs, and resumes a run whose
jobs are all finished (Completed, Failed or Stopped: the resumed run reads the outcome and goes on or fails). This
is the polling form; AWS's own job state-change events (EventBridge, :mod:`novaflow.runs.notifications`) would
tell the same without the describes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState
from prefect.client.schemas.filters import FlowRunFilterStateName as StateNameFilter
from prefect.flow_runs import resume_flow_run

from flows.automations import JOB_FLOW_NAMES
from novaflow.jobs.backends import get_backend
from novaflow.runs.ledger import jobs_of_run
from novaflow.settings import NovaflowSettings
from tasks.credentials import CredentialsParameter, use_run_credentials

SUSPENDED = "Suspended"


def suspended_runs() -> list[UUID]:
    """The ids of the suspended runs of novaflow's job-submitting flows."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(JOB_FLOW_NAMES))),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(name=StateNameFilter(any_=[SUSPENDED]))),
        )
    return [run.id for run in runs]


def unfinished_jobs(run_id: UUID, settings: NovaflowSettings) -> list[str]:
    """The run's registered jobs that have not ended yet."""
    waiting = []
    for record in jobs_of_run(str(run_id), settings):
        state = get_backend(record.get("platform", "SMTJ"), settings).describe(record["job_name"])
        if state is not None and not state.status.terminal:
            waiting.append(record["job_name"])
    return waiting


def resume_ready_runs(settings: NovaflowSettings, log: Callable[[str], None] = print) -> list[UUID]:
    """Resume every suspended novaflow run whose jobs have all ended; returns the runs resumed."""
    resumed = []
    for run_id in suspended_runs():
        waiting = unfinished_jobs(run_id, settings)
        if waiting:
            continue
        resume_flow_run(run_id)
        log(f"resumed flow run {run_id}: its jobs have ended")
        resumed.append(run_id)
    return resumed


def watch(
    interval_seconds: float, settings: NovaflowSettings, *, once: bool = False, log: Callable[[str], None] = print
) -> None:
    """Resume ready runs every ``interval_seconds`` until interrupted (or once)."""
    while True:
        resume_ready_runs(settings, log)
        if once:
            return
        time.sleep(interval_seconds)


@flow(name="watch-suspended-runs")
def watch_suspended_runs(aws_credentials: CredentialsParameter = None) -> list[str]:
    """One pass of the resumer, for a schedule on a work pool (a long-running `novaflow watch` needs no schedule).

    Args:
        aws_credentials: AwsCredentials block (or its name) the jobs are described with; empty = the worker's own.
    """
    logger = get_run_logger()
    return [str(run) for run in resume_ready_runs(use_run_credentials(aws_credentials), log=logger.info)]
