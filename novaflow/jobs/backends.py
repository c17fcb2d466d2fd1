"""Platforms behind one interface: SageMaker training jobs (on instances or serverless), Bedrock model
customization and SageMaker HyperPod (its EKS API, in :mod:`novaflow.jobs.hyperpod.backend`).

Submit, poll and stop only need four verbs from a platform - describe, create, stop, and the operation name used
for request validation - so a new platform is one class (here, or in its own module
importing :mod:`novaflow.jobs.backend_base`) and one line in :func:`get_backend`, not a fork of the submit and
wait logic.
"""

from __future__ import annotations

from typing import Any

from botocore.client import BaseClient

from novaflow.aws import get_client
from novaflow.catalog import Method, Platform
from novaflow.errors import JobError
from novaflow.jobs.agent_rft import AgentRFTBackend
from novaflow.jobs.backend_base import ClientBackend, JobBackend, JobState
from novaflow.jobs.records import map_status
from novaflow.settings import NovaflowSettings


class SageMakerBackend(ClientBackend):
    platform = Platform.SMTJ
    create_operation = "CreateTrainingJob"
    stopping = "Stopping training job"

    def __init__(self, settings: NovaflowSettings | None = None, client: BaseClient | None = None) -> None:
        self._client = client or get_client("sagemaker", settings)

    def _describe(self, name: str) -> dict[str, Any]:
        raw: dict[str, Any] = self._client.describe_training_job(TrainingJobName=name)
        return raw

    def _state(self, name: str, raw: dict[str, Any]) -> JobState:
        return JobState(
            name=name,
            status=map_status(raw["TrainingJobStatus"]),
            raw_status=raw["TrainingJobStatus"],
            failure_reason=raw.get("FailureReason"),
            secondary_status=raw.get("SecondaryStatus"),
            arn=raw.get("TrainingJobArn"),
            created=raw.get("CreationTime"),
            output_uri=raw.get("OutputDataConfig", {}).get("S3OutputPath"),
            raw=raw,
        )

    def create(self, request: dict[str, Any]) -> str | None:
        return self._client.create_training_job(**request).get("TrainingJobArn")

    def _stop(self, name: str) -> None:
        self._client.stop_training_job(TrainingJobName=name)


class ServerlessBackend(SageMakerBackend):
    """Serverless jobs are SageMaker training jobs: the same describe, stop and logs, plus the output package."""

    platform = Platform.SERVERLESS

    def describe(self, name: str) -> JobState | None:
        state = super().describe(name)
        if state is not None:
            state.output_model_package_arn = state.raw.get("OutputModelPackageArn")
            state.billable_tokens = state.raw.get("BillableTokenCount")
        return state


class BedrockBackend(ClientBackend):
    platform = Platform.BEDROCK
    create_operation = "CreateModelCustomizationJob"
    stopping = "Stopping Bedrock customization job"

    def __init__(self, settings: NovaflowSettings | None = None, client: BaseClient | None = None) -> None:
        self._client = client or get_client("bedrock", settings)

    def _describe(self, name: str) -> dict[str, Any]:
        raw: dict[str, Any] = self._client.get_model_customization_job(jobIdentifier=name)
        return raw

    def _state(self, name: str, raw: dict[str, Any]) -> JobState:
        return JobState(
            name=name,
            status=map_status(raw["status"]),
            raw_status=raw["status"],
            failure_reason=raw.get("failureMessage"),
            arn=raw.get("jobArn"),
            created=raw.get("creationTime"),
            output_model_arn=raw.get("outputModelArn"),
            output_uri=raw.get("outputDataConfig", {}).get("s3Uri"),
            raw=raw,
        )

    def create(self, request: dict[str, Any]) -> str | None:
        return self._client.create_model_customization_job(**request).get("jobArn")

    def _stop(self, name: str) -> None:
        self._client.stop_model_customization_job(jobIdentifier=name)


def get_backend(
    platform: Platform | str,
    settings: NovaflowSettings | None = None,
    client: BaseClient | None = None,
    method: Method | str | None = None,
    *,
    cluster: str | None = None,
    namespace: str | None = None,
) -> JobBackend:
    """The backend for a platform (and method: multi-turn RFT is a ``CreateJob`` job, not a training job);
    ``cluster`` and ``namespace`` say where an SMHP job runs (default: settings)."""
    plat = Platform(platform)
    if method is not None and Method(method) is Method.RFT_MULTITURN:
        return AgentRFTBackend(settings, client)
    if plat is Platform.SMTJ:
        return SageMakerBackend(settings, client)
    if plat is Platform.SERVERLESS:
        return ServerlessBackend(settings, client)
    if plat is Platform.BEDROCK:
        return BedrockBackend(settings, client)
    if plat is Platform.SMHP:
        # HyperPod's modules load only for HyperPod jobs (and the kubernetes extra with them)
        from novaflow.jobs.hyperpod.backend import HyperPodBackend

        return HyperPodBackend(settings, cluster, namespace, client)
    raise JobError(f"novaflow has no backend for platform {plat.value}: use SMTJ, SERVERLESS, BEDROCK or SMHP.")
