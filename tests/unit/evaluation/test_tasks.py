"""Evaluation tasks beyond exact match: which each Nova version has, what each produces, how each is compared."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from novaflow.errors import EvaluationError
from novaflow.evaluation.compare import compare_stages, unpaired_delta
from novaflow.evaluation.judging import judge_rows
from novaflow.evaluation.parser import parse_eval_output, parse_reward_records
from novaflow.evaluation.results import EvalResult, MetricRow, MetricTable, SampleRecord
from novaflow.evaluation.tasks import check_metric, higher_is_better, produced_metrics, resolve_task
from novaflow.settings import load_settings
from tests.unit.evaluation.stages import sft_rft_500


def test_each_nova_version_gets_its_own_judge_and_a_wrong_one_is_refused() -> None:
    assert resolve_task("judge", 1) == ("judge", "llm_judge")
    assert resolve_task("judge", 2) == ("judge", "rubric_llm_judge")
    assert resolve_task("rubric_llm_judge", 2) == ("judge", "rubric_llm_judge")
    assert resolve_task("gen_qa", 2) == ("gen_qa", None)
    assert resolve_task("mmlu", 1) == ("mmlu", "mmlu")
    with pytest.raises(EvaluationError) as info:
        resolve_task("llm_judge", 2)
    assert str(info.value) == (
        "evaluation task 'llm_judge' is not available for Nova 2 models; their judge is 'rubric_llm_judge' "
        "(or say 'judge' to get the version's judge)"
    )
    with pytest.raises(EvaluationError, match="unknown evaluation task 'bleurt'; choose from gen_qa, judge, "):
        resolve_task("bleurt", 2)


def test_a_gate_metric_the_task_does_not_produce_is_refused() -> None:
    assert "judge:score_margin" in produced_metrics("judge", 2) and "judge:score_margin" not in produced_metrics(
        "judge", 1
    )
    assert produced_metrics("math", 2)[-1] == "math:exact_match"
    check_metric("judge:winrate", ["judge"], 2)
    check_metric("rft_eval:correct", ["rft_eval"], 2)  # any metric the reward function reports
    check_metric("em", ["gen_qa", "judge"], 1)
    with pytest.raises(EvaluationError) as info:
        check_metric("judge:winrate", ["gen_qa", "judge"], 2)
    assert str(info.value) == (
        "gate metric 'judge:winrate' is not produced by evaluation task 'gen_qa'; it produces rouge1, rouge2, "
        "rougeL, em, qem, f1, f1_score_quasi, bleu, accuracy"
    )
    with pytest.raises(EvaluationError, match=r"and any metric the reward function reports \(rft_eval:<name>\)$"):
        check_metric("mmlu:accuracy", ["rft_eval"], 2)
    assert not higher_is_better("judge:a_scores") and higher_is_better("judge:winrate") and higher_is_better("em")


def _with(result: EvalResult, prefix: str, related: EvalResult) -> EvalResult:
    result.related[prefix] = related
    return result


def _judged(name: str, verdicts: list[float], counts: bool = True) -> EvalResult:
    """A rubric-judge-like result: per-sample winrate values (1, 0.5, 0) and their mean."""
    n = len(verdicts)
    rows = [MetricRow("winrate", sum(verdicts) / n)]
    if counts:
        rows += [MetricRow("a_scores", float(verdicts.count(0.0))), MetricRow("b_scores", float(verdicts.count(1.0)))]
        rows += [MetricRow("ties", float(verdicts.count(0.5)))]
    samples = [SampleRecord(i, "", "", "", metrics={"winrate": v}) for i, v in enumerate(verdicts)]
    return EvalResult(source=name, task="custom|rubric_llm_judge_judge|0", metrics=MetricTable(rows), samples=samples)


def test_related_metrics_are_compared_paired_when_per_sample_values_reproduce_them() -> None:
    base, sft, rft = sft_rft_500()
    stages = {
        "Baseline": _with(base, "judge", _judged("b", [0.0] * 400 + [0.5] * 100)),
        "Post-SFT": _with(sft, "judge", _judged("s", [0.0] * 100 + [0.5] * 350 + [1.0] * 50)),
        "Post-RFT": _with(rft, "judge", _judged("r", [0.0] * 90 + [0.5] * 350 + [1.0] * 60)),
    }
    comparison = compare_stages(stages, n_boot=500)
    assert comparison.values["judge:winrate"]["Baseline"] == (0.1, None)
    assert comparison.values["judge:a_scores"]["Post-SFT"] == (100.0, None)
    delta = comparison.delta("judge:winrate", "Baseline", "Post-SFT")
    assert (delta.test, delta.n, delta.delta) == ("sign-flip", 500, pytest.approx(0.45 - 0.1))
    assert delta.p_value < 0.01
    with pytest.raises(KeyError):  # a count has no test: its per-sample values are not what is reported
        comparison.delta("judge:a_scores", "Baseline", "Post-SFT")
    assert comparison.delta("em", "Baseline", "Post-SFT").test == "mcnemar-chi2"  # gen_qa as before


def test_the_original_judge_without_details_gets_an_unpaired_test_from_its_counts() -> None:
    base, sft, _ = sft_rft_500()

    def no_details(result: EvalResult) -> EvalResult:
        result.samples = []
        return result

    stages = {
        "Baseline": _with(base, "judge", no_details(_judged("b", [0.0] * 80 + [1.0] * 20))),
        "Post-SFT": _with(sft, "judge", no_details(_judged("s", [0.0] * 40 + [1.0] * 60))),
    }
    delta = compare_stages(stages, n_boot=200).delta("judge:winrate", "Baseline", "Post-SFT")
    expected = unpaired_delta("judge:winrate", (0.2, (0.2 * 0.8 / 100) ** 0.5), (0.6, (0.6 * 0.4 / 100) ** 0.5), 100)
    assert delta == expected and delta.test == "unpaired-z"
    assert delta.ci_low == pytest.approx(0.4 - 1.959963984540054 * (0.0016 + 0.0024) ** 0.5)


def test_reward_records_of_an_rft_eval_archive_become_per_sample_metrics(tmp_path: Path) -> None:
    answers = [
        {
            "id": "q1",
            "aggregate_reward_score": 1.0,
            "metrics_list": [{"name": "correct", "value": 1, "type": "Metric"}],
        },
        {
            "id": "q2",
            "aggregate_reward_score": 0.0,
            "metrics_list": [{"name": "correct", "value": 0, "type": "Metric"}],
        },
        {"id": "q3", "aggregate_reward_score": 0.5},
    ]
    records = "".join(json.dumps(a) + "\n" for a in answers).encode()
    assert parse_reward_records(records, where="x")[2] == {"aggregate_reward_score": 0.5}
    assert parse_reward_records(b'{"prompt": "p", "response_A": "a"}\n', where="x") == []  # not reward records
    archive = tmp_path / "output.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("job/run/eval_results/rft_eval_results.jsonl")
        info.size = len(records)
        tar.addfile(info, io.BytesIO(records))
    result = parse_eval_output(archive, settings=load_settings())
    assert [s.metrics for s in result.samples] == [
        {"aggregate_reward_score": 1.0, "correct": 1.0},
        {"aggregate_reward_score": 0.0, "correct": 0.0},
        {"aggregate_reward_score": 0.5},
    ]
    assert result.metrics.get("aggregate_reward_score").value == 0.5
    assert result.metrics.get("aggregate_reward_score").stderr == pytest.approx(0.5 / 3**0.5)
    assert result.warnings[-1].endswith("no results_*.json; reward metrics averaged from 3 records")


def test_the_judge_dataset_puts_the_reference_in_a_and_the_answer_in_b() -> None:
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "What is 2 + 2?"}]
    result = EvalResult("s", "t", MetricTable(), [SampleRecord(0, repr(messages), "5", "4")])
    assert judge_rows(result) == [{"prompt": "Be terse.\n\nWhat is 2 + 2?", "response_A": "4", "response_B": "5"}]
    with pytest.raises(EvaluationError, match="no per-sample answers to judge"):
        judge_rows(EvalResult("empty", "t", MetricTable(), []))
