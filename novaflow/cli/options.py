"""Options several command groups share, resolved at the edge so commands receive canonical names."""

from __future__ import annotations

from typing import Any

import typer

from novaflow.catalog import MODELS, SUPPORT, canonical_model
from novaflow.errors import ConfigError

METHODS_HELP = ", ".join(method.value for method, support in SUPPORT.items() if support.built)


def _model(value: str | None) -> str:
    """The catalog key for any spelling; no value means the configured default (``NOVAFLOW_MODEL``)."""
    try:
        if value:
            return canonical_model(value)
        from novaflow.settings import load_settings  # pydantic-settings: only when no --model is given

        return load_settings().model
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def model_option(help_text: str = "Nova model") -> Any:
    """``--model``: any spelling the catalog knows; the default is settings.model."""
    return typer.Option(
        None,
        "--model",
        callback=_model,
        help=f"{help_text}: {', '.join(MODELS)} or an alias (default: NOVAFLOW_MODEL, else nova-lite-2).",
    )


QUOTA_HELP = (
    "A quota novaflow keeps to, TYPE=N (ml.p5.48xlarge=8 instances, serverless=2 jobs), repeatable: used when "
    "Service Quotas cannot be read, or to use less than the account has. With --local it is the embedded account's "
    "quota too."
)


def quota_option(items: list[str]) -> dict[str, int]:
    """``--quota TYPE=N`` items as a mapping; a malformed one is a usage error naming it."""
    from novaflow.quotas.capacity import parse_quota_items

    try:
        return parse_quota_items(items, where="--quota")
    except ConfigError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--quota: "), param_hint="--quota") from None
