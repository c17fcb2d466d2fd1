"""Close moto 5.2.5's SageMaker gaps: job and endpoint life cycles, StopTrainingJob, names, instance types.

Stock moto marks a training job Completed the moment it is created, overwrites a job whose name is reused,
has no StopTrainingJob, rejects current GPU instance types in endpoint configs, creates endpoints InService and
has no UpdateEndpoint.
novaflow's job poller, its idempotent submit and its endpoint deployer must be tested against the behaviour of
AWS, so these patches make moto behave like AWS (docs/embedded-aws.md#what-stock-moto-does-and-what-the-patches-add).
Pinned to moto 5.2.5 internals; ``tests/unit/local/test_moto_guards.py`` fails loudly if an upgrade moves them.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemaker.exceptions import ResourceInUseException, ValidationError

from novaflow.local.emulator import jobstate, serverless_jobs

ENDPOINT_MODEL = "sagemaker::endpoint"

# Called with (training job object, server URL, account, region) after a training job is created.
ON_TRAINING_JOB_CREATED: list[Callable[[Any, str, str, str], None]] = []
# Called with (training job object, the answer) before a DescribeTrainingJob answer leaves: the EventBridge
# emitter sends a status change's event first, as AWS has by the time anyone can read the new status.
ON_TRAINING_JOB_DESCRIBED: list[Callable[[Any, dict[str, Any]], None]] = []
# Called with (processing job object, the request's parameters, server URL, account, region) after creation.
ON_PROCESSING_JOB_CREATED: list[Callable[[Any, dict[str, Any], str, str, str], None]] = []

_StockTrainingJob = sm_models.FakeTrainingJob
_StockEndpoint = sm_models.FakeEndpoint
_ENDPOINT_STATES: weakref.WeakKeyDictionary[Any, ManagedState] = weakref.WeakKeyDictionary()
_PENDING_UPDATES: weakref.WeakKeyDictionary[Any, PendingUpdate] = weakref.WeakKeyDictionary()
IN_PROGRESS_ENDPOINT_STATUSES = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


@dataclass(frozen=True)
class PendingUpdate:
    """The config an Updating endpoint moves to; the old config keeps serving until the update settles."""

    config_name: str
    production_variants: list[dict[str, Any]]
    data_capture_config: dict[str, Any]
    start_time: datetime


class ManagedTrainingJob(_StockTrainingJob):
    """A training job whose status follows its :class:`~novaflow.local.emulator.jobstate.JobRun` instead of being final.

    A serverless job (``ServerlessJobConfig``, no algorithm or instances) shows the serverless fields AWS returns
    and, once Completed, ``OutputModelPackageArn``: the version its worker registered.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        serverful = kwargs.get("algorithm_specification") is not None
        if not serverful:
            kwargs["algorithm_specification"] = {}
        super().__init__(*args, **kwargs)
        # Stock sets a canned metric and a MetricDefinitions entry the request never had.
        self.algorithm_specification.pop("MetricDefinitions", None)
        if not serverful:
            self.__dict__.pop("algorithm_specification", None)
            self.__dict__.pop("resource_config", None)
            self.__dict__.pop("model_artifacts", None)
        self.__dict__.pop("final_metric_data_list", None)
        self.__dict__.pop("secondary_status_transitions", None)
        jobstate.register(self.arn, jobstate.JobRun(name=self.training_job_name))

    @property
    def run(self) -> jobstate.JobRun:
        run = jobstate.get(self.arn)
        if run is None:  # wiped by a reset while the object lingers
            run = jobstate.JobRun(name=self.training_job_name)
            jobstate.register(self.arn, run)
        return run

    # Properties are not in __dict__, so they never leak into the serialised response on their own.
    @property
    def training_job_status(self) -> str:
        return self.run.status()[0]

    @training_job_status.setter
    def training_job_status(self, value: str) -> None:
        pass

    @property
    def secondary_status(self) -> str:
        return self.run.status()[1]

    @secondary_status.setter
    def secondary_status(self, value: str) -> None:
        pass

    @property
    def training_end_time(self) -> Any:
        self.run.status()
        return self.run.end_time

    @training_end_time.setter
    def training_end_time(self, value: Any) -> None:
        pass

    @property
    def response_object(self) -> dict[str, Any]:
        return self.describe(advance=True)

    def describe(self, *, advance: bool) -> dict[str, Any]:
        """``DescribeTrainingJob``'s answer; ``advance`` counts it as a describe for the state manager (the
        EventBridge emitter reads without advancing, so it never changes what a test's describes see)."""
        run = self.run
        status, secondary = run.status()
        if advance:
            run.managed.advance()  # counted after the read: "manual, times N" shows each stage N times
        response = _StockTrainingJob.response_object.fget(self)  # type: ignore[attr-defined]
        response["TrainingJobStatus"] = status
        response["SecondaryStatus"] = secondary
        response["SecondaryStatusTransitions"] = run.transitions()
        if run.end_time is not None:
            response["TrainingEndTime"] = run.end_time
            if run.billable_tokens is None:  # instance jobs: whole seconds from start to end, as SageMaker bills
                seconds = max(1, round((run.end_time - run.history[0][1]).total_seconds()))
                response["TrainingTimeInSeconds"] = response["BillableTimeInSeconds"] = seconds
        else:
            response.pop("TrainingEndTime", None)
        if status == "Failed":
            response["FailureReason"] = run.failure_reason
        if status != "Completed":
            response.pop("ModelArtifacts", None)
        if run.final_metrics:
            response["FinalMetricDataList"] = list(run.final_metrics)
        if status == "Completed" and run.output_model_package_arn:
            response["OutputModelPackageArn"] = run.output_model_package_arn
        if run.billable_tokens is not None and status in {"Completed", "Failed", "Stopped"}:
            response["BillableTokenCount"] = run.billable_tokens
        if "ResourceConfig" in response and run.end_time is not None and status in {"Completed", "Failed", "Stopped"}:
            # On-demand instances bill the job's wall-clock time (docs/training-jobs.md#billable-time).
            seconds = max(1, math.ceil((run.end_time - run.history[0][1]).total_seconds()))
            response["TrainingTimeInSeconds"] = seconds
            response["BillableTimeInSeconds"] = seconds
        if advance:
            for hook in ON_TRAINING_JOB_DESCRIBED:
                hook(self, response)
        return response


ManagedTrainingJob.__module__ = "moto.sagemaker.models"


class ManagedEndpoint(_StockEndpoint):
    """An endpoint that goes Creating -> InService (and Updating -> InService after UpdateEndpoint) under the
    state manager (``sagemaker::endpoint``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _ENDPOINT_STATES[self] = ManagedState(ENDPOINT_MODEL, [("Creating", "InService")])

    @property
    def endpoint_status(self) -> str:
        state = _ENDPOINT_STATES.get(self)
        status = (state.status if state else None) or "InService"
        if status == "InService":
            self._settle_update()
        return status

    @endpoint_status.setter
    def endpoint_status(self, value: str) -> None:
        state = _ENDPOINT_STATES.get(self)
        if state is not None:
            state.status = value

    def begin_update(self, config: dict[str, Any]) -> None:
        """Updating -> InService; the endpoint switches to ``config`` when it reads InService again, as AWS
        swaps the fleet only once the new one is healthy (the old config answers invocations meanwhile)."""
        _PENDING_UPDATES[self] = PendingUpdate(
            config["EndpointConfigName"], config["ProductionVariants"], config.get("DataCaptureConfig") or {}, utcnow()
        )
        _ENDPOINT_STATES[self] = ManagedState(ENDPOINT_MODEL, [("Updating", "InService")])

    def _settle_update(self) -> None:
        pending = _PENDING_UPDATES.pop(self, None)
        if pending is None:
            return
        self.endpoint_config_name = pending.config_name
        self.production_variants = self._process_production_variants(pending.production_variants)
        self.data_capture_config = pending.data_capture_config
        self.last_modified_time = utcnow()

    @property
    def response_object(self) -> dict[str, Any]:
        status = self.endpoint_status  # settles a finished update before the attributes are serialised
        response = super().response_object
        response["EndpointStatus"] = status
        pending = _PENDING_UPDATES.get(self)
        if pending is not None:
            response["PendingDeploymentSummary"] = {
                "EndpointConfigName": pending.config_name,
                "StartTime": pending.start_time,
                "ProductionVariants": [
                    {**v, "VariantStatus": [{"Status": "Creating", "StartTime": pending.start_time}]}
                    for v in self._process_production_variants(pending.production_variants)
                ],
            }
        state = _ENDPOINT_STATES.get(self)
        if state is not None:  # counted after the read: "manual, times N" shows each status N times
            state.advance()
        return response


ManagedEndpoint.__module__ = "moto.sagemaker.models"


def _create_training_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_training_job(self: Any, training_job_name: str, *args: Any, **kwargs: Any) -> Any:
        if training_job_name in self.training_jobs:
            arn = sm_models.FakeTrainingJob.arn_formatter(training_job_name, self.account_id, self.region_name)
            raise ResourceInUseException(
                "Training job names must be unique within an AWS account and region, and a training job with "
                f"this name already exists ({arn})"
            )
        return original(self, training_job_name, *args, **kwargs)

    return create_training_job


def stop_training_job(self: Any, training_job_name: str) -> None:
    """InProgress -> Stopping -> Stopped, as AWS; any other status is a ValidationException."""
    job = self.training_jobs.get(training_job_name)
    if job is None:
        arn = sm_models.FakeTrainingJob.arn_formatter(training_job_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find training job '{arn}'.")
    blocking = job.run.request_stop() if isinstance(job, ManagedTrainingJob) else job.training_job_status
    if blocking is not None:
        raise ValidationError(message=f"The request was rejected because the training job is in status {blocking}.")


def _response_create_training_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_training_job(self: Any) -> Any:
        extra = serverless_jobs.validate_request(self.sagemaker_backend, self._get_param)
        result = original(self)
        name = self._get_param("TrainingJobName")
        job = self.sagemaker_backend.training_jobs.get(name)
        if job is not None:
            job.__dict__.update(extra)
        host = self.headers.get("Host") or self.headers.get("host") or ""
        if job is not None and host:
            for hook in ON_TRAINING_JOB_CREATED:
                hook(job, f"http://{host}", self.current_account, self.region)
        return result

    return create_training_job


def _create_processing_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_processing_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = str(kwargs.get("processing_job_name"))
        if name in self.processing_jobs:
            arn = sm_models.FakeProcessingJob.arn_formatter(name, self.account_id, self.region_name)
            raise ResourceInUseException(f"Job name must be unique within an AWS account and region ({arn})")
        return original(self, *args, **kwargs)

    return create_processing_job


def _response_create_processing_job(original: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the new job and the whole request (moto keeps neither ProcessingResources nor Environment) to the
    emulator, which runs it instead of letting it read Completed at once."""

    def create_processing_job(self: Any) -> Any:
        result = original(self)
        name = self._get_param("ProcessingJobName")
        job = self.sagemaker_backend.processing_jobs.get(name)
        host = self.headers.get("Host") or self.headers.get("host") or ""
        if job is not None and host:
            request = {
                key: self._get_param(key)
                for key in ("AppSpecification", "ProcessingInputs", "ProcessingOutputConfig", "ProcessingResources")
            }
            request["Environment"] = self._get_param("Environment")
            for hook in ON_PROCESSING_JOB_CREATED:
                hook(job, request, f"http://{host}", self.current_account, self.region)
        return result

    return create_processing_job


def _response_stop_training_job(self: Any) -> Any:
    self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
    return EmptyResult()


def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> Any:
    """UpdateEndpoint as AWS: only an InService endpoint, only to an existing config; Updating -> InService."""
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = sm_models.FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    config = self.describe_endpoint_config(endpoint_config_name)  # ValidationError when it does not exist
    status = endpoint.endpoint_status
    if status in IN_PROGRESS_ENDPOINT_STATUSES:
        raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
    if status != "InService" or not isinstance(endpoint, ManagedEndpoint):
        raise ValidationError(message=f'Cannot update endpoint "{endpoint.arn}" in status {status}.')
    endpoint.begin_update(config)
    return endpoint


def _response_update_endpoint(self: Any) -> ActionResult:
    endpoint = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"), self._get_param("EndpointConfigName")
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def install() -> None:
    """Install the SageMaker patches into this process (idempotent)."""
    if sm_models.FakeTrainingJob is ManagedTrainingJob:
        return
    sm_models.FakeTrainingJob = ManagedTrainingJob  # type: ignore[misc]
    sm_models.FakeEndpoint = ManagedEndpoint  # type: ignore[misc]
    backend = sm_models.SageMakerModelBackend
    backend.create_training_job = _create_training_job(backend.create_training_job)  # type: ignore[method-assign]
    backend.stop_training_job = stop_training_job  # type: ignore[attr-defined]
    backend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    backend.create_processing_job = _create_processing_job(backend.create_processing_job)  # type: ignore[method-assign]
    sm_models.FakeEndpointConfig.validate_instance_type = lambda self, instance_type: None  # type: ignore[method-assign]
    resp = sm_responses.SageMakerResponse
    resp.create_training_job = _response_create_training_job(resp.create_training_job)  # type: ignore[method-assign]
    resp.stop_training_job = _response_stop_training_job  # type: ignore[attr-defined]
    resp.update_endpoint = _response_update_endpoint  # type: ignore[attr-defined]
    resp.create_processing_job = _response_create_processing_job(resp.create_processing_job)  # type: ignore[method-assign]
    state_manager.register_default_transition(jobstate.TRAINING_JOB_MODEL, {"progression": "immediate"})
    state_manager.register_default_transition(ENDPOINT_MODEL, {"progression": "immediate"})


def reset() -> None:
    jobstate.clear()
