"""Wait for a job: exponential backoff with jitter, a capped interval, a deadline, and honest end states.

Completed returns; Failed raises with AWS's ``FailureReason`` and the last log lines (what a user needs to act);
Stopped raises as a stop, not a failure; the deadline raises and - when asked - stops the job so nothing keeps
billing. Throttling and transient errors while polling are retried on the same backoff. ``sleep``, ``clock`` and
``rng`` are injectable so tests run without real time passing.

Example:
    >>> record = wait_for_job("nova-lite-2-sft-lora-5f32aa882e45", max_wait_seconds=6 * 3600)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable

from botocore.exceptions import ClientError

from novaflow.aws import is_retryable, wrap_client_error
from novaflow.backoff import Backoff, PollTimeout, poll_until
from novaflow.catalog import Platform
from novaflow.errors import JobError
from novaflow.jobs.backend_base import JobBackend, JobState
from novaflow.jobs.backends import get_backend
from novaflow.jobs.logs import LOG_GROUP, LineSource, LogLine, LogTailer
from novaflow.jobs.records import JobRecord, JobStatus
from novaflow.settings import NovaflowSettings

log = logging.getLogger(__name__)
MAX_CONSECUTIVE_ERRORS = 12


def wait_for_job(
    name: str,
    *,
    platform: Platform | str = Platform.SMTJ,
    poll_seconds: float = 30.0,
    max_poll_seconds: float = 300.0,
    max_wait_seconds: float = 86400.0,
    stop_on_deadline: bool = False,
    on_log_line: Callable[[LogLine], None] | None = None,
    on_status: Callable[[JobState], None] | None = None,
    log_tail_lines: int = 20,
    settings: NovaflowSettings | None = None,
    backend: JobBackend | None = None,
    tailer: LineSource | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    record: JobRecord | None = None,
) -> JobRecord:
    """Poll ``name`` until it ends; return its record when Completed, raise :class:`JobError` otherwise.

    Pass the submit's ``record`` to get it back updated (status, ARN, output model) instead of a bare one.
    """
    plat = Platform(platform)
    backend = backend or get_backend(
        plat,
        settings,
        method=record.method if record and record.method else None,
        cluster=record.cluster if record else None,
        namespace=record.namespace if record else None,
    )
    if tailer is None and plat in (Platform.SMTJ, Platform.SERVERLESS):
        tailer = LogTailer(name, settings, log_group=getattr(backend, "log_group", LOG_GROUP))
    if tailer is None and plat is Platform.SMHP:
        # HyperPod's modules load only for HyperPod jobs
        from novaflow.jobs.hyperpod.backend import HyperPodBackend

        if isinstance(backend, HyperPodBackend):
            tailer = backend.log_tailer(name)
    rng = rng or random.Random()
    backoff = Backoff(
        initial=poll_seconds, maximum=max(poll_seconds, max_poll_seconds), jitter=0.2, deadline=max_wait_seconds
    )
    tail: deque[str] = deque(maxlen=log_tail_lines)
    errors = 0
    last_status: str | None = None

    def fetch() -> JobState | None:
        """One describe (None after a transient error), the new log lines, the status change logged."""
        nonlocal errors, last_status
        state = None
        try:
            state = backend.describe(name)
            errors = 0
        except ClientError as exc:
            if not is_retryable(exc):
                raise wrap_client_error(exc, f"Describing job {name}") from exc
            errors += 1
            log.warning("Polling %s: transient error %s (%d in a row); backing off.", name, exc, errors)
            if errors >= MAX_CONSECUTIVE_ERRORS:
                raise wrap_client_error(exc, f"Describing job {name} ({errors} transient errors in a row)") from exc
        if state is None and errors == 0:
            raise JobError(f"Job {name} does not exist on {plat.value}: check the name and region.", job_name=name)
        _drain_logs(tailer, tail, on_log_line)
        if state is not None:
            if state.raw_status != last_status:
                secondary = f" ({state.secondary_status})" if state.secondary_status else ""
                log.info("Job %s: %s%s", name, state.raw_status, secondary)
                last_status = state.raw_status
            if on_status is not None:
                on_status(state)
        return state

    try:
        polled = poll_until(
            fetch, lambda s: s is not None and s.status.terminal, backoff=backoff, clock=clock, sleep=sleep, rng=rng
        )
    except PollTimeout:
        return _deadline(name, backend, stop_on_deadline, max_wait_seconds, tail, last_status)
    assert polled.value is not None  # done() admits only a described state
    return _finish(name, plat, polled.value, tail, record)


def _drain_logs(tailer: LineSource | None, tail: deque[str], on_line: Callable[[LogLine], None] | None) -> None:
    if tailer is None:
        return
    try:
        lines = tailer.poll()
    except Exception as exc:  # logs are a convenience while waiting; their failure must not fail the job
        log.warning("Could not read logs of %s: %s", tailer.job_name, exc)
        return
    for line in lines:
        tail.append(line.message)
        if on_line is not None:
            on_line(line)


def _finish(name: str, platform: Platform, state: JobState, tail: deque[str], record: JobRecord | None) -> JobRecord:
    if state.status is JobStatus.COMPLETED:
        base = record or JobRecord(
            platform=platform,
            name=name,
            spec_hash="",
            method="",
            model="",
            output_uri=state.output_uri,
            started=state.created,
        )
        return base.model_copy(
            update={
                "status": state.status,
                "arn": state.arn or base.arn,
                "output_model_arn": state.output_model_arn or base.output_model_arn,
                "output_model_package_arn": state.output_model_package_arn or base.output_model_package_arn,
                "billable_tokens": state.billable_tokens or base.billable_tokens,
            }
        )
    lines = list(tail)
    shown = "\n".join(f"    {line}" for line in lines[-10:])
    logs = f"\n  last log lines:\n{shown}" if lines else ""
    if state.status is JobStatus.STOPPED:
        ended = "was stopped (by a user or its stopping condition), not failed"
    else:
        ended = f"failed: {state.failure_reason or 'no FailureReason given'}"
    raise JobError(
        f"Job {name} {ended}.{logs}",
        job_name=name,
        status=state.raw_status,
        failure_reason=state.failure_reason,
        log_tail=lines,
    )


def _deadline(
    name: str, backend: JobBackend, stop: bool, waited: float, tail: deque[str], last_status: str | None
) -> JobRecord:
    action = "left running (pass stop_on_deadline=True to stop it)"
    if stop:
        backend.stop(name)
        action = "stop requested"
    raise JobError(
        f"Job {name} did not finish within {waited:g} s (last status {last_status}); {action}.",
        job_name=name,
        status="Stopping" if stop else last_status,
        log_tail=list(tail),
    )
