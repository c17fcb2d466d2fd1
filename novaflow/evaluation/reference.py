"""The slow reference stack, called the way lighteval 0.10 calls it, for parity checks and the benchmark.

Three single-type ``rouge_score`` scorers (one per ROUGE type, as lighteval builds them), ``nltk.scores.f_measure``
on token sets (the written-out formula when nltk is not installed), and ``sacrebleu`` re-run on every bootstrap
resample. It exists so the fast engine can be checked against the libraries whose numbers are the contract.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from rouge_score import rouge_scorer
from sacrebleu.metrics.bleu import BLEU

from novaflow.evaluation.bleu import BOOTSTRAP_DRAWS, mean_stderr
from novaflow.evaluation.normalize import helm_normalizer


def _formula_f_measure(reference: set[str], test: set[str]) -> float | None:
    if not reference or not test:
        return None
    overlap = len(reference & test)
    if overlap == 0:
        return 0
    precision, recall = overlap / len(test), overlap / len(reference)
    return 1.0 / (0.5 / precision + 0.5 / recall)


def _f_measure_impl() -> Callable[[set[str], set[str]], float | None]:
    try:
        from nltk.metrics.scores import f_measure
    except ImportError:
        return _formula_f_measure
    return f_measure


class ReferenceMetrics:
    """lighteval 0.10's gen_qa metric objects, reduced to the library calls that produce the numbers."""

    def __init__(self) -> None:
        self._rouge = {t: rouge_scorer.RougeScorer([t]) for t in ("rouge1", "rouge2", "rougeL")}
        self._f_measure = _f_measure_impl()
        self.uses_nltk = self._f_measure is not _formula_f_measure

    def _f1(self, gold: str, pred: str) -> float:
        value = self._f_measure(set(gold.split()), set(pred.split()))
        return 0.0 if value is None else float(value)

    def sample(self, gold: str, pred: str) -> dict[str, float]:
        scores = {t: s.score(gold, pred)[t].fmeasure for t, s in self._rouge.items()}
        empty = not pred
        scores["em"] = 0.0 if empty else float(gold.strip() == pred.strip())
        scores["qem"] = 0.0 if empty else float(helm_normalizer(gold.strip()) == helm_normalizer(pred.strip()))
        scores["f1"] = self._f1(gold, pred)
        scores["f1_score_quasi"] = self._f1(helm_normalizer(gold), helm_normalizer(pred))
        return scores

    @staticmethod
    def bleu(golds: Sequence[str], preds: Sequence[str]) -> float:
        return BLEU(trg_lang="").corpus_score(list(preds), [[g] for g in golds]).score

    def bleu_stderr(self, golds: Sequence[str], preds: Sequence[str], draws: int = BOOTSTRAP_DRAWS) -> float:
        items = list(zip(golds, preds, strict=True))
        rnd = random.Random()
        rnd.seed(0)
        reps = []
        for _ in range(draws):
            sample = rnd.choices(items, k=len(items))
            reps.append(self.bleu([g for g, _ in sample], [p for _, p in sample]))
        return mean_stderr(reps)
