"""Tasks that keep a flow run's own record of the jobs it owns (see :mod:`novaflow.runs.ledger`), and the hold a
run keeps on its run name while it runs. (The slots a job holds of the account's quotas: :mod:`tasks.quotas`.)"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.context import get_run_context
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, Pause

from novaflow.jobs.records import JobRecord
from novaflow.runs.graph import StageParked
from novaflow.runs.lease import LeaseState, RunNameLease, release_suspended
from novaflow.runs.ledger import register_job
from novaflow.runs.notifications import check_topic, disable, enable, follow_jobs
from novaflow.runs.suspension import WaitedJob, forget_run_name, record_run_name, run_name_of
from novaflow.settings import NovaflowSettings, load_settings
from tasks.common import AWS_RETRIES
from tasks.quotas import release_quota_holds


def current_flow_run_id() -> str:
    """The id of the flow run this code runs in (the root of the record's S3 prefix)."""
    ctx = get_run_context()
    flow_run = getattr(ctx, "flow_run", None)
    if flow_run is None:  # inside a task: the task run knows its flow run
        return str(ctx.task_run.flow_run_id)  # type: ignore[union-attr]
    return str(flow_run.id)


@task(name="register-job", **AWS_RETRIES)
def register_job_task(run_id: str, job_name: str, platform: str, stage: str) -> None:
    """Remember that this run owns the job, before waiting on it, so the cancel hook and the sweeper find it; a run
    with notifications adds the job to its EventBridge rules."""
    register_job(run_id, job_name, platform=platform, stage=stage)
    follow_jobs(run_id, load_settings())


@contextmanager
def run_notifications(
    run_name: str, topic_arn: str | None, events: list[str], settings: NovaflowSettings
) -> Iterator[None]:
    """While the run lives, its jobs' state changes go to ``topic_arn`` (see :mod:`novaflow.runs.notifications`);
    the topic is checked first, before anything is spent, and the rules are removed when the run ends."""
    if not topic_arn:
        yield
        return
    check_topic(topic_arn, settings)
    run_id = current_flow_run_id()
    enable(run_id, run_name, topic_arn, settings, events)
    get_run_logger().info(
        "notifications: the state changes %s of this run's jobs go to %s", ", ".join(events), topic_arn
    )
    try:
        yield
    except Pause:  # suspended while its jobs run: the rules stay for them; the resumed run removes them
        raise
    except BaseException:
        _remove_rules(run_id, settings)
        raise
    else:
        _remove_rules(run_id, settings)


def _remove_rules(run_id: str, settings: NovaflowSettings) -> None:
    removed = disable(run_id, settings)
    get_run_logger().info("notifications: removed EventBridge rule(s) %s", ", ".join(removed) or "(none)")


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


RUN_NAME_POLL_SECONDS = 2.0


@contextmanager
def run_name_held(
    run_name: str,
    *,
    wait_seconds: float,
    settings: NovaflowSettings,
    poll_seconds: float = RUN_NAME_POLL_SECONDS,
    suspended_seconds: float | None = None,
) -> Iterator[None]:
    """Hold ``run_name`` for a whole flow run: a second run of the name, on any worker, waits for the first.

    Waiting makes the second a cheap re-run that attaches to the jobs the first ran (they are named by their
    spec's hash). The hold is a lease object in the run's S3 prefix (:mod:`novaflow.runs.lease` says why S3
    and not a Prefect limit); a killed holder frees the name once its lease is ``run_lease_seconds`` old, and a
    re-run of the same flow run takes it back at once. After ``wait_seconds`` the run stops with one line
    naming the holder.

    Suspended (``wait.mode: suspend``), the run keeps the name: the lease is rewritten to last
    ``suspended_seconds`` (default ``wait_seconds``: the longest a job is waited on) and recorded in the run's
    holds, so ``novaflow watch`` renews it and a cancel frees it (:func:`release_run_holds`).
    """
    logger = get_run_logger()
    ctx = get_run_context()
    flow_run = getattr(ctx, "flow_run", None)
    name = flow_run.name if flow_run is not None else "?"
    run_id = current_flow_run_id()
    lease = RunNameLease(
        run_name,
        holder=f"flow run {name!r} ({run_id}), pid {os.getpid()} on {socket.gethostname()}",
        holder_id=run_id,
        settings=settings,
    )

    def waiting(holder: LeaseState) -> None:
        logger.warning("run name %r is in use by %s; waiting for it to finish", run_name, holder.holder)

    if lease.acquire(wait_seconds, poll_seconds=poll_seconds, on_wait=waiting):
        logger.info("run name %r is free now; this run goes on", run_name)
    try:
        yield
    except Pause:
        # Suspended: the same flow run comes back (resumed) and takes its lease back; until then nobody else may.
        lease.keep_while_suspended(suspended_seconds if suspended_seconds is not None else wait_seconds)
        record_run_name(run_id, run_name, settings)
        raise
    except BaseException:
        lease.release()
        forget_run_name(run_id, settings)
        raise
    else:
        lease.release()
        forget_run_name(run_id, settings)
    finally:
        if lease.lost:
            logger.error("run name %r: this run's lease was taken over by %s meanwhile", run_name, lease.lost)


WAIT_MODES = ("block", "suspend")


def park_while_running(stage: str, record: JobRecord, mode: str, settings: NovaflowSettings) -> None:
    """In ``suspend`` mode, park the stage while ``record``'s job runs, so the run can suspend and hold no worker.

    The stage ends with :class:`~novaflow.runs.graph.StageParked`; the graph runner (:mod:`flows.graph`) goes on
    with the other stages and suspends the run from the flow's thread once all that is left waits on jobs.
    ``novaflow watch`` resumes it when one of those jobs ends, and the resumed run replays from the start: its
    submits come from their cached records (nothing is submitted twice) and a job that has ended does not park,
    so the stage goes on to read it. Suspending needs a deployed run (Prefect reschedules it on its work pool).
    """
    if mode != "suspend":
        return
    state = WaitedJob.of(stage, record).state(settings)
    if state is None or state.status.terminal:
        return
    get_run_logger().info("%s: job %s is %s; parking the stage until it ends", stage, record.name, state.raw_status)
    raise StageParked(stage, record)


def release_run_holds(run_id: str, settings: NovaflowSettings) -> list[str]:
    """Free what a run suspended in ``wait.mode: suspend`` still holds: its quota leases and its run name (it was
    cancelled, or timed out, with no process to release them); returns one line per hold freed."""
    freed = [f"{hold.slots} slot(s) of {hold.limit} (job {hold.job})" for hold in release_quota_holds(run_id, settings)]
    run_name = run_name_of(run_id, settings)
    if run_name is not None:
        if release_suspended(run_name, run_id, settings):
            freed.append(f"run name {run_name!r}")
        forget_run_name(run_id, settings)
    return freed
