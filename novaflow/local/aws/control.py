"""Control the emulator over HTTP: state transitions, fault injection and job timing.

Tests and demos use this instead of importing emulator internals, so they work the same against the embedded
server and against ``novaflow local up`` in another process.

Example:
    >>> control = EmulatorControl("http://127.0.0.1:5000")      # doctest: +SKIP
    >>> control.set_transition("sagemaker::training_job", {"progression": "manual", "times": 2})
    >>> control.fail_job("nova-sft-1a2b", "AlgorithmError: CUDA out of memory")
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

MANAGED_MODELS = (
    "sagemaker::training_job",
    "sagemaker::endpoint",
    "sagemaker::inference_component",
    "bedrock::model_customization_job",
    "bedrock::custom_model",
    "bedrock::custom_model_deployment",
    "bedrock::provisioned_model_throughput",
)


class EmulatorControlError(RuntimeError):
    """The emulator refused a control request (bad arguments or a feature missing in this build)."""


class EmulatorControl:
    """Client of the ``/moto-api/ext/...`` and ``/moto-api/state-manager/...`` routes of one server."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(  # noqa: S310 - loopback http
            self.url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise EmulatorControlError(f"{path}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc
        return json.loads(raw) if raw else None

    def set_transition(self, model_name: str, progression: dict[str, Any]) -> None:
        """e.g. ``("sagemaker::endpoint", {"progression": "manual", "times": 2})``.

        The progressions: docs/embedded-aws.md#steering-statuses-motos-state-manager.
        """
        if model_name not in MANAGED_MODELS:
            raise EmulatorControlError(f"unknown managed model {model_name!r}; choose one of {MANAGED_MODELS}")
        self._post("/moto-api/state-manager/set-transition", {"model_name": model_name, "transition": progression})

    def unset_transitions(self) -> None:
        self._post("/moto-api/ext/unset-transitions", {})

    def fail_job(self, job_name: str, reason: str) -> None:
        """The job fails with ``FailureReason`` = ``reason`` (now, or when it starts training)."""
        self._post("/moto-api/ext/fail-job", {"job_name": job_name, "reason": reason})

    def stall_job(self, job_name: str) -> None:
        """The job stays InProgress/Training until :meth:`release_job` or a stop."""
        self._post("/moto-api/ext/stall-job", {"job_name": job_name})

    def release_job(self, job_name: str) -> None:
        self._post("/moto-api/ext/release-job", {"job_name": job_name})

    def throttle(self, operation: str, times: int) -> None:
        """The next ``times`` calls of ``operation`` (API name, e.g. ``DescribeTrainingJob``) are throttled."""
        self._post("/moto-api/ext/throttle", {"operation": operation, "times": times})

    def lambda_error(self, function_name: str, message: str) -> None:
        """The function's next invocations fail as an unhandled error with ``message``."""
        self._post("/moto-api/ext/lambda-error", {"function_name": function_name, "message": message})

    def set_job_duration(self, seconds: float, kind: str | None = None) -> None:
        """Minimum wall-clock duration of each emulated job created from now on: every job, or only ``kind``'s
        (``training`` or ``evaluation``)."""
        body: dict[str, Any] = {"seconds": seconds}
        if kind is not None:
            body["kind"] = kind
        self._post("/moto-api/ext/job-duration", body)

    def set_quotas(self, quotas: dict[str, int]) -> dict[str, int]:
        """The account's training quotas (instances per type; a negative value removes one); returns all set."""
        answer = self._post("/moto-api/ext/quotas", {"quotas": quotas})
        return {str(k): int(v) for k, v in answer["quotas"].items()}
