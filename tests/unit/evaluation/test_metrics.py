"""gen_qa metrics against the contract: definitions, published numbers and the exact document layout."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from sacrebleu.metrics.bleu import BLEU

from novaflow.errors import EvaluationError
from novaflow.evaluation.bleu import NovaBleu, corpus_bleu, corpus_bleu_bootstrap_se, mean_stderr, nova_bleu
from novaflow.evaluation.metrics import (
    GEN_QA_TASK,
    aggregate,
    exact_match,
    nova_results_json,
    quasi_exact_match,
    sample_metrics,
    set_f1,
)
from tests.unit.evaluation.pairs import random_pairs

GOLDEN = Path(__file__).parents[2] / "golden" / "evaluation"


def test_em_checks_emptiness_before_stripping() -> None:
    assert exact_match("", "") == 0.0
    assert exact_match("", "   ") == 1.0
    assert exact_match("  Paris ", "Paris\n") == 1.0
    assert exact_match("Paris", "Paris.") == 0.0
    assert exact_match("HQ", "hq") == 0.0


def test_qem_uses_the_helm_normalizer() -> None:
    assert quasi_exact_match("answer is 42", "The answer is 42.") == 1.0
    assert quasi_exact_match("3.14", "314") == 1.0
    assert quasi_exact_match("The", "A") == 1.0
    assert quasi_exact_match("The", "") == 0.0
    assert quasi_exact_match("LQ_EDIT", "lq edit") == 0.0


def test_f1_is_on_sets_not_multisets() -> None:
    assert set_f1("very very good", "very good") == 1.0
    assert set_f1("4", "4.") == 0.0
    assert set_f1("", "x") == 0.0
    assert set_f1("a b c d", "a b") == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_f1_equals_nltk_f_measure_formula() -> None:
    # nltk.scores.f_measure(reference, test, alpha=0.5) written out: 1 / (alpha/p + (1-alpha)/r)
    for gold, pred in random_pairs(400, seed=9):
        g, p = set(gold.split()), set(pred.split())
        if not g or not p or not (g & p):
            expected = 0.0
        else:
            prec, rec = len(g & p) / len(p), len(g & p) / len(g)
            expected = 1.0 / (0.5 / prec + 0.5 / rec)
        assert set_f1(gold, pred) == expected


def test_sample_metrics_keys_and_values() -> None:
    assert sample_metrics("Paris", "Paris.") == {
        "rouge1": 1.0,
        "rouge2": 0.0,
        "rougeL": 1.0,
        "em": 0.0,
        "qem": 1.0,
        "f1": 0.0,
        "f1_score_quasi": 1.0,
    }


def _binary(ones: int, n: int) -> list[float]:
    return [1.0] * ones + [0.0] * (n - ones)


def test_docs_example_em_and_qem_stderr_at_n_3572() -> None:
    em, em_se = aggregate(_binary(2344, 3572))
    qem, qem_se = aggregate(_binary(2687, 3572))
    assert em == 0.6562150055991042
    assert qem == 0.7522396416573348
    assert em_se == pytest.approx(0.007948251702846893, rel=1e-12, abs=0)
    assert qem_se == pytest.approx(0.007224355240883467, rel=1e-12, abs=0)


@pytest.mark.parametrize(
    ("ones", "published_se"), [(65, 0.0151), (386, 0.0188), (395, 0.0182), (394, 0.0183), (403, 0.0177)]
)
def test_blog_stderr_at_n_500_to_four_decimals(ones: int, published_se: float) -> None:
    _, se = aggregate(_binary(ones, 500))
    assert round(se, 4) == published_se


def test_stderr_is_ddof_1_not_ddof_0() -> None:
    _, se = aggregate(_binary(65, 500))
    ddof0 = math.sqrt(0.13 * 0.87 / 500)
    assert round(ddof0, 4) == 0.0150 and round(se, 4) == 0.0151


def test_single_sample_has_no_stderr() -> None:
    doc = nova_results_json(["a b c d e"], ["a b c d e"])
    assert "em_stderr" not in doc["results"][GEN_QA_TASK]
    assert "bleu_stderr" not in doc["results"][GEN_QA_TASK]
    assert doc["results"][GEN_QA_TASK]["bleu"] == 100.00000000000004


def test_bleu_scores_only_the_first_prediction_against_all_golds() -> None:
    golds = ["the quick brown fox jumps", "HQ", "LQ_EDIT"]
    assert nova_bleu(golds, ["the quick brown fox jumps", "wrong", "wrong"]) == 100.00000000000004
    # Golds are alternative references: the first prediction matching the *third* gold still scores 100.
    assert nova_bleu(["x", "y", "one two three four five"], ["one two three four five", "x", "y"]) == 100.00000000000004
    assert nova_bleu(golds, ["HQ", "HQ", "LQ_EDIT"]) == 0.0  # < 4 tokens: BLEU 0 even when identical


def _sacrebleu_buggy(golds: list[str], preds: list[str]) -> float:
    return BLEU(trg_lang="").corpus_score(preds, [[g] for g in golds]).score


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bleu_equals_sacrebleu_with_lightevals_layout(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(40):
        pairs = random_pairs(rnd.randint(1, 25), seed=rnd.randint(0, 10**6))
        golds, preds = [g for g, _ in pairs], [p for _, p in pairs]
        assert nova_bleu(golds, preds) == _sacrebleu_buggy(golds, preds)


def test_bleu_bootstrap_equals_lightevals_procedure_replicate_by_replicate() -> None:
    pairs = [(f"answer {i % 7} is the {i % 3} thing here", f"answer {i % 5} is the {i % 3} thing") for i in range(15)]
    golds, preds = [g for g, _ in pairs], [p for _, p in pairs]
    rnd = random.Random()
    rnd.seed(0)
    expected = []
    for _ in range(1000):
        draw = rnd.choices(pairs, k=len(pairs))
        expected.append(_sacrebleu_buggy([g for g, _ in draw], [p for _, p in draw]))
    ours = NovaBleu(golds, preds).bootstrap_replicates()
    assert ours == expected
    assert NovaBleu(golds, preds).stderr() == mean_stderr(expected)
    assert mean_stderr(expected) > 0


def test_corpus_bleu_is_the_correct_layout_and_differs_from_novas() -> None:
    golds = ["the cat sat on the mat today", "a dog ran in the park at noon"]
    preds = ["the cat sat on the mat today", "a cat walked in a park"]
    assert corpus_bleu(golds, preds) == BLEU().corpus_score(preds, [golds]).score
    assert corpus_bleu(golds, preds) < nova_bleu(golds, preds) == 100.00000000000004
    assert corpus_bleu_bootstrap_se(golds, preds) > 0


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="2 golds but 1 predictions"):
        nova_results_json(["a", "b"], ["a"])
    with pytest.raises(EvaluationError, match="no samples"):
        nova_results_json([], [])
    with pytest.raises(EvaluationError, match="sample 1: prediction must be a string, got NoneType"):
        nova_results_json(["a", "b"], ["a", None])  # type: ignore[list-item]


def test_results_document_matches_golden_file() -> None:
    rows = [json.loads(line) for line in (GOLDEN / "pairs.jsonl").read_text().splitlines()]
    doc = nova_results_json([r["gold"] for r in rows], [r["prediction"] for r in rows])
    assert json.dumps(doc, indent=2) + "\n" == (GOLDEN / "results_gen_qa.json").read_text()
    assert doc["results"]["all"] == doc["results"][GEN_QA_TASK]
    assert list(doc["results"]["all"]) == [
        "rouge1",
        "rouge1_stderr",
        "rouge2",
        "rouge2_stderr",
        "rougeL",
        "rougeL_stderr",
        "em",
        "em_stderr",
        "qem",
        "qem_stderr",
        "f1",
        "f1_stderr",
        "f1_score_quasi",
        "f1_score_quasi_stderr",
        "bleu",
        "bleu_stderr",
    ]


def test_golden_document_agrees_with_the_reference_library_stack() -> None:
    from novaflow.evaluation.reference import ReferenceMetrics

    ref = ReferenceMetrics()
    rows = [json.loads(line) for line in (GOLDEN / "pairs.jsonl").read_text().splitlines()]
    golds, preds = [r["gold"] for r in rows], [r["prediction"] for r in rows]
    entry = json.loads((GOLDEN / "results_gen_qa.json").read_text())["results"]["all"]
    per_sample = [ref.sample(g, p) for g, p in rows_pairs(rows)]
    for name in ("rouge1", "rouge2", "rougeL", "em", "qem", "f1", "f1_score_quasi"):
        mean, stderr = aggregate([s[name] for s in per_sample])
        assert entry[name] == mean and entry[f"{name}_stderr"] == stderr, name
    assert entry["bleu"] == ref.bleu(golds, preds)
    assert entry["bleu_stderr"] == ref.bleu_stderr(golds, preds)


def rows_pairs(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(r["gold"], r["prediction"]) for r in rows]


def test_sample_metrics_equal_reference_stack_on_many_pairs() -> None:
    from novaflow.evaluation.reference import ReferenceMetrics

    ref = ReferenceMetrics()
    for gold, pred in random_pairs(600, seed=21):
        assert sample_metrics(gold, pred) == ref.sample(gold, pred), (gold, pred)
