"""Streaming assembly speed and time to first token: the parser alone (worst-case 1-byte chunks and typical
chunking) and SageMaker / Bedrock invocations through the embedded AWS with the emulated model.

Run: /work/venv/bin/python bench/deploy_stream.py
"""

from __future__ import annotations

import json
import statistics
import time

from novaflow.aws import get_client
from novaflow.deploy.stream import StreamAssembler
from novaflow.deploy.targets import ask, deploy_checkpoint
from novaflow.deploy.teardown import teardown
from novaflow.local import LocalAws
from novaflow.settings import load_settings

SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."


def sse(tokens: int) -> bytes:
    return (
        b"".join(
            b"data: " + json.dumps({"choices": [{"delta": {"content": f"tok{i} "}}]}).encode() + b"\n\n"
            for i in range(tokens)
        )
        + b"data: [DONE]\n\n"
    )


def parse_rate(data: bytes, chunk: int) -> tuple[float, float]:
    start = time.perf_counter()
    asm = StreamAssembler()
    for i in range(0, len(data), chunk):
        asm.feed(data[i : i + chunk])
    asm.close()
    seconds = time.perf_counter() - start
    return len(data) / seconds / 1e6, seconds * 1000


def main() -> None:
    data = sse(2000)
    print(f"{'parser':<34}{'MB/s':>10}{'ms / 2000 tokens':>20}")
    for chunk in (1, 64, 4096):
        rate, ms = parse_rate(data, chunk)
        print(f"{f'chunks of {chunk} B':<34}{rate:>10.2f}{ms:>20.2f}")
    with LocalAws():
        settings = load_settings()
        s3 = get_client("s3", settings=settings)
        s3.create_bucket(Bucket="customer-escrow-123456789012-smtj-bench")
        ckpt = "s3://customer-escrow-123456789012-smtj-bench/job/outputs/checkpoints"
        served = [
            deploy_checkpoint(
                "sagemaker",
                "bench-sm",
                ckpt,
                instance_type="ml.g6.48xlarge",
                context_length=8000,
                max_concurrency=8,
                sleep=lambda s: None,
                settings=settings,
            ),
            deploy_checkpoint("bedrock_od", "bench-od", ckpt, sleep=lambda s: None, settings=settings),
        ]
        print(f"\n{'embedded AWS, 20 calls each':<34}{'median ms':>10}{'p95 ms':>10}{'TTFT ms':>10}")
        for dep in served:
            for stream in (False, True):
                totals, firsts = [], []
                for i in range(20):
                    start = time.perf_counter()
                    result = ask(
                        dep.target,
                        dep.invoke_id,
                        f"Title: question {i}",
                        system=SYSTEM,
                        stream=stream,
                        settings=settings,
                    )
                    totals.append((time.perf_counter() - start) * 1000)
                    if stream:
                        firsts.append((result.first_token_seconds or 0) * 1000)  # type: ignore[union-attr]
                p95 = sorted(totals)[int(0.95 * len(totals)) - 1]
                ttft = f"{statistics.median(firsts):>10.1f}" if firsts else f"{'-':>10}"
                label = f"{dep.target} {'stream' if stream else 'plain'}"
                print(f"{label:<34}{statistics.median(totals):>10.1f}{p95:>10.1f}{ttft}")
        for dep in served:
            teardown(dep.name, services=dep.services, settings=settings)


if __name__ == "__main__":
    main()
