"""The watcher's reading of an EventBridge event as its rule delivers it to SQS: the job and status of a SageMaker
training job or a Bedrock customization job; anything else is no job event (read and deleted, never acted on)."""

from __future__ import annotations

import json

from novaflow.runs.job_events import JobEvent, parse_message, queue_policy, rule_names
from novaflow.runs.suspension import suspension_key


def test_sagemaker_and_bedrock_events_name_their_job_and_status() -> None:
    sagemaker = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Training Job State Change",
        "detail": {"TrainingJobName": "nova-lite-2-sft-lora-1a2b", "TrainingJobStatus": "Completed"},
    }
    bedrock = {
        "source": "aws.bedrock",
        "detail-type": "Model Customization Job State Change",
        "detail": {"jobName": "nova-micro-sft-9f", "jobStatus": "Failed", "failureMessage": "bad data"},
    }
    assert parse_message(json.dumps(sagemaker), "r1") == JobEvent("nova-lite-2-sft-lora-1a2b", "Completed", "r1")
    assert parse_message(json.dumps(bedrock), "r2") == JobEvent("nova-micro-sft-9f", "Failed", "r2")
    assert parse_message(json.dumps(sagemaker), "r1").ended
    running = dict(sagemaker, detail={"TrainingJobName": "x", "TrainingJobStatus": "InProgress"})
    assert not parse_message(json.dumps(running), "r3").ended


def test_other_messages_are_no_job_events() -> None:
    crossed = {"source": "aws.bedrock", "detail-type": "SageMaker Training Job State Change", "detail": {}}
    for body in ("not json", json.dumps([1, 2]), json.dumps({"source": "aws.s3"}), json.dumps(crossed)):
        event = parse_message(body, "h")
        assert event == JobEvent(None, None, "h") and not event.ended


def test_the_queue_policy_admits_eventbridge_from_the_watchers_rules_only() -> None:
    assert rule_names("novaflow-watch") == {
        "sagemaker": "novaflow-watch-sagemaker",
        "bedrock": "novaflow-watch-bedrock",
    }
    assert all(len(name) <= 64 for name in rule_names("q" * 80).values())
    policy = queue_policy("arn:aws:sqs:us-east-1:123456789012:novaflow-watch", ["arn:rule/a", "arn:rule/b"])
    assert policy["Statement"] == [
        {
            "Sid": "novaflow-watch-job-events",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": "arn:aws:sqs:us-east-1:123456789012:novaflow-watch",
            "Condition": {"ArnEquals": {"aws:SourceArn": ["arn:rule/a", "arn:rule/b"]}},
        }
    ]


def test_each_suspension_of_a_run_has_its_own_key() -> None:
    """A resume follows a waited job's end, so the next suspension differs in the ledger or the waited jobs."""
    first = suspension_key(["sft", "baseline"], ["sft", "baseline"])
    assert first == suspension_key(["baseline", "sft"], ["baseline", "sft"])  # order does not matter
    assert first.startswith("jobs-") and len(first) == 21
    after_baseline = suspension_key(["sft", "baseline"], ["sft"])
    after_sft = suspension_key(["sft", "baseline", "post-sft", "rft"], ["post-sft", "rft"])
    back_to_rft = suspension_key(["sft", "baseline", "post-sft", "rft"], ["rft"])
    assert len({first, after_baseline, after_sft, back_to_rft}) == 4
