"""Runs a graph of stages inside a flow run: each stage in its own thread as soon as its inputs exist.

The stages call Prefect tasks as a flow does (each thread carries a copy of the flow run's context, as Prefect's
own thread-pool runner does), so every job, artifact and log line belongs to the flow run. When a stage fails, the
run's job ledger (:mod:`novaflow.runs.ledger`) is used to stop every job the run still has running - the stages
waiting on them end at once, nothing is left billing - and the run fails with one line naming the stage.

In ``wait.mode: suspend`` the stages run in threads too, so the jobs that may run together are submitted together
(the baseline evaluation beside SFT, the evaluation after SFT beside RFT). A stage whose job is running parks
(:class:`~novaflow.runs.graph.StageParked`) instead of polling; once every stage left is parked, the flow's own
thread - the only one Prefect suspends from - records the jobs it waits on and suspends the run. ``novaflow
watch`` resumes it when one of them ends; the replay takes every finished stage from its persisted results and
each parked stage from its cached submit, so nothing is submitted twice.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from prefect import get_run_logger
from prefect.flow_runs import suspend_flow_run

from flows.stages.context import StageContext
from novaflow.jobs.records import JobRecord
from novaflow.runs.graph import Graph, GraphParked, GraphRun, Stage, StageFailed, one_line, run_graph
from novaflow.runs.ledger import jobs_of_run, stop_jobs_of_run
from novaflow.runs.suspension import WaitedJob, clear_waiting, record_waiting, suspension_key
from tasks.quotas import release_quota_holds
from tasks.runs import current_flow_run_id


def run_stages(graph: Graph, ctx: StageContext, *, given: Mapping[str, Any] | None = None) -> GraphRun:
    """Run ``graph`` with ``ctx``; raises :class:`StageFailed` (one line: the stage and its reason) on a failure."""
    outputs = dict(given or {})
    while True:
        try:
            return _run_once(graph, ctx, outputs)
        except GraphParked as parked:
            outputs = parked.result.outputs
            if not _suspend(parked, ctx):
                continue  # a job ended while the others parked: go on at once instead of suspending


def _run_once(graph: Graph, ctx: StageContext, given: Mapping[str, Any]) -> GraphRun:
    run_id = ctx.owner_id()
    logger = get_run_logger()

    def execute(stage: Stage, inputs: Mapping[str, Any]) -> Any:
        ctx.log.started(stage.key)
        return stage.run(ctx, inputs)

    def stop_jobs(key: str, exc: BaseException) -> None:
        logger.error("stage %s failed: %s; stopping the run's other stages", key, one_line(exc))
        try:
            stopped = stop_jobs_of_run(run_id, ctx.settings)
        except Exception as err:  # the run fails anyway; say why its jobs may still run
            logger.error("could not stop the jobs of this run: %s", err)
            return
        if stopped:
            logger.warning("stopped training job(s) %s", ", ".join(stopped))

    with ThreadPoolExecutor(max_workers=max(1, len(graph.stages)), thread_name_prefix="stage") as pool:

        def spawn(call: Callable[[], Any]) -> Future[Any]:
            return pool.submit(contextvars.copy_context().run, call)

        try:
            return run_graph(
                graph,
                execute,
                on_failure=stop_jobs,
                spawn=spawn,
                clock=ctx.log.clock,
                record=ctx.log.record,
                given=given or None,
            )
        except StageFailed:
            # A stage that was between its dry run and its submit when the first stop ran has submitted since.
            late = stop_jobs_of_run(run_id, ctx.settings)
            if late:
                logger.warning("stopped training job(s) %s", ", ".join(late))
            if ctx.wait.mode == "suspend":  # parked stages kept their quota leases for a suspension that won't come
                release_quota_holds(run_id, ctx.settings)
            raise


def _suspend(parked: GraphParked, ctx: StageContext) -> bool:
    """Suspend the run on the parked stages' jobs (from the flow's thread); False, without suspending, when one of
    them has ended meanwhile. Returns only then: a suspension ends this process (Prefect's ``Pause``)."""
    run_id = current_flow_run_id()
    settings = ctx.settings
    records: dict[str, JobRecord] = {key: p.waits_on for key, p in sorted(parked.parked.items())}
    waited = [WaitedJob.of(key, record) for key, record in records.items()]
    for job in waited:
        state = job.state(settings)
        if state is None or state.status.terminal:
            return False
    record_waiting(run_id, waited, settings)
    key = suspension_key((r["job_name"] for r in jobs_of_run(run_id, settings)), (w.job_name for w in waited))
    get_run_logger().info(
        "suspending: stage(s) %s wait on job(s) %s; `novaflow watch` resumes this run when one of them ends",
        ", ".join(records),
        ", ".join(w.job_name for w in waited),
    )
    timeout = int(ctx.wait.max_wait_hours * 3600)
    suspend_flow_run(key=key, timeout=timeout)
    # Prefect let the run go on: this key was taken before (the run was resumed by hand with no job ended).
    suspend_flow_run(key=f"{key}-{uuid.uuid4().hex[:8]}", timeout=timeout)
    clear_waiting(run_id, settings)
    return False
