"""Which (context length, concurrency) tiers the Nova inference container supports per model and instance type.

The container refuses to start outside these tiers, and an endpoint that never becomes InService still bills for
the minutes it spent trying; so the check runs before any AWS call and the error names every allowed tier.
The table follows the Forge SDK's ``SUPPORTED_SMI_CONFIGS``; it drifts like the training
tables, which is why it is data, not code.

Example:
    >>> validate_tier("nova-lite-2", "ml.g6.48xlarge", context_length=8000, max_concurrency=4)
    Tier(context_length=8000, max_concurrency=8)
"""

from __future__ import annotations

from typing import NamedTuple

from novaflow.catalog import canonical_model
from novaflow.errors import ConfigError


class Tier(NamedTuple):
    """One supported ceiling: any CONTEXT_LENGTH <= context_length with MAX_CONCURRENCY <= max_concurrency."""

    context_length: int
    max_concurrency: int


_MICRO_G6_12 = (Tier(4000, 12), Tier(8000, 6))
SUPPORTED_TIERS: dict[str, dict[str, tuple[Tier, ...]]] = {
    "nova-micro": {
        "ml.g5.12xlarge": _MICRO_G6_12,
        "ml.g5.24xlarge": (Tier(8000, 8),),
        "ml.g6e.xlarge": (Tier(8000, 2),),
        "ml.g6e.2xlarge": (Tier(8000, 2),),
        "ml.g6e.4xlarge": (Tier(8000, 4),),
        "ml.g6.12xlarge": _MICRO_G6_12,
        "ml.g6.24xlarge": (Tier(8000, 8),),
        "ml.g6.48xlarge": (Tier(8000, 12),),
        "ml.p5.48xlarge": (Tier(16000, 128), Tier(64000, 32), Tier(128000, 8)),
    },
    "nova-lite": {
        "ml.g6.12xlarge": (Tier(8000, 2),),
        "ml.g6.24xlarge": (Tier(8000, 4),),
        "ml.g6.48xlarge": (Tier(4000, 16), Tier(8000, 8)),
        "ml.p5.48xlarge": (Tier(16000, 128), Tier(60000, 8)),
    },
    "nova-pro": {
        "ml.p5.48xlarge": (Tier(8000, 8), Tier(16000, 2), Tier(24000, 1)),
    },
    "nova-lite-2": {
        "ml.g6.48xlarge": (Tier(8000, 8),),
        "ml.p5.48xlarge": (Tier(16000, 128), Tier(64000, 32), Tier(128000, 8), Tier(256000, 2)),
    },
}


def allowed_tiers(model: str, instance_type: str) -> tuple[Tier, ...]:
    """The tiers for a model on an instance type; ConfigError naming the supported instance types if none."""
    name = canonical_model(model)
    tiers = SUPPORTED_TIERS[name].get(instance_type)
    if tiers is None:
        raise ConfigError(
            f"{name} cannot be hosted on {instance_type}: supported instance types are "
            f"{', '.join(SUPPORTED_TIERS[name])}."
        )
    return tiers


def format_tiers(tiers: tuple[Tier, ...]) -> str:
    return ", ".join(f"(CONTEXT_LENGTH<={t.context_length}, MAX_CONCURRENCY<={t.max_concurrency})" for t in tiers)


def validate_tier(model: str, instance_type: str, *, context_length: int, max_concurrency: int) -> Tier:
    """The smallest tier that fits; ConfigError naming the allowed tiers when none does.

    Runs offline: this is the check that must happen before anything is created or billed.
    """
    if context_length <= 0 or max_concurrency <= 0:
        raise ConfigError(
            f"CONTEXT_LENGTH ({context_length}) and MAX_CONCURRENCY ({max_concurrency}) must be positive integers."
        )
    tiers = allowed_tiers(model, instance_type)
    fitting = [t for t in tiers if context_length <= t.context_length and max_concurrency <= t.max_concurrency]
    if not fitting:
        raise ConfigError(
            f"CONTEXT_LENGTH={context_length} with MAX_CONCURRENCY={max_concurrency} is not supported for "
            f"{canonical_model(model)} on {instance_type}; allowed tiers: {format_tiers(tiers)}."
        )
    return min(fitting, key=lambda t: (t.context_length, t.max_concurrency))
