"""Poll delays and the one polling loop shared by every wait in novaflow (training jobs, endpoints, Bedrock
deployments, teardown, the reward Lambda).

Jobs run for hours and endpoints take tens of minutes: polling every few seconds wastes API quota (and invites
throttling), polling without a deadline can leave a flow - and a bill - running forever, and many pollers started
together should not hit the API in lock-step (jitter). A wait that runs out of time raises :class:`PollTimeout`
with the last thing it saw, so no caller can give up silently.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from novaflow.errors import NovaflowError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delay before poll ``n``: ``min(maximum, initial * factor**n)``, varied by +/- ``jitter`` (relative);
    ``deadline`` is the longest a caller waits in total (seconds)."""

    initial: float = 30.0
    factor: float = 1.5
    maximum: float = 300.0
    jitter: float = 0.0
    deadline: float = 3600.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        nominal = min(self.maximum, self.initial * self.factor**attempt)
        if not self.jitter:
            return nominal
        return max(0.0, nominal * (1 + (rng or random.Random()).uniform(-self.jitter, self.jitter)))

    def delays(self, rng: random.Random | None = None) -> Callable[[], float]:
        """The delays one after the other, for loops that do not count their polls."""
        attempts = itertools.count()
        return lambda: self.delay(next(attempts), rng)


@dataclass(frozen=True)
class Polled(Generic[T]):
    """The last value fetched, how many fetches it took and how long (seconds, see :func:`poll_until`)."""

    value: T
    polls: int
    elapsed: float


class PollTimeout(NovaflowError):
    """The deadline passed before ``done`` held; ``last`` is the final observation (the caller words the error:
    only it knows what may still be running and billing)."""

    def __init__(self, last: Polled[object], deadline: float) -> None:
        super().__init__(f"not done after {last.elapsed:.0f} s (deadline {deadline:.0f} s)")
        self.last = last
        self.deadline = deadline


def poll_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    backoff: Backoff,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Polled[T]:
    """Call ``fetch`` until ``done(value)``, sleeping ``backoff``'s delays; :class:`PollTimeout` at its deadline.

    The last sleep is cut to end at the deadline and one more fetch is made there, so a wait uses its whole
    budget. Elapsed time is the larger of the clock's and the sleeps' totals, so an injected ``sleep`` that does
    not move the ``clock`` (tests) still reaches the deadline. ``fetch`` may raise: retrying errors is the
    caller's policy (a fetch can swallow a transient error and return a value ``done`` rejects).
    """
    rng = rng or random.Random()
    start = clock()
    slept = 0.0
    polls = 0
    while True:
        value = fetch()
        polls += 1
        elapsed = max(clock() - start, slept)
        if done(value):
            return Polled(value, polls, elapsed)
        if elapsed >= backoff.deadline:
            raise PollTimeout(Polled[object](value, polls, elapsed), backoff.deadline)
        delay = min(backoff.delay(polls - 1, rng), backoff.deadline - elapsed)
        sleep(delay)
        slept += delay
