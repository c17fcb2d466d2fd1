"""Build evaluation outputs in every layout docs/evaluation-outputs.md lists, from data, for the parser tests.

Results come from the metrics engine on the given pairs; inference_output.jsonl and the details parquet use Nova's
Python-literal quirks (single-quoted reprs), the BLEU per-sample object repr and the ``pred_logprobs`` column.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pandas as pd

from novaflow.evaluation.metrics import nova_results_json, sample_metrics

TS = "2025-07-10T12-34-56.789012"
DETAILS = f"details/model/{TS}/details_custom|gen_qa_gen_qa|0_{TS}.parquet"

PAIRS = [
    ("HQ", "HQ"),
    ("LQ_EDIT", "The answer is LQ_EDIT."),
    ("LQ_CLOSE", "LQ_EDIT"),
    (
        "the current stock price of aapl is $150.75. ",
        "<|begin_of_solution|>The current stock price for AAPL is $150.75.<|end_of_solution|>",
    ),
    ("it's a 'quoted' answer", 'He said "it\'s" fine'),
    ("Ünïcode café", "unicode cafe"),
]


def inference_jsonl(pairs: list[tuple[str, str]]) -> bytes:
    lines = []
    for i, (gold, pred) in enumerate(pairs):
        prompt = repr([{"role": "system", "content": "Label only."}, {"role": "user", "content": f"Q{i}?"}])
        lines.append(
            json.dumps({"prompt": prompt, "inference": repr([pred]), "gold": gold, "metadata": json.dumps({"row": i})})
        )
    return ("\n".join(lines) + "\n").encode()


def details_parquet(pairs: list[tuple[str, str]], *, logprobs: bool = True) -> bytes:
    rows = []
    for i, (gold, pred) in enumerate(pairs):
        metrics = repr(sample_metrics(gold, pred))[:-1] + (
            f", 'bleu': GenerativeCorpusMetricInput(golds=[{gold!r}], preds=[{pred!r}])}}"
        )
        row = {
            "example": f"Q{i}?",
            "full_prompt": f"<system>Label only.</system>Q{i}?",
            "gold": repr([gold]),
            "predictions": repr([pred]),
            "metrics": metrics,
            "specifics": repr({"metadata": json.dumps({"row": i})}),
        }
        if logprobs:
            row["pred_logprobs"] = repr([[{"▁" + pred[:2]: -0.01, "▁X": -4.6}]])
        rows.append(row)
    buf = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buf, index=False)
    return buf.getvalue()


def eval_files(
    pairs: list[tuple[str, str]], *, with_results: bool = True, results: dict | None = None
) -> dict[str, bytes]:
    golds, preds = [g for g, _ in pairs], [p for _, p in pairs]
    doc = results if results is not None else nova_results_json(golds, preds)
    files = {"inference_output.jsonl": inference_jsonl(pairs), DETAILS: details_parquet(pairs)}
    if with_results:
        files[f"results_{TS}.json"] = json.dumps(doc, indent=2).encode()
    return files


def layout(variant: str, pairs: list[tuple[str, str]] = PAIRS, **kw: object) -> dict[str, bytes]:
    """Relative path -> bytes for one layout variant (a tar's members, or a prefix's objects)."""
    files = eval_files(pairs, **kw)  # type: ignore[arg-type]
    tb = b"\x00tfevents"
    if variant == "smtj":  # inside output.tar.gz
        root = "nova-eval-job-1/my-run"
        out = {f"{root}/eval_results/{k}": v for k, v in files.items()}
        out[f"{root}/tensorboard_results/eval/events.out.tfevents.1700000000.algo-1"] = tb
    elif variant == "smhp":  # s3://<output_path>/<job_id>/eval-result/
        out = {f"job-123/eval-result/{k}": v for k, v in files.items()}
        out["job-123/tensorboard-results/eval/events.out.tfevents.1700000000"] = tb
    elif variant == "serverless":
        base = "train-job-9/output/output/eval-job-9"
        out = {f"{base}/eval_results/{k}": v for k, v in files.items()}
        out[f"{base}/tensorboard_results/eval/events.out.tfevents.1700000001"] = tb
    elif variant == "docs-alt":  # the docs' other spelling: eval-tensorboard-result and details/model/taskname.parquet
        out = {f"job/eval-result/{k}": v for k, v in files.items() if not k.startswith("details/")}
        out["job/eval-result/details/model/gen_qa.parquet"] = files[DETAILS]
        out["job/eval-tensorboard-result/eval/event.out.tfevents.1700000000+10.0.0.1"] = tb
    elif variant == "batch":  # invoke_batch: only inference_output.jsonl
        out = {"batch-job/eval_results/inference_output.jsonl": files["inference_output.jsonl"]}
    else:
        raise ValueError(variant)
    return out


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_tree(root: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
