"""Runs a graph of stages inside a flow run: each stage in its own thread as soon as its inputs exist.

The stages call Prefect tasks as a flow does (each thread carries a copy of the flow run's context, as Prefect's
own thread-pool runner does), so every job, artifact and log line belongs to the flow run. When a stage fails, the
run's job ledger (:mod:`novaflow.runs.ledger`) is used to stop every job the run still has running - the stages
waiting on them end at once, nothing is left billing - and the run fails with one line naming the stage.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from prefect import get_run_logger

from flows.stages.context import StageContext
from novaflow.runs.graph import Graph, GraphRun, Stage, StageFailed, one_line, run_graph
from novaflow.runs.ledger import stop_jobs_of_run


def run_stages(graph: Graph, ctx: StageContext, *, given: Mapping[str, Any] | None = None) -> GraphRun:
    """Run ``graph`` with ``ctx``; raises :class:`StageFailed` (one line: the stage and its reason) on a failure."""
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
            if ctx.wait.mode == "suspend":
                return _inline(call)
            return pool.submit(contextvars.copy_context().run, call)

        try:
            return run_graph(
                graph,
                execute,
                on_failure=stop_jobs,
                spawn=spawn,
                clock=ctx.log.clock,
                record=ctx.log.record,
                given=given,
            )
        except StageFailed:
            # A stage that was between its dry run and its submit when the first stop ran has submitted since.
            late = stop_jobs_of_run(run_id, ctx.settings)
            if late:
                logger.warning("stopped training job(s) %s", ", ".join(late))
            raise


def _inline(call: Callable[[], Any]) -> Future[Any]:
    """Run a stage in the flow's own thread (``wait.mode: suspend``): Prefect suspends a flow run only from the
    flow's thread, so there the stages run one after another and a suspension (a ``BaseException``) leaves the
    graph as it leaves the flow. Overlap matters less there: a suspended run holds no worker while its jobs run."""
    future: Future[Any] = Future()
    try:
        future.set_result(call())
    except Exception as exc:  # a stage's failure is the graph's to handle, like a thread's
        future.set_exception(exc)
    return future
