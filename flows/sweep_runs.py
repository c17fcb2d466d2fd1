"""How the sweep starts its variants' flow runs and waits for them: subflows here, or deployment runs on a pool.

Subflows (the default) run in threads of the sweep's process, each a flow run named ``<sweep>-<variant>`` under
the sweep's run; they meet at shared stages in memory (:class:`novaflow.sweeps.runs.SingleFlight`) and ledger their
jobs under the sweep's run, so the sweep's cancellation and crash hooks, and the orphan sweeper, cover them.

Deployment runs are started with Prefect's ``run_deployment`` and an idempotency key per variant
(:func:`novaflow.sweeps.runs.idempotency_key`): Prefect gives a retried or re-run sweep the variant's existing
run back. A finished one is read as it is; a failed, crashed or cancelled one is scheduled again - the same flow
run, whose stages attach to their jobs - never a second run. The sweep then waits: one read of the runs' states
per ``wait.max_poll_seconds`` (a sleeping process, not a busy one; the sweep itself does not suspend, because
nothing would resume it - `novaflow watch` resumes a run when its own jobs end, and the sweep has none).

Either way, the first variant that fails stops the sweep: no stage of another variant starts after it, their jobs
are stopped (subflows: the sweep's ledger; deployment runs: cancelled, their hooks stop their jobs), and the sweep
fails with one line naming the variant.
"""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any
from uuid import UUID

from prefect import Flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.states import Cancelling, Scheduled

from flows.runners import thread_pool
from flows.stages.context import StageContext
from flows.sweep_graph import NodeContexts, SweepSetup
from flows.variant_stages import VariantResult, run_variant, variant_context
from novaflow.runs.graph import one_line
from novaflow.runs.ledger import stop_jobs_of_run
from novaflow.sweeps.runs import VARIANT_FLOW, SingleFlight, VariantFailed, VariantLaunch, plan_launches
from tasks.credentials import CredentialsParameter
from tasks.runs import current_flow_run_id

STOP_POLL_SECONDS = 2.0
"""While a failed sweep winds down, how often it stops the jobs its other variants may still have submitted."""
SUBFLOW_START_POLL_SECONDS = 0.05
"""How often the sweep looks whether the variant subflow it just started has begun (before starting the next)."""
"""While a failed sweep winds down, how often it stops the jobs its other variants may still have submitted."""


def run_variant_subflows(setup: SweepSetup, ctx: StageContext) -> dict[str, VariantResult]:
    """Each variant a subflow of this flow run, all at once in threads; shared stages met in memory."""
    logger = get_run_logger()
    owner = current_flow_run_id()
    nodes = NodeContexts(setup, ctx.run, ctx.scratch, owner)
    single = SingleFlight()
    failure: list[str] = []

    def stopped() -> str | None:
        return failure[0] if failure else None

    started = {name: threading.Event() for name in setup.plans}
    everyone = threading.Event()

    def one(name: str) -> VariantResult:
        vctx = variant_context(setup, name, ctx.run, ctx.scratch, ctx.log.clock)
        vctx.owner = owner

        def variant() -> VariantResult:
            started[name].set()
            everyone.wait()
            return run_variant(name, setup, nodes, single.run, vctx, stopped)

        subflow: Flow[[], VariantResult] = Flow(
            variant,
            name=VARIANT_FLOW,
            flow_run_name=f"{setup.name}-{name}",
            task_runner=thread_pool(max_workers=4),
            validate_parameters=False,
            description=f"Variant {name} of sweep {setup.name}: {setup.labels()[name]}",
        )
        return subflow()

    results: dict[str, VariantResult] = {}
    error: VariantFailed | None = None
    with ThreadPoolExecutor(max_workers=len(setup.plans), thread_name_prefix="variant") as pool:
        futures: dict[Future[VariantResult], str] = {}
        # The subflows are created one at a time, and none starts its stages before all are created: created from
        # several threads at once, Prefect's subflow runs collide and back off for seconds, and beside a variant
        # already preparing data they start slower still (measured: the 4th of 4 began 6.6 s in, against 0.7 s
        # this way) - time that would hold back the variants' first jobs. Then all run side by side.
        try:
            for name in setup.plans:
                future = pool.submit(contextvars.copy_context().run, one, name)
                futures[future] = name
                while not started[name].wait(SUBFLOW_START_POLL_SECONDS) and not future.done():
                    pass
        finally:
            everyone.set()
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=STOP_POLL_SECONDS if error else None, return_when=FIRST_COMPLETED)
            for future in done:
                name = futures[future]
                exc = future.exception()
                if exc is None:
                    results[name] = future.result()
                elif error is None:
                    error = VariantFailed(name, one_line(exc))
                    failure.append(f"variant {name} failed")
                    logger.error("%s; stopping the other variants", error)
            if error is not None:
                stopped_jobs = stop_jobs_of_run(owner, ctx.settings)
                if stopped_jobs:
                    logger.warning("stopped training job(s) %s", ", ".join(stopped_jobs))
    if error is not None:
        raise error
    return {name: results[name] for name in setup.plans}


def credentials_for_runs(aws_credentials: CredentialsParameter) -> str | None:
    """The credentials a variant's deployment run gets: the sweep's block by name (a run's parameters are JSON),
    or none - the worker's own - when the sweep has none or a block that was never saved."""
    if aws_credentials is None or isinstance(aws_credentials, str):
        return aws_credentials
    name: str | None = getattr(aws_credentials, "_block_document_name", None)
    if name is None:
        get_run_logger().warning(
            "the sweep's AwsCredentials block is not saved: its variants' runs use their workers' own credentials"
        )
    return name


def variant_launches(setup: SweepSetup, ctx: StageContext, credentials: str | None) -> list[VariantLaunch]:
    """One deployment run per variant, with the sweep's parameters, its clock and its credentials."""
    started_at = time.time() - ctx.log.clock.now()
    return plan_launches(
        setup.name,
        setup.base.model_dump(mode="json"),
        [{"name": v.name, "patch": dict(v.patch)} for v in setup.variants],
        {name: params.model_dump(mode="json") for name, params in setup.params.items()},
        extra={"started_at": started_at, "aws_credentials": credentials},
    )


def run_variant_deployments(
    deployment: str, launches: list[VariantLaunch], ctx: StageContext
) -> dict[str, VariantResult]:
    """Start (or find again, by idempotency key) each variant's run of ``deployment``, wait, read their results."""
    logger = get_run_logger()
    runs: dict[str, UUID] = {}
    for launch in launches:
        run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync here: not an async context
            deployment,
            parameters=launch.parameters,
            flow_run_name=launch.flow_run_name,
            idempotency_key=launch.idempotency_key,
            tags=["novaflow", "sweep"],
            timeout=0,
        )
        runs[launch.variant] = run.id
        state = run.state
        if state is not None and state.is_final() and not state.is_completed():
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(run.id, Scheduled(), force=True)
            logger.info("variant %s: its run %s was %s; scheduled it again", launch.variant, run.name, state.name)
        else:
            logger.info(
                "variant %s: run %s of %s (%s; idempotency key %s)",
                launch.variant,
                run.name,
                deployment,
                state.name if state is not None else "new",
                launch.idempotency_key,
            )
    finished = wait_for_runs(runs, ctx.wait.max_poll_seconds)
    results: dict[str, VariantResult] = {}
    for name, run in finished.items():
        result: Any = run.state.result() if run.state is not None else None
        if not isinstance(result, VariantResult):
            raise VariantFailed(name, f"its run {run.name} returned no variant result ({type(result).__name__})")
        results[name] = result
    return results


def wait_for_runs(runs: dict[str, UUID], poll_seconds: float) -> dict[str, FlowRun]:
    """Wait until every run has completed; the first that fails cancels the others and fails the sweep."""
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        while True:
            read = {name: client.read_flow_run(run_id) for name, run_id in runs.items()}
            failed = [
                (name, run)
                for name, run in read.items()
                if run.state is not None and run.state.is_final() and not run.state.is_completed()
            ]
            if failed:
                name, run = failed[0]
                for other, left in read.items():
                    if left.state is not None and not left.state.is_final():
                        client.set_flow_run_state(left.id, Cancelling(), force=True)
                        logger.warning("variant %s: cancelled its run %s (variant %s failed)", other, left.name, name)
                reason = run.state.message if run.state is not None and run.state.message else "see its logs"
                raise VariantFailed(name, f"its run {run.name} is {run.state.name if run.state else '?'}: {reason}")
            if all(run.state is not None and run.state.is_completed() for run in read.values()):
                return read
            time.sleep(poll_seconds)
