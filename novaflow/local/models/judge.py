"""The stand-in for the Nova judge model: a fixed rubric over surface qualities, computed, deterministic.

For each row ``{prompt, response_A, response_B}`` both responses are scored on three criteria, as the rubric judge
writes them (a scale criterion normalised by ``(score - 1) / 4``, a binary one as 1.0 / 0.0), weighted and summed:

* ``answers`` (binary, weight 0.4): the response is not empty and not a refusal;
* ``concise`` (scale 1-5, weight 0.4): no longer than it needs to be, measured against the other response;
* ``grounded`` (scale 1-5, weight 0.2): the share of its words that the prompt or the other response also
  contains (an answer that invents unrelated content scores low; numbers are not counted, they are answers).

Responses that are equal after normalisation are a tie; otherwise the higher weighted score wins unless the
margin is under 0.05 (a tie). This judge does not know whether an answer is *correct* - it cannot check arithmetic
or facts - so its verdicts track form (terse, on-topic answers beat rambling ones), which is what a stand-in can
honestly compute. Aggregates follow the Nova judge's metric names: counts ``a_scores``, ``b_scores``, ``ties``,
``inference_error``; ``score`` (= ``b_scores``); ``winrate`` (B's share, ties counted half) with a 95 % percentile
bootstrap interval ``lower_rate`` / ``upper_rate``; and, for the rubric judge, ``weighted_score_A`` / ``_B`` and
``score_margin`` (A minus B).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from novaflow.evaluation.bleu import mean_stderr
from novaflow.evaluation.normalize import helm_normalizer

WEIGHTS = {"answers": 0.4, "concise": 0.4, "grounded": 0.2}
TIE_MARGIN = 0.05
BOOTSTRAP = 1000
_WORD = re.compile(r"[a-z0-9]+")
_REFUSAL = re.compile(r"\b(i can(?:no|')t|i (?:am|'m) (?:not able|unable)|i won't|as an ai)\b", re.IGNORECASE)
COUNT_METRICS = ("a_scores", "b_scores", "ties", "inference_error")


@dataclass(frozen=True)
class Verdict:
    """One row's judgement: ``A>B``, ``B>A`` or ``A=B`` (``error`` when the row could not be judged)."""

    preference: str
    weighted_a: float
    weighted_b: float
    criteria: dict[str, dict[str, float]]

    @property
    def text(self) -> str:
        return f"[[{self.preference}]]"

    def sample_metrics(self, rubric: bool) -> dict[str, float]:
        """Per-row values of the aggregated metrics (0/1 indicators; winrate 1, 0.5 or 0)."""
        values = {
            "a_scores": float(self.preference == "A>B"),
            "b_scores": float(self.preference == "B>A"),
            "ties": float(self.preference == "A=B"),
            "inference_error": float(self.preference == "error"),
        }
        values["score"] = values["b_scores"]
        if self.preference != "error":
            values["winrate"] = values["b_scores"] + 0.5 * values["ties"]
        if rubric:
            values.update(
                weighted_score_A=self.weighted_a,
                weighted_score_B=self.weighted_b,
                score_margin=self.weighted_a - self.weighted_b,
            )
        return values


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def criteria(prompt: str, response: str, other: str) -> dict[str, float]:
    """Normalised (0-1) criterion scores of ``response``."""
    words, other_words = _words(response), _words(other)
    answers = 1.0 if response.strip() and not _REFUSAL.search(response) else 0.0
    ratio = len(words) / max(1, len(other_words))
    concise = next((s for s, limit in ((5, 1.5), (4, 2.0), (3, 3.0), (2, 5.0)) if ratio <= limit), 1)
    known = set(_words(prompt)) | set(other_words)
    terms = [w for w in words if not w.isdigit()]  # a number is an answer, not a claim the prompt can ground
    share = sum(w in known for w in terms) / len(terms) if terms else 1.0
    grounded = 1 + round(4 * share)
    return {"answers": answers, "concise": (concise - 1) / 4, "grounded": (grounded - 1) / 4}


def judge_row(prompt: str, response_a: str, response_b: str) -> Verdict:
    crit_a = criteria(prompt, response_a, response_b)
    crit_b = criteria(prompt, response_b, response_a)
    score_a = sum(WEIGHTS[k] * v for k, v in crit_a.items())
    score_b = sum(WEIGHTS[k] * v for k, v in crit_b.items())
    if (
        helm_normalizer(response_a.strip()) == helm_normalizer(response_b.strip())
        or abs(score_a - score_b) < TIE_MARGIN
    ):
        preference = "A=B"
    else:
        preference = "A>B" if score_a > score_b else "B>A"
    return Verdict(preference, score_a, score_b, {"A": crit_a, "B": crit_b})


def judge_rows(rows: Sequence[dict[str, Any]]) -> list[Verdict]:
    """Judge every row; a row without string ``prompt`` / ``response_A`` / ``response_B`` is an inference error."""
    out = []
    for row in rows:
        fields = [row.get(k) for k in ("prompt", "response_A", "response_B")]
        if not all(isinstance(f, str) for f in fields):
            out.append(Verdict("error", 0.0, 0.0, {}))
            continue
        out.append(judge_row(*fields))  # type: ignore[arg-type]
    return out


def aggregate(verdicts: Sequence[Verdict], rubric: bool) -> dict[str, float]:
    """The results entry: counts, score, weighted scores (rubric), winrate with its bootstrap interval."""
    samples = [v.sample_metrics(rubric) for v in verdicts]
    entry: dict[str, float] = {}
    for name in (*COUNT_METRICS, "score"):
        column = [s[name] for s in samples]
        entry[name] = float(sum(column))
        entry[f"{name}_stderr"] = mean_stderr(column) if len(column) > 1 else 0.0
    if rubric:
        valid = [s for s in samples if "winrate" in s]
        for name in ("weighted_score_A", "weighted_score_B", "score_margin"):
            column = [s[name] for s in valid]
            entry[name] = float(np.mean(column)) if column else math.nan
            entry[f"{name}_stderr"] = mean_stderr(column) if len(column) > 1 else 0.0
    wins = [s["winrate"] for s in samples if "winrate" in s]
    entry["winrate"] = float(np.mean(wins)) if wins else math.nan
    entry["lower_rate"], entry["upper_rate"] = bootstrap_interval(wins)
    return entry


def bootstrap_interval(values: Sequence[float], draws: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean (seeded, so the same verdicts give the same interval)."""
    if not values:
        return math.nan, math.nan
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(draws))
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))
