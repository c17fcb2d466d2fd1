from __future__ import annotations

import pytest

from novaflow.backoff import Backoff
from novaflow.deploy.waiting import wait_for_status
from novaflow.errors import DeployError
from tests.unit.fake_clock import FakeClock


def test_waits_until_done_without_real_sleep() -> None:
    clock = FakeClock()
    seen = iter(["Creating", "Creating", "Creating", "InService"])
    statuses: list[str] = []
    outcome = wait_for_status(
        "endpoint e",
        lambda: {"S": next(seen)},
        lambda d: d["S"],
        done={"InService"},
        failed={"Failed"},
        backoff=Backoff(initial=30, factor=2, maximum=60, deadline=1000),
        sleep=clock.sleep,
        clock=clock,
        on_status=statuses.append,
    )
    assert clock.sleeps == [30, 60, 60]
    assert (outcome.status, outcome.polls, outcome.elapsed) == ("InService", 4, 150)
    assert statuses == outcome.statuses == ["Creating", "InService"]


def test_failure_surfaces_the_reason() -> None:
    clock = FakeClock()
    with pytest.raises(DeployError, match="endpoint e reached status Failed: Image pull failed: access denied"):
        wait_for_status(
            "endpoint e",
            lambda: {"S": "Failed", "R": "Image pull failed: access denied"},
            lambda d: d["S"],
            done={"InService"},
            failed={"Failed"},
            failure_reason=lambda d: d["R"],
            sleep=clock.sleep,
            clock=clock,
        )
    assert clock.sleeps == []


def test_deadline_stops_polling_and_says_it_may_still_bill() -> None:
    clock = FakeClock()
    with pytest.raises(
        DeployError,
        match=r"endpoint e still Creating after 100 s \(deadline 100 s\); it may still "
        r"be billing",
    ):
        wait_for_status(
            "endpoint e",
            lambda: "Creating",
            lambda s: s,
            done={"InService"},
            failed=set(),
            backoff=Backoff(initial=30, factor=1, maximum=30, deadline=100),
            sleep=clock.sleep,
            clock=clock,
        )
    assert clock.sleeps == [30, 30, 30, 10]  # the last sleep ends at the deadline, where one more poll is made


def test_injected_sleep_alone_still_reaches_the_deadline() -> None:
    slept: list[float] = []
    with pytest.raises(DeployError, match=r"still Creating after 60 s \(deadline 60 s\)"):
        wait_for_status(
            "endpoint e",
            lambda: "Creating",
            lambda s: s,
            done={"InService"},
            failed=set(),
            backoff=Backoff(initial=20, factor=1, maximum=20, deadline=60),
            sleep=slept.append,
            clock=lambda: 0.0,
        )
    assert slept == [20, 20, 20]
