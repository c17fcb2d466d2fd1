"""What every novaflow task shares: the retry policy for AWS calls and artifact keys Prefect accepts.

Retries are for throttling and transient failures only; a validation error retried three times is three times
the same error (and, for a submit, a chance to spend money twice).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from prefect.artifacts import create_table_artifact
from prefect.tasks import exponential_backoff

from novaflow.aws import is_retryable
from novaflow.reports.format import tidy_rows

_KEY_BAD = re.compile(r"[^a-z0-9-]+")


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure is a throttle or a transient AWS error."""
    try:
        state.result()
    except Exception as exc:  # the state re-raises the task's exception
        cause: BaseException | None = exc
        while cause is not None:
            if is_retryable(cause):
                return True
            cause = cause.__cause__
        return False
    return False


AWS_RETRIES: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_transient,
}
"""Keyword arguments for ``@task`` on anything that calls AWS."""


def artifact_key(*parts: str) -> str:
    """An artifact key Prefect accepts (``^[a-z0-9-]*$``): lowercase, anything else becomes a dash."""
    raw = "-".join(p for p in parts if p)
    key = _KEY_BAD.sub("-", raw.lower()).strip("-")
    return re.sub(r"-{2,}", "-", key)[:200]


def publish_table(rows: Iterable[Mapping[str, Any]], *, key: str, description: str) -> None:
    """A table artifact a person reads: every number at 4 decimals, p-values and tiny values in scientific notation.

    The exact values are never lost: they are in the report's JSON and the S3 objects the rows were read from.
    ``description`` is required: the artifact list shows it, and "No description" tells a person nothing.
    """
    create_table_artifact(table=tidy_rows(rows), key=key, description=description)
