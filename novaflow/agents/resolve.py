"""From what a team passes as ``--agent`` to the ARN a multi-turn RFT job names, checked before any job.

* a Python file: checked, packaged, exercised locally on a few of the run's tasks (:mod:`novaflow.agents.check`),
  then deployed as a Lambda - so an agent that breaks the rollout contract never reaches a paid job;
* a Lambda function ARN: it must exist (it is used as is, never redeployed);
* a Bedrock AgentCore runtime ARN: used as is (the runtime lives in the team's account; it cannot be run here).

Example:
    >>> resolved = resolve_agent("examples/agents/guess_the_colour.py", read_tasks("tasks.jsonl"))  # doctest: +SKIP
    >>> resolved.arn                                                                                # doctest: +SKIP
    'arn:aws:lambda:us-east-1:123456789012:function:SageMaker-novaflow-agent-guess_the_colour:1'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novaflow.agents.check import CHECK_ROLLOUTS, AgentCheck, exercise_agent
from novaflow.agents.source import build_agent_zip, deploy_agent, load_agent_source
from novaflow.aws import get_client, split_s3_uri
from novaflow.errors import AgentError, RecipeError, RewardError
from novaflow.jobs.agent_rft import agent_kind
from novaflow.reward.deploy import existing_function_arn
from novaflow.settings import NovaflowSettings

TASKS_READ = 32
"""Task rows read for the check (it plays the first few of them)."""


@dataclass(frozen=True)
class ResolvedAgent:
    arn: str
    check: AgentCheck | None = None
    note: str = ""


def read_tasks(location: str | Path, settings: NovaflowSettings, limit: int = TASKS_READ) -> list[Any]:
    """The first ``limit`` task rows of a prepared JSONL file (a local path or ``s3://``)."""
    text = str(location)
    if text.startswith("s3://"):
        bucket, key = split_s3_uri(text)
        body = get_client("s3", settings).get_object(Bucket=bucket, Key=key, Range="bytes=0-1048575")["Body"].read()
        lines = body.decode("utf-8", "replace").splitlines()[:-1] or body.decode("utf-8", "replace").splitlines()
    else:
        lines = Path(text).read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines[:limit], 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise AgentError(f"{text}: line {number} is not JSON: prepare the tasks first") from None
    return rows


def resolve_agent(
    agent: str, tasks: list[Any], settings: NovaflowSettings, *, rollouts: int = CHECK_ROLLOUTS
) -> ResolvedAgent:
    """The agent's ARN; a file is exercised locally first and deployed only when it keeps the contract."""
    if agent.startswith("arn:"):
        try:
            kind = agent_kind(agent)
        except RecipeError as exc:
            raise AgentError(str(exc)) from None
        if kind == "agentcore":
            return ResolvedAgent(agent, note=f"AgentCore runtime {agent} used as is (it cannot be exercised here)")
        try:
            existing_function_arn(agent.rsplit(":", 1)[0] if agent.count(":") > 6 else agent, settings)
        except RewardError as exc:
            raise AgentError(str(exc).replace("reward function", "agent function")) from None
        return ResolvedAgent(agent, note=f"Lambda {agent} used as is (not redeployed, not exercised)")
    source = load_agent_source(agent)
    data = build_agent_zip(source)
    check = exercise_agent(data, tasks, where=agent, rollouts=rollouts)
    deployed = deploy_agent(source, settings, zip_bytes=data)
    return ResolvedAgent(deployed.arn, check, f"{check.summary()}; deployed as {deployed.arn}")
