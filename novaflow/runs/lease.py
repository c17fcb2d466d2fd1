"""The run-name lease: one run of a name at a time across every worker, held as an S3 object.

Two runs of one name share an S3 prefix, jobs (named by a hash of their spec) and an endpoint name; the first
one's clean-up would delete the endpoint the second is smoke-testing. So a run holds its name for its whole life,
and the hold has to be seen by every worker that could run the name: several ECS tasks or Kubernetes pods, each
with its own disk, maybe each with its own temporary Prefect server.

Why an S3 object and not a Prefect global concurrency limit per run name: the resources the name guards (the
prefix, the jobs, the endpoint) live in the AWS account, and so does this lease, so two workers that share the
account but not a Prefect server (two terminal runs, each with its temporary server; a laptop and a work pool)
still exclude each other. Prefect's leases live in the server's memory: a temporary server takes its leases
with it when its process dies, leaving the limit's slot taken forever in the shared database, and two temporary
servers never see each other's leases. S3 gives the two primitives a lease needs, on every bucket: a create
that fails when the key exists (``If-None-Match: *``) and a compare-and-swap on the object's ETag (``If-Match``).

The holder rewrites the object every ``ttl / 3`` seconds; a holder whose process died stops renewing, and once
the object is older than its ``ttl`` (measured on S3's clock: the object's ``Last-Modified`` against the
response's ``Date``) the next run takes the name over with a compare-and-swap, so two waiting runs cannot both
win. A re-run of the same flow run (Prefect re-scheduling a crashed run) is the holder itself and takes its
lease back at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from novaflow.aws import error_code, get_client, split_s3_uri
from novaflow.errors import RunInUseError
from novaflow.settings import NovaflowSettings

LEASE_KEY = "lease.json"
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
"""What S3 answers a conditional write that lost: 412 when the condition failed, 409 when a concurrent write
raced it; both mean "read the object again and decide"."""
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class LeaseState:
    """The lease object as read: who holds it, its ETag, and how long ago it was last renewed (S3's clock)."""

    holder: str
    holder_id: str
    etag: str
    age_seconds: float
    ttl_seconds: float

    @property
    def expired(self) -> bool:
        return self.age_seconds > self.ttl_seconds


class RunNameLease:
    """Acquire, renew and release the lease on ``run_name`` (see the module docstring for why S3)."""

    def __init__(
        self,
        run_name: str,
        *,
        holder: str,
        holder_id: str,
        settings: NovaflowSettings,
        ttl_seconds: float | None = None,
    ) -> None:
        self.run_name = run_name
        self.holder = holder
        self.holder_id = holder_id
        self.ttl = float(ttl_seconds if ttl_seconds is not None else settings.run_lease_seconds)
        self.bucket, self.key = split_s3_uri(settings.s3_uri("runs", run_name, LEASE_KEY))
        self._s3 = get_client("s3", settings)
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None
        """Set when a renewal found the lease taken by another holder (this run outlived its ttl unseen)."""

    # -- the object ---------------------------------------------------------------------------------
    def _body(self) -> bytes:
        return json.dumps(
            {
                "run_name": self.run_name,
                "holder": self.holder,
                "holder_id": self.holder_id,
                "ttl_seconds": self.ttl,
                "renewed": datetime.now(UTC).isoformat(),
            }
        ).encode()

    def _put(self, **condition: str) -> str:
        response = self._s3.put_object(
            Bucket=self.bucket, Key=self.key, Body=self._body(), ContentType="application/json", **condition
        )
        return str(response["ETag"])

    def read(self) -> LeaseState | None:
        """The lease as it is now, or None when nobody holds the name."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if error_code(exc) in MISSING_CODES:
                return None
            raise
        body: dict[str, Any] = json.loads(response["Body"].read() or b"{}")
        return LeaseState(
            holder=str(body.get("holder") or "another flow run"),
            holder_id=str(body.get("holder_id") or ""),
            etag=str(response["ETag"]),
            age_seconds=_age(response),
            ttl_seconds=float(body.get("ttl_seconds") or self.ttl),
        )

    # -- taking the name ----------------------------------------------------------------------------
    def try_acquire(self) -> LeaseState | None:
        """Take the name if it is free, expired or already ours; else the holder's lease (nothing taken)."""
        for _ in range(5):  # a lost race re-reads the object and decides again
            try:
                self._etag = self._put(IfNoneMatch="*")
                return None
            except Exception as exc:
                if error_code(exc) not in CONFLICT_CODES:
                    raise
            current = self.read()
            if current is None:
                continue  # released between our write and our read
            if current.holder_id != self.holder_id and not current.expired:
                return current
            try:  # ours (a re-run of the same flow run) or expired: swap it, only if nobody swapped first
                self._etag = self._put(IfMatch=current.etag)
                return None
            except Exception as exc:
                if error_code(exc) not in CONFLICT_CODES | MISSING_CODES:
                    raise
        return self.read()

    def acquire(
        self,
        wait_seconds: float,
        *,
        poll_seconds: float = 2.0,
        on_wait: Callable[[LeaseState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Take the name, waiting up to ``wait_seconds`` for its holder; returns True when it had to wait.

        Raises :class:`RunInUseError` naming the holder when the wait runs out.
        """
        holder = self.try_acquire()
        if holder is None:
            self._start_renewing()
            return False
        if on_wait is not None:
            on_wait(holder)
        deadline = clock() + wait_seconds
        while holder is not None:
            if clock() >= deadline:
                raise RunInUseError(
                    f"run name {self.run_name!r} is still in use by {holder.holder} after {wait_seconds:.0f} s; "
                    "wait for it, cancel it, or pick another --run-name"
                )
            sleep(min(poll_seconds, max(deadline - clock(), 0.0)) or poll_seconds)
            holder = self.try_acquire()
        self._start_renewing()
        return True

    # -- holding it ---------------------------------------------------------------------------------
    def _start_renewing(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"run-lease-{self.run_name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.renew()

    def renew(self) -> bool:
        """Rewrite the lease if it is still ours; a transient error is retried at the next tick."""
        if self._etag is None:
            return False
        try:
            self._etag = self._put(IfMatch=self._etag)
            return True
        except Exception as exc:
            code = error_code(exc)
            if code in CONFLICT_CODES | MISSING_CODES:
                current = self.read()
                self.lost = current.holder if current is not None else "nobody (the lease was deleted)"
                self._etag = None
                self._stop.set()
            return False

    def stop_renewing(self) -> None:
        """Leave the lease in place but stop renewing it (the run is suspended: it lapses unless the run returns)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def keep_while_suspended(self, ttl_seconds: float) -> None:
        """Stop renewing, and rewrite the lease to outlive the suspension: ``ttl_seconds`` (the longest the run's
        jobs may take) instead of the short ttl a live holder renews. The watcher renews it meanwhile
        (:func:`renew_suspended`); the resumed run, its own holder, takes it back at once."""
        self.stop_renewing()
        if self._etag is None:
            return
        self.ttl = float(ttl_seconds)
        self.renew()

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours (a run that lost it deletes nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._etag is None:
            return
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self._etag)
        except Exception as exc:
            if error_code(exc) not in CONFLICT_CODES | MISSING_CODES:
                raise
        finally:
            self._etag = None


def _age(response: dict[str, Any]) -> float:
    """Seconds since the object was written, on S3's clock when the response carries its ``Date``."""
    modified: datetime = response["LastModified"]
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    now = parsedate_to_datetime(date) if date else datetime.now(UTC)
    return max((now - modified).total_seconds(), 0.0)


def _as_holder(
    run_name: str, run_id: str, settings: NovaflowSettings, ttl_seconds: float | None
) -> RunNameLease | None:
    """A handle on ``run_name``'s lease if run ``run_id`` holds it (None when another run, or nobody, does)."""
    probe = RunNameLease(run_name, holder="", holder_id=run_id, settings=settings)
    current = probe.read()
    if current is None or current.holder_id != run_id:
        return None
    lease = RunNameLease(
        run_name,
        holder=current.holder,
        holder_id=run_id,
        settings=settings,
        ttl_seconds=ttl_seconds if ttl_seconds is not None else current.ttl_seconds,
    )
    lease._etag = current.etag
    return lease


def renew_suspended(run_name: str, run_id: str, settings: NovaflowSettings) -> bool:
    """Renew the lease a suspended run ``run_id`` keeps on ``run_name`` (same ttl); False when it is not its."""
    lease = _as_holder(run_name, run_id, settings, None)
    return lease is not None and lease.renew()


def release_suspended(run_name: str, run_id: str, settings: NovaflowSettings) -> bool:
    """Free ``run_name`` if run ``run_id`` still holds it (its run was cancelled while suspended)."""
    lease = _as_holder(run_name, run_id, settings, None)
    if lease is None:
        return False
    lease.release()
    return True
