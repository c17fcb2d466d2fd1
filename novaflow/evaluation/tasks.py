"""Which evaluations a stage can run, which metrics each produces, and which way each metric is better.

Every evaluation stage runs ``gen_qa`` on the held-out rows (the comparison's backbone: em, qem, f1, ROUGE, BLEU,
and label accuracy for label data); ``evaluation.task`` adds one more evaluation of the same model:

* ``judge`` - Nova's LLM-as-judge on (prompt, reference answer as ``response_A``, the model's answer as
  ``response_B``): the judge variant of the model's Nova version (``llm_judge`` for Nova 1, ``rubric_llm_judge``
  for Nova 2, as the recipe hub ships them); naming the variant explicitly is checked against the version;
* ``rft_eval`` - the model answers the held-out rows and the reward Lambda grades each answer;
* a benchmark (``mmlu``, ``mmlu_pro``, ``bbh``, ``gpqa``, ``math``, ``strong_reject``, ``ifeval``, ``mmmu``).

Metrics of the added task are named ``<task>:<metric>`` (``judge:winrate``, ``rft_eval:aggregate_reward_score``,
``mmlu:accuracy``) so they never collide with gen_qa's, and so a gate setting names exactly one number.
"""

from __future__ import annotations

from collections.abc import Iterable

from novaflow.catalog import MODELS
from novaflow.errors import EvaluationError
from novaflow.evaluation.metrics import NOVA_METRICS
from novaflow.recipes.service import BENCHMARKS as TEXT_BENCHMARKS
from novaflow.recipes.service import MULTI_MODAL_BENCHMARKS, judge_task

GEN_QA = "gen_qa"
JUDGE = "judge"
RFT_EVAL = "rft_eval"
JUDGE_BY_VERSION: dict[int, str] = {m.version: judge_task(m) for m in MODELS.values()}
"""The judge recipe each Nova version has in the recipe hub (``*_llm_judge_eval`` / ``*_rubric_llm_judge_eval``),
read from the published tables (novaflow.recipes.service)."""
BENCHMARKS: dict[str, str] = {
    task: metric for task, (_, metric) in {**TEXT_BENCHMARKS, **MULTI_MODAL_BENCHMARKS}.items()
}
"""Benchmark task -> the metric its recipe reports."""
JUDGE_METRICS = ("a_scores", "b_scores", "ties", "inference_error", "score", "winrate", "lower_rate", "upper_rate")
RUBRIC_METRICS = (*JUDGE_METRICS, "weighted_score_A", "weighted_score_B", "score_margin")
GEN_QA_METRICS = (*NOVA_METRICS, "accuracy")
REWARD_METRIC = "aggregate_reward_score"
LOWER_IS_BETTER = frozenset({"judge:a_scores", "judge:inference_error", "judge:score_margin", "judge:weighted_score_A"})
"""Metrics where a smaller value is the better candidate (response A is the reference answer)."""


def task_names() -> list[str]:
    return [GEN_QA, JUDGE, *JUDGE_BY_VERSION.values(), RFT_EVAL, *BENCHMARKS]


def resolve_task(task: str, nova_version: int) -> tuple[str, str | None]:
    """(the metric prefix, the recipe task of the added evaluation) for ``evaluation.task`` on a Nova version.

    ``gen_qa`` adds nothing (``(gen_qa, None)``). A judge variant that the version does not have is refused.
    """
    if task == GEN_QA:
        return GEN_QA, None
    if task == JUDGE:
        return JUDGE, JUDGE_BY_VERSION[nova_version]
    if task in JUDGE_BY_VERSION.values():
        have = JUDGE_BY_VERSION[nova_version]
        if task != have:
            raise EvaluationError(
                f"evaluation task {task!r} is not available for Nova {nova_version} models; their judge is "
                f"{have!r} (or say 'judge' to get the version's judge)"
            )
        return JUDGE, task
    if task == RFT_EVAL or task in BENCHMARKS:
        return task, task
    raise EvaluationError(f"unknown evaluation task {task!r}; choose from {', '.join(task_names())}")


def produced_metrics(task: str, nova_version: int) -> list[str]:
    """The metric names a stage with ``evaluation.task = task`` produces (``rft_eval:*`` means any reward metric)."""
    prefix, recipe_task = resolve_task(task, nova_version)
    names = list(GEN_QA_METRICS)
    if recipe_task in ("llm_judge",):
        names += [f"{prefix}:{m}" for m in JUDGE_METRICS]
    elif recipe_task == "rubric_llm_judge":
        names += [f"{prefix}:{m}" for m in RUBRIC_METRICS]
    elif recipe_task == RFT_EVAL:
        names += [f"{prefix}:{REWARD_METRIC}", f"{prefix}:*"]
    elif recipe_task is not None:
        names.append(f"{prefix}:{BENCHMARKS[recipe_task]}")
    return names


def check_metric(metric: str, tasks: Iterable[str], nova_version: int) -> None:
    """Refuse a gate metric that one of the compared stages' tasks does not produce (before anything runs)."""
    for task in dict.fromkeys(tasks):
        produced = produced_metrics(task, nova_version)
        wildcard = [p[:-1] for p in produced if p.endswith(":*")]
        if metric in produced or any(metric.startswith(w) and len(metric) > len(w) for w in wildcard):
            continue
        raise EvaluationError(
            f"gate metric {metric!r} is not produced by evaluation task {task!r}; it produces "
            f"{', '.join(p for p in produced if not p.endswith(':*'))}"
            + (" and any metric the reward function reports (rft_eval:<name>)" if wildcard else "")
        )


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER
