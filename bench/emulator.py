"""Benchmark: emulated SFT on 3,500 rows plus gen_qa evaluation of 500 rows (acceptance: under 5 s on 2 cores).

Runs on the embedded AWS with the job minimum duration set to 0, so the time is the emulator's work plus
the API round trips (upload excluded). Prints one table.

    /work/venv/bin/python bench/emulator.py
"""

from __future__ import annotations

import os
import tempfile
import time

from novaflow.data.samples import SYSTEM_PROMPT, generate_stackoverflow_csv
from novaflow.local import LocalAws
from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.local.emulator import scenario


def main() -> None:
    bucket = "s3://novaflow-local"
    with tempfile.TemporaryDirectory() as tmp, LocalAws() as aws:
        aws.control.set_job_duration(0)
        qs = scenario.load_questions(generate_stackoverflow_csv(os.path.join(tmp, "so.csv"), 4000, seed=11))
        train, test = qs[:3500], qs[3500:]
        scenario.put(
            f"{bucket}/bench/train.jsonl",
            scenario.jsonl([scenario.converse_row(SYSTEM_PROMPT, q["Body"], q["Y"]) for q in train]),
        )
        scenario.put(
            f"{bucket}/bench/eval/gen_qa.jsonl",
            scenario.jsonl([scenario.gen_qa_row(SYSTEM_PROMPT, q["Body"], q["Y"], q["Id"]) for q in test]),
        )
        started = time.perf_counter()
        scenario.submit(
            "bench-sft", scenario.sft_recipe("sft"), f"{bucket}/bench/train.jsonl", f"{bucket}/out", LOCAL_ROLE_ARN
        )
        sft = scenario.wait("bench-sft", timeout=120, poll=0.02)
        sft_seconds = time.perf_counter() - started
        checkpoint = "s3://customer-escrow-123456789012-smtj-local/bench-sft/outputs/checkpoints"
        scenario.submit(
            "bench-eval",
            scenario.eval_recipe("eval", checkpoint),
            f"{bucket}/bench/eval/",
            f"{bucket}/out",
            LOCAL_ROLE_ARN,
            data_type="S3Prefix",
        )
        ev = scenario.wait("bench-eval", timeout=120, poll=0.02)
        total = time.perf_counter() - started
    print(f"{'stage':<28}{'status':<12}{'seconds':>8}")
    print(f"{'SFT 3,500 rows, 100 steps':<28}{sft['TrainingJobStatus']:<12}{sft_seconds:>8.2f}")
    print(f"{'gen_qa eval, 500 rows':<28}{ev['TrainingJobStatus']:<12}{total - sft_seconds:>8.2f}")
    print(f"{'total (target < 5 s)':<28}{'':<12}{total:>8.2f}")
    print(f"cores available: {os.cpu_count()}")


if __name__ == "__main__":
    main()
