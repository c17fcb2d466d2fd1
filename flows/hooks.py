"""Flow state hooks: a cancelled or crashed run stops the training jobs it owns.

Prefect runs these hooks for deployed runs (process, ECS and Kubernetes workers) when the run is cancelled, and
on crash. They must be fast and idempotent: the runner waits for them and may call them in another process, so
they rebuild everything from the run id (the S3 record of the run's jobs) and the run's stored parameters (its
``aws_credentials`` block), never from in-memory state.
"""

from __future__ import annotations

from typing import Any, TypedDict

from prefect.logging import get_logger

from novaflow.runs.ledger import stop_jobs_of_run
from tasks.credentials import apply_credentials_block, credentials_from_parameters

log = get_logger("novaflow.hooks")


def stop_owned_jobs(flow: Any, flow_run: Any, state: Any) -> None:
    """Stop every SageMaker job this run registered that is still running."""
    try:
        block = credentials_from_parameters(flow_run.parameters or {})
        if block is not None:
            apply_credentials_block(block)
        stopped = stop_jobs_of_run(str(flow_run.id))
    except Exception as exc:  # a hook that raises hides the cancellation; say what went wrong instead
        log.error("could not stop the jobs of flow run %s: %s", flow_run.id, exc)
        return
    if stopped:
        log.warning("flow run %s is %s: stopped training job(s) %s", flow_run.id, state.name, ", ".join(stopped))
    else:
        log.info("flow run %s is %s: no running training job to stop", flow_run.id, state.name)


class FlowHooks(TypedDict):
    on_cancellation: list[Any]
    on_crashed: list[Any]


STOP_ON_EXIT: FlowHooks = {"on_cancellation": [stop_owned_jobs], "on_crashed": [stop_owned_jobs]}
"""Keyword arguments for ``@flow`` on every flow that submits jobs."""
