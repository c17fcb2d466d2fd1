"""The ``agent-check`` stage of a multi-turn RFT (``mtrl``) run: the team's agent is exercised on a few of the
run's tasks against the stand-in policy (or, given as an ARN, looked up) before the job is paid for; gives the
agent's ARN the job config names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.params import AgentParams
from flows.stages.context import StageContext
from novaflow.catalog import DataFormat
from novaflow.errors import ConfigError
from novaflow.runs.graph import Stage
from tasks.agents import agent_task

AGENT_CHECK = "agent-check"


def agent_check_stage(agent: AgentParams) -> Stage:
    """Refuses, when the plan is built, an ``mtrl`` stage without an agent; checks the agent once the data exists."""
    if not agent.source:
        raise ConfigError("The mtrl stage needs its agent: set agent.source (a .py file, a Lambda or runtime ARN).")
    source = agent.source

    def run(ctx: StageContext, inputs: Mapping[str, Any]) -> str:
        return agent_task(source, str(inputs["data"].files[DataFormat.MTRL]), ctx.settings)

    return Stage(AGENT_CHECK, ("data",), run)
