"""Nova's gen_qa metrics, reproduced exactly (lighteval 0.10 semantics; docs/gen-qa-metrics.md).

Per sample: ``em``, ``qem``, ``f1``, ``f1_score_quasi``, ``rouge1``, ``rouge2``, ``rougeL``; each aggregated as the
mean with stderr = std(ddof=1)/sqrt(n). ``bleu`` is the buggy corpus BLEU with its bootstrap stderr quirk
(:mod:`novaflow.evaluation.bleu`). :func:`nova_results_json` writes the exact results document the Nova container
emits, so the local emulator, the parser's recomputation check and ``novaflow eval metrics`` share one engine.

Example:
    >>> sample_metrics("Paris", "Paris.")["qem"]
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from novaflow.errors import EvaluationError
from novaflow.evaluation.bleu import NovaBleu, corpus_bleu, corpus_bleu_bootstrap_se, mean_stderr
from novaflow.evaluation.normalize import helm_normalizer
from novaflow.evaluation.rouge import rouge_scores_tokens, rouge_tokenize

GEN_QA_TASK = "custom|gen_qa_gen_qa|0"
SAMPLE_METRICS: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "em", "qem", "f1", "f1_score_quasi")
"""Sample-level gen_qa metrics, in the order Nova's results JSON lists them."""
NOVA_METRICS: tuple[str, ...] = (*SAMPLE_METRICS, "bleu")
ZERO_ONE_METRICS: frozenset[str] = frozenset({"em", "qem"})
"""Metrics whose per-sample values are 0/1 (McNemar applies)."""
SCALE_100: frozenset[str] = frozenset({"bleu", "bleu_corpus"})
"""Metrics Nova reports on a 0-100 scale; all others are 0-1."""


def exact_match(gold: str, pred: str) -> float:
    """``em``: an empty prediction scores 0 *before* stripping; otherwise stripped strings must be identical."""
    if not pred:
        return 0.0
    return 1.0 if gold.strip() == pred.strip() else 0.0


def quasi_exact_match(gold: str, pred: str) -> float:
    """``qem``: like ``em`` after the HELM normalizer on both stripped strings."""
    if not pred:
        return 0.0
    return 1.0 if helm_normalizer(gold.strip()) == helm_normalizer(pred.strip()) else 0.0


def set_f1(gold: str, pred: str) -> float:
    """lighteval's ``f1``: nltk ``f_measure`` on *sets* of whitespace tokens; an empty side or no overlap -> 0."""
    g = set(gold.split())
    p = set(pred.split())
    if not g or not p:
        return 0.0
    overlap = len(g & p)
    if overlap == 0:
        return 0.0
    precision = overlap / len(p)
    recall = overlap / len(g)
    return 1.0 / (0.5 / precision + 0.5 / recall)


def sample_metrics(gold: str, pred: str) -> dict[str, float]:
    """All sample-level gen_qa metrics of one (gold, prediction) pair, keyed as Nova names them."""
    r1, r2, rl = rouge_scores_tokens(rouge_tokenize(gold), rouge_tokenize(pred))
    em = 0.0
    qem = 0.0
    if pred:
        em = 1.0 if gold.strip() == pred.strip() else 0.0
        qem = 1.0 if helm_normalizer(gold.strip()) == helm_normalizer(pred.strip()) else 0.0
    return {
        "rouge1": r1,
        "rouge2": r2,
        "rougeL": rl,
        "em": em,
        "qem": qem,
        "f1": set_f1(gold, pred),
        "f1_score_quasi": set_f1(helm_normalizer(gold), helm_normalizer(pred)),
    }


def sample_metric_columns(golds: Sequence[str], preds: Sequence[str]) -> dict[str, list[float]]:
    """Per-sample values for every sample-level metric, as columns (metric -> values in evaluation order)."""
    _check_pairs(golds, preds)
    columns: dict[str, list[float]] = {name: [] for name in SAMPLE_METRICS}
    for gold, pred in zip(golds, preds, strict=True):
        for name, value in sample_metrics(gold, pred).items():
            columns[name].append(value)
    return columns


def aggregate(values: Sequence[float]) -> tuple[float, float | None]:
    """(mean, stderr) as lighteval aggregates a sample-level metric; stderr is None for a single value."""
    if not values:
        raise EvaluationError("cannot aggregate a metric over zero samples")
    mean = float(np.mean(values))
    return mean, (mean_stderr(values) if len(values) > 1 else None)


def nova_results_json(golds: Sequence[str], preds: Sequence[str]) -> dict[str, Any]:
    """The exact results document Nova's evaluation container writes for gen_qa.

    ``{"results": {"custom|gen_qa_gen_qa|0": {metric, metric_stderr, ...}, "all": {...same...}}}``, metrics in
    Nova's key order, BLEU on 0-100. As in lighteval, ``_stderr`` keys are omitted when there is one sample.
    """
    columns = sample_metric_columns(golds, preds)
    entry = _aggregate_columns(columns)
    bleu = NovaBleu(golds, preds)
    entry["bleu"] = bleu.value()
    if len(golds) > 1:
        entry["bleu_stderr"] = bleu.stderr()
    return {"results": {GEN_QA_TASK: entry, "all": dict(entry)}}


def extra_metrics(golds: Sequence[str], preds: Sequence[str]) -> dict[str, float]:
    """Clearly named extras Nova does not report: the correct corpus BLEU and its conventional bootstrap SE."""
    _check_pairs(golds, preds)
    return {"bleu_corpus": corpus_bleu(golds, preds), "bleu_corpus_stderr": corpus_bleu_bootstrap_se(golds, preds)}


def _aggregate_columns(columns: dict[str, list[float]]) -> dict[str, float]:
    entry: dict[str, float] = {}
    for name in SAMPLE_METRICS:
        mean, stderr = aggregate(columns[name])
        entry[name] = mean
        if stderr is not None:
            entry[f"{name}_stderr"] = stderr
    return entry


def _check_pairs(golds: Sequence[str], preds: Sequence[str]) -> None:
    if len(golds) != len(preds):
        raise EvaluationError(f"{len(golds)} golds but {len(preds)} predictions; every sample needs both")
    if not golds:
        raise EvaluationError("no samples: gen_qa metrics need at least one (gold, prediction) pair")
    for i, (g, p) in enumerate(zip(golds, preds, strict=True)):
        for field, value in (("gold", g), ("prediction", p)):
            if not isinstance(value, str):
                raise EvaluationError(f"sample {i}: {field} must be a string, got {type(value).__name__}")
