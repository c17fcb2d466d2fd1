"""Polling a status with a :class:`~novaflow.backoff.Backoff` and its deadline; sleep and clock are injectable so
tests take no time.

Endpoints take 10-30 minutes and Bedrock deployments 30-45; polling every few seconds wastes API quota and
polling without a deadline leaves a flow (and maybe an endpoint) running forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from novaflow.backoff import Backoff
from novaflow.errors import DeployError

T = TypeVar("T")


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
    next_delay = backoff.delays()
    start = clock()
    statuses: list[str] = []
    polls = 0
    slept = 0.0  # counts toward the deadline even when an injected sleep does not move the clock
    while True:
        value = poll()
        polls += 1
        status = status_of(value)
        if not statuses or statuses[-1] != status:
            statuses.append(status)
            if on_status is not None:
                on_status(status)
        elapsed = max(clock() - start, slept)
        if status in done:
            return WaitOutcome(value, status, polls, elapsed, statuses)
        if status in failed:
            reason = failure_reason(value) or "no reason given"
            raise DeployError(f"{what} reached status {status}: {reason}")
        delay = next_delay()
        if elapsed + delay > backoff.deadline:
            raise DeployError(
                f"{what} still {status} after {elapsed:.0f} s (deadline {backoff.deadline:.0f} s); "
                f"it may still be billing: check it or tear it down."
            )
        sleep(delay)
        slept += delay
