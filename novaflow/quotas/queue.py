"""A job refused for capacity waits its turn: retried with backoff until it runs or ``wait.max_wait_hours`` pass.

Someone outside novaflow may hold the account's p5 quota, or the region may have no free p5 for a while. Neither
is a reason to fail a run that has already spent hours on the stages before it, and neither may cost a second job:

- ``ResourceLimitExceeded`` at ``CreateTrainingJob`` created nothing; the same name is tried again later.
- A job that failed with a capacity error never trained, and a failed job's name cannot be reused, so the next
  attempt has the next deterministic name (``-r1``, ``-r2``: :func:`novaflow.jobs.submit.submit_training_job`
  skips attempts that failed for capacity), which a re-run of the flow finds again instead of creating a third.

The waiting is :func:`novaflow.backoff.poll_until`'s, so it has a deadline and says what it last saw.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from novaflow.backoff import Backoff, PollTimeout, poll_until
from novaflow.errors import JobError
from novaflow.quotas.refusals import is_capacity_failure, limit_refusal_of

log = logging.getLogger(__name__)
R = TypeVar("R")


@dataclass(frozen=True)
class Queued:
    """One refusal while a job waits for capacity (what the run log says)."""

    job: str
    capacity: str
    since: datetime
    attempt: int
    reason: str

    def describe(self) -> str:
        since = self.since.strftime("%Y-%m-%d %H:%M:%S UTC")
        what = "queued" if self.attempt == 1 else f"still queued (attempt {self.attempt})"
        return f"job {self.job} {what} on quota {self.capacity} since {since}: {self.reason}"


@dataclass(frozen=True)
class _Attempt(Generic[R]):
    result: R | None
    refusal: str | None


class CapacityWaitTimeout(JobError):
    """The job was still refused for capacity when the wait ran out; nothing of it is running."""


def run_within_capacity(
    submit: Callable[[int], R],
    wait: Callable[[R], R],
    *,
    job: str,
    capacity: str,
    backoff: Backoff,
    on_queued: Callable[[Queued], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> R:
    """``submit(attempt)`` then ``wait(record)``, again after each capacity refusal, until the job completes.

    ``attempt`` counts the capacity refusals so far (0 first): a caller that caches its submit step keys the
    cache on it, so a retry asks AWS again instead of replaying the refused attempt. Other errors propagate.
    """
    since: datetime | None = None
    refusals = 0

    def attempt() -> _Attempt[R]:
        nonlocal since, refusals
        try:
            record = submit(refusals)
        except Exception as exc:
            refusal = limit_refusal_of(exc)
            if refusal is None:
                raise
            return _refused(f"CreateTrainingJob refused: {refusal.describe()}")
        try:
            return _Attempt(wait(record), None)
        except JobError as exc:
            if not is_capacity_failure(exc.failure_reason):
                raise
            return _refused(f"{exc.job_name or job} failed before training: {exc.failure_reason}")

    def _refused(reason: str) -> _Attempt[R]:
        nonlocal since, refusals
        refusals += 1
        since = since or now()
        queued = Queued(job, capacity, since, refusals, reason)
        (on_queued or (lambda q: log.warning(q.describe())))(queued)
        return _Attempt(None, reason)

    try:
        polled = poll_until(attempt, lambda a: a.refusal is None, backoff=backoff, clock=clock, sleep=sleep)
    except PollTimeout as exc:
        last = exc.last.value
        reason = last.refusal if isinstance(last, _Attempt) else "refused for capacity"
        started = since.strftime("%Y-%m-%d %H:%M:%S UTC") if since else "?"
        raise CapacityWaitTimeout(
            f"job {job} was queued on quota {capacity} since {started} and still had no capacity after "
            f"{exc.last.elapsed / 3600:.2f} h (wait.max_wait_hours): {reason}; nothing of it is running - raise "
            f"the quota in Service Quotas, free it, or run again later",
            job_name=job,
            status="Queued",
        ) from None
    assert polled.value.result is not None
    return polled.value.result
