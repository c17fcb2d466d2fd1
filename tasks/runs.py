"""Tasks that keep a flow run's own record of the jobs it owns (see :mod:`novaflow.runs.ledger`), and the hold a
run keeps on its run name while it runs. (The slots a job holds of the account's quotas: :mod:`tasks.quotas`.)"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from prefect import get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.context import get_run_context
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from novaflow.errors import RunInUseError
from novaflow.runs.ledger import register_job
from tasks.common import AWS_RETRIES


def current_flow_run_id() -> str:
    """The id of the flow run this code runs in (the root of the record's S3 prefix)."""
    ctx = get_run_context()
    flow_run = getattr(ctx, "flow_run", None)
    if flow_run is None:  # inside a task: the task run knows its flow run
        return str(ctx.task_run.flow_run_id)  # type: ignore[union-attr]
    return str(flow_run.id)


@task(name="register-job", **AWS_RETRIES)
def register_job_task(run_id: str, job_name: str, platform: str, stage: str) -> None:
    """Remember that this run owns the job, before waiting on it, so cancel and crash hooks can stop it."""
    register_job(run_id, job_name, platform=platform, stage=stage)


def ensure_concurrency_limit(name: str, limit: int) -> None:
    """Create the global concurrency limit on first use; a limit someone already set (UI, CLI) is kept."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        except ObjectAlreadyExists:  # another run created it meanwhile
            pass


RUN_NAME_POLL_SECONDS = 2.0


@contextmanager
def run_name_held(run_name: str, home: Path, *, wait_seconds: float) -> Iterator[None]:
    """Hold ``run_name`` for a whole flow run: a second run of the same name on this machine waits for the first.

    Two runs of one name share an S3 prefix, jobs (named by a hash of their spec) and a deployment, and the first
    one's clean-up would delete the endpoint the second is testing. Waiting makes the second a cheap re-run that
    attaches to the jobs the first ran. The hold is an exclusive ``flock`` on ``home/.run.lock``: the operating
    system drops it the moment the holding process ends, however it ends (a killed run frees the name at once,
    which a server-side lease on a temporary Prefect server would never do). After ``wait_seconds`` the run stops
    with one line naming the holder written in the file.
    """
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".run.lock"
    logger = get_run_logger()
    with path.open("a+", encoding="utf-8") as fh:
        if not _try_lock(fh):
            holder = _holder(path)
            logger.warning("run name %r is in use by %s; waiting for it to finish", run_name, holder)
            deadline = time.monotonic() + wait_seconds
            while not _try_lock(fh):
                if time.monotonic() >= deadline:
                    raise RunInUseError(
                        f"run name {run_name!r} is still in use by {_holder(path) or holder} after "
                        f"{wait_seconds:.0f} s; wait for it, cancel it, or pick another --run-name"
                    )
                time.sleep(RUN_NAME_POLL_SECONDS)
            logger.info("run name %r is free now; this run goes on", run_name)
        fh.seek(0)
        fh.truncate()
        ctx = get_run_context()
        flow_run = getattr(ctx, "flow_run", None)
        name = flow_run.name if flow_run is not None else "?"
        fh.write(f"flow run {name!r} ({current_flow_run_id()}), pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _try_lock(fh: IO[str]) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "another flow run"
    except OSError:
        return "another flow run"
