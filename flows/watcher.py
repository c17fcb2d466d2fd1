"""The resumer of suspended runs: a run in ``wait.mode: suspend`` suspends itself while its jobs run (it holds no
worker, no pod, no slot); this resumes it when one of the jobs it waits on has ended, and keeps its holds alive.

``novaflow watch`` runs :func:`watch` (and the ``watch-suspended-runs`` flow one polling pass, for a schedule or a
deployment). Each suspended run of novaflow's job-submitting flows left the jobs it waits on in its
``waiting.json`` (:mod:`novaflow.runs.suspension`). The watcher learns that a job ended in one of two ways:

* events (``watch_events_queue`` set): the jobs' own state-change events, through EventBridge rules into an SQS
  queue it long-polls (:mod:`novaflow.runs.job_events`); each ended job is matched to the suspended run waiting
  on it, which is resumed; the messages read are deleted;
* polling: describing the waited jobs of every suspended run - every ``interval`` without events, and with
  events as a safety net every ``safety_interval`` (an event lost, or read before its run had suspended, never
  strands a run). Runs waiting on jobs that send no events (HyperPod, batch inference) are polled every
  ``interval`` either way.

Each polling pass also renews what the suspended runs hold (their quota leases and run-name leases), so none
lapses while no process of theirs lives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState
from prefect.client.schemas.filters import FlowRunFilterStateName as StateNameFilter
from prefect.client.schemas.objects import FlowRun
from prefect.flow_runs import resume_flow_run

from flows.automations import JOB_FLOW_NAMES
from novaflow.catalog import Method
from novaflow.errors import ConfigError
from novaflow.jobs.backends import get_backend
from novaflow.runs.job_events import EVENT_PLATFORMS, JobEventQueue, ensure_job_event_queue
from novaflow.runs.lease import renew_suspended
from novaflow.runs.ledger import jobs_of_run
from novaflow.runs.suspension import WaitedJob, run_name_of, waiting_of
from novaflow.settings import NovaflowSettings
from tasks.credentials import (
    CredentialsParameter,
    credentials_from_parameters,
    settings_from_block,
    use_run_credentials,
)
from tasks.quotas import MAX_LEASE_SECONDS, renew_quota_holds

SUSPENDED = "Suspended"
WATCHED_FLOWS = JOB_FLOW_NAMES
"""The flows whose stages park on jobs (the job-submitting flows, sweeps and their variants included)."""
Log = Callable[[str], None]


@dataclass(frozen=True)
class SuspendedRun:
    """A suspended run and the settings its jobs are described with: its own credentials block's (region,
    endpoint, session) when it ran with one, so a watcher serving runs of several accounts or regions asks each
    run's jobs where they are; else the watcher's own."""

    id: UUID
    settings: NovaflowSettings


def suspended_runs(settings: NovaflowSettings, log: Log = print) -> list[SuspendedRun]:
    """The suspended runs of novaflow's job-submitting flows (sweeps included), each with its settings."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(WATCHED_FLOWS))),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(name=StateNameFilter(any_=[SUSPENDED]))),
        )
    by_block: dict[str, NovaflowSettings] = {}
    return [SuspendedRun(run.id, _run_settings(run, settings, by_block, log)) for run in runs]


def _run_settings(
    run: FlowRun, default: NovaflowSettings, seen: dict[str, NovaflowSettings], log: Log
) -> NovaflowSettings:
    block = credentials_from_parameters(run.parameters)
    if block is None:
        return default
    key = block if isinstance(block, str) else repr(block._block_document_id or id(block))
    if key not in seen:
        try:
            seen[key] = settings_from_block(block)
        except ConfigError as exc:  # the block was deleted since the run started: the watcher's own settings
            log(f"flow run {run.id}: {exc} - its jobs are described with the watcher's credentials")
            seen[key] = default
    return seen[key]


def unfinished_jobs(run_id: UUID, settings: NovaflowSettings) -> list[str]:
    """The run's registered jobs that have not ended yet (for a run suspended without a waiting record)."""
    waiting = []
    for record in jobs_of_run(str(run_id), settings):
        state = get_backend(record.get("platform", "SMTJ"), settings).describe(record["job_name"])
        if state is not None and not state.status.terminal:
            waiting.append(record["job_name"])
    return waiting


def ended_job(run_id: UUID, settings: NovaflowSettings, only: Callable[[WaitedJob], bool] | None = None) -> str | None:
    """Why the run may go on: the first of its waited jobs that has ended ("<job> <status>"), else None.

    ``only`` narrows the jobs described (the fast pass polls only jobs that send no events)."""
    waited = waiting_of(str(run_id), settings)
    if waited is None:  # suspended by a novaflow without waiting records: every job of its ledger must have ended
        if only is not None or unfinished_jobs(run_id, settings):
            return None
        return "its jobs have ended"
    for job in waited:
        if only is not None and not only(job):
            continue
        state = job.state(settings)
        if state is None or state.status.terminal:
            return f"job {job.job_name} is {state.raw_status if state else 'gone'}"
    return None


def renew_holds(run_id: UUID, settings: NovaflowSettings, log: Log) -> None:
    """Keep the suspended run's quota leases and run-name lease from lapsing (they never get shorter)."""
    for hold in renew_quota_holds(str(run_id), settings, MAX_LEASE_SECONDS):
        log(f"flow run {run_id}: its lease on {hold.limit} for job {hold.job} had lapsed; the resumed run asks again")
    run_name = run_name_of(str(run_id), settings)
    if run_name is not None and not renew_suspended(run_name, str(run_id), settings):
        log(f"flow run {run_id}: run name {run_name!r} is no longer held by it")


def resume(run_id: UUID, why: str, log: Log) -> bool:
    """Resume the run; False when it is no longer suspended (resumed or cancelled meanwhile)."""
    try:
        resume_flow_run(run_id)
    except Exception as exc:  # NotPausedError, or the server refusing a run whose timeout passed
        log(f"flow run {run_id}: not resumed ({exc})")
        return False
    log(f"resumed flow run {run_id}: {why}")
    return True


def resume_ready_runs(
    settings: NovaflowSettings,
    log: Log = print,
    *,
    only: Callable[[WaitedJob], bool] | None = None,
    renew: bool = True,
) -> list[UUID]:
    """One polling pass: resume every suspended run one of whose waited jobs has ended (and renew the holds of the
    others); returns the runs resumed."""
    resumed = []
    for run in suspended_runs(settings, log):
        why = ended_job(run.id, run.settings, only)
        if why is not None and resume(run.id, f"{why} (polled)", log):
            resumed.append(run.id)
        elif renew:
            renew_holds(run.id, run.settings, log)
    return resumed


def _without_events(job: WaitedJob) -> bool:
    return job.platform not in EVENT_PLATFORMS or job.method == Method.RFT_MULTITURN.value


@dataclass
class EventResumer:
    """Resumes runs from the queue's events; remembers the jobs that ended for ``memory_seconds``, so an event
    read while its run was still on its way to suspending resumes that run once it has."""

    queue: JobEventQueue
    settings: NovaflowSettings
    log: Log
    memory_seconds: float = 3600.0
    ended: dict[str, tuple[str, float]] = field(default_factory=dict)

    def step(self, wait_seconds: float) -> list[UUID]:
        events = self.queue.receive(wait_seconds)
        now = time.monotonic()
        for event in events:
            if event.ended and event.job_name is not None and event.status is not None:
                self.ended[event.job_name] = (event.status, now)
        self.ended = {job: seen for job, seen in self.ended.items() if now - seen[1] < self.memory_seconds}
        resumed = self._resume(suspended_runs(self.settings, self.log)) if self.ended else []
        self.queue.delete(events)  # read and acted on (or about no suspended run: nothing to keep them for)
        return resumed

    def _resume(self, runs: Iterable[SuspendedRun]) -> list[UUID]:
        resumed = []
        for run in runs:
            waited = waiting_of(str(run.id), run.settings) or []
            hit = next((job for job in waited if job.job_name in self.ended), None)
            if hit is None:
                continue
            status = self.ended[hit.job_name][0]
            if resume(run.id, f"job {hit.job_name} is {status} (EventBridge)", self.log):
                resumed.append(run.id)
        return resumed


def watch(
    settings: NovaflowSettings,
    *,
    interval: float,
    safety_interval: float,
    events_queue: str | None = None,
    once: bool = False,
    log: Log = print,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Resume suspended runs until interrupted (or after one round with ``once``): from the events of
    ``events_queue`` when given, polling every ``safety_interval`` then (``interval`` without events)."""
    resumer = None
    if events_queue:
        queue = ensure_job_event_queue(events_queue, settings)
        log(f"novaflow watch: job end events from EventBridge arrive in SQS queue {queue.arn}")
        resumer = EventResumer(queue, settings, log)
    full_every = safety_interval if resumer is not None else interval
    next_full = next_fast = clock()
    while True:
        now = clock()
        if now >= next_full:
            resume_ready_runs(settings, log)
            next_full = now + full_every
            next_fast = now + interval
        elif now >= next_fast:  # with events: the jobs that send none are still polled at the fast interval
            resume_ready_runs(settings, log, only=_without_events, renew=False)
            next_fast = now + interval
        if resumer is not None:
            resumer.step(0 if once else min(next_fast, next_full) - clock())
        if once:
            return
        if resumer is None:
            time.sleep(max(0.0, min(next_fast, next_full) - clock()))


@flow(name="watch-suspended-runs")
def watch_suspended_runs(aws_credentials: CredentialsParameter = None) -> list[str]:
    """One polling pass of the resumer, for a schedule on a work pool (a long-running `novaflow watch` needs none).

    Args:
        aws_credentials: AwsCredentials block (or its name) the jobs are described with; empty = the worker's own.
    """
    logger = get_run_logger()
    return [str(run) for run in resume_ready_runs(use_run_credentials(aws_credentials), logger.info)]
