"""Verification without AWS: loaders, synthetic rollouts from RFT rows, distribution numbers, expectations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novaflow.errors import DataError, RewardError
from novaflow.reward.verify import (
    compare_outputs,
    load_jsonl,
    load_prediction_pairs,
    rollouts_from_rows,
    verify_reward,
)
from novaflow.settings import load_settings
from reward_lambda.config import RewardConfig

ROWS = [
    {
        "id": "r1",
        "messages": [{"role": "system", "content": "Label."}, {"role": "user", "content": "q1"}],
        "reference_answer": "LQ_EDIT",
    },
    {"messages": [{"role": "user", "content": "q2"}], "reference_answer": {"label": "HQ"}},
    {
        "id": "r3",
        "messages": [{"role": "user", "content": "q3"}, {"role": "assistant", "content": "old"}],
        "reference_answer": "LQ_CLOSE",
    },
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rollouts_use_the_reference_and_another_label() -> None:
    oracle, wrong = rollouts_from_rows(ROWS, RewardConfig())
    assert [o["id"] for o in oracle] == ["r1:oracle", "row-2:oracle", "r3:oracle"]
    assert [o["messages"][-1]["content"] for o in oracle] == ["LQ_EDIT", "HQ", "LQ_CLOSE"]
    assert [w["messages"][-1]["content"] for w in wrong] == ["LQ_CLOSE", "LQ_EDIT", "HQ"]
    assert [m["content"] for m in oracle[2]["messages"]] == ["q3", "LQ_CLOSE"]  # an old rollout is replaced
    assert oracle[0]["reference_answer"] == "LQ_EDIT"


def test_local_verification_distribution_numbers(tmp_path: Path) -> None:
    rows = write_jsonl(tmp_path / "rft.jsonl", ROWS)
    preds = write_jsonl(
        tmp_path / "preds.jsonl",
        [
            {"prediction": "**HQ**", "gold": "HQ"},
            {"inference": "['LQ_EDIT']", "gold": "LQ_EDIT"},
            {"prediction": "no idea", "gold": "LQ_CLOSE"},
            {"prediction": "HQ", "gold": "SPAM"},
        ],
    )
    result = verify_reward(rows=rows, predictions=preds, max_invalid_share=0.5, settings=load_settings())
    table = {r["source"]: r for r in result.table()}
    assert table["rft-rows:oracle"] == {
        "source": "rft-rows:oracle",
        "runner": "local",
        "n": 3,
        "mean": 1.0,
        "share_max": 1.0,
        "share_min": 0.0,
        "accuracy": 1.0,
        "label_present": 1.0,
        "invalid": 0,
    }
    assert table["rft-rows:wrong-label"]["mean"] == -1.0 and table["rft-rows:wrong-label"]["accuracy"] == 0.0
    assert table["predictions"] == {
        "source": "predictions",
        "runner": "local",
        "n": 4,
        "mean": 0.0,
        "share_max": 0.5,
        "share_min": 0.5,
        "accuracy": 0.5,
        "label_present": 0.5,
        "invalid": 1,
    }
    assert result.distributions[-1].invalid_reasons == {
        "reference_answer 'SPAM' names none (or several) of the labels HQ, LQ_EDIT, LQ_CLOSE": 1
    }
    assert result.ok


def test_rows_without_a_usable_reference_fail_verification(tmp_path: Path) -> None:
    rows = write_jsonl(tmp_path / "rft.jsonl", [*ROWS, {"id": "bad", "messages": [{"role": "user", "content": "q"}]}])
    result = verify_reward(rows=rows, settings=load_settings())
    assert not result.ok
    assert result.problems[0].startswith("rft-rows:oracle: 1 of 4 samples invalid (over 5%): no reference_answer")
    assert "rft-rows:oracle: accuracy 0.7500, expected 100%" in result.problems[1]


def test_loaders_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n\n{oops\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 3: not valid JSON"):
        load_jsonl(bad, settings=load_settings())
    listy = tmp_path / "list.jsonl"
    listy.write_text("[1]\n")
    with pytest.raises(DataError, match=r"list\.jsonl: line 1: expected a JSON object, got list"):
        load_jsonl(listy, settings=load_settings())
    with pytest.raises(DataError, match=r"missing\.jsonl: no such file"):
        load_jsonl(tmp_path / "missing.jsonl", settings=load_settings())
    preds = write_jsonl(tmp_path / "p.jsonl", [{"prediction": "HQ"}])
    with pytest.raises(DataError, match=r"p\.jsonl: row 1: needs string fields 'prediction'"):
        load_prediction_pairs(preds, settings=load_settings())


def test_load_limit_and_inference_repr(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "inference_output.jsonl", [{"prompt": "[]", "inference": "['<b>HQ</b>', 'x']", "gold": "HQ"}] * 5
    )
    assert load_prediction_pairs(path, limit=2, settings=load_settings()) == [("<b>HQ</b>", "HQ")] * 2


def test_nothing_to_verify_is_an_error() -> None:
    with pytest.raises(RewardError, match="nothing to verify"):
        verify_reward(settings=load_settings())


def test_compare_outputs_reports_each_difference() -> None:
    a = [{"id": "x", "aggregate_reward_score": 1.0, "metrics_list": []}]
    b = [{"id": "x", "aggregate_reward_score": -1.0, "metrics_list": []}]
    assert compare_outputs("s", a, b) == ["s: sample 'x' local 1.0 {} != lambda -1.0 {}"]
    assert compare_outputs("s", a, []) == ["s: response has 0 items for 1 samples"]
