"""A suspended run keeps its holds while no process of it lives: its quota slots (a Prefect global concurrency lease,
recorded in the run's holds on S3) and its run name (the S3 lease). The watcher renews them, the resumed run takes
the same quota lease back instead of asking again, and a cancel - or the run's end - frees both."""

from __future__ import annotations

import time
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from flows.watcher import renew_holds
from novaflow.runs.graph import StageParked
from novaflow.runs.lease import RunNameLease
from novaflow.runs.suspension import quota_holds_of, record_run_name, run_name_of
from novaflow.settings import load_settings
from tasks.quotas import KeepWhileSuspended, kept_quota_slots
from tasks.runs import release_run_holds

pytestmark = pytest.mark.slow


def _active(limit: str) -> int:
    with get_client(sync_client=True) as client:
        return int(client.read_global_concurrency_limit_by_name(limit).active_slots)


def _limit(slots: int) -> str:
    name = f"novaflow-quota-test-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
    return name


def _park(job: str, limit: str, slots: int, keep: KeepWhileSuspended) -> None:
    """A stage takes the job's slots, then parks on the running job (the run is about to suspend)."""
    with pytest.raises(StageParked):
        with kept_quota_slots(job, limit, slots, keep):
            assert _active(limit) == slots
            raise StageParked(job.split("-")[0], job)


def test_a_parked_job_keeps_its_slots_the_replay_takes_the_same_lease_and_the_end_frees_them() -> None:
    settings = load_settings()
    run_id = str(uuid.uuid4())
    limit = _limit(2)
    keep = KeepWhileSuspended(run_id, settings, ttl_seconds=7200)
    _park("sft-job", limit, 2, keep)
    # the process is gone; the slots stay taken and the lease is on S3 for the watcher and the replay
    assert _active(limit) == 2
    [hold] = quota_holds_of(run_id, settings)
    assert (hold.job, hold.limit, hold.slots) == ("sft-job", limit, 2)
    lines: list[str] = []
    renew_holds(uuid.UUID(run_id), settings, lines.append)
    assert lines == []  # renewed, nothing lapsed
    # The replay after the resume: the limit is full (2 of 2, by this very run), yet it goes on at once.
    started = time.monotonic()
    with kept_quota_slots("sft-job", limit, 2, keep):
        assert _active(limit) == 2
        assert [h.lease_id for h in quota_holds_of(run_id, settings)] == [hold.lease_id]
    assert time.monotonic() - started < 5
    assert _active(limit) == 0  # the job ended: slots freed, the hold forgotten
    assert quota_holds_of(run_id, settings) == []


def test_a_cancelled_suspended_run_frees_its_slots_and_its_run_name(aws) -> None:
    settings = load_settings()
    run_id = str(uuid.uuid4())
    limit = _limit(4)
    _park("rft-job", limit, 3, KeepWhileSuspended(run_id, settings, ttl_seconds=3600))
    lease = RunNameLease("held-name", holder=f"flow run ({run_id})", holder_id=run_id, settings=settings, ttl_seconds=3)
    assert lease.acquire(0) is False
    lease.keep_while_suspended(600)
    record_run_name(run_id, "held-name", settings)
    time.sleep(3.5)  # past the live ttl: a suspended run's lease is not taken over
    other = RunNameLease("held-name", holder="another run", holder_id="other", settings=settings, ttl_seconds=3)
    holder = other.try_acquire()
    assert holder is not None and holder.holder_id == run_id and holder.ttl_seconds == 600
    assert _active(limit) == 3

    freed = release_run_holds(run_id, settings)  # what the cancel automation's flow does
    assert freed == [f"3 slot(s) of {limit} (job rft-job)", "run name 'held-name'"]
    assert _active(limit) == 0
    assert quota_holds_of(run_id, settings) == [] and run_name_of(run_id, settings) is None
    assert other.try_acquire() is None  # the name is free
    other.release()
    assert release_run_holds(run_id, settings) == []  # twice is harmless
