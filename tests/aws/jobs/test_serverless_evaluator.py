"""The reward Lambda as a serverless evaluator: registered once per code version in the hub
``novaflow-evaluators``, reused while the code is unchanged, a new one when it changes; a dry run only names it."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from novaflow.aws import get_client
from novaflow.jobs.serverless import EVALUATOR_HUB, evaluator
from novaflow.settings import load_settings

ROLE = "arn:aws:iam::123456789012:role/novaflow-local-sagemaker-execution"


def _zip(body: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("lambda_function.py", body)
    return buf.getvalue()


def _contents() -> list[str]:
    found = get_client("sagemaker", settings=load_settings()).list_hub_contents(
        HubName=EVALUATOR_HUB, HubContentType="JsonDoc"
    )
    return sorted(c["HubContentName"] for c in found["HubContentSummaries"])


def test_one_evaluator_per_code_version(aws) -> None:
    lam = get_client("lambda", settings=load_settings())
    code = "def lambda_handler(event, context):\n    return []\n"
    created = lam.create_function(
        FunctionName="SageMaker-team-reward",
        Runtime="python3.12",
        Role=ROLE,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": _zip(code)},
    )
    arn, sha = created["FunctionArn"], created["CodeSha256"]
    name = f"SageMaker-team-reward-{hashlib.sha256(sha.encode()).hexdigest()[:10]}"
    expected = f"arn:aws:sagemaker:us-east-1:123456789012:hub-content/{EVALUATOR_HUB}/JsonDoc/{name}/1.0.0"

    planned, note = evaluator(arn, settings=load_settings())  # the dry run: named, nothing created
    assert planned == expected and note == f"the reward Lambda will be registered as evaluator {expected} at submit"
    assert get_client("sagemaker", settings=load_settings()).list_hubs()["HubSummaries"] == []

    first, _ = evaluator(arn, create=True, settings=load_settings())
    again, note = evaluator(arn, create=True, settings=load_settings())
    assert first == again == expected and note is None
    assert _contents() == [name]
    document = get_client("sagemaker", settings=load_settings()).describe_hub_content(
        HubName=EVALUATOR_HUB, HubContentType="JsonDoc", HubContentName=name
    )["HubContentDocument"]
    assert json.loads(json.loads(document)["JsonContent"]) == {"EvaluatorType": "RewardFunction", "Reference": arn}

    changed = lam.update_function_code(FunctionName=arn, ZipFile=_zip(code + "# graded differently\n"))
    assert changed["CodeSha256"] != sha
    newer, _ = evaluator(arn, create=True, settings=load_settings())
    assert newer != first and len(_contents()) == 2  # changed code is registered, the old version kept
