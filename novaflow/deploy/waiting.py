"""Waiting for an endpoint or Bedrock status through :func:`~novaflow.backoff.poll_until`: a failed status raises
with its reason, the deadline raises saying the resource may still bill.

Endpoints take 10-30 minutes and Bedrock deployments 30-45; polling every few seconds wastes API quota and
polling without a deadline leaves a flow (and maybe an endpoint) running forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from novaflow.backoff import Backoff, PollTimeout, poll_until
from novaflow.errors import DeployError

T = TypeVar("T")

SERVING_WAIT = Backoff(initial=30, factor=1.5, maximum=60, deadline=3600)
"""How an endpoint, an inference component or a Bedrock deployment is waited for when the caller names no backoff:
every 30 s, growing to 60 s, for an hour (they take 10-45 minutes to serve)."""


@dataclass
class WaitOutcome(Generic[T]):
    """The last observation and how long waiting took (seconds on the injected clock)."""

    value: T
    status: str
    polls: int
    elapsed: float
    statuses: list[str]


def wait_for_status(
    what: str,
    poll: Callable[[], T],
    status_of: Callable[[T], str],
    *,
    done: set[str],
    failed: set[str],
    failure_reason: Callable[[T], str | None] = lambda _v: None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_status: Callable[[str], None] | None = None,
) -> WaitOutcome[T]:
    """Poll until the status is in ``done``; DeployError on a ``failed`` status (with its reason) or the deadline.

    ``poll`` may raise; a transient AWS error is the caller's retry policy, not this loop's.
    """
    backoff = backoff or Backoff(initial=15, maximum=60)
    statuses: list[str] = []

    def fetch() -> T:
        value = poll()
        status = status_of(value)
        if not statuses or statuses[-1] != status:
            statuses.append(status)
            if on_status is not None:
                on_status(status)
        if status in failed:
            raise DeployError(f"{what} reached status {status}: {failure_reason(value) or 'no reason given'}")
        return value

    try:
        polled = poll_until(fetch, lambda v: status_of(v) in done, backoff=backoff, clock=clock, sleep=sleep)
    except PollTimeout as exc:
        raise DeployError(
            f"{what} still {statuses[-1]} after {exc.last.elapsed:.0f} s (deadline {backoff.deadline:.0f} s); "
            f"it may still be billing: check it or tear it down."
        ) from None
    return WaitOutcome(polled.value, statuses[-1], polled.polls, polled.elapsed, statuses)
