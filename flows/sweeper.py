"""`sweep-orphaned-jobs`: stop the training jobs of runs that are gone for good (see :mod:`novaflow.runs.sweep`).

A crash keeps a run's jobs running so its re-run can attach; this flow is what keeps that from billing forever
when no re-run comes. It asks the Prefect server since when each run that recorded jobs is gone: a run in a final
state (Completed, Failed, Crashed, Cancelled) since that state's time; a run the server does not know (a terminal
run's temporary server, a deleted run) since its job was registered; a run that is scheduled, pending, running,
paused or suspended is alive. ``prefect.yaml`` schedules it hourly.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from novaflow.runs.ledger import stop_jobs_of_run
from novaflow.runs.sweep import sweep_orphaned_jobs
from tasks.credentials import CredentialsParameter, credentials_from_parameters, use_run_credentials
from tasks.runs import release_run_holds


def prefect_gone_since(run_id: str, registered: datetime) -> datetime | None:
    """When the flow run ``run_id`` stopped being alive, per the Prefect server; None while it is alive."""
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(run_id))
        except ObjectNotFound:
            return registered
    state = run.state
    if state is None or not state.is_final():
        return None
    return state.timestamp


@flow(name="sweep-orphaned-jobs")
def sweep_orphaned_jobs_flow(
    grace_seconds: float | None = None, aws_credentials: CredentialsParameter = None
) -> list[str]:
    """Stop every running training job whose run is gone longer than ``grace_seconds`` (default: the job's own
    ``MaxRuntimeInSeconds``); returns one line per running job looked at."""
    settings = use_run_credentials(aws_credentials)
    logger = get_run_logger()
    lines = []
    for swept in sweep_orphaned_jobs(prefect_gone_since, settings, grace_seconds=grace_seconds):
        (logger.warning if swept.stopped else logger.info)(swept.line())
        lines.append(swept.line())
    if not lines:
        logger.info("no running training job recorded by any run")
    return lines


@flow(name="stop-run-jobs")
def stop_run_jobs(flow_run_id: str) -> list[str]:
    """Stop the running jobs of flow run ``flow_run_id`` (with that run's own credentials block, if it had one).

    Run by the automation ``novaflow: stop jobs of a cancelled run`` (:mod:`flows.automations`): a run suspended in
    ``wait.mode: suspend`` has no process to run its cancellation hook, so the server starts this instead; it also
    frees what the suspended run kept (its quota leases, its run name).
    """
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    settings = use_run_credentials(credentials_from_parameters(run.parameters or {}))
    stopped = stop_jobs_of_run(flow_run_id, settings)
    logger = get_run_logger()
    logger.warning(
        "flow run %s is %s: stopped job(s) %s", flow_run_id, run.state_name, ", ".join(stopped) or "(none running)"
    )
    freed = release_run_holds(flow_run_id, settings)
    if freed:
        logger.warning("flow run %s is %s: released %s", flow_run_id, run.state_name, "; ".join(freed))
    return stopped
