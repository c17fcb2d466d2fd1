"""The run-name lease on the embedded AWS's S3: conditional puts decide who holds a name, an expired lease is taken
over by exactly one waiter, the holder's own re-run takes it back at once, release deletes only its own lease."""

from __future__ import annotations

import json
import threading
import time

import pytest

from novaflow.aws import get_client
from novaflow.errors import RunInUseError
from novaflow.local import LOCAL_BUCKET
from novaflow.runs.lease import RunNameLease
from novaflow.settings import load_settings


def _lease(name: str, who: str, ttl: float = 60.0) -> RunNameLease:
    return RunNameLease(name, holder=f"flow run {who!r}", holder_id=who, settings=load_settings(), ttl_seconds=ttl)


def _stored(name: str) -> dict[str, object]:
    body = (
        get_client("s3", settings=load_settings())
        .get_object(Bucket=LOCAL_BUCKET, Key=f"novaflow/runs/{name}/lease.json")["Body"]
        .read()
    )
    return json.loads(body)


def test_second_holder_of_a_live_lease_is_refused_with_the_holder_named() -> None:
    first, second = _lease("lease-a", "one"), _lease("lease-a", "two")
    assert first.acquire(0) is False
    try:
        holder = second.try_acquire()
        assert holder is not None and holder.holder == "flow run 'one'" and not holder.expired
        with pytest.raises(RunInUseError) as err:
            second.acquire(0.3, poll_seconds=0.1)
        assert str(err.value) == (
            "run name 'lease-a' is still in use by flow run 'one' after 0 s; "
            "wait for it, cancel it, or pick another --run-name"
        )
        assert _stored("lease-a")["holder_id"] == "one"
    finally:
        first.release()
    assert second.try_acquire() is None  # released: free at once
    second.release()


def test_a_waiter_goes_on_when_the_holder_releases() -> None:
    first, second = _lease("lease-b", "one"), _lease("lease-b", "two")
    first.acquire(0)
    seen: list[str] = []
    timer = threading.Timer(0.5, first.release)
    timer.start()
    try:
        assert second.acquire(30, poll_seconds=0.1, on_wait=lambda h: seen.append(h.holder)) is True
    finally:
        timer.join()
    assert seen == ["flow run 'one'"]
    assert _stored("lease-b")["holder_id"] == "two"
    second.release()


@pytest.mark.slow  # waits out a lease on S3's one-second clock
def test_a_dead_holders_lease_expires_and_exactly_one_waiter_takes_it() -> None:
    dead = _lease("lease-c", "dead", ttl=3)
    assert dead.try_acquire() is None  # never renewed: its process "died"
    waiters = [_lease("lease-c", f"w{i}", ttl=3) for i in range(3)]
    assert all(w.try_acquire() is not None for w in waiters)
    time.sleep(4.2)  # past the ttl on S3's clock (one-second resolution)
    results = [w.try_acquire() for w in waiters]
    assert results[0] is None and all(r is not None and r.holder == "flow run 'w0'" for r in results[1:])
    assert dead.renew() is False and dead.lost == "flow run 'w0'"  # the dead one, back, learns it lost
    dead.release()  # deletes nothing: not its lease any more
    assert _stored("lease-c")["holder_id"] == "w0"
    waiters[0].release()


def test_a_rerun_of_the_holding_flow_run_takes_its_lease_back_at_once() -> None:
    crashed = _lease("lease-d", "run-1")
    crashed.try_acquire()
    rerun = _lease("lease-d", "run-1")
    assert rerun.try_acquire() is None
    assert _lease("lease-d", "other").try_acquire() is not None
    rerun.release()


@pytest.mark.slow  # waits for real renewals
def test_the_holder_renews_while_it_holds() -> None:
    lease = _lease("lease-e", "one", ttl=3)
    lease.acquire(0)
    try:
        first = _stored("lease-e")["renewed"]
        time.sleep(2.5)  # renewals every ttl / 3 = 1 s
        assert _stored("lease-e")["renewed"] != first
        state = lease.read()
        assert state is not None and not state.expired
    finally:
        lease.release()
    assert lease.read() is None
