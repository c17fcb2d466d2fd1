"""The embedded AWS sends SageMaker's training job state changes to EventBridge as AWS does, and rules deliver them
to SQS queues and to SNS topics (whose SQS subscriptions receive them), input transformers applied."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import scenario
from tests.aws.helpers import customization_job


def _queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _drain(url: str, want: int, seconds: float = 20) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    time.sleep(0.5)  # nothing more arrives
    extra = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return got + [json.loads(m["Body"]) for m in extra]


def _bare_job(name: str) -> None:
    boto3.client("sagemaker").create_training_job(
        TrainingJobName=name,
        RoleArn=LOCAL_ROLE_ARN,
        AlgorithmSpecification={"TrainingImage": scenario.IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://novaflow-local/out"},
        ResourceConfig={"InstanceType": "ml.p5.48xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
        Tags=[{"Key": "team", "Value": "nlp"}],
    )


def _read_until_completed(twin: Any, name: str, model: str) -> str:
    """A customization job that completes on its second read, read twice (InProgress, then Completed)."""
    twin.control.set_transition("bedrock::model_customization_job", {"progression": "manual", "times": 1})
    arn = customization_job(name, model)
    bedrock = boto3.client("bedrock")
    statuses = [bedrock.get_model_customization_job(jobIdentifier=arn)["status"] for _ in range(2)]
    assert statuses == ["InProgress", "Completed"]
    return arn


def test_a_failing_training_job_sends_in_progress_then_failed_to_a_queue_rule(twin) -> None:
    url, arn = _queue("eb-training-events")
    events = boto3.client("events")
    pattern = {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Training Job State Change"],
        "detail": {"TrainingJobName": ["eb-no-recipe"]},
    }
    events.put_rule(Name="eb-training", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="eb-training", Targets=[{"Id": "q", "Arn": arn}])
    _bare_job("eb-no-recipe")
    job = scenario.wait("eb-no-recipe", timeout=20)
    assert job["TrainingJobStatus"] == "Failed"
    got = _drain(url, 2)
    assert [e["detail"]["TrainingJobStatus"] for e in got] == ["InProgress", "Failed"]
    failed = got[1]
    assert set(failed) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert failed["detail-type"] == "SageMaker Training Job State Change" and failed["source"] == "aws.sagemaker"
    assert failed["resources"] == [job["TrainingJobArn"]] and failed["region"] == "us-east-1"
    assert failed["time"].endswith("Z") and len(failed["time"]) == 20  # 2018-10-06T12:26:13Z
    detail = failed["detail"]
    assert detail["TrainingJobName"] == "eb-no-recipe" and detail["TrainingJobArn"] == job["TrainingJobArn"]
    assert detail["FailureReason"] == job["FailureReason"]
    assert detail["CreationTime"] == str(int(job["CreationTime"].timestamp() * 1000))  # epoch millis, a string
    assert detail["Tags"] == {"team": "nlp"}
    assert [t["Status"] for t in detail["SecondaryStatusTransitions"]] == ["Starting", "Downloading", "Failed"]
    assert "FailureReason" not in got[0]["detail"]
    # the emitter reads without counting as a describe: the job's own describe sequence is unchanged
    assert boto3.client("sagemaker").describe_training_job(TrainingJobName="eb-no-recipe")["TrainingJobStatus"] == (
        "Failed"
    )


def test_an_sns_target_publishes_the_transformed_event_to_its_subscribed_queue(twin) -> None:
    url, queue_arn = _queue("eb-sns-subscriber")
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="eb-alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    events = boto3.client("events")
    pattern = {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Training Job State Change"],
        "detail": {"TrainingJobName": ["eb-to-sns"]},
    }
    events.put_rule(Name="eb-sns", EventPattern=json.dumps(pattern))
    template = '{"Job": "<job>", "Status": "<status>", "Failure Reason": "<failure>"}'
    paths = {
        "job": "$.detail.TrainingJobName",
        "status": "$.detail.TrainingJobStatus",
        "failure": "$.detail.FailureReason",
    }
    events.put_targets(
        Rule="eb-sns",
        Targets=[{"Id": "t", "Arn": topic, "InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}],
    )
    _bare_job("eb-to-sns")
    scenario.wait("eb-to-sns", timeout=20)
    envelopes = _drain(url, 2)
    assert [e["Type"] for e in envelopes] == ["Notification", "Notification"]
    assert {e["TopicArn"] for e in envelopes} == {topic}
    messages = [json.loads(e["Message"]) for e in envelopes]
    reason = "ClientError: no 'recipe' input channel; a Nova job needs the resolved recipe"
    assert messages == [
        {"Job": "eb-to-sns", "Status": "InProgress", "Failure Reason": ""},  # no FailureReason in the event
        {"Job": "eb-to-sns", "Status": "Failed", "Failure Reason": reason},
    ]


def test_a_bedrock_customization_job_sends_its_state_changes_in_bedrocks_shape(twin) -> None:
    url, arn = _queue("eb-bedrock-events")
    events = boto3.client("events")
    pattern = {"source": ["aws.bedrock"], "detail-type": ["Model Customization Job State Change"]}
    events.put_rule(Name="eb-bedrock", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="eb-bedrock", Targets=[{"Id": "q", "Arn": arn}])
    job_arn = _read_until_completed(twin, "eb-cust", "eb-model")
    got = _drain(url, 2)
    assert [(e["source"], e["detail-type"], e["detail"]["jobStatus"]) for e in got] == [
        ("aws.bedrock", "Model Customization Job State Change", "InProgress"),
        ("aws.bedrock", "Model Customization Job State Change", "Completed"),
    ]
    detail = got[1]["detail"]
    assert got[1]["resources"] == [job_arn]
    assert detail["version"] == "0.0" and detail["jobName"] == "eb-cust" and detail["jobArn"] == job_arn
    assert detail["outputModelName"] == "eb-model" and detail["roleArn"] == LOCAL_ROLE_ARN
    assert detail["outputModelArn"] == "arn:aws:bedrock:us-east-1:123456789012:custom-model/eb-model"
    assert detail["hyperParameters"] == {"epochCount": "2"}
    assert "status" not in detail and "failureMessage" not in detail
    assert detail["creationTime"].endswith("Z")


def test_a_status_is_on_the_bus_before_any_describe_shows_it(twin, monkeypatch) -> None:
    """On AWS the state-change event exists by the time a caller can read the new status, so a run that removes its
    rule as soon as it sees its last job end still gets that job's event. With the watcher asleep, the describes
    themselves must send it (SageMaker and Bedrock alike)."""
    from novaflow.local.aws import events as job_events

    monkeypatch.setattr(job_events, "POLL_SECONDS", 3600.0)
    time.sleep(0.3)  # the watcher's current tick ends; its next wait is an hour
    url, arn = _queue("eb-before-describe")
    events = boto3.client("events")
    pattern = {"source": ["aws.sagemaker", "aws.bedrock"]}
    events.put_rule(Name="eb-before-describe", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="eb-before-describe", Targets=[{"Id": "q", "Arn": arn}])
    _bare_job("eb-seen-failed")
    assert scenario.wait("eb-seen-failed", timeout=20)["TrainingJobStatus"] == "Failed"
    _read_until_completed(twin, "eb-seen-cust", "eb-seen-model")
    events.remove_targets(Rule="eb-before-describe", Ids=["q"])  # as a run's clean-up does, at once
    events.delete_rule(Name="eb-before-describe")
    got = _drain(url, 4)
    assert [(e["source"], e["detail"].get("TrainingJobStatus") or e["detail"]["jobStatus"]) for e in got] == [
        ("aws.sagemaker", "InProgress"),
        ("aws.sagemaker", "Failed"),
        ("aws.bedrock", "InProgress"),
        ("aws.bedrock", "Completed"),
    ]
