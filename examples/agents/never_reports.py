"""A broken agent, kept to show the pre-job check: it plays the task but never reports a reward."""

import json
import urllib.request


def lambda_handler(event, context):
    metadata = event["metadata"]
    request = urllib.request.Request(  # noqa: S310 - the endpoint is the one the rollout names
        metadata["endpoint"].rstrip("/") + "/v1/chat/completions",
        data=json.dumps({"messages": [{"role": "user", "content": event["instance"]["metadata"]["prompt"]}]}).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Amzn-SageMaker-Job-Arn": metadata["job_arn"],
            "X-Amzn-SageMaker-Trajectory-Id": metadata["trajectory_id"],
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read())["choices"][0]["message"]["content"]
