"""The pre-job check: the example agents keep the rollout contract; broken ones are refused in one line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from novaflow.agents.check import exercise_agent
from novaflow.agents.source import build_agent_zip, load_agent_source
from novaflow.errors import AgentError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "agents"


def _tasks(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (EXAMPLES / name).read_text().splitlines()]


def _zip(path: Path) -> bytes:
    return build_agent_zip(load_agent_source(path))


@pytest.mark.slow  # the agent runs in its own process
def test_the_colour_game_plays_up_to_three_turns_and_rewards_only_the_last() -> None:
    tasks = _tasks("colours.jsonl")
    check = exercise_agent(_zip(EXAMPLES / "guess_the_colour.py"), tasks, where="guess_the_colour.py", rollouts=4)
    assert check.rollouts == 4
    for calls, rewards in zip(check.chat_calls, check.rewards, strict=True):
        assert 1 <= calls <= 3 and len(rewards) == calls  # one reward per turn
        assert rewards[:-1] == [0.0] * (calls - 1)
        assert rewards[-1] == {1: 1.0, 2: 0.5, 3: 0.25}.get(calls, 0.0) or rewards[-1] == 0.0


@pytest.mark.slow  # the agent runs in its own process
def test_the_tool_agent_calls_the_policy_twice_and_scores_the_tool_result() -> None:
    tasks = _tasks("tools.jsonl")
    check = exercise_agent(_zip(EXAMPLES / "pick_the_tool.py"), tasks, where="pick_the_tool.py", rollouts=4)
    assert check.chat_calls == [2, 2, 2, 2]
    assert all(r[0] == 0.0 and r[1] in (0.0, 1.0) for r in check.rewards)


@pytest.mark.slow  # the agent runs in its own process
def test_an_agent_that_never_reports_is_refused_in_one_line() -> None:
    with pytest.raises(AgentError) as caught:
        exercise_agent(_zip(EXAMPLES / "never_reports.py"), _tasks("colours.jsonl"), where="never_reports.py")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("agent never_reports.py: rollout 1 of 3 (task colour-")
    assert message.endswith(
        "): never reported a reward: POST /complete-rollout and then /update-reward once per trajectory "
        "(to metadata.endpoint or $RFT_RUNTIME_ENDPOINT)"
    )


def _agent(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agent.py"
    head = """
        import json, os, urllib.request

        def post(path, body, headers):
            url = os.environ["RFT_RUNTIME_ENDPOINT"] + path
            kind = {"Content-Type": "application/json"}
            request = urllib.request.Request(url, json.dumps(body).encode(), {**kind, **headers})
            try:
                with urllib.request.urlopen(request) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                return {"error": exc.code}

        def lambda_handler(event, context):
            m = event["metadata"]
            h = {"X-Amzn-SageMaker-Job-Arn": m["job_arn"], "X-Amzn-SageMaker-Trajectory-Id": m["trajectory_id"]}
            ids = {"JobArn": m["job_arn"], "TrajectoryId": m["trajectory_id"]}
    """
    path.write_text(textwrap.dedent(head) + textwrap.indent(textwrap.dedent(body), "    "))
    return path


CHAT = 'post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, h)\n'
DONE = 'post("/complete-rollout", {**ids, "Status": "ready"}, {})\n'
REWARD = 'post("/update-reward", {**ids, "Rewards": [1.0]}, {})\n'


@pytest.mark.slow  # one agent process per broken rule
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            CHAT + DONE + REWARD + REWARD,
            "reported a reward twice (each trajectory: /complete-rollout once, then /update-reward once)",
        ),
        (
            'post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, {})\n' + DONE + REWARD,
            "called the inference endpoint without the rollout headers: send X-Amzn-SageMaker-Job-Arn and "
            "X-Amzn-SageMaker-Trajectory-Id from the rollout's metadata",
        ),
        (DONE + REWARD, "never called the inference endpoint: POST http://127.0.0.1:"),
        (CHAT + DONE, "completed the rollout but never reported a reward: POST /update-reward once per trajectory"),
        (CHAT + REWARD, "reported the reward before completing the rollout (each trajectory"),
        (
            CHAT + DONE + 'post("/update-reward", {**ids, "Rewards": ["high"]}, {})\n',
            'reported Rewards=["high"], not a list of finite numbers',
        ),
        (CHAT + 'raise ValueError("board state lost")\n', "the handler raised ValueError: board state lost"),
    ],
)
def test_each_broken_rule_is_named(tmp_path: Path, body: str, problem: str) -> None:
    tasks = [{"id": "t1", "metadata": {"prompt": "hi"}, "answer": "a"}]
    with pytest.raises(AgentError) as caught:
        exercise_agent(_zip(_agent(tmp_path, body)), tasks, where="agent.py", rollouts=2)
    assert str(caught.value).startswith(f"agent agent.py: rollout 1 of 2 (task t1): {problem}")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def handler(event, context):\n    return 1\n", "defines no lambda_handler(event, context) at the top level"),
        ("async def lambda_handler(event, context):\n    return 1\n", "line 1: lambda_handler is async"),
        ("def lambda_handler(event):\n    return 1\n", "line 1: lambda_handler must take (event, context)"),
        ("def lambda_handler(event, context)\n", "line 1: syntax error"),
    ],
)
def test_a_file_that_cannot_be_an_agent_is_refused_before_packaging(tmp_path: Path, code: str, message: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(code)
    with pytest.raises(AgentError) as caught:
        load_agent_source(path)
    assert str(caught.value).startswith(f"{path}: {message}")


def _play(agent: str, task: dict[str, object], replies: list[str]) -> tuple[int, list[float]]:
    """One rollout of an example agent against a scripted policy: (inference calls, rewards it reported)."""
    from novaflow.agents.check import CHECK_JOB_ARN
    from novaflow.agents.runtime import RUNTIME_ENV, RuntimeServer, rollout_event
    from novaflow.reward.local_run import LocalPackage

    script = iter(replies)
    with RuntimeServer(lambda job, trajectory, body: next(script)) as server, LocalPackage(_zip(EXAMPLES / agent)) as p:
        server.register_job(CHECK_JOB_ARN)
        trajectory = server.ledger.open(CHECK_JOB_ARN, "t-1")
        event = rollout_event(task, job_arn=CHECK_JOB_ARN, trajectory_id="t-1", endpoint=server.url, region="us-east-1")
        outcome = p.invoke(event, env={RUNTIME_ENV: server.url})
    assert outcome.ok, outcome.error_message
    return trajectory.chat_calls, trajectory.rewards


@pytest.mark.slow
@pytest.mark.parametrize(
    ("replies", "calls", "rewards"),
    [
        (["yellow"], 1, [1.0]),
        (["red", "Yellow "], 2, [0.0, 0.5]),
        (["red", "blue", "yellow"], 3, [0.0, 0.0, 0.25]),
        (["red", "blue", "green"], 3, [0.0, 0.0, 0.0]),
    ],
)
def test_the_colour_game_rewards_the_turn_it_was_won_on(replies: list[str], calls: int, rewards: list[float]) -> None:
    task = {"id": "c1", "metadata": {"prompt": "Guess the colour of a banana."}, "answer": "yellow"}
    assert _play("guess_the_colour.py", task, replies) == (calls, rewards)


@pytest.mark.slow
@pytest.mark.parametrize(("tool", "rewards"), [("multiply", [0.0, 1.0]), ("add", [0.0, 0.0]), ("a hammer", [0.0, 0.0])])
def test_the_tool_agent_runs_the_tool_the_model_picked(tool: str, rewards: list[float]) -> None:
    task = {
        "id": "t1",
        "metadata": {"prompt": "What is 6 times 7?"},
        "answer": "multiply",
        "info": {"a": 6, "b": 7, "expected": 42},
    }
    assert _play("pick_the_tool.py", task, [tool, "42"]) == (2, rewards)
