"""A tool-using agent: the model picks a calculator tool, the agent runs it, and the result decides the reward.

The task row is ``{"id", "metadata": {"prompt"}, "answer": "<the right tool>", "info": {"a", "b", "expected"}}``.
Turn one asks the model which tool to call (``add``, ``subtract``, ``multiply``, ``divide``); the agent calls that
tool on ``info.a`` and ``info.b``, hands the result back as a tool message and asks the model for its final
answer (turn two). The reward, on the last turn, is 1 when the tool's result equals ``info.expected``, else 0.
"""

import json
import os
import urllib.request

TOOLS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b if b else float("nan"),
}
SYSTEM = "You can call one tool: " + ", ".join(TOOLS) + ". Reply with the tool's name only."


def _post(url, body, headers):
    request = urllib.request.Request(  # noqa: S310 - the endpoint is the one the rollout names
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read() or b"{}")


def lambda_handler(event, context):
    task, metadata = event["instance"], event["metadata"]
    endpoint = (metadata.get("endpoint") or os.environ["RFT_RUNTIME_ENDPOINT"]).rstrip("/")
    headers = {
        "X-Amzn-SageMaker-Job-Arn": metadata["job_arn"],
        "X-Amzn-SageMaker-Trajectory-Id": metadata["trajectory_id"],
    }
    chat = f"{endpoint}/v1/chat/completions"
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task["metadata"]["prompt"]}]
    choice = _post(chat, {"model": "policy", "messages": messages}, headers)["choices"][0]["message"]["content"]
    tool = choice.strip().lower()
    info = task["info"]
    result = TOOLS[tool](info["a"], info["b"]) if tool in TOOLS else None
    messages += [
        {"role": "assistant", "content": tool},
        {"role": "tool", "content": json.dumps({"tool": tool, "result": result})},
        {"role": "user", "content": "Give the final answer."},
    ]
    _post(chat, {"model": "policy", "messages": messages}, headers)
    reward = 1.0 if result is not None and abs(result - info["expected"]) < 1e-9 else 0.0
    body = {"JobArn": metadata["job_arn"], "TrajectoryId": metadata["trajectory_id"]}
    arn_only = {"X-Amzn-SageMaker-Job-Arn": metadata["job_arn"]}
    _post(f"{endpoint}/complete-rollout", {**body, "Status": "ready"}, arn_only)
    _post(f"{endpoint}/update-reward", {**body, "Rewards": [0.0, reward]}, arn_only)
    return {"tool": tool, "reward": reward}
