"""The jobs' own end events for ``novaflow watch``: EventBridge rules on job state changes, an SQS queue as target.

SageMaker puts a ``SageMaker Training Job State Change`` event on the account's default bus when a training job
(on instances or serverless) changes status, and Bedrock a ``Model Customization Job State Change``. With a queue
configured (``watch_events_queue``), the watcher creates - idempotently - the queue, a queue policy that lets
``events.amazonaws.com`` send to it from these rules only, and one rule per service matching the statuses that end
a job (Completed, Failed, Stopped) with the queue as target. It then long-polls the queue and resumes the suspended
run waiting on each event's job, instead of describing every waited job on a timer. HyperPod jobs (Kubernetes
objects) and Bedrock batch inference jobs send no such event here, so the watcher polls them.

The rules cover every job of the account, not only novaflow's: a suspended run's jobs are not known when the rules
are written, and a job name (a spec hash) cannot be matched by prefix. The watcher deletes what it read - events
of other jobs included - so the queue never grows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from novaflow.aws import get_client
from novaflow.settings import NovaflowSettings

ENDED = ("Completed", "Failed", "Stopped")
"""The statuses that end a job (TrainingJobStatus and Bedrock's jobStatus use the same words)."""
EVENT_PLATFORMS = frozenset({"SMTJ", "SERVERLESS", "BEDROCK"})
"""Ledger platforms whose jobs send state-change events (training jobs and model customization jobs)."""
RECEIVE_WAIT_SECONDS = 20
"""SQS's longest long poll."""
_KINDS = {
    "sagemaker": ("aws.sagemaker", "SageMaker Training Job State Change", "TrainingJobName", "TrainingJobStatus"),
    "bedrock": ("aws.bedrock", "Model Customization Job State Change", "jobName", "jobStatus"),
}


@dataclass(frozen=True)
class JobEvent:
    """One message of the queue: the job it is about (None for a message that is no job event) and its status."""

    job_name: str | None
    status: str | None
    receipt_handle: str

    @property
    def ended(self) -> bool:
        return self.job_name is not None and self.status in ENDED


def rule_names(queue_name: str) -> dict[str, str]:
    """The queue's rule per service (EventBridge names: at most 64 characters)."""
    return {kind: f"{queue_name[:48]}-{kind}" for kind in _KINDS}


@dataclass(frozen=True)
class JobEventQueue:
    """The queue the watcher reads; :func:`ensure_job_event_queue` makes one."""

    name: str
    url: str
    arn: str
    settings: NovaflowSettings

    def receive(self, wait_seconds: float) -> list[JobEvent]:
        """Up to ten events, waiting up to ``wait_seconds`` (at most 20) for the first."""
        answer = get_client("sqs", self.settings).receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=max(0, min(RECEIVE_WAIT_SECONDS, int(wait_seconds))),
        )
        return [parse_message(m["Body"], m["ReceiptHandle"]) for m in answer.get("Messages", [])]

    def delete(self, events: list[JobEvent]) -> None:
        if not events:
            return
        get_client("sqs", self.settings).delete_message_batch(
            QueueUrl=self.url,
            Entries=[{"Id": str(i), "ReceiptHandle": e.receipt_handle} for i, e in enumerate(events)],
        )


def parse_message(body: str, receipt_handle: str) -> JobEvent:
    """The job and status of an EventBridge event as the rule delivered it (the whole event, as JSON)."""
    try:
        event = json.loads(body)
    except ValueError:
        return JobEvent(None, None, receipt_handle)
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        return JobEvent(None, None, receipt_handle)
    for source, detail_type, name_field, status_field in _KINDS.values():
        if event.get("source") == source and event.get("detail-type") == detail_type:
            return JobEvent(detail.get(name_field), detail.get(status_field), receipt_handle)
    return JobEvent(None, None, receipt_handle)


def ensure_job_event_queue(queue_name: str, settings: NovaflowSettings) -> JobEventQueue:
    """Create (or find) the queue and its rules; safe to call on every start of the watcher."""
    sqs = get_client("sqs", settings)
    events = get_client("events", settings)
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule_arns = []
    for kind, rule in rule_names(queue_name).items():
        source, detail_type, _, status_field = _KINDS[kind]
        pattern = {"source": [source], "detail-type": [detail_type], "detail": {status_field: list(ENDED)}}
        rule_arns.append(
            events.put_rule(
                Name=rule,
                EventPattern=json.dumps(pattern),
                State="ENABLED",
                Description=f"novaflow watch: {detail_type} events (job ended) -> SQS {queue_name}",
            )["RuleArn"]
        )
        events.put_targets(Rule=rule, Targets=[{"Id": "novaflow-watch", "Arn": arn}])
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(queue_policy(arn, rule_arns))})
    return JobEventQueue(queue_name, url, arn, settings)


def queue_policy(queue_arn: str, rule_arns: list[str]) -> dict[str, object]:
    """EventBridge may send to the queue, from the watcher's rules only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "novaflow-watch-job-events",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            }
        ],
    }
