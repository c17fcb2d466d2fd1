"""Tasks that keep a flow run's own record of the jobs it owns (see :mod:`novaflow.runs.registry`)."""

from __future__ import annotations

from prefect import task
from prefect.context import get_run_context

from novaflow.runs.registry import register_job
from tasks.common import AWS_RETRIES


def current_flow_run_id() -> str:
    """The id of the flow run this code runs in (the root of the record's S3 prefix)."""
    ctx = get_run_context()
    flow_run = getattr(ctx, "flow_run", None)
    if flow_run is None:  # inside a task: the task run knows its flow run
        return str(ctx.task_run.flow_run_id)  # type: ignore[union-attr]
    return str(flow_run.id)


@task(name="register-job", **AWS_RETRIES)
def register_job_task(run_id: str, job_name: str, platform: str, stage: str) -> None:
    """Remember that this run owns the job, before waiting on it, so cancel and crash hooks can stop it."""
    register_job(run_id, job_name, platform=platform, stage=stage)
