"""AWS-native notifications offline: an end-to-end run with ``notifications.sns_topic_arn`` sends one SNS message per
state change of its jobs (their terminal ones, by default) to an SQS queue subscribed to the topic; its EventBridge
rule is gone after the run; a topic that does not exist stops the run before anything is spent."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from flows.end_to_end import end_to_end
from flows.params import NotificationParams
from novaflow.runs.notifications import rule_names
from tests.flows.helpers import logs_of, small_params, training_jobs

pytestmark = [pytest.mark.flow, pytest.mark.slow]


def _subscribed_queue(topic: str, name: str) -> str:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def _messages(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
        for message in batch:
            out.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def test_each_job_of_the_run_sends_one_readable_message_and_the_rule_is_removed(tmp_path) -> None:
    topic = boto3.client("sns").create_topic(Name="novaflow-run-alerts")["TopicArn"]
    url = _subscribed_queue(topic, "run-alerts-inbox")
    params = small_params("notified", tmp_path, skip=["deploy"], notifications=NotificationParams(sns_topic_arn=topic))
    before = {j["TrainingJobName"] for j in training_jobs()}
    state = end_to_end(params, return_state=True)
    assert state.is_completed(), state.message
    jobs = {j["TrainingJobName"] for j in training_jobs()} - before
    assert len(jobs) == 5
    time.sleep(1.0)  # the emitter's tick after the last job's end
    messages = _messages(url)
    assert Counter(m["Job"] for m in messages) == Counter({name: 1 for name in jobs}), messages
    for message in messages:
        assert message["Status"] == "Completed" and message["Failure Reason"] == ""
        assert message["Run"] == "notified" and message["Region"] == "us-east-1"
        assert message["Console"] == (
            "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/" + message["Job"]
        )
    names = {r["Name"] for r in boto3.client("events").list_rules(NamePrefix="novaflow-notified")["Rules"]}
    assert rule_names("notified")[0] not in names  # removed at the end of the run
    lines = logs_of(state.state_details.flow_run_id)
    assert f"notifications: the state changes Completed, Failed, Stopped of this run's jobs go to {topic}" in lines
    assert f"notifications: removed EventBridge rule(s) {rule_names('notified')[0]}" in lines


def test_a_missing_topic_stops_the_run_before_any_job(tmp_path) -> None:
    missing = "arn:aws:sns:us-east-1:123456789012:nobody-listens"
    params = small_params("unnotified", tmp_path, notifications=NotificationParams(sns_topic_arn=missing))
    before = len(training_jobs())
    state = end_to_end(params, return_state=True)
    assert state.is_failed()
    assert state.message.endswith(
        f"notifications.sns_topic_arn {missing}: no such topic; create it (aws sns create-topic) and allow "
        "events.amazonaws.com to publish to it, or fix the ARN"
    ), state.message
    assert len(training_jobs()) == before
