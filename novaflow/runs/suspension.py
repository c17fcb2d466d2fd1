"""What a suspended run leaves on S3 for the processes that outlive it: the jobs it waits on and the holds it keeps.

A run in ``wait.mode: suspend`` has no process while its jobs run, so everything that has to act for it meanwhile
reads these records under ``<prefix>/runs/<run-id>/``:

* ``waiting.json`` - the jobs the run suspended on (every stage that was waiting on a job when it suspended).
  ``novaflow watch`` resumes the run as soon as one of them has ended: the resumed run finishes that stage,
  submits what became ready, and suspends again on the rest. Without it (a run suspended by an older novaflow)
  the watcher falls back to "every job of the run's ledger has ended".
* ``holds/quota-<job>.json`` - the Prefect global-concurrency lease holding a job's quota slots, so the watcher
  can renew it while no process does, a resumed run takes the same lease back (instead of asking for slots it
  already holds) and a cancel releases it.
* ``holds/run-name.json`` - the run name whose S3 lease (:mod:`novaflow.runs.lease`) the run keeps while suspended.

The suspension key names one suspension: Prefect takes a suspension with a given key once, and answers a second
``suspend`` with that key by letting the run go on. The key is a hash of the run's ledger and the jobs it waits on;
a resume happens only after one of the waited jobs ended, so the next suspension's key is always new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from novaflow.aws import error_code, get_client, split_s3_uri
from novaflow.jobs.backend_base import JobState
from novaflow.jobs.backends import get_backend
from novaflow.jobs.records import JobRecord
from novaflow.settings import NovaflowSettings

WAITING_KEY = "waiting.json"
HOLDS = "holds"
RUN_NAME_HOLD = "run-name.json"
MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class WaitedJob:
    """One job a suspended run waits on, with what it takes to describe it (the backend is picked by platform and
    method; an SMHP job by its cluster and namespace)."""

    job_name: str
    platform: str
    stage: str
    method: str | None = None
    cluster: str | None = None
    namespace: str | None = None

    @classmethod
    def of(cls, stage: str, record: JobRecord) -> WaitedJob:
        return cls(record.name, record.platform.value, stage, record.method, record.cluster, record.namespace)

    def state(self, settings: NovaflowSettings) -> JobState | None:
        """The job as its service describes it now (None: the service does not know it)."""
        backend = get_backend(
            self.platform, settings, method=self.method, cluster=self.cluster, namespace=self.namespace
        )
        return backend.describe(self.job_name)


@dataclass(frozen=True)
class QuotaHold:
    """The lease on a Prefect global concurrency limit that holds one job's quota slots."""

    job: str
    limit: str
    slots: int
    lease_id: str


_WAITED_FIELDS = frozenset(WaitedJob.__dataclass_fields__)


def suspension_key(ledger_jobs: Iterable[str], waited: Iterable[str]) -> str:
    """The key of this suspension: new whenever the run registered a job or one it waited on ended."""
    body = json.dumps([sorted(set(ledger_jobs)), sorted(set(waited))])
    return "jobs-" + hashlib.sha256(body.encode()).hexdigest()[:16]


def _location(run_id: str, settings: NovaflowSettings, *parts: str) -> tuple[str, str]:
    return split_s3_uri(settings.s3_uri("runs", run_id, *parts))


def _put(run_id: str, settings: NovaflowSettings, body: dict[str, Any], *parts: str) -> None:
    bucket, key = _location(run_id, settings, *parts)
    get_client("s3", settings).put_object(
        Bucket=bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json"
    )


def _get(run_id: str, settings: NovaflowSettings, *parts: str) -> dict[str, Any] | None:
    bucket, key = _location(run_id, settings, *parts)
    try:
        body = get_client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in MISSING:
            return None
        raise
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def _delete(run_id: str, settings: NovaflowSettings, *parts: str) -> None:
    bucket, key = _location(run_id, settings, *parts)
    get_client("s3", settings).delete_object(Bucket=bucket, Key=key)


# -- the jobs a suspended run waits on -------------------------------------------------------------------
def record_waiting(run_id: str, jobs: Sequence[WaitedJob], settings: NovaflowSettings) -> None:
    """Write the jobs run ``run_id`` is about to suspend on (before it suspends, so a watcher never misses one)."""
    body = {"since": datetime.now(UTC).isoformat(), "jobs": [asdict(job) for job in jobs]}
    _put(run_id, settings, body, WAITING_KEY)


def waiting_of(run_id: str, settings: NovaflowSettings) -> list[WaitedJob] | None:
    """The jobs the run suspended on, or None when it recorded none."""
    body = _get(run_id, settings, WAITING_KEY)
    if body is None:
        return None
    return [WaitedJob(**{k: v for k, v in job.items() if k in _WAITED_FIELDS}) for job in body["jobs"]]


def clear_waiting(run_id: str, settings: NovaflowSettings) -> None:
    _delete(run_id, settings, WAITING_KEY)


# -- the holds it keeps ----------------------------------------------------------------------------------
def _quota_key(job: str) -> str:
    return f"quota-{job}.json"


def record_quota_hold(run_id: str, hold: QuotaHold, settings: NovaflowSettings) -> None:
    _put(run_id, settings, asdict(hold), HOLDS, _quota_key(hold.job))


def quota_hold_of(run_id: str, job: str, settings: NovaflowSettings) -> QuotaHold | None:
    body = _get(run_id, settings, HOLDS, _quota_key(job))
    return _quota_hold(body) if body is not None else None


def _quota_hold(body: dict[str, Any]) -> QuotaHold:
    return QuotaHold(str(body["job"]), str(body["limit"]), int(body["slots"]), str(body["lease_id"]))


def quota_holds_of(run_id: str, settings: NovaflowSettings) -> list[QuotaHold]:
    """Every quota lease the run recorded and has not released."""
    bucket, prefix = _location(run_id, settings, HOLDS)
    s3 = get_client("s3", settings)
    holds = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/quota-"):
        for obj in page.get("Contents", []):
            holds.append(_quota_hold(json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())))
    return holds


def forget_quota_hold(run_id: str, job: str, settings: NovaflowSettings) -> None:
    _delete(run_id, settings, HOLDS, _quota_key(job))


def record_run_name(run_id: str, run_name: str, settings: NovaflowSettings) -> None:
    """The run holds ``run_name``'s lease across its suspensions (the watcher renews it, a cancel releases it)."""
    _put(run_id, settings, {"run_name": run_name}, HOLDS, RUN_NAME_HOLD)


def run_name_of(run_id: str, settings: NovaflowSettings) -> str | None:
    body = _get(run_id, settings, HOLDS, RUN_NAME_HOLD)
    return str(body["run_name"]) if body is not None else None


def forget_run_name(run_id: str, settings: NovaflowSettings) -> None:
    _delete(run_id, settings, HOLDS, RUN_NAME_HOLD)
