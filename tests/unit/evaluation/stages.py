"""Per-sample stage results built from data (labels right or wrong on chosen rows), for comparison tests."""

from __future__ import annotations

from novaflow.evaluation.consistency import recomputed_table
from novaflow.evaluation.results import EvalResult, SampleRecord

LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")


def golds(n: int) -> list[str]:
    return [LABELS[i % 3] for i in range(n)]


def stage(name: str, gold: list[str], right: set[int], *, style: str = "{}") -> EvalResult:
    """Predictions equal the gold on ``right`` rows (formatted by ``style``), the next label elsewhere."""
    samples = []
    for i, g in enumerate(gold):
        label = g if i in right else LABELS[(LABELS.index(g) + 1) % 3]
        samples.append(SampleRecord(index=i, prompt=f"Q{i}", prediction=style.format(label), gold=g))
    result = EvalResult(source=name, task="custom|gen_qa_gen_qa|0", metrics=None, samples=samples)  # type: ignore[arg-type]
    result.metrics = recomputed_table(result)
    return result


def sft_rft_500() -> tuple[EvalResult, EvalResult, EvalResult]:
    """The case study's shape: base 65/500, SFT 386/500, RFT 394/500 (12 rows lost, 20 gained vs SFT)."""
    gold = golds(500)
    base = stage("base", gold, set(range(65)), style="The label is {}.")
    sft_right = set(range(386))
    rft_right = (sft_right - set(range(374, 386))) | set(range(386, 406))
    return base, stage("sft", gold, sft_right), stage("rft", gold, rft_right)
