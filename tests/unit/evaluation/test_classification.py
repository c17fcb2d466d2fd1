from __future__ import annotations

import pytest

from novaflow.errors import EvaluationError
from novaflow.evaluation.classification import NO_PREDICTION, classify, is_label_task


def test_format_independent_accuracy_and_confusion() -> None:
    golds = ["HQ", "HQ", "LQ_EDIT", "LQ_EDIT", "LQ_CLOSE", "LQ_CLOSE"]
    preds = ["**HQ**", "LQ_EDIT", "The answer is lq_edit.", "HQ or LQ_EDIT", "lq-close", "no idea"]
    report = classify(golds, preds)
    assert report.correct == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert report.accuracy == 0.5
    assert report.no_prediction_rate == 2 / 6  # two labels named = no prediction; "no idea" = no prediction
    assert report.columns == ["HQ", "LQ_EDIT", "LQ_CLOSE", NO_PREDICTION]
    assert report.confusion == [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 1]]
    hq, edit, close = report.per_class
    assert (hq.precision, hq.recall, hq.support) == (1.0, 0.5, 2)
    assert (edit.precision, edit.recall) == (0.5, 0.5)
    assert close.f1 == 2 * 1.0 * 0.5 / 1.5
    assert report.macro_f1 == (hq.f1 + edit.f1 + close.f1) / 3
    assert report.response_words == [1, 1, 4, 3, 1, 2]


def test_custom_label_set_and_bad_gold() -> None:
    report = classify(["yes", "no"], ["Yes.", "I think no"], labels=("yes", "no"))
    assert report.accuracy == 1.0
    with pytest.raises(EvaluationError, match="sample 1: gold 'maybe' names none"):
        classify(["yes", "maybe"], ["yes", "no"], labels=("yes", "no"))


def test_is_label_task() -> None:
    assert is_label_task(["HQ", " LQ_EDIT "])
    assert not is_label_task(["HQ", "Paris is the capital"])
