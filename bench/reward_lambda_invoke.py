"""How fast the reward grader is in-process and through the embedded AWS Lambda API (subprocess per Invoke).

Run: /work/venv/bin/python bench/reward_lambda_invoke.py
"""

from __future__ import annotations

import json
import statistics
import time

from novaflow.aws import get_client
from novaflow.local import LocalAws
from novaflow.reward.deploy import deploy_reward_lambda
from novaflow.settings import load_settings
from reward_lambda.handler import lambda_handler
from reward_lambda.labels import DEFAULT_LABELS


def batch(n: int) -> list[dict]:
    labels = list(DEFAULT_LABELS)
    return [
        {
            "id": i,
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": f"The answer is **{labels[i % 3]}**."},
            ],
            "metadata": {"reference_answer": labels[(i * 7) % 3]},
        }
        for i in range(n)
    ]


def main() -> None:
    rows = []
    for n in (1, 64, 1024):
        event = batch(n)
        start = time.perf_counter()
        for _ in range(20):
            lambda_handler(event, None)
        rows.append(("in-process", n, (time.perf_counter() - start) / 20 * 1000))
    with LocalAws():
        settings = load_settings()
        reward = deploy_reward_lambda(poll_seconds=0.01, settings=settings)
        lam = get_client("lambda", settings=settings)
        for n in (1, 64, 1024):
            payload = json.dumps(batch(n))
            times = []
            for _ in range(10):
                start = time.perf_counter()
                lam.invoke(FunctionName=reward.arn, Payload=payload)["Payload"].read()
                times.append((time.perf_counter() - start) * 1000)
            rows.append(("lambda-invoke", n, statistics.median(times)))
    print(f"{'runner':<14} {'batch':>6} {'ms/call':>9} {'us/sample':>10}")
    for runner, n, ms in rows:
        print(f"{runner:<14} {n:>6} {ms:>9.2f} {ms * 1000 / n:>10.1f}")


if __name__ == "__main__":
    main()
