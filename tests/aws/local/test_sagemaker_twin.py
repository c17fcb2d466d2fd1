"""SageMaker and SageMaker Runtime behave like AWS under the patches, observed through plain boto3."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import scenario

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def _bare_job(name: str) -> None:
    boto3.client("sagemaker").create_training_job(
        TrainingJobName=name,
        RoleArn=LOCAL_ROLE_ARN,
        AlgorithmSpecification={"TrainingImage": scenario.IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://novaflow-local/out"},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def test_job_without_recipe_fails_with_a_reason_and_logs_it(twin) -> None:
    _bare_job("no-recipe")
    job = scenario.wait("no-recipe", timeout=20)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: no 'recipe' input channel; a Nova job needs the resolved recipe"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Downloading", "Failed"]
    assert "ModelArtifacts" not in job
    logs = boto3.client("logs")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="no-recipe/")[
        "logStreams"
    ][0]["logStreamName"]
    assert stream.startswith("no-recipe/algo-1-")
    messages = [
        e["message"]
        for e in logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)["events"]
    ]
    assert messages[-1].endswith("[ERROR] ClientError: no 'recipe' input channel; a Nova job needs the resolved recipe")


def test_duplicate_training_job_name_is_rejected_like_aws(twin) -> None:
    _bare_job("dup-job")
    with pytest.raises(ClientError) as info:
        _bare_job("dup-job")
    assert info.value.response["Error"]["Code"] == "ResourceInUse"
    assert info.value.response["Error"]["Message"] == (
        "Training job names must be unique within an AWS account and region, and a training job with this name "
        "already exists (arn:aws:sagemaker:us-east-1:123456789012:training-job/dup-job)"
    )


def test_stop_goes_stopping_then_stopped_and_rejects_a_second_stop(twin) -> None:
    twin.control.stall_job("stop-me")
    _bare_job("stop-me")
    sm = boto3.client("sagemaker")
    sm.stop_training_job(TrainingJobName="stop-me")
    statuses = [sm.describe_training_job(TrainingJobName="stop-me")["TrainingJobStatus"]]
    job = scenario.wait("stop-me", timeout=10)
    statuses.append(job["TrainingJobStatus"])
    assert statuses == ["Stopping", "Stopped"]
    assert job["SecondaryStatusTransitions"][-2:][0]["Status"] == "Stopping"
    with pytest.raises(ClientError) as info:
        sm.stop_training_job(TrainingJobName="stop-me")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert (
        info.value.response["Error"]["Message"]
        == "The request was rejected because the training job is in status Stopped."
    )
    with pytest.raises(ClientError, match="Could not find training job"):
        sm.stop_training_job(TrainingJobName="never-created")


def test_manual_transition_shows_each_secondary_status(twin) -> None:
    twin.control.set_transition("sagemaker::training_job", {"progression": "manual", "times": 1})
    twin.control.stall_job("held")
    _bare_job("held")
    sm = boto3.client("sagemaker")
    seen = [sm.describe_training_job(TrainingJobName="held")["SecondaryStatus"] for _ in range(2)]
    assert seen[0] == "Starting"
    assert sm.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"][0]["TrainingJobName"] == "held"


def test_injected_failure_and_throttling_are_seen_as_aws_shows_them(twin) -> None:
    twin.control.stall_job("doomed")
    _bare_job("doomed")
    twin.control.fail_job("doomed", "AlgorithmError: CUDA out of memory")
    sm = boto3.client("sagemaker", config=NO_RETRY)
    # The status turns Failed once the (stalled) worker has woken, logged the reason and exited - milliseconds.
    deadline = time.monotonic() + 10
    while (job := sm.describe_training_job(TrainingJobName="doomed"))["TrainingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline, "the injected failure never showed"
        time.sleep(0.02)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"], job["FailureReason"]) == (
        "Failed",
        "Failed",
        "AlgorithmError: CUDA out of memory",
    )
    twin.control.throttle("DescribeTrainingJob", 2)
    for _ in range(2):
        with pytest.raises(ClientError) as info:
            sm.describe_training_job(TrainingJobName="doomed")
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sm.describe_training_job(TrainingJobName="doomed")["TrainingJobStatus"] == "Failed"


def _endpoint(name: str, checkpoint: str | None = None) -> None:
    sm = boto3.client("sagemaker")
    container = {"Image": "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-inference-repo:SM-Inference-latest"}
    if checkpoint:
        container["ModelDataSource"] = {
            "S3DataSource": {"S3Uri": checkpoint + "/", "S3DataType": "S3Prefix", "CompressionType": "None"}
        }
    sm.create_model(ModelName=f"{name}-model", PrimaryContainer=container, ExecutionRoleArn=LOCAL_ROLE_ARN)
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g6e.2xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def test_endpoint_creating_then_in_service_and_base_model_answers(twin) -> None:
    twin.control.set_transition("sagemaker::endpoint", {"progression": "manual", "times": 1})
    _endpoint("ep-base")
    sm = boto3.client("sagemaker")
    assert [sm.describe_endpoint(EndpointName="ep-base")["EndpointStatus"] for _ in range(3)] == [
        "Creating",
        "InService",
        "InService",
    ]
    request = {
        "messages": [
            {"role": "system", "content": "Reply HQ, LQ_EDIT or LQ_CLOSE."},
            {"role": "user", "content": "Why does my loop never end?"},
        ],
        "max_tokens": 20,
    }
    reply = boto3.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="ep-base", Body=json.dumps(request), ContentType="application/json"
    )
    body = json.loads(reply["Body"].read())
    assert reply["ContentType"] == "application/json"
    assert body["object"] == "chat.completion"
    from novaflow.local.models.classifier import base_answer

    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": base_answer("Reply HQ, LQ_EDIT or LQ_CLOSE.", "Why does my loop never end?"),
    }


def test_unknown_endpoint_is_a_validation_error(twin) -> None:
    runtime = boto3.client("sagemaker-runtime", config=NO_RETRY)
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="gone", Body=b"{}", ContentType="application/json")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert info.value.response["Error"]["Message"] == "Endpoint gone of account 123456789012 not found."
    with pytest.raises(ClientError) as streamed:  # the streaming call resolves the endpoint the same way
        runtime.invoke_endpoint_with_response_stream(EndpointName="gone", Body=b"{}", ContentType="application/json")
    assert streamed.value.response["Error"] == info.value.response["Error"]
    with pytest.raises(ClientError, match="Could not find endpoint"):
        boto3.client("sagemaker").describe_endpoint(EndpointName="gone")


def test_response_stream_carries_the_same_answer_in_payload_parts(twin) -> None:
    _endpoint("ep-stream")
    request = {"messages": [{"role": "user", "content": "Is this HQ or LQ_CLOSE, please?"}], "stream": True}
    runtime = boto3.client("sagemaker-runtime")
    stream = runtime.invoke_endpoint_with_response_stream(
        EndpointName="ep-stream", Body=json.dumps(request), ContentType="application/json"
    )
    parts = [event["PayloadPart"]["Bytes"] for event in stream["Body"]]
    assert len(parts) > 1
    text = b"".join(parts).decode()
    records = [line[len("data: ") :] for line in text.split("\n\n") if line]
    assert records[-1] == "[DONE]"
    chunks = [json.loads(r) for r in records[:-1]]
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    plain = json.loads(
        runtime.invoke_endpoint(
            EndpointName="ep-stream", Body=json.dumps({"messages": request["messages"]}), ContentType="application/json"
        )["Body"].read()
    )
    assert streamed == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def _model_and_config(name: str, checkpoint: str) -> str:
    sm = boto3.client("sagemaker")
    container = {
        "Image": "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-inference-repo:SM-Inference-latest",
        "ModelDataSource": {
            "S3DataSource": {"S3Uri": checkpoint + "/", "S3DataType": "S3Prefix", "CompressionType": "None"}
        },
    }
    sm.create_model(ModelName=f"{name}-model", PrimaryContainer=container, ExecutionRoleArn=LOCAL_ROLE_ARN)
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.g6e.2xlarge",
            }
        ],
    )
    return f"{name}-config"


def _policy_checkpoint(url: str, name: str, label: str) -> str:
    """An emulator checkpoint whose one-class policy answers ``label`` to anything."""
    from novaflow.local.emulator import aws_io
    from novaflow.local.models.classifier import LinearPolicy

    uri = f"s3://{aws_io.escrow_bucket()}/{name}/outputs/checkpoints"
    aws_io.save_policy(url, uri, LinearPolicy.empty([label]))
    return uri


def _ask(endpoint: str) -> str:
    reply = boto3.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint,
        ContentType="application/json",
        Body=json.dumps({"messages": [{"role": "user", "content": "Why does my loop never end?"}]}),
    )
    return json.loads(reply["Body"].read())["choices"][0]["message"]["content"]


def test_update_endpoint_goes_updating_then_in_service_and_serves_the_new_model(twin) -> None:
    _endpoint("ep-upd", _policy_checkpoint(twin.url, "old", "HQ"))
    new_config = _model_and_config("ep-upd-v2", _policy_checkpoint(twin.url, "new", "LQ_EDIT"))
    sm = boto3.client("sagemaker")
    assert _ask("ep-upd") == "HQ"
    twin.control.set_transition("sagemaker::endpoint", {"progression": "manual", "times": 2})
    arn = sm.update_endpoint(EndpointName="ep-upd", EndpointConfigName=new_config)["EndpointArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep-upd"
    updating = sm.describe_endpoint(EndpointName="ep-upd")
    assert updating["EndpointStatus"] == "Updating"
    # The old fleet serves until the new one is in service, as on AWS.
    assert updating["EndpointConfigName"] == "ep-upd-config"
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == new_config
    assert [v["DesiredInstanceCount"] for v in updating["PendingDeploymentSummary"]["ProductionVariants"]] == [2]
    assert _ask("ep-upd") == "HQ"
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep-upd", EndpointConfigName=new_config)
    assert info.value.response["Error"]["Message"] == f'Cannot update in-progress endpoint "{arn}".'
    assert sm.describe_endpoint(EndpointName="ep-upd")["EndpointStatus"] == "Updating"  # second describe
    done = sm.describe_endpoint(EndpointName="ep-upd")
    assert done["EndpointStatus"] == "InService" and done["EndpointConfigName"] == new_config
    assert "PendingDeploymentSummary" not in done
    assert done["LastModifiedTime"] > done["CreationTime"]
    assert [v["CurrentInstanceCount"] for v in done["ProductionVariants"]] == [2]
    assert _ask("ep-upd") == "LQ_EDIT"
    assert [e["EndpointStatus"] for e in sm.list_endpoints(NameContains="ep-upd")["Endpoints"]] == ["InService"]


def test_update_with_immediate_transition_is_served_by_the_new_model_at_once(twin) -> None:
    _endpoint("ep-now")
    new_config = _model_and_config("ep-now-v2", _policy_checkpoint(twin.url, "now", "LQ_CLOSE"))
    boto3.client("sagemaker").update_endpoint(EndpointName="ep-now", EndpointConfigName=new_config)
    assert _ask("ep-now") == "LQ_CLOSE"  # no describe in between: the invocation itself sees the finished update
    boto3.client("sagemaker").get_waiter("endpoint_in_service").wait(EndpointName="ep-now")


def test_update_endpoint_refuses_unknown_names_and_in_progress_endpoints(twin) -> None:
    sm = boto3.client("sagemaker", config=NO_RETRY)
    _endpoint("ep-real")
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep-ghost", EndpointConfigName="ep-real-config")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert (
        info.value.response["Error"]["Message"]
        == "Could not find endpoint 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep-ghost'."
    )
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep-real", EndpointConfigName="no-such-config")
    assert (
        info.value.response["Error"]["Message"] == "Could not find endpoint configuration "
        "'arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/no-such-config'."
    )
    assert sm.describe_endpoint(EndpointName="ep-real")["EndpointStatus"] == "InService"
    twin.control.set_transition("sagemaker::endpoint", {"progression": "manual", "times": 5})
    _endpoint("ep-young")
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep-young", EndpointConfigName="ep-real-config")
    assert (
        info.value.response["Error"]["Message"]
        == 'Cannot update in-progress endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep-young".'
    )
    assert sm.describe_endpoint(EndpointName="ep-young")["EndpointConfigName"] == "ep-young-config"
