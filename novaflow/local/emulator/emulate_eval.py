"""Evaluation jobs as the Nova evaluation container runs them, with the stand-in model (docs/evaluation-outputs.md).

* ``gen_qa``: metrics from novaflow's gen_qa engine (:mod:`novaflow.evaluation.metrics`), the same code that
  reproduces Nova's numbers; ``results_*.json``, ``inference_output.jsonl`` and the details parquet.
* ``llm_judge`` / ``rubric_llm_judge``: the stand-in judge of :mod:`novaflow.local.models.judge` on ``llm_judge.jsonl``.
* ``rft_eval``: the model answers each RFT row and the reward Lambda of ``rl_env`` grades it, through the Lambda
  API; its answers are written one per line, unchanged, as the service does.
* benchmarks: the packaged sample of :mod:`novaflow.local.models.benchmarks`, scored by the task's metric.

Every number is computed from the model's answers, never written from expected values.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from novaflow.evaluation.bleu import mean_stderr
from novaflow.evaluation.metrics import nova_results_json, sample_metrics
from novaflow.local.emulator import aws_io
from novaflow.local.emulator.emulate_rft import RewardClient, user_text
from novaflow.local.emulator.job_context import JobContext, RecipeNotSupported
from novaflow.local.models import benchmarks, judge
from novaflow.local.models.classifier import CorpusModel, base_answer, is_base_model

TASK = "custom|gen_qa_gen_qa|0"
NO_DETAILS = frozenset({"strong_reject"})
"""Benchmarks whose output has no per-sample details file (the original llm_judge has none either)."""


def _predict(ctx: JobContext, model_path: str, systems: list[str], users: list[str]) -> list[str]:
    if is_base_model(model_path):
        return [base_answer(system, user) for system, user in zip(systems, users, strict=True)]
    model = aws_io.load_model(ctx.url, model_path)
    if isinstance(model, CorpusModel):
        return [model.answer(system, user) for system, user in zip(systems, users, strict=True)]
    return model.answer(users)


def details_parquet(
    examples: list[str],
    prompts: list[str],
    golds: list[str],
    preds: list[str],
    per_sample: list[dict[str, float]],
    specifics: list[str] | None = None,
) -> bytes:
    """lighteval 0.10 ``Detail`` columns (alphabetical), values as stringified Python literals like Nova's."""
    n = len(examples)
    columns = {
        "choices": ["[]"] * n,
        "cont_tokens": ["[]"] * n,
        "example": examples,
        "full_prompt": prompts,
        "gold": [repr([g]) for g in golds],
        "gold_index": ["[]"] * n,
        "input_tokens": ["[]"] * n,
        "instruction": [""] * n,
        "metrics": [repr(m) for m in per_sample],
        "num_asked_few_shots": [0] * n,
        "num_effective_few_shots": [0] * n,
        "padded": ["[]"] * n,
        "pred_logits": ["[]"] * n,
        "prediction_logits": ["[]"] * n,
        "predictions": [repr([p]) for p in preds],
        "specifics": specifics or ["{}"] * n,
        "truncated": ["[]"] * n,
    }
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def task_key(recipe: dict[str, Any]) -> str:
    """lighteval's ``suite|task|fewshot`` key, as Nova names its custom tasks (``custom|gen_qa_gen_qa|0``)."""
    evaluation = recipe.get("evaluation") or {}
    return f"custom|{evaluation.get('task')}_{evaluation.get('strategy')}|0"


def write_archive(ctx: JobContext, recipe: dict[str, Any], results: dict[str, Any], files: dict[str, bytes]) -> None:
    """``output.tar.gz`` with ``<job>/<run.name>/eval_results/results_<ts>.json`` and the task's other files; an
    uncompressed output (serverless) puts the same tree under ``<job>/output/output/<run.name>/``."""
    ctx.run.enter("Uploading")
    date_id = datetime.now().isoformat().replace(":", "-")
    run_name = recipe["run"].get("name") or "eval"
    # Inside output.tar.gz the tree starts with the job's name; uncompressed, it is already in the prefix.
    root = f"{ctx.name}/{run_name}" if ctx.compressed else str(run_name)
    members = {f"{root}/eval_results/results_{date_id}.json": json.dumps(results, indent=2).encode()}
    for name, body in files.items():
        members[f"{root}/eval_results/{name.format(date_id=date_id)}"] = body
    ctx.write_outputs(members, directories=(f"{root}/tensorboard_results/eval/",))
    summary = results["results"]["all"]
    ctx.line("Evaluation results: " + json.dumps({k: v for k, v in summary.items() if not k.endswith("_stderr")}))


def run_evaluation(ctx: JobContext, recipe: dict[str, Any]) -> None:
    task = (recipe.get("evaluation") or {}).get("task")
    if task == "gen_qa":
        run_gen_qa(ctx, recipe)
    elif task in ("llm_judge", "rubric_llm_judge"):
        run_judge(ctx, recipe, rubric=task == "rubric_llm_judge")
    elif task == "rft_eval":
        run_rft_eval(ctx, recipe)
    elif task in benchmarks.GENERATORS:
        run_benchmark(ctx, recipe, str(task))
    else:
        raise RecipeNotSupported(
            f"ClientError: the local emulator cannot evaluate task={task!r} (it has gen_qa, llm_judge, "
            f"rubric_llm_judge, rft_eval and a packaged sample of {', '.join(benchmarks.GENERATORS)})"
        )


def run_gen_qa(ctx: JobContext, recipe: dict[str, Any]) -> None:
    rows = ctx.read_jsonl("train", prefer="gen_qa.jsonl")
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("query"), str) or not isinstance(row.get("response"), str):
            raise RecipeNotSupported(f"ClientError: gen_qa.jsonl row {number}: 'query' and 'response' must be strings")
    model_path = str(recipe["run"].get("model_name_or_path") or "")
    ctx.line(f"Running inference on {len(rows)} samples with {model_path}")
    preds = _predict(ctx, model_path, [str(r.get("system") or "") for r in rows], [str(r["query"]) for r in rows])
    ctx.checkpoint()
    golds = [str(r["response"]) for r in rows]
    results = nova_results_json(golds, preds)
    per_sample = [sample_metrics(g, p) for g, p in zip(golds, preds, strict=True)]
    prompts = [
        repr([{"role": "system", "content": str(r.get("system") or "")}, {"role": "user", "content": str(r["query"])}])
        for r in rows
    ]
    inference = []
    for row, prompt, pred, gold in zip(rows, prompts, preds, golds, strict=True):
        record = {"prompt": prompt, "inference": repr([pred]), "gold": gold}
        if row.get("metadata") is not None:
            record["metadata"] = row["metadata"]
        inference.append(json.dumps(record))
    specifics = [repr({"metadata": r.get("metadata")}) if r.get("metadata") is not None else "{}" for r in rows]
    details = details_parquet([str(r["query"]) for r in rows], prompts, golds, preds, per_sample, specifics)
    write_archive(
        ctx,
        recipe,
        results,
        {
            "inference_output.jsonl": ("\n".join(inference) + "\n").encode(),
            f"details/model/{{date_id}}/details_{TASK}_{{date_id}}.parquet": details,
        },
    )


def run_judge(ctx: JobContext, recipe: dict[str, Any], *, rubric: bool) -> None:
    """Nova LLM-as-judge on ``llm_judge.jsonl`` rows with the stand-in judge; the rubric judge adds details."""
    rows = ctx.read_jsonl("train", prefer="llm_judge.jsonl")
    ctx.line(f"Judging {len(rows)} response pairs ({'rubric judge' if rubric else 'judge'})")
    verdicts = judge.judge_rows(rows)
    ctx.checkpoint()
    key = task_key(recipe)
    entry = judge.aggregate(verdicts, rubric)
    files: dict[str, bytes] = {}
    if rubric:  # the original judge writes no per-sample details (docs/evaluation-outputs.md)
        details = details_parquet(
            [str(r.get("prompt", "")) for r in rows],
            [str(r.get("prompt", "")) for r in rows],
            [""] * len(rows),
            [v.text for v in verdicts],
            [v.sample_metrics(rubric=True) for v in verdicts],
            [repr({"criteria": v.criteria}) for v in verdicts],
        )
        files[f"details/model/{{date_id}}/details_{key}_{{date_id}}.parquet"] = details
    write_archive(ctx, recipe, {"results": {key: entry, "all": dict(entry)}}, files)


def run_rft_eval(ctx: JobContext, recipe: dict[str, Any]) -> None:
    """Reward-based evaluation: the model answers each RFT row and the reward Lambda (``rl_env``) grades it."""
    arn = (recipe.get("rl_env") or {}).get("reward_lambda_arn") or ctx.hyperparameters.get("reward_lambda_arn")
    if not arn or "{{" in str(arn):
        raise RecipeNotSupported("ClientError: rft_eval needs rl_env.reward_lambda_arn")
    rows = ctx.read_jsonl("train")
    model_path = str(recipe["run"].get("model_name_or_path") or "")
    systems = [
        "\n".join(str(m.get("content") or "") for m in r.get("messages") or [] if m.get("role") == "system")
        for r in rows
    ]
    users = [user_text(r) for r in rows]
    ctx.line(f"Running inference on {len(rows)} samples with {model_path}; rewards from {arn}")
    preds = _predict(ctx, model_path, systems, users)
    samples = []
    for i, (row, pred) in enumerate(zip(rows, preds, strict=True)):
        sample = {**row, "id": row.get("id", f"sample-{i + 1:03d}")}
        sample["messages"] = [*list(row.get("messages") or []), {"role": "assistant", "content": pred}]
        samples.append(sample)
    answers = RewardClient(ctx, str(arn)).outputs(samples)
    ctx.checkpoint()
    per_sample = [reward_values(a) for a in answers]
    entry: dict[str, float] = {}
    for name in dict.fromkeys(k for values in per_sample for k in values):
        column = [v.get(name, 0.0) for v in per_sample]
        entry[name] = float(np.mean(column))
        if len(column) > 1:
            entry[f"{name}_stderr"] = mean_stderr(column)
    key = task_key(recipe)
    details = details_parquet(users, users, [_reference_text(r) for r in rows], preds, per_sample)
    write_archive(
        ctx,
        recipe,
        {"results": {key: entry, "all": dict(entry)}},
        {
            "rft_eval_results.jsonl": "".join(json.dumps(a) + "\n" for a in answers).encode(),
            f"details/model/{{date_id}}/details_{key}_{{date_id}}.parquet": details,
        },
    )


def reward_values(answer: dict[str, Any]) -> dict[str, float]:
    """``aggregate_reward_score`` and every ``metrics_list`` entry of one Lambda answer, by name."""
    values = {"aggregate_reward_score": float(answer["aggregate_reward_score"])}
    for metric in answer.get("metrics_list") or []:
        if isinstance(metric, dict) and isinstance(metric.get("name"), str):
            values[metric["name"]] = float(metric.get("value", 0.0))
    return values


def _reference_text(row: dict[str, Any]) -> str:
    reference = row.get("reference_answer")
    return reference if isinstance(reference, str) else json.dumps(reference)


def run_benchmark(ctx: JobContext, recipe: dict[str, Any], task: str) -> None:
    """A benchmark on the packaged sample of :mod:`novaflow.local.models.benchmarks`, scored by the task's metric."""
    model_path = str(recipe["run"].get("model_name_or_path") or "")
    items = benchmarks.sample(task)
    subtask = str((recipe.get("evaluation") or {}).get("subtask") or "")
    if subtask:
        items = [item for item in items if item.subtask == subtask]
    metric = benchmarks.METRIC.get(task, "accuracy")
    ctx.line(f"Running {task} ({len(items)} packaged items{', ' + subtask if subtask else ''}) with {model_path}")
    preds = _predict(ctx, model_path, [""] * len(items), [item.prompt for item in items])
    ctx.checkpoint()
    scores = [benchmarks.score(task, item, pred) for item, pred in zip(items, preds, strict=True)]
    results: dict[str, Any] = {}
    for name in dict.fromkeys(item.subtask for item in items):
        column = [s for s, item in zip(scores, items, strict=True) if item.subtask == name]
        results[f"{task}:{name}"] = _mean_entry(metric, column)
    results["all"] = _mean_entry(metric, scores)
    files: dict[str, bytes] = {}
    if task not in NO_DETAILS:
        details = details_parquet(
            [item.prompt for item in items],
            [item.prompt for item in items],
            [item.gold for item in items],
            preds,
            [{metric: s} for s in scores],
        )
        files[f"details/model/{{date_id}}/details_{task_key(recipe)}_{{date_id}}.parquet"] = details
    write_archive(ctx, recipe, {"results": results}, files)


def _mean_entry(metric: str, values: list[float]) -> dict[str, float]:
    entry = {metric: float(np.mean(values)) if values else 0.0}
    if len(values) > 1:
        entry[f"{metric}_stderr"] = mean_stderr(values)
    return entry
