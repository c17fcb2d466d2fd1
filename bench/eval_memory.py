"""Benchmark: peak memory of `novaflow eval parse` on an evaluation archive whose inference_output.jsonl is large.

Writes ``output.tar.gz`` with ``eval_results/results_<ts>.json`` and an ``inference_output.jsonl`` of about
``--mb`` megabytes (rows shaped as Nova writes them: a Python-repr prompt of a few KB, ``inference`` a repr list,
``gold`` a label), then runs the CLI on it as a user would, in its own process, and prints wall time and the peak
resident memory. ``--novaflow`` runs another installation's CLI on the same archive (a before/after comparison).

    python bench/eval_memory.py --mb 300
    python bench/eval_memory.py --mb 300 --novaflow /path/to/other/.venv/bin/novaflow
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_prep import measure, novaflow_cli  # bench scripts import each other by path

from reward_lambda.labels import DEFAULT_LABELS

LABELS = DEFAULT_LABELS
TS = "2025-07-10T12-34-56.789012"


def write_archive(path: Path, megabytes: int, seed: int) -> int:
    """The archive, streamed member by member (this script must not need the memory it measures); returns rows."""
    from novaflow.evaluation.metrics import nova_results_json

    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    jsonl = path.with_name("inference_output.jsonl")
    rows = 0
    golds: list[str] = []
    preds: list[str] = []
    with jsonl.open("w", encoding="utf-8") as fh:
        while fh.tell() < megabytes * 1_000_000:
            gold, pred = rng.choice(LABELS), rng.choice(LABELS)
            question = " ".join(rng.choice(words) for _ in range(rng.randint(300, 600)))
            prompt = repr([{"role": "system", "content": "Label only."}, {"role": "user", "content": question}])
            fh.write(json.dumps({"prompt": prompt, "inference": repr([pred]), "gold": gold}) + "\n")
            if rows < 1000:
                golds.append(gold)
                preds.append(pred)
            rows += 1
    results = json.dumps(nova_results_json(golds, preds)).encode()  # a results file to sit beside the samples
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo(f"eval_results/results_{TS}.json")
        info.size = len(results)
        tar.addfile(info, io.BytesIO(results))
        tar.add(jsonl, arcname="eval_results/inference_output.jsonl")
    jsonl.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="size of inference_output.jsonl in MB")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "novaflow-bench"))
    parser.add_argument("--novaflow", action="append", default=[], help="another novaflow executable to compare")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    archive = work / f"eval_{args.mb}mb" / "output.tar.gz"
    archive.parent.mkdir(exist_ok=True)
    if not archive.exists():
        rows = write_archive(archive, args.mb, args.seed)
        print(f"wrote {archive} ({archive.stat().st_size / 1e6:.0f} MB compressed, {rows:,} rows)")
    print("cli                                                   wall s  peak MB  result")
    for cli in [novaflow_cli(), *([c] for c in args.novaflow)]:
        run = measure([*cli, "eval", "parse", str(archive), "--no-verify"])
        result = run.problem[:60] if run.problem else "ok"
        print(f"{' '.join(cli)[-52:]:52}  {run.wall:6.1f}  {run.peak_mb:7.0f}  {result}")


if __name__ == "__main__":
    main()
