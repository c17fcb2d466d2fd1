"""State-change events, as SageMaker and Bedrock send them to EventBridge, and SNS targets for EventBridge rules.

On AWS, SageMaker puts a ``SageMaker Training Job State Change`` event (source ``aws.sagemaker``, the job's
describe answer as ``detail``) on the account's default bus when a training job's status changes, and Bedrock a
``Model Customization Job State Change`` (source ``aws.bedrock``, ``jobName``/``jobStatus``/``failureMessage``...
in ``detail``); rules route them to SQS queues, SNS topics, Lambda. Moto has the bus and the rules but no service
sends to them, and its rules cannot target SNS. So the embedded AWS watches every job's status (a thread reading
the same state ``Describe*`` shows, without counting as a describe) and puts one event per status change through
moto's ``PutEvents`` path, and rules get SNS targets (publish to the topic, which delivers to its subscriptions
such as SQS queues). Shapes: docs/embedded-aws.md#eventbridge-events.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
from moto.events import models as events_models
from moto.events import utils as events_utils
from moto.utilities.arns import parse_arn

from novaflow.local.aws import moto_bedrock, moto_sagemaker
from novaflow.local.aws.moto_bedrock import _StockJob
from novaflow.local.emulator import jobstate

_LOG = logging.getLogger("novaflow.local.events")
SAGEMAKER_TRAINING = ("aws.sagemaker", "SageMaker Training Job State Change")
BEDROCK_CUSTOMIZATION = ("aws.bedrock", "Model Customization Job State Change")
POLL_SECONDS = 0.1

_SEEN: dict[str, str] = {}
"""Job ARN -> the last status an event was sent for."""
_LOCK = threading.Lock()
_THREAD: threading.Thread | None = None
_STOP = threading.Event()
_stock_send_to_targets: Callable[..., None] = events_models.Rule.send_to_targets
_stock_parse: Callable[..., Any] = events_utils.EventTemplateParser.parse


def _millis(value: Any) -> Any:
    """Times in SageMaker's event ``detail`` are epoch milliseconds as strings (AWS's sample event)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return str(int(moment.timestamp() * 1000))
    if isinstance(value, dict):
        return {k: _millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_millis(v) for v in value]
    return value


def _iso(value: Any) -> Any:
    """Bedrock's event times are ISO seconds in UTC (``2023-08-11T12:34:56Z``); moto keeps them as datetimes or as
    ``2023-08-11 12:34:56`` strings."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def sagemaker_detail(job: Any, answer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event ``detail`` of a training job: its describe answer (``answer``, or read without advancing the job),
    times in epoch millis, tags as a map."""
    if answer is not None:
        describe = answer
    else:
        describe = job.describe(advance=False) if hasattr(job, "describe") else job.response_object
    detail = _millis(copy.deepcopy(describe))
    detail["Tags"] = {t["Key"]: t["Value"] for t in getattr(job, "tags", None) or []}
    return dict(detail)


def bedrock_detail(job: Any) -> dict[str, Any]:
    """The event ``detail`` of a customization job, as in Bedrock's sample event (``jobStatus``, not ``status``)."""
    raw = _StockJob.to_dict(job)  # the stock view: reads the status without advancing it
    detail: dict[str, Any] = {"version": "0.0"}
    for key in ("jobName", "jobArn", "outputModelName", "outputModelArn", "roleArn"):
        if raw.get(key):
            detail[key] = raw[key]
    detail["jobStatus"] = raw.get("status") or job.status
    if raw.get("failureMessage"):
        detail["failureMessage"] = raw["failureMessage"]
    for key in ("creationTime", "lastModifiedTime", "endTime"):
        if raw.get(key):
            detail[key] = _iso(raw[key])
    for key in ("baseModelArn", "hyperParameters", "trainingDataConfig", "validationDataConfig", "outputDataConfig"):
        if raw.get(key):
            detail[key] = raw[key]
    return detail


def _put(account: str, region: str, kind: tuple[str, str], arn: str, detail: dict[str, Any]) -> None:
    backend = events_models.events_backends[account][region]
    source, detail_type = kind
    backend.put_events(
        [{"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "Resources": [arn]}]
    )


def emit_changes() -> int:
    """Send one event for every job whose status changed since the last call; returns how many were sent."""
    from moto.bedrock.models import bedrock_backends
    from moto.sagemaker.models import sagemaker_backends

    sent = 0
    for account, regions in list(sagemaker_backends.items()):
        for region, backend in list(regions.items()):
            for job in list(backend.training_jobs.values()):
                status = job.training_job_status
                if _changed(job.arn, status):
                    _put(account, region, SAGEMAKER_TRAINING, job.arn, sagemaker_detail(job))
                    sent += 1
    for account, bedrock_regions in list(bedrock_backends.items()):
        for region, bedrock in list(bedrock_regions.items()):
            for customization in list(bedrock.model_customization_jobs.values()):
                arn = customization.job_arn
                if _changed(arn, customization.status):
                    _put(account, region, BEDROCK_CUSTOMIZATION, arn, bedrock_detail(customization))
                    sent += 1
    return sent


def _on_training_job_created(job: Any, url: str, account: str, region: str) -> None:
    """The InProgress event at creation, before the emulator can move the job on between two ticks of the watcher
    (a job that fails at once would otherwise show only its Failed event)."""
    with jobstate.peeking():
        if _changed(job.arn, job.training_job_status):
            _put(account, region, SAGEMAKER_TRAINING, job.arn, sagemaker_detail(job))


def _on_training_job_described(job: Any, answer: dict[str, Any]) -> None:
    """The status a describe is about to show gets its event first. On AWS the event exists by the time anyone can
    read the change; sent only at the watcher's next tick, a run that removes its rule as soon as it sees its last
    job end lost that job's event (seen under load in the notifications test)."""
    if _changed(job.arn, answer["TrainingJobStatus"]):
        arn = parse_arn(job.arn)
        _put(arn.account, arn.region, SAGEMAKER_TRAINING, job.arn, sagemaker_detail(job, answer))


def _on_customization_job_read(job: Any, answer: dict[str, Any]) -> None:
    """As :func:`_on_training_job_described`, for a Bedrock customization job."""
    if _changed(job.job_arn, answer.get("status") or job.status):
        arn = parse_arn(job.job_arn)
        _put(arn.account, arn.region, BEDROCK_CUSTOMIZATION, job.job_arn, bedrock_detail(job))


def _bedrock_create(original: Callable[..., str]) -> Callable[..., str]:
    def create_model_customization_job(self: Any, job_name: str, *args: Any, **kwargs: Any) -> str:
        arn = original(self, job_name, *args, **kwargs)
        job = self.model_customization_jobs[job_name]
        if _changed(arn, job.status):  # InProgress at creation, as for training jobs
            _put(self.account_id, self.region_name, BEDROCK_CUSTOMIZATION, arn, bedrock_detail(job))
        return arn

    create_model_customization_job.__wrapped__ = original  # type: ignore[attr-defined]
    return create_model_customization_job


def _changed(arn: str, status: str) -> bool:
    with _LOCK:
        if _SEEN.get(arn) == status:
            return False
        _SEEN[arn] = status
        return True


def _loop() -> None:
    while not _STOP.wait(POLL_SECONDS):
        try:
            with jobstate.peeking():
                emit_changes()
        except Exception as exc:  # a job torn down mid-read: the next tick sees a consistent state
            _LOG.debug("job events: %s", exc)


# -- EventBridge rules with SNS targets ---------------------------------------------------------------
def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
    """Moto's delivery, plus SNS topics as targets: the (transformed) event is published to the topic."""
    if not self.event_pattern.matches_event(original_event):
        return
    sns_targets = [t for t in self.targets if parse_arn(t["Arn"]).service == "sns"]
    others = [t for t in self.targets if parse_arn(t["Arn"]).service != "sns"]
    if others:
        clone = copy.copy(self)
        clone.targets = others
        _stock_send_to_targets(clone, copy.deepcopy(original_event), transform_input)
    if not sns_targets:
        return
    from moto.sns.models import sns_backends

    event = copy.deepcopy(original_event)
    if isinstance(event.get("time"), int | float):
        event["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(event["time"]))
    for target in sns_targets:
        transformer = target.get("InputTransformer", {})
        body: Any = (
            events_utils.EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=event,  # type: ignore[arg-type]
            )
            if transform_input
            else event
        )
        if "Input" in target:
            body = json.loads(target["Input"])
        arn = parse_arn(target["Arn"])
        message = body if isinstance(body, str) else json.dumps(body)
        sns_backends[arn.account][arn.region].publish(message=message, arn=target["Arn"])


def parse(input_template: str, input_paths_map: dict[str, Any], event: dict[str, Any]) -> Any:
    """Moto's input transformer, with two of AWS's rules moto misses: a target without a transformer gets the whole
    event (moto's default template drops ``account``), and a variable whose path the event lacks is not created,
    so it adds nothing to the output (moto leaves ``<name>`` in the text)."""
    if not input_template:
        return {k: v for k, v in event.items() if k != "ingestion-time"}  # moto's own bookkeeping field
    if input_paths_map:
        from jsonpath_ng.ext.parser import parse as jsonpath

        for name, path in input_paths_map.items():
            if not jsonpath(path).find(event):
                input_template = input_template.replace(f"<{name}>", "")
        input_paths_map = {k: v for k, v in input_paths_map.items() if f"<{k}>" in input_template}
        if not input_paths_map:
            return json.loads(input_template)
    return _stock_parse(input_template, input_paths_map, event)


def install() -> None:
    """Route rules to SNS too, and start the status watcher (idempotent)."""
    global _THREAD
    events_models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]
    events_utils.EventTemplateParser.parse = staticmethod(parse)  # type: ignore[method-assign,assignment]
    from moto.bedrock.models import BedrockBackend

    if not hasattr(BedrockBackend.create_model_customization_job, "__wrapped__"):
        BedrockBackend.create_model_customization_job = _bedrock_create(  # type: ignore[method-assign]
            BedrockBackend.create_model_customization_job
        )
    if _on_training_job_described not in moto_sagemaker.ON_TRAINING_JOB_DESCRIBED:
        moto_sagemaker.ON_TRAINING_JOB_DESCRIBED.append(_on_training_job_described)
    if _on_customization_job_read not in moto_bedrock.ON_CUSTOMIZATION_JOB_READ:
        moto_bedrock.ON_CUSTOMIZATION_JOB_READ.append(_on_customization_job_read)
    if _on_training_job_created not in moto_sagemaker.ON_TRAINING_JOB_CREATED:
        moto_sagemaker.ON_TRAINING_JOB_CREATED.insert(0, _on_training_job_created)  # before the emulator starts
    if _THREAD is None or not _THREAD.is_alive():
        _STOP.clear()
        _THREAD = threading.Thread(target=_loop, name="eventbridge-job-events", daemon=True)
        _THREAD.start()


def reset() -> None:
    """After ``/moto-api/reset``: every job is gone, so forget what was sent."""
    with _LOCK:
        _SEEN.clear()
