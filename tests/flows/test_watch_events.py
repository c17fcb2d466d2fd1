"""`novaflow watch` from the jobs' own events, offline: the embedded AWS sends SageMaker's job state changes to
EventBridge, the watcher's rules deliver the ended ones to its SQS queue, and the watcher resumes the suspended run
waiting on the job that ended - not the one whose job still runs - and deletes what it read."""

from __future__ import annotations

import json
import time
from uuid import UUID

import boto3
import pytest
from prefect.client.orchestration import get_client
from prefect.states import Suspended
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters

from flows.watcher import EventResumer, resume_ready_runs, suspended_runs
from novaflow.local.emulator import scenario
from novaflow.runs.job_events import ensure_job_event_queue, rule_names
from novaflow.runs.suspension import WaitedJob, record_waiting
from novaflow.settings import load_settings
from tests.aws.local.test_eventbridge_events import _bare_job  # a job without a recipe: fails, or waits stalled

pytestmark = pytest.mark.slow
QUEUE = "novaflow-watch-test"


def _suspended_runs(count: int) -> list[UUID]:
    """Deployed end-to-end runs, suspended as a run in wait.mode suspend leaves itself."""
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("end-to-end")
        deployment = client.create_deployment(flow_id=flow_id, name="watch-events-test")
        runs = []
        for i in range(count):
            run = client.create_flow_run_from_deployment(deployment, name=f"watched-{i}")
            client.set_flow_run_state(run.id, Suspended(timeout_seconds=3600, pause_key=f"jobs-{i}"), force=True)
            runs.append(run.id)
    return runs


def _state(run_id: UUID) -> str:
    with get_client(sync_client=True) as client:
        return str(client.read_flow_run(run_id).state_name)


def test_the_watcher_resumes_the_run_whose_job_ended_from_its_event_and_leaves_the_other(aws) -> None:
    settings = load_settings()
    queue = ensure_job_event_queue(QUEUE, settings)
    assert ensure_job_event_queue(QUEUE, settings) == queue  # idempotent: the same queue, rules and target
    events, sqs = boto3.client("events"), boto3.client("sqs")
    for kind, rule in rule_names(QUEUE).items():
        described = events.describe_rule(Name=rule)
        pattern = json.loads(described["EventPattern"])
        status = "TrainingJobStatus" if kind == "sagemaker" else "jobStatus"
        assert pattern["detail"] == {status: ["Completed", "Failed", "Stopped"]}
        assert events.list_targets_by_rule(Rule=rule)["Targets"] == [{"Id": "novaflow-watch", "Arn": queue.arn}]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert sorted(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(
        events.describe_rule(Name=rule)["Arn"] for rule in rule_names(QUEUE).values()
    )

    ending, running = _suspended_runs(2)
    record_waiting(str(ending), [WaitedJob("watch-ends", "SMTJ", "sft", "sft_lora")], settings)
    record_waiting(str(running), [WaitedJob("watch-runs", "SMTJ", "sft", "sft_lora")], settings)
    aws.control.stall_job("watch-runs")
    try:
        _bare_job("watch-runs")
        _bare_job("watch-ends")
        assert scenario.wait("watch-ends", timeout=30)["TrainingJobStatus"] == "Failed"

        lines: list[str] = []
        resumer = EventResumer(queue, settings, lines.append)
        deadline = time.monotonic() + 30
        resumed: list[UUID] = []
        while not resumed and time.monotonic() < deadline:
            resumed = resumer.step(1)
        assert resumed == [ending]
        assert lines == [f"resumed flow run {ending}: job watch-ends is Failed (EventBridge)"]
        assert _state(ending) != "Suspended"
        assert _state(running) == "Suspended"
        # the messages read are gone (the InProgress events never matched the rules)
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

        # The safety-net poll does not resume a run whose job still runs either.
        assert resume_ready_runs(settings, lines.append) == []
        assert _state(running) == "Suspended"
    finally:
        boto3.client("sagemaker").stop_training_job(TrainingJobName="watch-runs")
        aws.control.release_job("watch-runs")


def test_the_watcher_describes_each_suspended_runs_jobs_with_that_runs_own_credentials_block(aws) -> None:
    """A watcher serving runs of several accounts or regions: a run started with a credentials block has its jobs
    described with that block's keys and region, a run without one with the watcher's own."""
    iam = boto3.client("iam")
    iam.create_user(UserName="novaflow-watched")
    key = iam.create_access_key(UserName="novaflow-watched")["AccessKey"]
    AwsCredentials(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="eu-west-2",
        aws_client_parameters=AwsClientParameters(endpoint_url=aws.url),
    ).save("novaflow-watched", overwrite=True)
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("sft")
        deployment = client.create_deployment(flow_id=flow_id, name="watch-credentials-test")
        with_block = client.create_flow_run_from_deployment(
            deployment, name="watched-with-block", parameters={"aws_credentials": "novaflow-watched"}
        )
        without = client.create_flow_run_from_deployment(deployment, name="watched-without-block")
        for run in (with_block, without):
            client.set_flow_run_state(run.id, Suspended(timeout_seconds=3600, pause_key="jobs"), force=True)

    watcher = load_settings()
    runs = {run.id: run.settings for run in suspended_runs(watcher)}
    assert runs[without.id] is watcher
    own = runs[with_block.id]
    assert own.region == "eu-west-2" and own.resolved_endpoint_url() == aws.url
    assert own.session is not None
    assert own.session.get_credentials().access_key == key["AccessKeyId"]
