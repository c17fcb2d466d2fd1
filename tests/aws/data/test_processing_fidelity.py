"""Fidelity: the Processing job request of ``data prepare --on sagemaker`` equals what sagemaker v3's ``Processor``
sends for the same job: the shard step's input parts read with the ``ShardedByS3Key`` distribution, the spec
replicated to every instance, one output uploaded at the end of the job.

Both requests are captured on the wire (botocore ``before-call``, JSON body) against the embedded AWS. Runs only
where the ``sagemaker`` extra is installed (its own venv, as tests/aws/jobs/test_sagemaker_fidelity.py).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from novaflow.aws import get_client
from novaflow.data import remote
from novaflow.data.sharded import CONTAINER, SPEC_FILE
from novaflow.settings import load_settings

sagemaker = pytest.importorskip("sagemaker")


pytestmark = pytest.mark.usefixtures("no_sdk_telemetry")


def test_the_shard_job_request_equals_sagemaker_v3s(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagemaker.core.helper import session_helper
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output

    settings = load_settings()
    base = settings.s3_uri("prepare", "fidelity")
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/novaflow:latest"
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    client = get_client("sagemaker", settings)

    def hook(params: dict[str, Any], **_: object) -> None:
        ours.append(json.loads(params["body"]))

    client.meta.events.register("before-call.sagemaker.CreateProcessingJob", hook)
    try:
        remote._submit(
            client,
            "novaflow-prepare-fidelity-shard",
            image,
            "shard",
            [
                remote._input("input", f"{base}/input", "input", "ShardedByS3Key"),
                remote._input("spec", f"{base}/spec/{SPEC_FILE}", "spec"),
            ],
            f"{base}/shards",
            3,
            remote.INSTANCE_TYPE,
            settings,
        )
    finally:
        client.meta.events.unregister("before-call.sagemaker.CreateProcessingJob", hook)

    monkeypatch.setattr(session_helper, "sts_regional_endpoint", lambda region: aws.url)
    session = boto3.Session(region_name="us-east-1")
    session.events.register(
        "before-call.sagemaker.CreateProcessingJob", lambda params, **_: theirs.append(json.loads(params["body"]))
    )

    def s3_input(name: str, uri: str, local: str, distribution: str) -> ProcessingInput:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri,
                local_path=f"{CONTAINER}/{local}",
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type=distribution,
            ),
        )

    Processor(
        role=settings.role_arn,
        image_uri=image,
        instance_count=3,
        instance_type=remote.INSTANCE_TYPE,
        entrypoint=["python", "-m", "novaflow.data.sharded"],
        volume_size_in_gb=remote.VOLUME_GB,
        max_runtime_in_seconds=remote.MAX_RUNTIME,
        env={"PYTHONHASHSEED": "0"},
        sagemaker_session=Session(boto_session=session, default_bucket=settings.bucket),
    ).run(
        inputs=[
            s3_input("input", f"{base}/input", "input", "ShardedByS3Key"),
            s3_input("spec", f"{base}/spec/{SPEC_FILE}", "spec", "FullyReplicated"),
        ],
        outputs=[
            ProcessingOutput(
                output_name="output",
                s3_output=ProcessingS3Output(
                    s3_uri=f"{base}/shards", local_path=f"{CONTAINER}/output", s3_upload_mode="EndOfJob"
                ),
            )
        ],
        arguments=["shard", "--spec", f"{CONTAINER}/spec/{SPEC_FILE}"],
        wait=False,
        logs=False,
        job_name="novaflow-prepare-fidelity-shard-v3",
    )
    assert len(ours) == 1 and len(theirs) == 1
    theirs[0]["ProcessingJobName"] = ours[0]["ProcessingJobName"]
    assert ours[0] == theirs[0]
    assert ours[0]["ProcessingInputs"][0]["S3Input"]["S3DataDistributionType"] == "ShardedByS3Key"
