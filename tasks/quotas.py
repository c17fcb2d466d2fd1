"""The account's quotas as Prefect global concurrency limits: a job holds one slot per instance while it runs.

Each capacity (see :mod:`novaflow.quotas.capacity`) is a limit named ``novaflow-quota-<key>`` whose slots are
instances (or serverless jobs). novaflow creates it at the quota's value when it is absent; a limit someone set
by hand (UI, ``prefect gcl``) wins and is only read. To tell the two apart novaflow keeps the value it set in a
Prefect variable beside the limit: while the limit still has that value it is novaflow's and follows the quota.
Slots are leases on the server (Prefect's ``concurrency``), renewed while the job's flow runs and freed when the
process dies, so a crashed run never holds quota for good; a run suspended in ``wait.mode: suspend`` keeps its lease
while it has no process (:func:`kept_quota_slots`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency._leases import maintain_concurrency_lease
from prefect.concurrency._sync import acquire_concurrency_slots_with_lease
from prefect.concurrency.sync import concurrency
from prefect.exceptions import MissingContextError, ObjectAlreadyExists, ObjectNotFound
from prefect.variables import Variable

from novaflow.backoff import Backoff
from novaflow.catalog import Platform
from novaflow.errors import JobError
from novaflow.jobs.hyperpod.capacity import instance_group_of, restricted_capacities
from novaflow.jobs.reasoning import follow_data_reasoning
from novaflow.jobs.records import JobRecord
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission
from novaflow.quotas.capacity import Capacity, CapacityBook, Demand, book_from_mapping, demand_of
from novaflow.quotas.queue import run_within_capacity
from novaflow.quotas.service_quotas import resolve_capacities
from novaflow.runs.graph import StageParked
from novaflow.runs.suspension import QuotaHold, forget_quota_hold, quota_hold_of, quota_holds_of, record_quota_hold
from novaflow.settings import NovaflowSettings, load_settings

QUOTA_LEASE_SECONDS = 300.0
"""A slot's lease; Prefect renews it while the job's flow runs, so only a dead process lets it lapse."""
MAX_LEASE_SECONDS = 86400.0
"""The longest lease the Prefect server grants (one day); a suspended run's watcher renews it for longer jobs."""
BOOK_CACHE_SECONDS = 300.0
"""Service Quotas is read once per run and process, not once per job (its list is several pages long)."""


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def owner_variable(limit: str) -> str:
    """The Prefect variable holding the value novaflow gave ``limit`` (variable names allow no dots)."""
    return limit.replace(".", "-").replace(":", "-").lower()


def ensure_quota_limit(capacity: Capacity) -> int:
    """Create or update the capacity's limit; return the limit the server enforces (a user's value wins)."""
    name = capacity.limit_name
    marker = owner_variable(name)
    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            existing = None
        if existing is None:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=capacity.limit))
            except ObjectAlreadyExists:  # another run created it meanwhile: theirs is as good as ours
                return int(client.read_global_concurrency_limit_by_name(name).limit)
            Variable.set(marker, capacity.limit, overwrite=True)
            _logger().info("created concurrency limit %s = %d (%s)", name, capacity.limit, capacity.describe())
            return capacity.limit
        ours = Variable.get(marker, default=None)
        if ours is None or int(existing.limit) != int(ours):
            if int(existing.limit) != capacity.limit:
                _logger().info(
                    "concurrency limit %s = %d was set by hand and wins over %s",
                    name,
                    existing.limit,
                    capacity.describe(),
                )
            return int(existing.limit)
        if int(existing.limit) != capacity.limit:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=capacity.limit))
            Variable.set(marker, capacity.limit, overwrite=True)
            _logger().info("concurrency limit %s follows the quota: %d -> %d", name, existing.limit, capacity.limit)
        return capacity.limit


_BOOKS: dict[tuple[object, ...], tuple[float, CapacityBook]] = {}
_BOOKS_LOCK = threading.Lock()


def run_capacities(
    settings: NovaflowSettings | None = None, overrides: Mapping[str, int] | None = None
) -> CapacityBook:
    """The capacities of this run (Service Quotas, else settings, lowered by ``overrides``), read once a while."""
    settings = settings or load_settings()
    key = (settings.region, settings.resolved_endpoint_url(), tuple(sorted((overrides or {}).items())))
    with _BOOKS_LOCK:
        cached = _BOOKS.get(key)
        if cached is not None and time.monotonic() - cached[0] < BOOK_CACHE_SECONDS:
            return cached[1]
    book, notes = resolve_capacities(settings, overrides)
    logger = _logger()
    for note in notes:
        logger.info(note)
    with _BOOKS_LOCK:
        _BOOKS[key] = (time.monotonic(), book)
    return book


def forget_capacities() -> None:
    """Read the quotas again on next use (tests; a quota raised while a long process runs)."""
    with _BOOKS_LOCK:
        _BOOKS.clear()


@dataclass(frozen=True)
class JobCapacity:
    """What one job holds while it runs, and of which capacity (None: nothing novaflow limits)."""

    job: str
    demand: Demand | None
    capacity: Capacity | None

    @property
    def label(self) -> str:
        """How the log names the quota the job waits on."""
        if self.capacity is not None:
            return self.capacity.limit_name
        return self.demand.key if self.demand is not None else "none"


def job_capacity(
    spec: JobSpec, settings: NovaflowSettings | None = None, overrides: Mapping[str, int] | None = None
) -> JobCapacity:
    """The spec's demand (instance type and count as it will be submitted) against the run's capacities."""
    settings = settings or load_settings()
    # Named as submit will name it (the data decides reasoning_enabled), so the log names the job that runs.
    sub = prepare_submission(follow_data_reasoning(spec.resolve(settings), settings), settings, strict=False)
    group = None
    if sub.spec.platform is Platform.SMHP and sub.spec.cluster and sub.instance_type:
        group = instance_group_of(sub.spec.cluster, sub.instance_type, settings)
    demand = demand_of(sub.spec.platform.value, sub.instance_type, sub.instance_count, instance_group=group)
    if demand is None:
        return JobCapacity(sub.job_name, None, None)
    book = run_capacities(settings, overrides)
    if group is not None and sub.spec.cluster:  # the cluster's restricted groups: slots are nodes
        cluster = sub.spec.cluster
        book = book.merged(book_from_mapping(restricted_capacities(cluster, settings), f"HyperPod cluster {cluster}"))
    problem = book.problem(demand, sub.job_name)
    if problem:
        raise JobError(problem[0].upper() + problem[1:] + ".", job_name=sub.job_name)
    return JobCapacity(sub.job_name, demand, book.get(demand.key))


@dataclass(frozen=True)
class KeepWhileSuspended:
    """A run in ``wait.mode: suspend``: its quota leases are recorded on S3 and outlive its process while it is
    suspended (see :func:`quota_slots`)."""

    run_id: str
    settings: NovaflowSettings
    ttl_seconds: float
    """How long a lease kept for a suspension lasts without a renewal (the job's longest wait, at most a day)."""


@contextmanager
def quota_slots(needed: JobCapacity, keep: KeepWhileSuspended | None = None) -> Iterator[None]:
    """Hold the job's slots of its quota's limit while it runs (nothing to hold when no quota is known).

    With ``keep`` (suspend mode) a stage that parks on its running job keeps the slots across the suspension, and
    the resumed run takes the same lease back: see :func:`kept_quota_slots`."""
    if needed.demand is None or needed.capacity is None:
        yield
        return
    limit = ensure_quota_limit(needed.capacity)
    demand = needed.demand
    if demand.slots > limit:
        raise JobError(
            f"Job {needed.job} needs {demand.slots} {demand.unit} of {demand.key} but the Prefect limit "
            f"{demand.limit_name} has {limit} slots: raise the limit (or the quota), or use fewer instances.",
            job_name=needed.job,
        )
    logger = _logger()
    if keep is not None:
        with kept_quota_slots(needed.job, demand.limit_name, demand.slots, keep):
            yield
        return
    logger.info("job %s waits for %d slot(s) of %s (%d in all)", needed.job, demand.slots, demand.limit_name, limit)
    # strict: a limit that vanished is an error, not a free pass; but a lease renewal that fails once (a server
    # hiccup) must not end the flow that watches a running job.
    with concurrency(
        demand.limit_name,
        occupy=demand.slots,
        strict=True,
        lease_duration=QUOTA_LEASE_SECONDS,
        raise_on_lease_renewal_failure=False,
    ):
        logger.info("job %s holds %d slot(s) of %s", needed.job, demand.slots, demand.limit_name)
        yield


@contextmanager
def kept_quota_slots(job: str, limit: str, slots: int, keep: KeepWhileSuspended) -> Iterator[None]:
    """The job's slots as a lease recorded in the run's holds (:mod:`novaflow.runs.suspension`).

    A replay after a resume renews the recorded lease and goes on holding it (asking for the slots again would
    wait on the run's own lease when the limit is full). While the process lives the lease is renewed as
    Prefect's ``concurrency`` renews it; when the stage parks on its running job (the run is about to suspend)
    the lease is extended to ``keep.ttl_seconds`` and left in place, so the slots stay taken while no process
    lives; ``novaflow watch`` renews it meanwhile. Any other end releases the lease and forgets it.
    """
    logger = _logger()
    kept = quota_hold_of(keep.run_id, job, keep.settings)
    lease_id = (
        UUID(kept.lease_id) if kept is not None and renew_quota_lease(kept.lease_id, QUOTA_LEASE_SECONDS) else None
    )
    if lease_id is not None:
        logger.info("job %s holds its %d slot(s) of %s again (lease %s)", job, slots, limit, lease_id)
    else:
        if kept is not None:
            logger.warning("job %s: its lease on %s lapsed while the run was suspended; asking again", job, limit)
        logger.info("job %s waits for %d slot(s) of %s", job, slots, limit)
        # Prefect's own acquisition (waits while the limit is full), as its `concurrency` context manager does.
        taken = acquire_concurrency_slots_with_lease([limit], slots, lease_duration=QUOTA_LEASE_SECONDS, strict=True)
        lease_id = taken.lease_id
        record_quota_hold(keep.run_id, QuotaHold(job, limit, slots, str(lease_id)), keep.settings)
        logger.info("job %s holds %d slot(s) of %s", job, slots, limit)
    try:
        with maintain_concurrency_lease(lease_id, QUOTA_LEASE_SECONDS, raise_on_lease_renewal_failure=False):
            yield
    except StageParked:
        ttl = min(keep.ttl_seconds, MAX_LEASE_SECONDS)
        renew_quota_lease(str(lease_id), ttl)
        logger.info(
            "job %s keeps its %d slot(s) of %s while the run is suspended (lease of %.0f s)", job, slots, limit, ttl
        )
        raise
    except BaseException:
        release_quota_hold(keep.run_id, QuotaHold(job, limit, slots, str(lease_id)), keep.settings)
        raise
    else:
        release_quota_hold(keep.run_id, QuotaHold(job, limit, slots, str(lease_id)), keep.settings)


def renew_quota_lease(lease_id: str, seconds: float) -> bool:
    """Extend a quota lease to ``seconds`` from now; False when the server no longer has it (it lapsed)."""
    with get_client(sync_client=True) as client:
        try:
            client.renew_concurrency_lease(UUID(lease_id), lease_duration=max(60.0, min(seconds, MAX_LEASE_SECONDS)))
        except Exception as exc:  # 410 Gone: expired or released
            if getattr(getattr(exc, "response", None), "status_code", None) in (404, 410):
                return False
            raise
    return True


def release_quota_hold(run_id: str, hold: QuotaHold, settings: NovaflowSettings) -> None:
    """Free the hold's slots (a lease already gone frees nothing) and forget it."""
    with get_client(sync_client=True) as client:
        try:
            client.release_concurrency_slots_with_lease(UUID(hold.lease_id))
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) not in (404, 410):
                raise
    forget_quota_hold(run_id, hold.job, settings)


def release_quota_holds(run_id: str, settings: NovaflowSettings) -> list[QuotaHold]:
    """Free every quota lease run ``run_id`` still keeps (its run ended, failed or was cancelled while
    suspended); returns what was freed."""
    holds = quota_holds_of(run_id, settings)
    for hold in holds:
        release_quota_hold(run_id, hold, settings)
    return holds


def renew_quota_holds(run_id: str, settings: NovaflowSettings, seconds: float) -> list[QuotaHold]:
    """Renew the quota leases of a suspended run (the watcher's part); returns the holds found lapsed."""
    return [hold for hold in quota_holds_of(run_id, settings) if not renew_quota_lease(hold.lease_id, seconds)]


def run_job_within_quota(
    stage: str,
    spec: JobSpec,
    settings: NovaflowSettings | None,
    *,
    quotas: Mapping[str, int],
    submit: Callable[[int], JobRecord],
    wait: Callable[[JobRecord], JobRecord],
    poll_seconds: float,
    max_poll_seconds: float,
    max_wait_hours: float,
    keep: KeepWhileSuspended | None = None,
) -> JobRecord:
    """A stage's job from submit to end under its quota: the job's slots held throughout (across suspensions with
    ``keep``), a capacity refusal queued and tried again (``submit(capacity_attempt)``, see
    :func:`novaflow.quotas.queue.run_within_capacity`)."""
    needed = job_capacity(spec, settings, quotas)
    logger = _logger()
    with quota_slots(needed, keep):
        return run_within_capacity(
            submit,
            wait,
            job=needed.job,
            capacity=needed.label,
            backoff=queue_backoff(poll_seconds, max_poll_seconds, max_wait_hours),
            on_queued=lambda queued: logger.warning("%s: %s", stage, queued.describe()),
        )


def queue_backoff(poll_seconds: float, max_poll_seconds: float, max_wait_hours: float) -> Backoff:
    """How a job refused for capacity waits: the poll intervals of its run, doubling, up to ``max_wait_hours``."""
    return Backoff(
        initial=poll_seconds,
        factor=2.0,
        maximum=max(poll_seconds, max_poll_seconds),
        jitter=0.2,
        deadline=max_wait_hours * 3600,
    )
