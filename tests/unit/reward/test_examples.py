"""examples/rewards: each grader's numbers on hand-made samples, and each passes novaflow's verification."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from novaflow.reward.probes import verify_reward_function
from novaflow.reward.source import build_reward_zip, load_reward_source
from novaflow.settings import load_settings
from reward_lambda.wrapper import handler_for

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "rewards"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(references: list[Any], tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    lines = [
        {"id": f"r{i}", "messages": [{"role": "user", "content": f"question {i}"}], "reference_answer": ref}
        for i, ref in enumerate(references)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in lines))
    return path


def test_label_grader() -> None:
    grade = load("label_grader").grade
    assert grade("**lq_edit**", "LQ_EDIT", {}) == {"reward": 1.0, "label_present": 1.0}
    assert grade("The answer is LQ-EDIT.", "LQ_EDIT", {}) == {"reward": 1.0, "label_present": 1.0}
    assert grade("HQ", "LQ_EDIT", {}) == {"reward": -1.0, "label_present": 1.0}
    assert grade("HQ or LQ_CLOSE", "HQ", {}) == {"reward": -1.0, "label_present": 0.0}  # a hedge
    with pytest.raises(ValueError, match="is not one of"):
        grade("HQ", "maybe", {})


def test_numeric_tolerance_grader() -> None:
    grade = load("numeric_tolerance").grade
    assert grade("The sum is 95.", "95", {}) == {"reward": 1.0, "has_number": 1.0}
    assert grade("= 95.00001", "95", {}) == {"reward": 1.0, "has_number": 1.0}
    assert grade("1,250", {"answer": "1250"}, {}) == {"reward": 1.0, "has_number": 1.0}
    assert grade("96", "95", {}) == {"reward": 0.0, "has_number": 1.0}
    assert grade("I am not sure", "95", {}) == {"reward": 0.0, "has_number": 0.0}
    with pytest.raises(ValueError, match="has no number"):
        grade("95", "ninety-five", {})


def test_json_format_grader() -> None:
    grade = load("json_format").grade
    expected = {"city": "Paris", "year": 1889}
    assert grade('```json\n{"city": "Paris", "year": 1889}\n```', expected, {}) == {
        "reward": 1.0,
        "valid_json": 1.0,
        "schema": 1.0,
        "content": 1.0,
    }
    assert grade('{"city": "Lyon", "year": 1889}', json.dumps(expected), {}) == {
        "reward": 0.75,
        "valid_json": 1.0,
        "schema": 1.0,
        "content": 0.5,
    }
    assert grade('{"city": "Paris", "year": "1889"}', expected, {})["schema"] == 0.0
    assert grade("Paris, 1889", expected, {}) == {"reward": 0.0, "valid_json": 0.0, "schema": 0.0, "content": 0.0}


def test_length_penalized_handler_is_the_contract_itself() -> None:
    module = load("length_penalized")
    reference = "the tower opened in 1889"
    short = {
        "id": 1,
        "messages": [{"role": "assistant", "content": "The tower opened in 1889."}],
        "reference_answer": reference,
    }
    padded_text = "The tower opened in 1889 " + "and it is really very tall " * 3
    padded = {
        "id": 2,
        "messages": [{"role": "assistant", "content": padded_text}],
        "metadata": {"reference_answer": reference},
    }
    out = module.lambda_handler([short, padded], None)
    assert out[0] == {
        "id": 1,
        "aggregate_reward_score": 1.0,
        "metrics_list": [
            {"name": "f1", "value": 1.0, "type": "Reward"},
            {"name": "length_penalty", "value": 0.0, "type": "Metric"},
        ],
    }
    # 23 words against 5 (allowance 7.5): 15.5 words over at 0.02 each; F1 over the word sets is 10/16.
    assert out[1]["metrics_list"][0]["value"] == pytest.approx(2 * (5 / 11) * 1.0 / (5 / 11 + 1.0))
    assert out[1]["metrics_list"][1]["value"] == pytest.approx(0.31)
    assert out[1]["aggregate_reward_score"] == pytest.approx(out[1]["metrics_list"][0]["value"] - 0.31)
    assert handler_for(module) is module.lambda_handler  # used as is, never wrapped


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "references"),
    [
        ("label_grader", ["HQ", "LQ_EDIT", "LQ_CLOSE", "HQ"]),
        ("numeric_tolerance", ["5", "16", "-8", "1250"]),
        ("json_format", [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}]),
        ("length_penalized", ["the cat sat", "a dog barked loudly", "rain fell all day"]),
    ],
)
def test_every_example_passes_verification(name: str, references: list[Any], tmp_path: Path) -> None:
    package = build_reward_zip(load_reward_source(EXAMPLES / f"{name}.py", settings=load_settings()))
    result = verify_reward_function(
        rows(references, tmp_path), source=f"{name}.py", zip_bytes=package, settings=load_settings()
    )
    assert result.ok, result.reason()
    reference = next(d for d in result.distributions if d.probe == "reference")
    empty = next(d for d in result.distributions if d.probe == "empty")
    assert reference.mean > empty.mean and reference.invalid == 0
