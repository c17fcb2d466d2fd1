"""The one backoff: capped exponential delays, bounded jitter, a deterministic sequence for a seed."""

from __future__ import annotations

import random

from novaflow.backoff import Backoff


def test_capped_exponential_sequence() -> None:
    nxt = Backoff(initial=10, factor=2, maximum=35).delays()
    assert [nxt() for _ in range(5)] == [10, 20, 35, 35, 35]


def test_jitter_stays_within_bounds_and_repeats_for_a_seed() -> None:
    b = Backoff(initial=100, factor=1, maximum=100, jitter=0.2)
    first = [b.delay(n, random.Random(7)) for n in range(200)]
    assert all(80 <= d <= 120 for d in first) and len(set(first)) == 1  # same seed, same draw each call
    spread = b.delays(random.Random(7))
    values = [spread() for _ in range(200)]
    assert min(values) < 90 and max(values) > 110 and all(80 <= d <= 120 for d in values)
    again = b.delays(random.Random(7))
    assert [again() for _ in range(200)] == values
