"""ROUGE-1/2/L with Google ``rouge_score`` semantics (default tokenizer, no stemming), tokenizing once per text.

lighteval builds one ``RougeScorer`` per ROUGE type, so every text is tokenized three times and the LCS is a
Python DP table. Here a text is tokenized once and the LCS length uses the bit-parallel algorithm (Hyyrö 2004),
which is what makes the engine fast enough to re-score a whole evaluation set on every parse. Results are equal to
``rouge_score`` to the last bit (the same float expressions are used); the tests check that on many pairs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Sequence
from itertools import pairwise

_TOKEN = re.compile(r"[a-z0-9]+")


def rouge_tokenize(text: str) -> list[str]:
    """``rouge_score``'s default tokenizer: lowercase, keep maximal ``[a-z0-9]`` runs (non-ASCII letters split)."""
    return _TOKEN.findall(text.lower())


def _fmeasure(precision: float, recall: float) -> float:
    # Same expression as rouge_score.scoring.fmeasure, so results match bit for bit.
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _ngram_f(target: Counter[Hashable], prediction: Counter[Hashable]) -> float:
    overlap = 0
    for gram, count in target.items():
        other = prediction.get(gram)
        if other:
            overlap += count if count < other else other
    precision = overlap / max(sum(prediction.values()), 1)
    recall = overlap / max(sum(target.values()), 1)
    return _fmeasure(precision, recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel, O(len(b) * len(a)/64))."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    bit = 1
    for token in a:
        masks[token] = masks.get(token, 0) | bit
        bit <<= 1
    full = bit - 1
    v = full
    for token in b:
        m = masks.get(token)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_scores(gold: str, pred: str) -> tuple[float, float, float]:
    """(rouge1, rouge2, rougeL) F-measures of ``pred`` against ``gold`` (target first, as rouge_score takes them)."""
    return rouge_scores_tokens(rouge_tokenize(gold), rouge_tokenize(pred))


def rouge_scores_tokens(target: list[str], prediction: list[str]) -> tuple[float, float, float]:
    """ROUGE from already tokenized texts (lets a caller cache tokenization across metrics)."""
    r1 = _ngram_f(Counter(target), Counter(prediction))
    r2 = _ngram_f(Counter(pairwise(target)), Counter(pairwise(prediction)))
    if not target or not prediction:
        rl = 0.0
    else:
        lcs = lcs_length(target, prediction)
        rl = _fmeasure(lcs / len(prediction), lcs / len(target))
    return r1, r2, rl
