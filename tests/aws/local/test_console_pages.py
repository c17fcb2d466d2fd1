"""The embedded AWS's job pages: where a local run's report links instead of the AWS console."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest

from novaflow.reports.run import JobLink


def test_a_job_link_opens_the_jobs_page_on_the_embedded_aws(aws: Any) -> None:
    sm = boto3.client("sagemaker")
    sm.create_training_job(
        TrainingJobName="page-job",
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/r",
        OutputDataConfig={"S3OutputPath": "s3://novaflow-local/out"},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    console = os.environ["NOVAFLOW_CONSOLE_URL"]
    assert console == f"{aws.url}/moto-api/ext/console"
    link = JobLink("sft", "page-job", "InProgress", "us-east-1", console=console)
    assert link.console_url == f"{aws.url}/moto-api/ext/console/sagemaker/jobs/page-job?region=us-east-1"
    with urllib.request.urlopen(link.console_url) as page:
        text = page.read().decode()
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>page-job</h1>" in text and "<th>TrainingJobStatus</th>" in text and "ml.p5.48xlarge" in text
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(link.console_url.replace("page-job", "no-such-job"))
    assert missing.value.code == 404 and "No training job no-such-job" in missing.value.read().decode()


def test_without_a_console_setting_a_job_link_is_the_aws_console() -> None:
    link = JobLink("sft", "j1", "Completed", "eu-west-1")
    assert link.console_url == "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/j1"
