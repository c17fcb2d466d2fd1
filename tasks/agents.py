"""The agent of a multi-turn RFT stage: exercised locally on the run's tasks, then deployed (or checked as given)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from novaflow.agents.resolve import read_tasks, resolve_agent
from novaflow.settings import NovaflowSettings
from tasks.common import AWS_RETRIES


@task(name="agent", **AWS_RETRIES)
def agent_task(agent: str, tasks_file: str | Path, settings: NovaflowSettings) -> str:
    """The agent's ARN; a contract violation fails here, in one line, before any job is created."""
    resolved = resolve_agent(agent, read_tasks(tasks_file, settings), settings)
    get_run_logger().info("agent: %s", resolved.note)
    return resolved.arn
