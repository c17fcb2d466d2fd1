"""Poll delays shared by every wait in novaflow (training jobs, endpoints, Bedrock deployments, teardown).

Jobs run for hours and endpoints take tens of minutes: polling every few seconds wastes API quota (and invites
throttling), polling without a deadline can leave a flow - and a bill - running forever, and many pollers started
together should not hit the API in lock-step (jitter).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before poll ``n``: ``min(maximum, initial * factor**n)``, varied by +/- ``jitter`` (relative);
    ``deadline`` is the longest a caller should wait in total (seconds)."""

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
