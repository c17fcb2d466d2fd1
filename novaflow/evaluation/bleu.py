"""BLEU as Nova reports it (lighteval <= 0.10's reference-layout bug, bootstrap stderr quirk) and a correct corpus BLEU.

Nova's ``bleu`` is ``sacrebleu.BLEU().corpus_score(preds, [[g1], [g2], ...])``: sacrebleu reads that as N reference
streams of one segment, so only ``preds[0]`` is scored, against all golds as alternative references. Its stderr is
lighteval's bootstrap: 1000 resamples from ``random.Random(0).choices`` in evaluation order, each re-scored the same
buggy way, reduced with ``std(ddof=1) / sqrt(1000)``. We keep both quirks so our ``bleu`` stays comparable with AWS's
numbers and publish the correct corpus BLEU under a separate name
(docs/gen-qa-metrics.md#bleu-only-the-first-sample-counts).

Re-running sacrebleu on every resample re-tokenizes all golds 1000 times (seconds to minutes). Instead, golds are
tokenized and n-gram-counted once with sacrebleu's own tokenizer and n-gram extractor, each replicate only merges
the maximum reference counts of the drawn golds, and the score comes from sacrebleu's ``BLEU.compute_bleu``.
The tests check equality with sacrebleu on the buggy layout for every replicate.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.helpers import extract_all_word_ngrams

MAX_ORDER = 4
BOOTSTRAP_DRAWS = 1000

_BLEU = BLEU(trg_lang="")


def _tokenize(text: str) -> str:
    # sacrebleu's own segment preprocessing (rstrip + 13a tokenizer, case kept).
    return _BLEU.tokenizer(text.rstrip())


def _score(correct: Sequence[int], total: Sequence[int], sys_len: int, ref_len: int) -> float:
    return BLEU.compute_bleu(
        list(correct),
        list(total),
        sys_len,
        ref_len,
        smooth_method=_BLEU.smooth_method,
        smooth_value=_BLEU.smooth_value,
        effective_order=_BLEU.effective_order,
        max_ngram_order=MAX_ORDER,
    ).score


def _closest_ref_len(hyp_len: int, ref_lens: np.ndarray) -> int:
    # sacrebleu: smallest |hyp - ref|, ties go to the shorter reference.
    diff = np.abs(ref_lens - hyp_len)
    return int(ref_lens[diff == diff.min()].min())


@dataclass
class _Postings:
    """For one n-gram: the golds containing it, ordered by count (highest first), and those counts."""

    golds: np.ndarray
    counts: np.ndarray


class NovaBleu:
    """Tokenize a corpus once; score ``preds[first]`` against any subset of golds as alternative references.

    Example:
        >>> NovaBleu(["the cat sat on the mat"], ["the cat sat on the mat"]).value()
        100.00000000000004
    """

    def __init__(self, golds: Sequence[str], preds: Sequence[str]) -> None:
        if len(golds) != len(preds):
            raise ValueError(f"{len(golds)} golds but {len(preds)} predictions")
        self.n = len(golds)
        self._preds = list(preds)
        gold_stats = [extract_all_word_ngrams(_tokenize(g), 1, MAX_ORDER) for g in golds]
        self._gold_ngrams: list[Counter[tuple[str, ...]]] = [s[0] for s in gold_stats]
        self.gold_lens = np.array([s[1] for s in gold_stats], dtype=np.int64)
        self._hyp_cache: dict[int, tuple[Counter[tuple[str, ...]], int]] = {}
        self._postings: dict[tuple[str, ...], _Postings] = {}

    def _hyp(self, index: int) -> tuple[Counter[tuple[str, ...]], int]:
        stats = self._hyp_cache.get(index)
        if stats is None:
            stats = extract_all_word_ngrams(_tokenize(self._preds[index]), 1, MAX_ORDER)
            self._hyp_cache[index] = stats
        return stats

    def _index(self, hyp_indices: set[int]) -> None:
        """Build postings for every n-gram of the given hypotheses not indexed yet (one pass over the golds)."""
        wanted: set[tuple[str, ...]] = set()
        for i in hyp_indices:
            wanted.update(self._hyp(i)[0].keys())
        wanted.difference_update(self._postings)
        if not wanted:
            return
        found: dict[tuple[str, ...], list[tuple[int, int]]] = {g: [] for g in wanted}
        for j, grams in enumerate(self._gold_ngrams):
            for gram in grams.keys() & wanted:
                found[gram].append((j, grams[gram]))
        for gram, hits in found.items():
            hits.sort(key=lambda jc: -jc[1])
            self._postings[gram] = _Postings(
                np.array([j for j, _ in hits], dtype=np.int64), np.array([c for _, c in hits], dtype=np.int64)
            )

    def _replicate(self, first: int, drawn: np.ndarray) -> float:
        hyp_ngrams, hyp_len = self._hyp(first)
        correct = [0] * MAX_ORDER
        total = [0] * MAX_ORDER
        for gram, count in hyp_ngrams.items():
            order = len(gram) - 1
            total[order] += count
            post = self._postings[gram]
            if post.golds.size:
                hit = drawn[post.golds]
                k = int(hit.argmax())
                if hit[k]:
                    best = int(post.counts[k])
                    correct[order] += count if count < best else best
        ref_len = _closest_ref_len(hyp_len, self.gold_lens[drawn])
        return _score(correct, total, hyp_len, ref_len)

    def value(self) -> float:
        """Nova's ``bleu``: the first prediction against all golds (0-100 scale)."""
        if self.n == 0:
            return 0.0
        self._index({0})
        return self._replicate(0, np.ones(self.n, dtype=bool))

    def bootstrap_replicates(self, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> list[float]:
        """lighteval's bootstrap replicates: ``random.Random(seed).choices`` over the items in evaluation order."""
        rnd = random.Random()
        rnd.seed(seed)
        indices = range(self.n)
        samples = [rnd.choices(indices, k=self.n) for _ in range(draws)]
        self._index({s[0] for s in samples})
        out = []
        for sample in samples:
            drawn = np.zeros(self.n, dtype=bool)
            drawn[sample] = True
            out.append(self._replicate(sample[0], drawn))
        return out

    def stderr(self) -> float:
        """Nova's ``bleu_stderr``: std(replicates, ddof=1) / sqrt(1000) - lighteval's quirk, not a bootstrap SE."""
        return mean_stderr(self.bootstrap_replicates())


def mean_stderr(values: Sequence[float]) -> float:
    """lighteval's ``mean_stderr``: sample std (ddof=1, numpy mean, Python sum of squares) over sqrt(n)."""
    mu = np.mean(values)
    return float(math.sqrt(sum((x - mu) ** 2 for x in values) / (len(values) - 1)) / math.sqrt(len(values)))


def nova_bleu(golds: Sequence[str], preds: Sequence[str]) -> float:
    """Nova's ``bleu`` (0-100), reproducing lighteval <= 0.10's reference layout (only ``preds[0]`` counts)."""
    return NovaBleu(golds, preds).value()


def corpus_bleu(golds: Sequence[str], preds: Sequence[str]) -> float:
    """The correct corpus BLEU (0-100): golds as one reference stream parallel to the predictions."""
    if not preds:
        return 0.0
    return _BLEU.corpus_score(list(preds), [list(golds)]).score


def corpus_bleu_bootstrap_se(
    golds: Sequence[str], preds: Sequence[str], *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> float:
    """Conventional bootstrap standard error of the correct corpus BLEU (std of replicates, ddof=1).

    Resamples per-segment sufficient statistics instead of re-tokenizing, which is exact for corpus BLEU because
    its statistics are sums over segments.
    """
    n = len(preds)
    if n < 2:
        return 0.0
    stats = np.array(_BLEU._extract_corpus_statistics(list(preds), [list(golds)]), dtype=np.int64)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(draws):
        s = stats[rng.integers(0, n, n)].sum(axis=0)
        reps.append(_score(s[2 : 2 + MAX_ORDER], s[2 + MAX_ORDER :], int(s[0]), int(s[1])))
    return float(np.std(reps, ddof=1))
