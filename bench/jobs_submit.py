"""Bench: cost of building requests offline and of submit / attach / dry run against the embedded AWS.

Run: /work/venv/bin/python bench/jobs_submit.py [N]
"""

from __future__ import annotations

import sys
import time

from novaflow.aws import get_client
from novaflow.jobs.dryrun import dry_run
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import prepare_submission, submit_training_job
from novaflow.local import LocalAws
from novaflow.settings import load_settings


def timed(label: str, n: int, fn) -> None:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    total = time.perf_counter() - start
    print(f"| {label:<38} | {n:>4} | {total:8.3f} s | {1000 * total / n:8.2f} ms |")


def main(n: int = 20) -> None:
    with LocalAws():
        settings = load_settings()
        body = b"".join(
            b'{"schemaVersion": "bedrock-conversation-2024", "messages": [{"role": "user", "content": '
            b'[{"text": "q"}]}, {"role": "assistant", "content": [{"text": "HQ"}]}]}\n'
            for _ in range(64)
        )
        get_client("s3", settings=settings).put_object(Bucket="novaflow-local", Key="data/train.jsonl", Body=body)

        def spec(i: int) -> JobSpec:
            return JobSpec(
                model="nova-lite-2",
                method="sft_lora",
                train_uri="s3://novaflow-local/data/train.jsonl",
                overrides={"max_steps": 1 + i},
            )

        print("| operation                              |    n |     total |    per op |")
        print("|---|---|---|---|")
        timed("prepare_submission (offline)", n, lambda i: prepare_submission(spec(i), settings=settings).request())
        timed("submit (describe + upload + create)", n, lambda i: submit_training_job(spec(i), settings=settings))
        timed("submit again (describe -> attach)", n, lambda i: submit_training_job(spec(i), settings=settings))
        timed("dry_run (read-only checks)", n, lambda i: dry_run(spec(i), simulate_iam=False, settings=settings))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
