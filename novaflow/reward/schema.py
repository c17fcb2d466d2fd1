"""The reward Lambda's output contract, checked on what actually came back
(docs/reward-contract.md#what-the-function-must-return).

Used by verification (on the deployed function's answers) and by the property test (on the handler's), so
"schema-valid" means the same thing in both places.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

METRIC_TYPES = frozenset({"Metric", "Reward"})


def output_problems(outputs: object, expected_ids: Sequence[Any] | None = None) -> list[str]:
    """Every way ``outputs`` breaks the contract (empty when valid); ids are checked when given."""
    if not isinstance(outputs, list):
        return [f"response is a {type(outputs).__name__}, not a JSON array"]
    problems: list[str] = []
    if expected_ids is not None and len(outputs) != len(expected_ids):
        problems.append(f"response has {len(outputs)} items for {len(expected_ids)} samples")
    for i, item in enumerate(outputs):
        where = f"item {i}"
        if not isinstance(item, dict):
            problems.append(f"{where} is a {type(item).__name__}, not an object")
            continue
        if "id" not in item:
            problems.append(f"{where} has no 'id'")
        elif expected_ids is not None and i < len(expected_ids) and item["id"] != expected_ids[i]:
            problems.append(f"{where} has id {item['id']!r}, expected {expected_ids[i]!r}")
        score = item.get("aggregate_reward_score")
        if not _is_number(score):
            problems.append(f"{where} aggregate_reward_score {score!r} is not a finite number")
        metrics = item.get("metrics_list", [])
        if not isinstance(metrics, list):
            problems.append(f"{where} metrics_list is not a list")
            continue
        for j, metric in enumerate(metrics):
            if not (
                isinstance(metric, dict)
                and isinstance(metric.get("name"), str)
                and _is_number(metric.get("value"))
                and metric.get("type") in METRIC_TYPES
            ):
                problems.append(
                    f"{where} metrics_list[{j}] {metric!r} is not {{name: str, value: number, type: Metric|Reward}}"
                )
    return problems


def metrics_of(item: dict[str, Any]) -> dict[str, float]:
    """``metrics_list`` as a name -> value dict."""
    return {m["name"]: m["value"] for m in item.get("metrics_list", []) if isinstance(m, dict) and "name" in m}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
