"""The container environment of a Nova endpoint: tier variables plus optional sampling defaults.

Values reach the container as strings; ranges are checked here (docs/inference.md#sagemaker-endpoint) so a typo such as
``temperature=20`` is refused before an endpoint is paid for.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from novaflow.deploy.names import DEFAULT_CONTEXT_LENGTH, DEFAULT_MAX_CONCURRENCY
from novaflow.deploy.tiers import Tier, validate_tier


class EndpointEnvironment(BaseModel):
    """Environment of the Nova inference container (``CONTEXT_LENGTH`` and ``MAX_CONCURRENCY`` are required)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_length: int = Field(
        DEFAULT_CONTEXT_LENGTH, gt=0, description="CONTEXT_LENGTH: must fit a tier of model x instance."
    )
    max_concurrency: int = Field(
        DEFAULT_MAX_CONCURRENCY, gt=0, description="MAX_CONCURRENCY: must fit a tier of model x instance."
    )
    default_temperature: float | None = Field(None, ge=0, le=2, description="DEFAULT_TEMPERATURE (0-2).")
    default_top_p: float | None = Field(None, ge=1e-10, le=1, description="DEFAULT_TOP_P (1e-10 - 1).")
    default_top_k: int | None = Field(None, description="DEFAULT_TOP_K (-1 or > 0).")
    default_max_new_tokens: int | None = Field(None, gt=0, description="DEFAULT_MAX_NEW_TOKENS.")
    default_logprobs: int | None = Field(None, ge=1, le=20, description="DEFAULT_LOGPROBS (1-20).")
    speculative_decoding_method: Literal["eagle3", "suffix"] | None = Field(
        None, description="SPECULATIVE_DECODING_METHOD."
    )
    num_speculative_tokens: int | None = Field(None, ge=1, le=10, description="NUM_SPECULATIVE_TOKENS (1-10).")
    kv_cache_dtype: Literal["fp8"] | None = Field(None, description="KV_CACHE_DTYPE.")
    quantization_dtype: Literal["fp8"] | None = Field(None, description="QUANTIZATION_DTYPE.")

    @field_validator("default_top_k")
    @classmethod
    def _check_top_k(cls, value: int | None) -> int | None:
        if value is not None and value != -1 and value <= 0:
            raise ValueError("must be -1 or a positive integer")
        return value

    def tier_for(self, model: str, instance_type: str) -> Tier:
        """The tier this environment fits on ``instance_type`` (ConfigError naming the allowed tiers)."""
        return validate_tier(
            model, instance_type, context_length=self.context_length, max_concurrency=self.max_concurrency
        )

    def to_env(self) -> dict[str, str]:
        """The ``Environment`` map of ``CreateModel``; unset optional values are left out, numbers as strings."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            env[name.upper()] = _as_env_string(value)
        return env


def _as_env_string(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
