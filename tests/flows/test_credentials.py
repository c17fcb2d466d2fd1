"""The ``aws_credentials`` flow parameter: a saved prefect-aws block signs every AWS call of a run, in the block's
region and at the block's endpoint; the run says which identity it works as and never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client as prefect_client
from prefect.settings import PREFECT_API_URL
from prefect.utilities.callables import parameter_schema
from prefect_aws import AwsClientParameters, AwsCredentials

from flows.end_to_end import end_to_end
from flows.single_stage import verify_reward
from novaflow.aws import get_client
from novaflow.errors import ConfigError
from novaflow.local.aws.server import LOCAL_BUCKET, LOCAL_ROLE_ARN
from novaflow.settings import load_settings
from tasks.credentials import credentials_from_parameters, run_context, use_run_credentials
from tests.flows.helpers import logs_of, small_params
from tests.production.iam import EXAMPLE_BUCKET, allows, iam_actions, load_policy

ROOT = Path(__file__).resolve().parents[2]
BLOCK = "novaflow-test-credentials"
BLOCK_REGION = "us-west-2"  # not the default region: every client must take it from the block
# What the child keeps of the test environment: nothing that names AWS credentials, a region or an endpoint.
AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "NOVAFLOW_REGION",
)


@pytest.fixture
def block_user(aws: Any) -> dict[str, str]:
    """An IAM user of the embedded AWS whose fresh key pair the block holds (STS answers with this user)."""
    iam = boto3.client("iam")
    iam.create_user(UserName="novaflow-ci")
    key = iam.create_access_key(UserName="novaflow-ci")["AccessKey"]
    AwsCredentials(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=BLOCK_REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=aws.url),
    ).save(BLOCK, overwrite=True)
    return {
        "key_id": key["AccessKeyId"],
        "secret": key["SecretAccessKey"],
        "arn": iam.get_user(UserName="novaflow-ci")["User"]["Arn"],
    }


def _recorded_run(aws: Any, params_json: str, out: Path, block: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in AWS_ENV}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    done = subprocess.run(
        [sys.executable, "-m", "tests.flows.record_aws_calls", str(out), params_json, block],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_saved_block_signs_every_aws_call_of_an_end_to_end_run(aws, block_user, tmp_path) -> None:
    params = small_params("credentials-block", tmp_path / "work")
    calls_file = tmp_path / "calls.jsonl"
    run = _recorded_run(aws, params.model_dump_json(), calls_file, BLOCK)
    assert run["completed"]

    calls = [json.loads(line) for line in calls_file.read_text().splitlines()]
    services = Counter(c["service"] for c in calls)
    # The run reached every service novaflow uses (the whole case study, with deployment and teardown).
    assert {"s3", "sagemaker", "sagemaker-runtime", "cloudwatch-logs", "lambda", "iam", "sts"} <= set(services), (
        services
    )
    unsigned = [c for c in calls if c["key_id"] != block_user["key_id"]]
    assert not unsigned, unsigned[:5]
    assert all(c["url"].startswith(aws.url + "/") for c in calls), {c["url"][:60] for c in calls}
    assert {c["signing_region"] for c in calls} == {BLOCK_REGION}

    # Everything happened in the block's region: the five jobs of the run are there and nowhere else.
    west = boto3.client("sagemaker", region_name=BLOCK_REGION).list_training_jobs()["TrainingJobSummaries"]
    east = boto3.client("sagemaker", region_name="us-east-1").list_training_jobs()["TrainingJobSummaries"]
    assert (len(west), len(east)) == (5, 0)

    lines = logs_of(run["flow_run_id"])
    identity = [line for line in lines if line.startswith("AWS identity ")]
    assert identity == [
        f"AWS identity {block_user['arn']} (account 123456789012), region {BLOCK_REGION}; "
        f"credentials from AwsCredentials block '{BLOCK}' (explicit) - endpoint {aws.url}"
    ]
    assert not [line for line in lines if block_user["secret"] in line]

    # The role a production flow run gets (infra/iam/flow-run-policy.json, for this bucket and execution role)
    # allows every one of these calls, on the S3 objects they touched.
    policy = load_policy(
        "flow-run-policy.json",
        **{EXAMPLE_BUCKET: LOCAL_BUCKET, "novaflow-sagemaker-execution": LOCAL_ROLE_ARN.rsplit("/", 1)[1]},
    )
    denied = sorted(
        {
            f"{action} on {resource or '-'}"
            for call in calls
            for action in iam_actions(call["service"], call["operation"])
            for resource in [_s3_resource(call)]
            if not allows(policy, action, resource)
        }
    )
    assert not denied, denied


def _s3_resource(call: dict[str, Any]) -> str | None:
    """The S3 ARN a path-style request addresses (None for other services: checked by action only)."""
    if call["service"] != "s3" or call["operation"] == "ListBuckets":
        return None
    bucket, _, key = urlparse(call["url"]).path.lstrip("/").partition("/")
    return f"arn:aws:s3:::{bucket}" + (f"/{unquote(key)}" if key and call["operation"] != "ListObjectsV2" else "")


def test_the_block_as_the_run_form_sends_it_is_resolved_before_the_flow_starts(aws, block_user) -> None:
    block_id = AwsCredentials.load(BLOCK)._block_document_id
    given = {"aws_credentials": {"$ref": {"block_document_id": str(block_id)}}}
    resolved = end_to_end.validate_parameters(given)["aws_credentials"]
    assert isinstance(resolved, AwsCredentials)
    assert resolved.aws_access_key_id == block_user["key_id"]
    assert end_to_end.validate_parameters({"aws_credentials": BLOCK})["aws_credentials"] == BLOCK
    # Through a deployment: with prefect.yaml's enforce_parameter_schema: false the server takes both shapes.
    # Enforced, Prefect 3.9 refuses the reference: AwsCredentials has no required field, so the reference also
    # matches the block's own schema and the "block or reference" oneOf fails. When this starts to pass, turn
    # enforcement back on in prefect.yaml.
    with prefect_client(sync_client=True) as client:
        flow_id = client.create_flow(verify_reward)
        schema = parameter_schema(verify_reward).model_dump()
        relaxed, enforced = (
            client.create_deployment(
                flow_id=flow_id, name=f"form-{on}", parameter_openapi_schema=schema, enforce_parameter_schema=on
            )
            for on in (False, True)
        )
        try:
            for value in (given["aws_credentials"], BLOCK):
                run = client.create_flow_run_from_deployment(relaxed, parameters={"aws_credentials": value})
                assert run.parameters["aws_credentials"] == value
            assert client.create_flow_run_from_deployment(enforced, parameters={"aws_credentials": BLOCK})
            with pytest.raises(
                Exception, match=r"409 Conflict.*Validation failed for field 'aws_credentials'.*is valid under each of"
            ):
                client.create_flow_run_from_deployment(enforced, parameters=given)
        finally:
            for deployment in (relaxed, enforced):
                client.delete_deployment(deployment)  # and with it the scheduled runs no worker will take
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert [d["name"] for d in deployments if d.get("enforce_parameter_schema") is not False] == []
    # A hook in another process rebuilds the block from the stored parameters; a block given in code is
    # stored with its secret masked, so it is not rebuilt.
    assert credentials_from_parameters(given).aws_access_key_id == block_user["key_id"]
    assert credentials_from_parameters({"aws_credentials": BLOCK}) == BLOCK
    assert credentials_from_parameters({"aws_credentials": {"aws_access_key_id": "x"}}) is None
    assert credentials_from_parameters({}) is None


@flow
def _signing_key(aws_credentials: AwsCredentials | str | None = None) -> tuple[str, str]:
    settings = use_run_credentials(aws_credentials)
    client = get_client("s3", settings)
    return client._request_signer._credentials.access_key, settings.region


def test_a_run_without_a_block_goes_back_to_the_process_credentials(aws, block_user) -> None:
    assert _signing_key() == ("testing", "us-east-1")
    assert _signing_key(aws_credentials=BLOCK) == (block_user["key_id"], BLOCK_REGION)
    given = AwsCredentials(aws_access_key_id="given-in-code", aws_secret_access_key="s", region_name="eu-west-2")
    assert _signing_key(aws_credentials=given) == ("given-in-code", "eu-west-2")
    assert _signing_key() == ("testing", "us-east-1")
    assert load_settings().session is None and load_settings().region == "us-east-1"


_BOTH_STARTED = threading.Barrier(2, timeout=60)


@flow
def _run_identity(aws_credentials: AwsCredentials | str | None = None, bucket: str = "", both: bool = False) -> dict:
    """What one run signs as: its STS identity, its clients' key and region, and a bucket it creates."""
    settings = run_context(aws_credentials, f"isolation-{bucket}").settings
    if both:
        _BOTH_STARTED.wait()  # both runs hold their settings before either calls AWS: they overlap
    sts, s3 = get_client("sts", settings), get_client("s3", settings)
    if settings.region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": settings.region})
    return {
        "arn": sts.get_caller_identity()["Arn"],
        "key": s3._request_signer._credentials.access_key,
        "regions": {sts.meta.region_name, s3.meta.region_name},
    }


def test_two_runs_at_once_each_sign_as_their_own_block_and_a_later_run_as_the_process(aws, block_user) -> None:
    iam = boto3.client("iam")
    iam.create_user(UserName="novaflow-other")
    key = iam.create_access_key(UserName="novaflow-other")["AccessKey"]
    other = AwsCredentials(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="eu-west-2",
        aws_client_parameters=AwsClientParameters(endpoint_url=aws.url),
    )
    with ThreadPoolExecutor(2) as pool:
        saved = pool.submit(_run_identity, aws_credentials=BLOCK, bucket="isolation-saved", both=True)
        given = pool.submit(_run_identity, aws_credentials=other, bucket="isolation-given", both=True)
        first, second = saved.result(timeout=120), given.result(timeout=120)
    assert first == {"arn": block_user["arn"], "key": block_user["key_id"], "regions": {BLOCK_REGION}}
    assert second == {
        "arn": iam.get_user(UserName="novaflow-other")["User"]["Arn"],
        "key": key["AccessKeyId"],
        "regions": {"eu-west-2"},
    }
    # A later run without a block works as the process does, in the environment's region.
    process = _run_identity(bucket="isolation-process")
    assert process["key"] == "testing" and process["regions"] == {"us-east-1"}
    assert process["arn"] not in (first["arn"], second["arn"])
    # What the embedded AWS recorded: each bucket in the region of the run that created it.
    s3 = boto3.client("s3")
    located = {
        name: s3.get_bucket_location(Bucket=name)["LocationConstraint"]
        for name in ("isolation-saved", "isolation-given", "isolation-process")
    }
    assert located == {"isolation-saved": BLOCK_REGION, "isolation-given": "eu-west-2", "isolation-process": None}


def test_a_missing_block_fails_the_run_in_one_line_before_any_work(aws) -> None:
    state = verify_reward(aws_credentials="no-such-block", return_state=True)
    assert state.is_failed()
    with pytest.raises(ConfigError) as err:
        state.result()
    assert str(err.value) == (
        "AwsCredentials block 'no-such-block' does not exist on the Prefect server: create it (UI: Blocks > "
        "AWS Credentials) or fix the aws_credentials parameter."
    )
