"""`novaflow local up`: starts, prints its endpoint and exports, serves the AWS APIs, exits 0 on SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import boto3
import pytest

from novaflow.local.aws.server import LOCAL_BUCKET


def _clients(url: str) -> dict[str, object]:
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name="us-east-1",
    )
    return {
        name: session.client(name, endpoint_url=url) for name in ("s3", "sagemaker", "logs", "iam", "lambda", "sts")
    }


def test_local_up_serves_and_stops_cleanly_on_sigint(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NOVAFLOW_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "novaflow.cli", "local", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("novaflow local AWS listening on http://127.0.0.1:"), first
        url = first.rsplit(" ", 1)[-1].strip()
        exports = {}
        while len(exports) < 10:
            line = proc.stdout.readline()
            if line.startswith("export "):
                key, _, value = line[len("export ") :].strip().partition("=")
                exports[key] = value
        assert exports["AWS_ENDPOINT_URL"] == url
        assert exports["NOVAFLOW_BUCKET"] == LOCAL_BUCKET

        c = _clients(url)
        assert LOCAL_BUCKET in {b["Name"] for b in c["s3"].list_buckets()["Buckets"]}
        assert c["sagemaker"].list_training_jobs()["TrainingJobSummaries"] == []
        c["logs"].create_log_group(logGroupName="/novaflow/probe")
        assert c["iam"].get_role(RoleName=exports["NOVAFLOW_ROLE_ARN"].split("/")[-1])
        assert c["lambda"].list_functions()["Functions"] == []
        assert c["sts"].get_caller_identity()["Account"] == "123456789012"

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "novaflow local AWS stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Nothing is left listening on the port.
    host, port = url[len("http://") :].split(":")
    time.sleep(0.2)
    with socket.socket() as sock:
        assert sock.connect_ex((host, int(port))) != 0


@pytest.mark.slow
def test_local_up_with_a_quota_serves_and_enforces_it() -> None:
    from botocore.exceptions import ClientError

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NOVAFLOW_"))}
    bad = subprocess.run(
        [sys.executable, "-m", "novaflow.cli", "local", "up", "--quota", "p5=2"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "'p5=2' is not TYPE=N" in bad.stderr and "Traceback" not in bad.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "novaflow.cli", "local", "up", "--quota", "ml.p5.48xlarge=2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
        assert proc.stdout.readline() == "# quota: ml.p5.48xlarge for training job usage = 2 instances\n"
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        quotas = session.client("service-quotas", endpoint_url=url).list_service_quotas(ServiceCode="sagemaker")
        assert [(q["QuotaName"], q["Value"]) for q in quotas["Quotas"]] == [
            ("ml.p5.48xlarge for training job usage", 2.0)
        ]
        with pytest.raises(ClientError) as info:
            session.client("sagemaker", endpoint_url=url).create_training_job(
                TrainingJobName="too-big",
                RoleArn="arn:aws:iam::123456789012:role/novaflow-local-sagemaker-execution",
                AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
                OutputDataConfig={"S3OutputPath": "s3://novaflow-local/out"},
                ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 3, "VolumeSizeInGB": 1},
                StoppingCondition={"MaxRuntimeInSeconds": 60},
            )
        assert info.value.response["Error"]["Code"] == "ResourceLimitExceeded"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
