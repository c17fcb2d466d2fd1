"""Lineage as a model package version's ``CustomerMetadataProperties``: what it was trained from and how it scored.

The registry stores a flat string map of at most 50 entries, keys up to 128 and values up to 256 characters of
letters, digits, spaces and ``_ . : / = + - @`` - no commas, quotes or braces, so JSON does not fit. Lineage is
therefore one key per fact under the ``novaflow:`` prefix (``novaflow:data:train``, ``novaflow:metric:em``), each
value cleaned to that alphabet; :func:`read_lineage` turns a version's map back into lineage and metrics.

Example:
    >>> lineage_properties({"job": "nova-lite-2-sft-lora-5f32", "data:train": "s3://b/train.jsonl"})
    {'novaflow:job': 'nova-lite-2-sft-lora-5f32', 'novaflow:data:train': 's3://b/train.jsonl'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PREFIX = "novaflow:"
METRIC_PREFIX = PREFIX + "metric:"
MAX_PROPERTIES = 50
MAX_KEY = 128
MAX_VALUE = 256
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9 _.:/=+\-@]")
"""Characters outside the registry's value pattern (its letters and digits are wider than ASCII; these are safe)."""


def clean(value: object, limit: int = MAX_VALUE) -> str:
    """``value`` as a registry string: disallowed characters become ``_``, cut to ``limit`` characters."""
    return _NOT_ALLOWED.sub("_", str(value))[:limit]


def lineage_properties(facts: Mapping[str, object]) -> dict[str, str]:
    """``{"job": ..., "data:train": ...}`` -> ``{"novaflow:job": ..., ...}``; empty values are left out."""
    out = {}
    for key, value in facts.items():
        if value is None or value == "":
            continue
        out[clean(PREFIX + key, MAX_KEY)] = clean(value)
    return out


def metric_properties(metrics: Mapping[str, float], *, stage: str | None = None) -> dict[str, str]:
    """Evaluation metrics as ``novaflow:metric:<name>`` (``stage`` names the evaluation they came from)."""
    out = {clean(METRIC_PREFIX + name, MAX_KEY): f"{float(value):.6g}" for name, value in sorted(metrics.items())}
    if stage:
        out[PREFIX + "evaluated-by"] = clean(stage)
    return out


def fit(properties: Mapping[str, str], existing: Mapping[str, str] | None = None) -> dict[str, str]:
    """The properties that fit next to ``existing`` within the registry's 50 entries (lineage before metrics)."""
    room = MAX_PROPERTIES - len([k for k in (existing or {}) if k not in properties])
    ordered = sorted(properties.items(), key=lambda kv: (kv[0].startswith(METRIC_PREFIX), kv[0]))
    return dict(ordered[: max(0, room)])


def read_lineage(properties: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, float]]:
    """(lineage facts without the prefix, metrics by name) of a version's ``CustomerMetadataProperties``."""
    lineage: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for key, value in (properties or {}).items():
        if key.startswith(METRIC_PREFIX):
            try:
                metrics[key.removeprefix(METRIC_PREFIX)] = float(value)
            except ValueError:
                lineage[key.removeprefix(PREFIX)] = value
        elif key.startswith(PREFIX):
            lineage[key.removeprefix(PREFIX)] = value
    return lineage, metrics
