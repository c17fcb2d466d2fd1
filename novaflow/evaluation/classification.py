"""Label-task analysis (like the Stack Overflow HQ / LQ_EDIT / LQ_CLOSE case study) independent of answer format.

Exact match punishes "**LQ_EDIT**" and "The answer is LQ_EDIT." although the model chose right; here labels are
extracted with the same function the reward Lambda grades with (:func:`reward_lambda.labels.extract_label`), so
training reward and evaluation agree on what counts as an answer. An answer naming two labels is no prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from novaflow.errors import EvaluationError
from reward_lambda.labels import DEFAULT_LABELS, extract_label

NO_PREDICTION = "(none)"


@dataclass(frozen=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class ClassificationReport:
    """Accuracy counts a sample right when the extracted label equals the gold label; no prediction is wrong."""

    labels: tuple[str, ...]
    n: int
    accuracy: float
    no_prediction_rate: float
    macro_f1: float
    per_class: list[ClassScores]
    confusion: list[list[int]]
    """Rows: gold label (``labels`` order); columns: predicted label, then :data:`NO_PREDICTION`."""
    correct: list[float] = field(default_factory=list)
    """Per-sample 0/1 accuracy in evaluation order (paired tests use it)."""
    response_words: list[int] = field(default_factory=list)
    response_chars: list[int] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [*self.labels, NO_PREDICTION]

    def summary(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "no_prediction_rate": self.no_prediction_rate, "macro_f1": self.macro_f1}

    def per_class_records(self) -> list[dict[str, Any]]:
        return [
            {"label": c.label, "precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support}
            for c in self.per_class
        ]


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def classify(
    golds: Sequence[str], preds: Sequence[str], labels: Iterable[str] = DEFAULT_LABELS
) -> ClassificationReport:
    """Classification metrics of free-text predictions against gold labels.

    Example:
        >>> classify(["HQ", "LQ_EDIT"], ["**HQ**", "The answer is lq_edit."]).accuracy
        1.0
    """
    labels = tuple(labels)
    if len(golds) != len(preds):
        raise EvaluationError(f"{len(golds)} golds but {len(preds)} predictions")
    if not golds:
        raise EvaluationError("no samples to classify")
    column = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * (len(labels) + 1) for _ in labels]
    correct: list[float] = []
    missing = 0
    for i, (gold, pred) in enumerate(zip(golds, preds, strict=True)):
        gold_label = extract_label(gold, labels)
        if gold_label is None:
            raise EvaluationError(
                f"sample {i}: gold {gold[:60]!r} names none (or several) of the labels "
                f"{', '.join(labels)}; pass the task's label set with --labels"
            )
        pred_label = extract_label(pred, labels)
        missing += pred_label is None
        confusion[column[gold_label]][len(labels) if pred_label is None else column[pred_label]] += 1
        correct.append(1.0 if pred_label == gold_label else 0.0)
    per_class = []
    for label, k in column.items():
        tp = confusion[k][k]
        predicted = sum(row[k] for row in confusion)
        support = sum(confusion[k])
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(ClassScores(label, precision, recall, f1, support))
    n = len(golds)
    return ClassificationReport(
        labels=labels,
        n=n,
        accuracy=sum(correct) / n,
        no_prediction_rate=missing / n,
        macro_f1=sum(c.f1 for c in per_class) / len(per_class),
        per_class=per_class,
        confusion=confusion,
        correct=correct,
        response_words=[len(p.split()) for p in preds],
        response_chars=[len(p) for p in preds],
    )


def is_label_task(golds: Sequence[str], labels: Iterable[str] = DEFAULT_LABELS) -> bool:
    """True when every gold is exactly one of the labels (then accuracy is a meaningful extra metric)."""
    allowed = set(labels)
    return bool(golds) and all(g.strip() in allowed for g in golds)
