"""The `batch-inference` flow: one model over a whole dataset, rows back in input order (docs/batch-inference.md).

Plan (read every row, refuse what AWS would refuse), submit once (a re-run attaches), wait, collect. The job (a
training job or a Bedrock batch job) is registered with the flow run, so cancelling or crashing the run stops it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import Field

from flows.hooks import STOP_ON_CANCEL_OR_CRASH
from flows.params import FormParams, WaitParams
from novaflow.inference.batch import BatchSpec
from novaflow.runs.ledger import BEDROCK_BATCH
from tasks.credentials import CredentialsParameter, use_run_credentials
from tasks.inference import collect_batch_task, plan_batch_task, submit_batch_task, wait_batch_task
from tasks.runs import current_flow_run_id, register_job_task


class BatchInferenceParams(FormParams):
    batch: BatchSpec = Field(description="The rows, the model, the platform and where the results go.")
    wait: WaitParams = Field(default_factory=WaitParams)


@flow(name="batch-inference", **STOP_ON_CANCEL_OR_CRASH)
def batch_inference(params: BatchInferenceParams, aws_credentials: CredentialsParameter = None) -> dict[str, Any]:
    """Answer every row of ``params.batch.data`` with the model; results in ``params.batch.out_dir``.

    Args:
        params: The batch (rows, model - base, checkpoint, model package or a run's winner -, platform, output) and
            how to wait for its job.
        aws_credentials: AwsCredentials block (or its name) for every AWS call of the run; empty = the worker's own.
    """
    settings = use_run_credentials(aws_credentials)
    spec, wait = params.batch, params.wait
    plan = plan_batch_task(spec, f"{spec.out_dir}/input", settings=settings)
    record = submit_batch_task(plan, settings=settings)
    platform = record.platform.value if plan.job_spec is not None else BEDROCK_BATCH
    register_job_task(current_flow_run_id(), record.name, platform, "batch-inference", settings=settings)
    done = wait_batch_task(
        plan,
        record,
        poll_seconds=wait.poll_seconds,
        max_poll_seconds=wait.max_poll_seconds,
        max_wait_seconds=wait.max_wait_hours * 3600,
        settings=settings,
    )
    summary = collect_batch_task(plan, done, settings=settings)
    return {
        "job": done.name,
        "rows": summary.rows,
        "answered": summary.answered,
        "failures": summary.failures,
        "results": summary.outputs.get("results"),
    }
