"""Exercise a team's agent on a few rollouts on this machine before any job is paid for.

A multi-turn RFT job runs for hours; an agent that never reports a reward, reports it twice or calls the policy
without the rollout headers is found only when the job fails or learns nothing. So the packaged agent - the very
zip that would be deployed - plays a few of the dataset's tasks here, in a child process, against a local
:class:`~novaflow.agents.runtime.RuntimeServer` whose stand-in policy answers with one of the tasks' answers. Each
rollout must call the inference endpoint with both headers, complete the rollout once and report one reward list
of finite numbers once. The first rule broken is refused in one line naming the file, the rollout, the task and
what to do (docs/agentic-rft.md#the-pre-job-check).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from novaflow.agents.runtime import (
    JOB_ARN_HEADER,
    RUNTIME_ENV,
    TRAJECTORY_HEADER,
    RuntimeServer,
    Trajectory,
    rollout_event,
)
from novaflow.data.multiturn import answer_text
from novaflow.errors import AgentError
from novaflow.reward.local_run import LocalOutcome, LocalPackage

CHECK_ROLLOUTS = 3
CHECK_JOB_ARN = "arn:aws:sagemaker:us-east-1:000000000000:job/AgentRFT/novaflow-agent-check"
CHECK_TIMEOUT_SECONDS = 120.0
FALLBACK_REPLY = "I am not sure."


@dataclass(frozen=True)
class AgentCheck:
    """What the agent did on each rollout of the check (all of it within the contract)."""

    where: str
    rollouts: int
    rewards: list[list[float]] = field(default_factory=list)
    chat_calls: list[int] = field(default_factory=list)

    def summary(self) -> str:
        turns = ", ".join(str(c) for c in self.chat_calls)
        return (
            f"agent {self.where}: {self.rollouts} local rollouts within the contract "
            f"(inference calls per rollout: {turns}; rewards: {self.rewards})"
        )


def probe_policy(tasks: list[dict[str, Any]], seed: int = 0) -> Any:
    """A stand-in policy for the check: one of the tasks' answers (so the agent can both win and lose)."""
    answers = sorted({answer_text(t) for t in tasks if answer_text(t)}) or [FALLBACK_REPLY]
    rng = random.Random(seed)

    def reply(job_arn: str, trajectory_id: str, body: dict[str, Any]) -> str:
        return rng.choice(answers)

    return reply


def exercise_agent(
    zip_bytes: bytes,
    tasks: list[dict[str, Any]],
    *,
    where: str,
    rollouts: int = CHECK_ROLLOUTS,
    region: str = "us-east-1",
    timeout_seconds: float = CHECK_TIMEOUT_SECONDS,
) -> AgentCheck:
    """Run ``rollouts`` rollouts of the packaged agent; :class:`AgentError` (one line) at the first broken rule."""
    if not tasks:
        raise AgentError(f"agent {where}: no tasks to exercise it on: prepare the data first (--method rft_multiturn)")
    rewards: list[list[float]] = []
    calls: list[int] = []
    with RuntimeServer(probe_policy(tasks)) as server, LocalPackage(zip_bytes, timeout_seconds) as package:
        server.register_job(CHECK_JOB_ARN)
        for index in range(rollouts):
            task = tasks[index % len(tasks)]
            trajectory_id = f"novaflow-check-{index + 1}"
            trajectory = server.ledger.open(CHECK_JOB_ARN, trajectory_id)
            headerless_before = server.ledger.headerless_calls
            event = rollout_event(
                task,
                job_arn=CHECK_JOB_ARN,
                trajectory_id=trajectory_id,
                endpoint=server.url,
                region=region,
                inference_params={"temperature": 0.7, "top_p": 0.95, "max_tokens": 512},
                model_name="policy",
            )
            outcome = package.invoke(event, env={RUNTIME_ENV: server.url})
            headerless = server.ledger.headerless_calls - headerless_before
            problem = rollout_problem(outcome, trajectory, headerless, server.url)
            if problem:
                raise AgentError(f"agent {where}: rollout {index + 1} of {rollouts} (task {task.get('id')}): {problem}")
            rewards.append(list(trajectory.rewards))
            calls.append(trajectory.chat_calls)
    return AgentCheck(where, rollouts, rewards, calls)


def rollout_problem(outcome: LocalOutcome, trajectory: Trajectory, headerless: int, endpoint: str) -> str | None:
    """What the agent did wrong on one rollout (None when it kept the contract)."""
    if not outcome.ok:
        return f"the handler raised {outcome.error_type}: {outcome.error_message}"
    headers = f"{JOB_ARN_HEADER} and {TRAJECTORY_HEADER} from the rollout's metadata"
    if trajectory.calls_without_headers or (headerless and not trajectory.chat_calls):
        return f"called the inference endpoint without the rollout headers: send {headers}"
    if trajectory.problems:
        return trajectory.problems[0] + " (each trajectory: /complete-rollout once, then /update-reward once)"
    if not trajectory.chat_calls:
        return f"never called the inference endpoint: POST {endpoint}/v1/chat/completions with {headers}"
    if not trajectory.reward_reports:
        if trajectory.completions:
            return "completed the rollout but never reported a reward: POST /update-reward once per trajectory"
        return (
            "never reported a reward: POST /complete-rollout and then /update-reward once per trajectory "
            f"(to metadata.endpoint or ${RUNTIME_ENV})"
        )
    return None
