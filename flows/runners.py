"""The task runner of the flows that run stages side by side (uploads, job waits and evaluations overlap).

``@flow`` annotates ``task_runner`` as ``TaskRunner[PrefectFuture[Any]]`` while ``ThreadPoolTaskRunner`` is a
``TaskRunner[PrefectConcurrentFuture[R]]``; the parameter is invariant, so Prefect's own runner does not type-check
against Prefect's own decorator. The cast lives here, once, instead of an ignore on every flow.
"""

from __future__ import annotations

from typing import Any, cast

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner


def thread_pool(max_workers: int = 4) -> TaskRunner[PrefectFuture[Any]]:
    """A fresh thread-pool runner (each flow gets its own)."""
    return cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=max_workers))
