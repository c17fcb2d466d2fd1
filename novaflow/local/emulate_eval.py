"""gen_qa evaluation as the Nova evaluation container does it (nova-contract.md §14), with the stand-in model.

Metrics come from novaflow's gen_qa engine (:mod:`novaflow.evaluation.metrics`), the same code that reproduces
Nova's numbers, so a local evaluation's ``results_*.json`` is computed, never written from expected values.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from novaflow.evaluation.metrics import nova_results_json, sample_metrics
from novaflow.local import outputs, storage
from novaflow.local.model import base_answer, is_base_model

TASK = "custom|gen_qa_gen_qa|0"


def _predict(ctx: Any, model_path: str, rows: list[dict[str, Any]]) -> list[str]:
    if is_base_model(model_path):
        return [base_answer(str(r.get("system") or ""), str(r["query"])) for r in rows]
    return storage.load_policy(ctx.url, model_path).answer([str(r["query"]) for r in rows])


def details_parquet(
    rows: list[dict[str, Any]], prompts: list[str], preds: list[str], per_sample: list[dict[str, float]]
) -> bytes:
    """lighteval 0.10 ``Detail`` columns (alphabetical), values as stringified Python literals like Nova's."""
    n = len(rows)
    columns = {
        "choices": ["[]"] * n,
        "cont_tokens": ["[]"] * n,
        "example": [str(r["query"]) for r in rows],
        "full_prompt": prompts,
        "gold": [repr([str(r["response"])]) for r in rows],
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
        "specifics": [repr({"metadata": r.get("metadata")}) if r.get("metadata") is not None else "{}" for r in rows],
        "truncated": ["[]"] * n,
    }
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def run_evaluation(ctx: Any, recipe: dict[str, Any]) -> None:
    from novaflow.local.fulfilment import RecipeNotSupported

    task = (recipe.get("evaluation") or {}).get("task")
    if task != "gen_qa":
        raise RecipeNotSupported(f"ClientError: the local emulator evaluates gen_qa only (task={task!r})")
    rows = ctx.read_jsonl("train", prefer="gen_qa.jsonl")
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("query"), str) or not isinstance(row.get("response"), str):
            raise RecipeNotSupported(f"ClientError: gen_qa.jsonl row {number}: 'query' and 'response' must be strings")
    model_path = str(recipe["run"].get("model_name_or_path") or "")
    ctx.log.line(f"Running inference on {len(rows)} samples with {model_path}")
    preds = _predict(ctx, model_path, rows)
    ctx.checkpoint()
    golds = [str(r["response"]) for r in rows]
    results = nova_results_json(golds, preds)
    per_sample = [sample_metrics(g, p) for g, p in zip(golds, preds, strict=True)]
    ctx.run.enter("Uploading")
    date_id = datetime.now().isoformat().replace(":", "-")
    run_name = str(recipe["run"].get("name") or "eval")
    root = f"{ctx.name}/{run_name}"
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
    files = {
        f"{root}/eval_results/results_{date_id}.json": json.dumps(results, indent=2).encode(),
        f"{root}/eval_results/inference_output.jsonl": ("\n".join(inference) + "\n").encode(),
        f"{root}/eval_results/details/model/{date_id}/details_{TASK}_{date_id}.parquet": details_parquet(
            rows, prompts, preds, per_sample
        ),
    }
    archive = outputs.tar_gz(files, directories=(f"{root}/tensorboard_results/eval/",))
    storage.write_bytes(ctx.url, outputs.output_uri(ctx.output_path, ctx.name), archive)
    summary = results["results"]["all"]
    ctx.log.line("Evaluation results: " + json.dumps({k: v for k, v in summary.items() if not k.endswith("_stderr")}))
