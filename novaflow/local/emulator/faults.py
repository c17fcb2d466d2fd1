"""Fault injection for tests and demos: fail a named job, stall it, throttle an operation, break a Lambda.

Faults are armed by name, so a test can arm one before the job exists (job names are deterministic) or while it
runs. Throttling answers exactly like AWS: HTTP 400 with error code ``ThrottlingException`` ("Rate exceeded"),
which botocore retries on its own — so a caller only sees it once the retries are used up.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from moto.core.exceptions import ServiceException

from novaflow.local.emulator import jobstate


class ArmedFaults:
    """What is armed right now: failures and stalls by job name, throttles by operation, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures: dict[str, str] = {}
        self.stalled: set[str] = set()
        self.throttles: dict[str, int] = {}

    def clear(self) -> None:
        with self.lock:
            self.failures.clear()
            self.stalled.clear()
            self.throttles.clear()


ARMED = ArmedFaults()


class ThrottlingError(ServiceException):
    """What AWS JSON services answer when the caller exceeds the request rate."""

    code = "ThrottlingException"
    message = "Rate exceeded"


def fail_job(job_name: str, reason: str) -> None:
    """Make ``job_name`` fail with ``reason`` now (if running) or when it starts training (if not yet created)."""
    run = jobstate.find_by_name(job_name)
    with ARMED.lock:
        ARMED.failures[job_name] = reason
    if run is not None:
        run.fail(reason)
        run.released.set()


def pending_failure(job_name: str) -> str | None:
    with ARMED.lock:
        return ARMED.failures.get(job_name)


def stall_job(job_name: str) -> None:
    """Hold ``job_name`` in Training until :func:`release_job` (a stuck job for deadline/stop tests)."""
    with ARMED.lock:
        ARMED.stalled.add(job_name)
    run = jobstate.find_by_name(job_name)
    if run is not None:
        run.released.clear()


def is_stalled(job_name: str) -> bool:
    with ARMED.lock:
        return job_name in ARMED.stalled


def release_job(job_name: str) -> None:
    with ARMED.lock:
        ARMED.stalled.discard(job_name)
    run = jobstate.find_by_name(job_name)
    if run is not None:
        run.released.set()


def throttle(operation: str, times: int) -> None:
    """Answer the next ``times`` calls of ``operation`` (e.g. ``DescribeTrainingJob``) with ThrottlingException."""
    with ARMED.lock:
        if times <= 0:
            ARMED.throttles.pop(operation, None)
        else:
            ARMED.throttles[operation] = times


def take_throttle(operation: str) -> bool:
    """True (and one fewer left) when this call of ``operation`` must be throttled."""
    with ARMED.lock:
        left = ARMED.throttles.get(operation, 0)
        if left <= 0:
            return False
        if left == 1:
            del ARMED.throttles[operation]
        else:
            ARMED.throttles[operation] = left - 1
        return True


def reset() -> None:
    ARMED.clear()


def install() -> None:
    """Wrap moto's action dispatcher so an armed throttle answers before the operation runs."""
    from moto.core.responses import ActionResult, BaseResponse

    if getattr(BaseResponse.call_action, "_novaflow_throttle", False):
        return
    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        try:
            action = self._get_action()
        except Exception:  # an action moto cannot name is left to moto to reject
            action = None
        if action and ARMED.throttles and take_throttle(action):
            with warnings.catch_warnings():  # moto warns that not every service models the throttling shape
                warnings.simplefilter("ignore")
                status, headers, body = self.serialized(ActionResult(ThrottlingError()))
            status = 400  # AWS answers throttling with HTTP 400 whether or not the service models the shape
            headers["status"] = status  # moto's dispatcher reads the HTTP status from the headers
            return status, headers, body
        return original(self)

    call_action._novaflow_throttle = True  # type: ignore[attr-defined]
    BaseResponse.call_action = call_action  # type: ignore[method-assign]
