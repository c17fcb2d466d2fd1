"""AWS-native notifications of a run's jobs: EventBridge rules on their state changes, with an SNS target.

Teams that already route alerts through SNS (e-mail, chat, paging) want the service's own events, as the
sagemaker v3 SDK offers them (``notifications={"sns_topic_arn": ...}`` on a trainer): an EventBridge rule matching
``SageMaker Training Job State Change`` events whose target is the topic, with an input transformer that turns
the event into a short readable message (job, status, time, failure reason, console link). novaflow does the same
for the jobs of one run — SageMaker training jobs and Bedrock customization jobs — with the run's own rules:

* the topic is checked before the run spends anything (``GetTopicAttributes``: it exists and the caller can see it);
* the run records its topic under ``<prefix>/runs/<run-id>/notifications.json``; each job the run registers is
  added to the rules' event patterns (job names are a hash of the spec, so the rule names them one by one), from
  whatever process registers it — a re-run after a crash included;
* the rules are removed when the run ends.

The statuses notified default to sagemaker v3's (Completed, Failed, Stopped): a job's InProgress event is sent the
moment it is created, before the run could add it to the pattern.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence

from novaflow.aws import error_code, error_message, get_client, split_s3_uri
from novaflow.errors import ConfigError
from novaflow.runs.ledger import SAGEMAKER_PLATFORMS, jobs_of_run
from novaflow.settings import NovaflowSettings

TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$")
DEFAULT_EVENTS = ("Completed", "Failed", "Stopped")
SAGEMAKER_STATUSES = frozenset({"InProgress", "Completed", "Failed", "Stopping", "Stopped"})
"""TrainingJobStatus values; Bedrock's jobStatus uses the same five words."""
CONFIG_KEY = "notifications.json"
_SAGEMAKER_PATHS = {
    "job": "$.detail.TrainingJobName",
    "status": "$.detail.TrainingJobStatus",
    "failure": "$.detail.FailureReason",
    "time": "$.time",
    "region": "$.region",
    "account": "$.account",
}
_BEDROCK_PATHS = {
    "job": "$.detail.jobName",
    "status": "$.detail.jobStatus",
    "failure": "$.detail.failureMessage",
    "time": "$.time",
    "region": "$.region",
    "account": "$.account",
}


def check_topic(topic_arn: str, settings: NovaflowSettings) -> None:
    """Refuse, in one line, a topic that is malformed, missing or not visible to the caller."""
    if not TOPIC_ARN_RE.match(topic_arn):
        raise ConfigError(
            f"notifications.sns_topic_arn {topic_arn!r} is not an SNS topic ARN "
            "(arn:aws:sns:<region>:<account>:<topic>); fix it or leave it empty"
        )
    try:
        get_client("sns", settings).get_topic_attributes(TopicArn=topic_arn)
    except Exception as exc:
        code = error_code(exc)
        if code in {"NotFound", "NotFoundException"}:
            raise ConfigError(
                f"notifications.sns_topic_arn {topic_arn}: no such topic; create it (aws sns create-topic) and "
                "allow events.amazonaws.com to publish to it, or fix the ARN"
            ) from None
        if code in {"AuthorizationError", "AccessDenied", "AccessDeniedException"}:
            raise ConfigError(
                f"notifications.sns_topic_arn {topic_arn}: not allowed to read it ({error_message(exc)}); "
                "grant sns:GetTopicAttributes on it"
            ) from None
        raise


def rule_names(run_name: str) -> tuple[str, str]:
    """The run's two rule names (SageMaker, Bedrock): at most 64 characters of ``[.-_A-Za-z0-9]``."""
    safe = re.sub(r"[^.\-_A-Za-z0-9]", "-", run_name)[:36]
    digest = hashlib.sha256(run_name.encode()).hexdigest()[:8]
    base = f"novaflow-{safe}-{digest}"
    return f"{base}-sagemaker", f"{base}-bedrock"


def _config_location(run_id: str, settings: NovaflowSettings) -> tuple[str, str]:
    return split_s3_uri(settings.s3_uri("runs", run_id, CONFIG_KEY))


def enable(
    run_id: str,
    run_name: str,
    topic_arn: str,
    settings: NovaflowSettings,
    events: Sequence[str] = DEFAULT_EVENTS,
) -> None:
    """Record that run ``run_id`` notifies ``topic_arn``; the rules follow as its jobs are registered."""
    unknown = sorted(set(events) - SAGEMAKER_STATUSES)
    if unknown:
        raise ConfigError(
            f"notifications.events: unknown status {', '.join(unknown)}; "
            f"pick from {', '.join(sorted(SAGEMAKER_STATUSES))}"
        )
    bucket, key = _config_location(run_id, settings)
    body = {"run_name": run_name, "sns_topic_arn": topic_arn, "events": list(events)}
    get_client("s3", settings).put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode())
    follow_jobs(run_id, settings)


def _config(run_id: str, settings: NovaflowSettings) -> dict[str, object] | None:
    bucket, key = _config_location(run_id, settings)
    try:
        body = get_client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise
    loaded: dict[str, object] = json.loads(body)
    return loaded


def follow_jobs(run_id: str, settings: NovaflowSettings) -> list[str]:
    """Point the run's rules at every job it registered (no-op without notifications); returns the rule names."""
    config = _config(run_id, settings)
    if config is None:
        return []
    run_name, topic = str(config["run_name"]), str(config["sns_topic_arn"])
    statuses = [str(s) for s in config.get("events") or DEFAULT_EVENTS]  # type: ignore[attr-defined]
    records = jobs_of_run(run_id, settings)
    sagemaker_jobs = sorted({r["job_name"] for r in records if r.get("platform", "SMTJ") in SAGEMAKER_PLATFORMS})
    bedrock_jobs = sorted({r["job_name"] for r in records if r.get("platform") == "BEDROCK"})
    sm_rule, br_rule = rule_names(run_name)
    events = get_client("events", settings)
    written = []
    region = settings.region
    if sagemaker_jobs:
        pattern = {
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Training Job State Change"],
            "detail": {"TrainingJobName": sagemaker_jobs, "TrainingJobStatus": statuses},
        }
        console = f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/<job>"
        _put_rule(events, sm_rule, run_name, topic, pattern, _SAGEMAKER_PATHS, console)
        written.append(sm_rule)
    if bedrock_jobs:
        pattern = {
            "source": ["aws.bedrock"],
            "detail-type": ["Model Customization Job State Change"],
            "detail": {"jobName": bedrock_jobs, "jobStatus": statuses},
        }
        console = f"https://{region}.console.aws.amazon.com/bedrock/home?region={region}#/custom-models"
        _put_rule(events, br_rule, run_name, topic, pattern, _BEDROCK_PATHS, console)
        written.append(br_rule)
    return written


def message_template(run_name: str, console: str) -> str:
    """The readable message: a JSON object of the job, its status, when, why it failed, and where to look."""
    return (
        f'{{"Run": {json.dumps(run_name)}, "Job": "<job>", "Status": "<status>", "Time": "<time>", '
        f'"Region": "<region>", "Account": "<account>", "Failure Reason": "<failure>", "Console": "{console}"}}'
    )


def _put_rule(
    events: object,
    rule: str,
    run_name: str,
    topic: str,
    pattern: Mapping[str, object],
    paths: dict[str, str],
    console: str,
) -> None:
    events.put_rule(  # type: ignore[attr-defined]
        Name=rule,
        EventPattern=json.dumps(pattern),
        State="ENABLED",
        Description=f"novaflow run {run_name}: its jobs' state changes -> {topic}",
    )
    events.put_targets(  # type: ignore[attr-defined]
        Rule=rule,
        Targets=[
            {
                "Id": "sns",
                "Arn": topic,
                "InputTransformer": {"InputPathsMap": paths, "InputTemplate": message_template(run_name, console)},
            }
        ],
    )


def disable(run_id: str, settings: NovaflowSettings) -> list[str]:
    """Remove the run's rules (their targets first, as EventBridge requires); returns the rules removed."""
    config = _config(run_id, settings)
    if config is None:
        return []
    events = get_client("events", settings)
    removed = []
    for rule in rule_names(str(config["run_name"])):
        try:
            targets = events.list_targets_by_rule(Rule=rule).get("Targets", [])
            if targets:
                events.remove_targets(Rule=rule, Ids=[t["Id"] for t in targets])
            events.delete_rule(Name=rule)
            removed.append(rule)
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
    return removed
