"""One small error hierarchy for the whole package.

Every message says what is wrong, where (file, row, field, job name) and what to do, because these errors are
what a user reads in a terminal or in the Prefect run log at 2 a.m. botocore errors are wrapped exactly once,
at the client boundary (:func:`novaflow.aws.wrap_client_error`), keeping the AWS error code.
"""

from __future__ import annotations


class NovaflowError(Exception):
    """Base class: catch this to handle anything novaflow raises on purpose."""


class ConfigError(NovaflowError):
    """A setting is missing or malformed; the message names the setting and how to set it."""


class DataError(NovaflowError):
    """Input data cannot be read or is invalid as a whole (names the file and the problem)."""


class RecipeError(NovaflowError):
    """A recipe, override or instance choice is not allowed for the model and method."""


class JobError(NovaflowError):
    """A training or evaluation job failed, stopped or could not be submitted or found."""

    def __init__(
        self,
        message: str,
        *,
        job_name: str | None = None,
        status: str | None = None,
        failure_reason: str | None = None,
        log_tail: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.job_name = job_name
        self.status = status
        self.failure_reason = failure_reason
        self.log_tail = list(log_tail or [])


class EvaluationError(NovaflowError):
    """Evaluation output is missing, corrupt or inconsistent (names the file)."""


class DeployError(NovaflowError):
    """A deployment could not be created, reached a failed state, or was refused by the gate."""


class RewardError(NovaflowError):
    """The reward Lambda could not be built, deployed or verified."""


class AgentError(NovaflowError):
    """A multi-turn RFT agent could not be packaged or deployed, or broke the rollout contract when exercised."""


class RunInUseError(NovaflowError):
    """Another flow run holds the run name this one needs (the message names it)."""


class AwsError(NovaflowError):
    """An AWS call failed; ``code`` keeps the AWS error code (e.g. ``ValidationException``)."""

    def __init__(self, message: str, *, code: str | None = None, operation: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation
