"""AWS's two ways of saying "not now, no capacity", read so a job waits instead of failing its run.

1. ``CreateTrainingJob`` refused with error code ``ResourceLimitExceeded``: the account's quota for the instance
   type is used up (by jobs novaflow does not know about - its own stay under the Prefect limits). The message
   names the quota, its value, the current utilization and the request (docs/quotas.md#the-refusal).
2. The job was accepted but failed before training because the region had no free instances of the type: its
   ``FailureReason`` starts with ``CapacityError`` (docs/quotas.md#capacity-failures).

Both are retried by :mod:`novaflow.quotas.queue`; anything else is a real failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from novaflow.aws import error_code, error_message

LIMIT_EXCEEDED = "ResourceLimitExceeded"
CAPACITY_PREFIXES = ("CapacityError", "InsufficientCapacityError")
_LIMIT_RE = re.compile(
    r"service limit '(?P<quota>[^']+)' is (?P<limit>\d+) (?P<unit>\w+), with current utilization of "
    r"(?P<used>\d+) \w+ and a request delta of (?P<delta>\d+) \w+"
)


@dataclass(frozen=True)
class LimitRefusal:
    """A ``ResourceLimitExceeded`` refusal: which quota, how much of it, how much was in use and asked for."""

    quota: str | None
    limit: int | None
    utilization: int | None
    delta: int | None
    message: str

    def describe(self) -> str:
        if self.quota is None:
            return self.message
        return f"quota '{self.quota}' is {self.limit}, {self.utilization} in use, this job asks for {self.delta}"


def parse_limit_refusal(message: str) -> LimitRefusal:
    """The numbers of SageMaker's refusal message; the message alone when it is worded otherwise."""
    match = _LIMIT_RE.search(message)
    if match is None:
        return LimitRefusal(None, None, None, None, message)
    return LimitRefusal(match["quota"], int(match["limit"]), int(match["used"]), int(match["delta"]), message.strip())


def limit_refusal_of(exc: BaseException) -> LimitRefusal | None:
    """The refusal when ``exc`` is AWS's ``ResourceLimitExceeded`` (raw or wrapped), else None."""
    if error_code(exc) != LIMIT_EXCEEDED:
        return None
    text = error_message(exc)
    return parse_limit_refusal(text)


def is_capacity_failure(failure_reason: str | None) -> bool:
    """True when a job failed because AWS had no instances to give it (nothing trained, nothing billed)."""
    if not failure_reason:
        return False
    return failure_reason.strip().startswith(CAPACITY_PREFIXES)
