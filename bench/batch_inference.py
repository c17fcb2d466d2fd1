"""Time batch inference as a user runs it: ``novaflow infer batch ... --local`` in a fresh process.

For each platform (a gen_qa evaluation job, and Bedrock batch) over the committed-style synthetic Stack Overflow
rows, it prints the wall time of the whole command, rows per second, and the ratio to the ideal: the same rows
answered in one process by the stand-in model alone (no S3, no job, no parsing). The ratio is what the job path
(upload, job, archive, parse, join by id, write JSONL + Parquet) costs on top of computing the answers.

    python bench/batch_inference.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ideal_seconds(csv: Path) -> float:
    """The stand-in base model answering every row, in this process: the floor of any batch run."""
    from novaflow.data.source import ColumnMap, DatasetSource
    from novaflow.inference.rows import read_batch_rows
    from novaflow.local.models.classifier import base_answer
    from novaflow.settings import load_settings

    rows = read_batch_rows(
        DatasetSource(path=str(csv), columns=ColumnMap(query="Body", id="Id")), settings=load_settings()
    ).rows
    start = time.perf_counter()
    for row in rows:
        base_answer(row.system or "", row.query)
    return time.perf_counter() - start


def cli_seconds(csv: Path, out: Path, platform: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(out / "prefect")}
    command = [
        sys.executable,
        "-m",
        "novaflow.cli",
        "infer",
        "batch",
        str(csv),
        "--map",
        "query=Body",
        "--map",
        "id=Id",
        "--out",
        str(out / platform),
        "--platform",
        platform,
        "--local",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{platform}: exit {done.returncode}\n{done.stderr[-2000:]}")
    lines = (out / platform / "results.jsonl").read_text(encoding="utf-8").count("\n")
    print(f"  {platform}: {lines} result rows")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    from novaflow.data.samples import generate_stackoverflow_csv

    with tempfile.TemporaryDirectory(prefix="novaflow-bench-batch-") as tmp:
        folder = Path(tmp)
        csv = generate_stackoverflow_csv(folder / "so.csv", args.rows, seed=7)
        ideal = ideal_seconds(csv)
        print(f"rows: {args.rows}; ideal (stand-in model only, in process): {ideal:.2f} s")
        print(f"{'platform':<10} {'wall s':>8} {'rows/s':>8} {'x ideal':>8}")
        for platform in ("SMTJ", "BEDROCK"):
            seconds = cli_seconds(csv, folder, platform)
            print(f"{platform:<10} {seconds:>8.2f} {args.rows / seconds:>8.0f} {seconds / ideal:>8.1f}")


if __name__ == "__main__":
    main()
