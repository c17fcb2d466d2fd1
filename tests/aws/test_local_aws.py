"""The embedded AWS serves other processes through the exported environment only."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3

from novaflow.local import LOCAL_BUCKET, LOCAL_ROLE_ARN


def test_subprocess_reads_and_writes_s3_through_exported_environment(aws) -> None:
    child = (
        "import boto3\n"
        "s3 = boto3.client('s3')\n"
        f"s3.put_object(Bucket='{LOCAL_BUCKET}', Key='from-child.txt', Body=b'written by the child')\n"
        f"print(s3.get_object(Bucket='{LOCAL_BUCKET}', Key='from-child.txt')['Body'].read().decode())\n"
    )
    env = {k: v for k, v in os.environ.items()}
    env.update(aws.env)
    result = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "written by the child"
    # The parent sees the child's object: both talked to the same server.
    body = boto3.client("s3").get_object(Bucket=LOCAL_BUCKET, Key="from-child.txt")["Body"].read()
    assert body == b"written by the child"


def test_seeded_role_trusts_sagemaker(aws) -> None:
    role = boto3.client("iam").get_role(RoleName=LOCAL_ROLE_ARN.split("/")[-1])["Role"]
    assert role["Arn"] == LOCAL_ROLE_ARN
    statements = role["AssumeRolePolicyDocument"]["Statement"]
    assert statements[0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_reset_wipes_objects_but_keeps_seed(aws) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=LOCAL_BUCKET, Key="temp", Body=b"x")
    aws.reset()
    assert s3.list_objects_v2(Bucket=LOCAL_BUCKET).get("KeyCount", 0) == 0
    assert LOCAL_BUCKET in {b["Name"] for b in s3.list_buckets()["Buckets"]}
