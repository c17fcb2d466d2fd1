"""Flow state hooks: a cancelled run stops the training jobs it owns; a crashed run leaves them running.

Cancelling is a person's decision that the work is no longer wanted, so its jobs stop. A crash is the
infrastructure's doing (a node drained, an OOM kill, a new worker image rolled out): the job on its GPUs is still
good, and stopping it would throw away hours of paid training. So a crash keeps the jobs; the automation novaflow
installs (:func:`flows.automations.rerun_crashed_automation`) schedules the run again, and the re-run attaches to
its jobs by their spec-hash names. A job whose run never comes back is stopped by the sweeper
(:mod:`flows.sweeper`) once it has outlived its run by the job's own maximum runtime.

Prefect runs these hooks for deployed runs (process, ECS and Kubernetes workers) when the run is cancelled, and
on crash when the process lives long enough to run them (a SIGKILL runs none). They must be fast and idempotent:
the runner waits for them and may call them in another process, so they rebuild everything from the run id (the
S3 record of the run's jobs) and the run's stored parameters (its ``aws_credentials`` block), never from
in-memory state.
"""

from __future__ import annotations

from typing import Any, TypedDict

from prefect.logging import get_logger

from novaflow.runs.ledger import jobs_of_run, stop_jobs_of_run
from novaflow.settings import NovaflowSettings
from tasks.credentials import credentials_from_parameters, settings_from_block

log = get_logger("novaflow.hooks")


def _run_settings(flow_run: Any) -> NovaflowSettings:
    """The run's settings rebuilt from its stored ``aws_credentials`` (the hook may run in another process)."""
    return settings_from_block(credentials_from_parameters(flow_run.parameters or {}))


def stop_owned_jobs(flow: Any, flow_run: Any, state: Any) -> None:
    """Stop every SageMaker job this run registered that is still running (the run was cancelled)."""
    try:
        stopped = stop_jobs_of_run(str(flow_run.id), _run_settings(flow_run))
    except Exception as exc:  # a hook that raises hides the cancellation; say what went wrong instead
        log.error("could not stop the jobs of flow run %s: %s", flow_run.id, exc)
        return
    if stopped:
        log.warning("flow run %s is %s: stopped training job(s) %s", flow_run.id, state.name, ", ".join(stopped))
    else:
        log.info("flow run %s is %s: no running training job to stop", flow_run.id, state.name)


def keep_jobs_running(flow: Any, flow_run: Any, state: Any) -> None:
    """Say that the crashed run's jobs keep running, and what brings the run back to them."""
    try:
        names = [record["job_name"] for record in jobs_of_run(str(flow_run.id), _run_settings(flow_run))]
    except Exception as exc:
        log.error("flow run %s is %s; could not list its jobs: %s", flow_run.id, state.name, exc)
        return
    log.warning(
        "flow run %s is %s: its job(s) %s keep running; a re-run of this flow run attaches to them "
        "(`novaflow automations apply` installs the automation that re-runs it), and the sweeper stops them if no "
        "run comes back for them within their maximum runtime",
        flow_run.id,
        state.name,
        ", ".join(names) or "(none)",
    )


class FlowHooks(TypedDict):
    on_cancellation: list[Any]
    on_crashed: list[Any]


JOB_HOOKS: FlowHooks = {"on_cancellation": [stop_owned_jobs], "on_crashed": [keep_jobs_running]}
"""Keyword arguments for ``@flow`` on every flow that submits jobs: cancel stops them, a crash keeps them."""

STOP_ON_CANCEL_OR_CRASH: FlowHooks = {"on_cancellation": [stop_owned_jobs], "on_crashed": [stop_owned_jobs]}
"""For a flow whose re-run cannot attach to the jobs a crashed run left (batch inference): a crash stops them too."""
