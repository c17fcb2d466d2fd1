"""A multi-turn game agent: the model guesses a hidden colour, hears "no" and guesses again; one reward at the end.

The task row is ``{"id", "metadata": {"prompt"}, "answer": "<the colour>"}``. The agent allows three guesses. Its
reward list has one value per turn - zeros, then the game's score on the last turn: 1 for a first-guess win, 0.5
for a second, 0.25 for a third, 0 for a loss. Standard library only, so the zip needs no requirements.
"""

import json
import os
import urllib.request

MAX_GUESSES = 3
JOB_ARN_HEADER = "X-Amzn-SageMaker-Job-Arn"
TRAJECTORY_HEADER = "X-Amzn-SageMaker-Trajectory-Id"


def _post(url, body, headers=None):
    request = urllib.request.Request(  # noqa: S310 - the endpoint is the one the rollout names
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read() or b"{}")


def lambda_handler(event, context):
    task, metadata = event["instance"], event["metadata"]
    endpoint = (metadata.get("endpoint") or os.environ["RFT_RUNTIME_ENDPOINT"]).rstrip("/")
    job_arn, trajectory_id = metadata["job_arn"], metadata["trajectory_id"]
    headers = {JOB_ARN_HEADER: job_arn, TRAJECTORY_HEADER: trajectory_id}
    params = event.get("inference_params") or {}
    prompt = task["metadata"]["prompt"]  # a string, or chat messages (tasks prepared from a table)
    messages = list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    score, played = 0.0, 0
    for turn in range(MAX_GUESSES):
        played = turn + 1
        reply = _post(
            f"{endpoint}/v1/chat/completions",
            {"model": event.get("model_name") or "policy", "messages": messages, **params},
            headers,
        )
        guess = reply["choices"][0]["message"]["content"].strip().lower()
        messages.append({"role": "assistant", "content": guess})
        if guess == str(task["answer"]).strip().lower():
            score = 1.0 / (2**turn)
            break
        messages.append({"role": "user", "content": f"No, it is not {guess}. Guess again."})
    rewards = [0.0] * (played - 1) + [score]
    feedback = {"JobArn": job_arn, "TrajectoryId": trajectory_id}
    _post(f"{endpoint}/complete-rollout", {**feedback, "Status": "ready"}, {JOB_ARN_HEADER: job_arn})
    _post(f"{endpoint}/update-reward", {**feedback, "Rewards": rewards}, {JOB_ARN_HEADER: job_arn})
    return {"reward": score, "turns": played}
