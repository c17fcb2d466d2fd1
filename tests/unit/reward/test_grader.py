"""The grader and handler in-process: both event shapes, content forms, invalid samples, limits, config."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from reward_lambda import grader as grader_module
from reward_lambda.config import ConfigurationError, RewardConfig
from reward_lambda.grader import METRIC_NAMES, grade_sample
from reward_lambda.handler import InvalidEvent, grade_batch, lambda_handler

GOLDEN = Path(__file__).parents[2] / "golden" / "reward"
CFG = RewardConfig()


def sample(answer: object, *, ref: object = "LQ_EDIT", shape: str = "B", sid: object = "s1") -> dict:
    s: dict = {
        "id": sid,
        "messages": [{"role": "user", "content": "Classify."}, {"role": "assistant", "content": answer}],
    }
    if shape == "A":
        s["reference_answer"] = ref
    else:
        s["metadata"] = {"reference_answer": ref, "my_key": "x"}
    return s


def metrics(out: dict) -> dict:
    assert [m["name"] for m in out["metrics_list"]] == list(METRIC_NAMES)
    assert all(m["type"] == "Metric" for m in out["metrics_list"])
    return {m["name"]: m["value"] for m in out["metrics_list"]}


@pytest.mark.parametrize("shape", ["A", "B"])
def test_both_event_shapes_reward_the_right_label(shape: str) -> None:
    out = lambda_handler([sample("LQ_EDIT", shape=shape), sample("HQ", shape=shape, sid=7)], None)
    assert [o["id"] for o in out] == ["s1", 7]
    assert [o["aggregate_reward_score"] for o in out] == [1.0, -1.0]
    assert metrics(out[0]) == {
        "correct": 1,
        "label_present": 1,
        "response_length": 7,
        "verbose_penalty": 0.0,
        "invalid_sample": 0,
    }
    assert metrics(out[1])["correct"] == 0 and metrics(out[1])["label_present"] == 1


def test_metadata_reference_wins_over_top_level() -> None:
    s = sample("HQ", ref="HQ")
    s["reference_answer"] = "LQ_CLOSE"
    assert grade_sample(s, CFG).score == 1.0


@pytest.mark.parametrize(
    "content, expected",
    [
        ("The answer is **lq-edit**.", 1.0),
        ([{"type": "text", "text": "LQ_"}, {"type": "text", "text": "EDIT"}], 1.0),
        ([{"text": "LQ_EDIT"}], 1.0),  # Converse-style text block
        ([{"type": "image", "source": "x"}, {"type": "text", "text": "lq edit"}], 1.0),  # non-text parts ignored
        (["LQ_EDIT"], 1.0),
        ("HQ or LQ_EDIT", -1.0),  # a hedge names two labels: no prediction
        ("LQ_EDITED", -1.0),
    ],
)
def test_string_and_list_content(content: object, expected: float) -> None:
    assert grade_sample(sample(content), CFG).score == expected


def test_empty_answer_is_wrong_not_invalid() -> None:
    for empty in ("", "   ", []):
        g = grade_sample(sample(empty), CFG)
        assert (g.score, g.correct, g.label_present, g.invalid_reason) == (-1.0, 0, 0, None)


def test_unknown_predicted_label_is_wrong_with_no_label_present() -> None:
    g = grade_sample(sample("SPAM"), CFG)
    assert (g.score, g.label_present, g.invalid_reason) == (-1.0, 0, None)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({"id": 1, "messages": [{"role": "assistant", "content": "HQ"}]}, "no reference_answer (looked in metadata"),
        (
            sample("HQ", ref="SPAM"),
            "reference_answer 'SPAM' names none (or several) of the labels HQ, LQ_EDIT, LQ_CLOSE",
        ),
        (sample("HQ", ref={"explanation": "x"}), "reference_answer object has none of the keys label, answer"),
        (sample("HQ", ref=""), "reference_answer is '', not a non-empty string or object"),
        (
            {"id": 1, "messages": [{"role": "user", "content": "q"}], "reference_answer": "HQ"},
            "last message has role 'user', not 'assistant' (no rollout)",
        ),
        ({"id": 1, "reference_answer": "HQ"}, "sample has no 'messages' list"),
        (
            {"id": 1, "messages": [{"role": "assistant", "content": 5}], "reference_answer": "HQ"},
            "assistant content is a int, not a string or a list of text parts",
        ),
        (
            {
                "id": 1,
                "messages": [{"role": "assistant", "content": [{"type": "text", "text": 3}]}],
                "reference_answer": "HQ",
            },
            "assistant content part 0 has no string 'text'",
        ),
        ("not a sample", "sample is a str, not an object"),
    ],
)
def test_malformed_samples_get_minimum_reward_and_a_reason(bad: object, reason: str) -> None:
    g = grade_sample(bad, CFG)
    assert g.score == -1.0 and g.invalid_reason is not None and g.invalid_reason.startswith(reason)
    assert metrics(g.to_output())["invalid_sample"] == 1


def test_reference_as_object_and_metadata_as_json_string() -> None:
    assert grade_sample(sample("HQ", ref={"answer": "hq"}), CFG).score == 1.0
    s = sample("LQ_CLOSE")
    s["metadata"] = json.dumps({"reference_answer": "LQ_CLOSE"})
    assert grade_sample(s, CFG).score == 1.0


def test_invalid_samples_are_logged_with_reason(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="reward_lambda"):
        lambda_handler([sample("HQ"), {"id": "x9"}], None)
    assert "invalid_sample id='x9' reason=sample has no 'messages' list" in caplog.text
    assert "invalid_samples 1 of 2 in this batch" in caplog.text


def test_a_grader_bug_costs_one_sample_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(text: object, labels: object) -> str:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(grader_module, "extract_label", boom)
    with caplog.at_level(logging.WARNING, logger="reward_lambda"):
        grades = grade_batch([sample("HQ", sid="a")], CFG)
    assert grades[0].invalid_reason == "grader error: RuntimeError: kaboom"
    assert grades[0].score == -1.0
    assert "grader error on sample id='a'" in caplog.text and "Traceback" in caplog.text


@pytest.mark.parametrize(
    "event, message",
    [
        ({"id": 1}, "event must be a JSON array of samples, got a dict"),
        ("[]", "event must be a JSON array of samples, got a str"),
        (None, "event must be a JSON array of samples, got a NoneType"),
    ],
)
def test_malformed_event_raises_clear_error(event: object, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message.replace("[", r"\[")):
        lambda_handler(event, None)


def test_batch_and_text_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARD_MAX_BATCH", "3")
    monkeypatch.setenv("REWARD_MAX_TEXT_CHARS", "10")
    with pytest.raises(InvalidEvent, match=r"batch of 4 samples is over the limit of 3 \(REWARD_MAX_BATCH\)"):
        lambda_handler([sample("HQ")] * 4, None)
    out = lambda_handler([sample("LQ_EDIT" + " " * 4)], None)
    assert out[0]["aggregate_reward_score"] == -1.0
    assert metrics(out[0])["invalid_sample"] == 1 and metrics(out[0])["response_length"] == 11


def test_env_configures_labels_rewards_and_verbose_penalty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARD_LABELS", "yes,no")
    monkeypatch.setenv("REWARD_CORRECT", "2")
    monkeypatch.setenv("REWARD_INCORRECT", "-0.5")
    monkeypatch.setenv("REWARD_VERBOSE_PENALTY", "0.75")
    monkeypatch.setenv("REWARD_VERBOSE_CHARS", "5")
    out = lambda_handler(
        [
            sample("Yes", ref="yes"),
            sample("yes, because it is", ref="yes"),
            sample("no", ref="yes"),
            sample("no, because it is", ref="yes"),
        ],
        None,
    )
    assert [o["aggregate_reward_score"] for o in out] == [2.0, 1.25, -0.5, -0.5]  # clamped at the minimum
    assert [metrics(o)["verbose_penalty"] for o in out] == [0.0, 0.75, 0.0, 0.75]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"REWARD_CORRECT": "high"}, "REWARD_CORRECT='high' is not a number"),
        ({"REWARD_CORRECT": "nan"}, "REWARD_CORRECT='nan' must be a finite number"),
        (
            {"REWARD_CORRECT": "-1", "REWARD_INCORRECT": "1"},
            "REWARD_CORRECT (-1) must be greater than REWARD_INCORRECT",
        ),
        ({"REWARD_LABELS": " , "}, "REWARD_LABELS=' , ' names no label"),
        ({"REWARD_LABELS": "A,A"}, "REWARD_LABELS='A,A' repeats a label"),
        ({"REWARD_MAX_BATCH": "0"}, "REWARD_MAX_BATCH must be >= 1, got 0"),
        ({"REWARD_VERBOSE_PENALTY": "-1"}, "REWARD_VERBOSE_PENALTY must be >= 0"),
        ({"REWARD_VERBOSE_CHARS": "x"}, "REWARD_VERBOSE_CHARS='x' is not an integer"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict, message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        RewardConfig.from_env(env)
    assert str(err.value).startswith(message)


def test_config_round_trips_through_env() -> None:
    config = RewardConfig(labels=("a", "b"), correct=3.0, incorrect=-2.5, verbose_penalty=0.25, verbose_chars=9)
    assert RewardConfig.from_env(config.to_env()) == config


def test_id_is_echoed_for_any_json_value_and_nulled_when_unrepresentable() -> None:
    for sid in ("abc", 0, 1.5, True, None, [1, "x"], {"k": [1]}):
        assert lambda_handler([sample("LQ_EDIT", sid=sid)], None)[0]["id"] == sid
    assert grade_sample(sample("LQ_EDIT", sid=float("nan")), CFG).id is None


def test_handler_output_matches_golden_file() -> None:
    events = json.loads((GOLDEN / "events.json").read_text())
    produced = json.dumps(lambda_handler(events, None), indent=2) + "\n"
    assert produced == (GOLDEN / "handler_output.json").read_text()
