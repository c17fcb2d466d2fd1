"""What a flow refuses before it builds its graph: a stage the model cannot run there, a SERVERLESS stage
without the registry; and the registry group a run's models go to."""

from __future__ import annotations

from collections.abc import Sequence

from flows.params import JobParams, RegistryParams
from novaflow.catalog import Method, Platform, method_problem
from novaflow.errors import ConfigError
from novaflow.registry.packages import default_group

TRAINING_STAGES: dict[str, Method] = {
    "sft": Method.SFT_LORA,
    "dpo": Method.DPO_LORA,
    "rft": Method.RFT_LORA,
    "mtrl": Method.RFT_MULTITURN,
}
"""Training stage (as named in ``stages`` and ``skip``) -> the method it runs (``cpt`` is a single-stage flow)."""


def require_supported(
    model: str, methods: Sequence[Method | tuple[Method, Platform | str]], platform: Platform = Platform.SMTJ
) -> None:
    """Refuse a run whose model cannot do one of its stages (on that stage's platform), before any data is
    prepared or job submitted."""
    for item in methods:
        method, where = item if isinstance(item, tuple) else (item, platform)
        problem = method_problem(model, method, Platform.parse(where))
        if problem:
            stage = next((name for name, m in TRAINING_STAGES.items() if m is method), None)
            hint = f" Skip the stage (skip: {stage}) or choose another model." if stage else ""
            raise ConfigError(problem + hint)


def require_registry(group: str | None, jobs: Sequence[JobParams]) -> None:
    """A SERVERLESS stage registers its model, and a SERVERLESS evaluation reads one: both need the registry."""
    if group is None and any(Platform.parse(job.platform) is Platform.SERVERLESS for job in jobs):
        raise ConfigError(
            "SERVERLESS stages register their models and are evaluated from model package versions: turn the "
            "registry on (registry.enabled) or run them on SMTJ."
        )


def registry_group(registry: RegistryParams, model: str, run_name: str) -> str | None:
    """The run family's model package group, or None with the registry off."""
    if not registry.enabled:
        return None
    return registry.group or default_group(model, run_name)
