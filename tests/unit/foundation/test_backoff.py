"""The one backoff and the one polling loop: capped exponential delays, bounded jitter, a deterministic sequence
for a seed, the deadline reached exactly (injected clock and sleep; no real time passes)."""

from __future__ import annotations

import random

import pytest

from novaflow.backoff import Backoff, PollTimeout, poll_until
from tests.unit.fake_clock import FakeClock


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


def test_poll_until_returns_the_first_done_value_with_its_count_and_time() -> None:
    clock = FakeClock()
    values = iter([1, 2, 3, 4])
    polled = poll_until(
        lambda: next(values),
        lambda v: v >= 3,
        backoff=Backoff(initial=10, factor=2, maximum=15, deadline=100),
        clock=clock,
        sleep=clock.sleep,
    )
    assert (polled.value, polled.polls, polled.elapsed) == (3, 3, 25)
    assert clock.sleeps == [10, 15]


def test_poll_until_cuts_the_last_sleep_to_the_deadline_and_polls_there() -> None:
    clock = FakeClock()
    fetched: list[float] = []

    def fetch() -> str:
        fetched.append(clock.now)
        return "Creating"

    with pytest.raises(PollTimeout, match=r"^not done after 100 s \(deadline 100 s\)$") as info:
        poll_until(
            fetch,
            lambda s: s == "Active",
            backoff=Backoff(initial=40, factor=1, maximum=40, deadline=100),
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.sleeps == [40, 40, 20] and fetched == [0, 40, 80, 100]
    assert (info.value.last.value, info.value.last.polls, info.value.deadline) == ("Creating", 4, 100)


def test_poll_until_counts_sleeps_when_the_clock_stands_still() -> None:
    slept: list[float] = []
    with pytest.raises(PollTimeout) as info:
        poll_until(
            lambda: 0,
            lambda _v: False,
            backoff=Backoff(initial=25, factor=1, maximum=25, deadline=60),
            clock=lambda: 0.0,
            sleep=slept.append,
        )
    assert slept == [25, 25, 10] and info.value.last.elapsed == 60


def test_poll_until_done_at_once_never_sleeps_and_errors_propagate() -> None:
    slept: list[float] = []
    assert poll_until(lambda: "x", lambda _v: True, backoff=Backoff(), sleep=slept.append).polls == 1

    def broken() -> int:
        raise RuntimeError("describe failed")

    with pytest.raises(RuntimeError, match="describe failed"):
        poll_until(broken, lambda _v: True, backoff=Backoff(), sleep=slept.append)
    assert slept == []


def test_poll_until_jitters_with_the_given_rng() -> None:
    first, second = FakeClock(), FakeClock()
    backoff = Backoff(initial=10, factor=1, maximum=10, jitter=0.2, deadline=45)
    for clock in (first, second):
        with pytest.raises(PollTimeout):
            poll_until(
                lambda: 0, lambda _v: False, backoff=backoff, clock=clock, sleep=clock.sleep, rng=random.Random(3)
            )
    assert first.sleeps == second.sleeps and all(8 <= s <= 12 for s in first.sleeps[:-1])
    assert sum(first.sleeps) == pytest.approx(45)
