"""The stand-in judge's verdicts and aggregates, and the packaged benchmark sample and its scoring."""

from __future__ import annotations

import pytest

from novaflow.local.models import benchmarks, judge


def test_verdicts_follow_the_rubric() -> None:
    assert judge.judge_row("What is 2+2?", "4", "4").preference == "A=B"
    assert judge.judge_row("What is 2+2?", "4", "4.").preference == "A=B"  # equal after normalisation
    assert judge.judge_row("What is 2+2?", "4", "5").preference == "A=B"  # it cannot check arithmetic
    verbose = judge.judge_row("What is 2+2?", "4", "Let me think about this step by step, the answer is 5")
    assert verbose.preference == "A>B" and verbose.weighted_a == pytest.approx(1.0)
    assert verbose.criteria["B"]["concise"] == 0.0
    refusal = judge.judge_row("Name a colour.", "I can't help with that.", "Blue")
    assert refusal.preference == "B>A" and refusal.criteria["A"]["answers"] == 0.0
    assert judge.judge_rows([{"prompt": "p", "response_A": 1, "response_B": "x"}])[0].preference == "error"


def test_aggregates_count_verdicts_and_bootstrap_the_winrate() -> None:
    verdicts = [judge.Verdict(p, 0.0, 0.0, {}) for p in ["A>B"] * 6 + ["B>A"] * 3 + ["A=B"] * 1]
    entry = judge.aggregate(verdicts, rubric=False)
    assert (entry["a_scores"], entry["b_scores"], entry["ties"], entry["inference_error"]) == (6.0, 3.0, 1.0, 0.0)
    assert entry["score"] == 3.0
    assert entry["winrate"] == pytest.approx((3 + 0.5) / 10)
    assert entry["a_scores_stderr"] == pytest.approx((0.6 * 0.4 / 9) ** 0.5)  # mean_stderr of the 0/1 indicator
    assert entry["lower_rate"] <= entry["winrate"] <= entry["upper_rate"]
    assert judge.bootstrap_interval([0.0, 1.0, 0.5, 1.0]) == judge.bootstrap_interval([0.0, 1.0, 0.5, 1.0])
    rubric = judge.aggregate(
        [judge.judge_row("q", "4", "I think it is 4 or so, maybe"), judge.judge_row("q", "4", "4")], True
    )
    assert rubric["score_margin"] == pytest.approx(rubric["weighted_score_A"] - rubric["weighted_score_B"])


def test_the_benchmark_sample_is_the_same_everywhere_and_computable() -> None:
    assert benchmarks.sample("mmlu") == benchmarks.sample("mmlu")
    assert len(benchmarks.sample("bbh")) == benchmarks.ITEMS_PER_TASK
    for item in benchmarks.sample("mmlu"):
        assert len(item.choices) == 4 and item.gold in "ABCD"
        assert benchmarks.score("mmlu", item, item.gold) == 1.0
        assert benchmarks.score("mmlu", item, item.choices["ABCD".index(item.gold)]) == 1.0  # the option's text
    assert all(len(i.choices) == 10 for i in benchmarks.sample("mmlu_pro"))
    for item in benchmarks.sample("bbh")[:10]:
        text = item.prompt.split("\n", 1)[1].removesuffix(" is")
        assert str(eval(text, {"__builtins__": {}})) == item.gold  # the generated truth value is right
    for item in benchmarks.sample("math"):
        expression = item.prompt.removeprefix("Compute ").split(".")[0]
        assert str(eval(expression, {"__builtins__": {}})) == item.gold
        assert benchmarks.score("math", item, f"The answer is {item.gold}.") == 1.0


def test_instruction_and_refusal_scoring() -> None:
    items = benchmarks.sample("ifeval")
    lower = next(i for i in items if "lowercase" in i.check)
    assert benchmarks.score("ifeval", lower, "the sea is calm today.") == 1.0
    assert benchmarks.score("ifeval", lower, "The sea is calm today.") == 0.0
    count = next(i for i in items if "words" in i.check)
    assert benchmarks.score("ifeval", count, " ".join(["word"] * count.check["words"])) == 1.0
    harmful = benchmarks.sample("strong_reject")[0]
    assert benchmarks.score("strong_reject", harmful, "Sorry, I can't help with that.") == 1.0
    assert benchmarks.score("strong_reject", harmful, "Sure, here is how.") == 0.0
    with pytest.raises(KeyError):
        benchmarks.sample("mmmu")
