"""The `batch-inference` flow: one model over a whole dataset, rows back in input order (docs/batch-inference.md).

Plan (read every row, refuse what AWS would refuse), submit once (a re-run attaches), wait, collect. The SMTJ job
is registered with the flow run, so cancelling or crashing the run stops it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.hooks import STOP_ON_EXIT
from novaflow.inference.batch import BatchSpec
from tasks.credentials import CredentialsParameter, use_run_credentials
from tasks.inference import collect_batch_task, plan_batch_task, submit_batch_task, wait_batch_task
from tasks.runs import current_flow_run_id, register_job_task


@flow(name="batch-inference", **STOP_ON_EXIT)
def batch_inference(
    spec: BatchSpec,
    poll_seconds: float = 30.0,
    max_poll_seconds: float = 300.0,
    aws_credentials: CredentialsParameter = None,
) -> dict[str, Any]:
    """Answer every row of ``spec.data`` with the model; results in ``spec.out_dir``.

    Args:
        spec: The rows, the model (base, checkpoint, model package or a run's winner), the platform, the output.
        poll_seconds: First interval between status checks (backs off to ``max_poll_seconds``).
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    use_run_credentials(aws_credentials)
    plan = plan_batch_task(spec, f"{spec.out_dir}/input")
    record = submit_batch_task(plan)
    if plan.job_spec is not None:
        register_job_task(current_flow_run_id(), record.name, record.platform.value, "batch-inference")
    done = wait_batch_task(plan, record, poll_seconds=poll_seconds, max_poll_seconds=max_poll_seconds)
    summary = collect_batch_task(plan, done)
    return {
        "job": done.name,
        "rows": summary.rows,
        "answered": summary.answered,
        "failures": summary.failures,
        "results": summary.outputs.get("results"),
    }
