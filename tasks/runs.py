"""Tasks that keep a flow run's own record of the jobs it owns (see :mod:`novaflow.runs.registry`), and the leases a
run holds: a slot of the training-job limit while a job runs, its run name while it runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.concurrency.sync import concurrency
from prefect.context import get_run_context
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from novaflow.errors import RunInUseError
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


def ensure_concurrency_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit on first use; a limit someone already set (UI, CLI) is kept."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        except ObjectAlreadyExists:  # another run created it meanwhile
            pass


@contextmanager
def job_slot(name: str | None, limit: int) -> Iterator[None]:
    """Hold one slot of the training-job limit while a job runs, so N flows never run more than N jobs."""
    if not name:
        yield
        return
    ensure_concurrency_limit(name, limit)
    get_run_logger().info("waiting for a slot of concurrency limit %s", name)
    with concurrency(name, occupy=1, strict=True):
        yield


RUN_NAME_LIMIT_PREFIX = "novaflow-run-"
RUN_NAME_LEASE_SECONDS = 60
"""Prefect renews the lease while the run lives; a run that dies (killed, machine lost) frees its name this long
after, so a re-run waits at most a minute. 60 s is the shortest lease Prefect grants."""


@contextmanager
def run_name_held(run_name: str, *, wait_seconds: float) -> Iterator[None]:
    """Hold ``run_name`` for a whole flow run: a second run of the same name waits here until the first ends.

    Two runs of one name share an S3 prefix, jobs (named by a hash of their spec) and a deployment, and the first
    one's clean-up would delete the endpoint the second is testing. Waiting makes the second a cheap re-run that
    attaches to the jobs the first ran. The name is a Prefect global concurrency limit of one slot, leased and
    renewed by Prefect, so a holder that dies frees it when its lease expires (:data:`RUN_NAME_LEASE_SECONDS`).
    After ``wait_seconds`` the run stops with one line naming the flow run that holds the name.
    """
    limit = RUN_NAME_LIMIT_PREFIX + run_name
    ensure_concurrency_limit(limit, 1)
    logger = get_run_logger()
    holders = _other_runs_named(run_name)
    if holders:
        logger.warning("run name %r is in use by %s; waiting for it to finish", run_name, holders[0])
    entered = False
    try:
        # a renewal that fails (a busy machine, a server restart) must not kill a run that is paying for a job
        with concurrency(
            limit,
            occupy=1,
            timeout_seconds=wait_seconds,
            lease_duration=RUN_NAME_LEASE_SECONDS,
            strict=True,
            raise_on_lease_renewal_failure=False,
        ):
            entered = True
            if holders:
                logger.info("run name %r is free now; this run goes on", run_name)
            yield
    except TimeoutError:
        if entered:
            raise
        holder = (_other_runs_named(run_name) or holders or ["another flow run"])[0]
        raise RunInUseError(
            f"run name {run_name!r} is still in use by {holder} after {wait_seconds:.0f} s; wait for it, cancel it, "
            "or pick another --run-name"
        ) from None


def _other_runs_named(run_name: str) -> list[str]:
    """Running flow runs (other than this one) whose parameters carry ``run_name``, as ``flow run 'x' (<id>)``."""
    me = current_flow_run_id()
    running = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=running, limit=200)
    found = []
    for run in runs:
        params = run.parameters or {}
        name = (params.get("params") or {}).get("run_name") if isinstance(params.get("params"), dict) else None
        if str(run.id) != me and name == run_name:
            found.append(f"flow run {run.name!r} ({run.id})")
    return found
