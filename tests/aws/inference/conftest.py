"""Checkpoints trained by the emulator, for the batch inference and inference component tests."""

from __future__ import annotations

import json

from novaflow.aws import get_client
from novaflow.jobs.outputs import resolve_checkpoint
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.settings import load_settings

SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."
LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")


def put(key: str, body: str) -> str:
    get_client("s3", settings=load_settings()).put_object(Bucket="novaflow-local", Key=key, Body=body.encode())
    return f"s3://novaflow-local/{key}"


def train_checkpoint(name: str, answer_of: dict[str, str], *, rows: int = 60) -> str:
    """An SFT checkpoint of the stand-in model trained to answer ``answer_of[topic]`` to questions on ``topic``."""
    topics = sorted(answer_of)
    lines = "".join(
        json.dumps(
            {
                "schemaVersion": "bedrock-conversation-2024",
                "system": [{"text": SYSTEM}],
                "messages": [
                    {"role": "user", "content": [{"text": f"Question {i} about {topics[i % len(topics)]}"}]},
                    {"role": "assistant", "content": [{"text": answer_of[topics[i % len(topics)]]}]},
                ],
            }
        )
        + "\n"
        for i in range(rows)
    )
    spec = JobSpec(
        model="nova-lite-2",
        method="sft_lora",
        train_uri=put(f"{name}/train.jsonl", lines),
        overrides={"max_steps": 20, "global_batch_size": 32},
        name_prefix=name,
    )
    record = submit_training_job(spec, settings=load_settings())
    done = wait_for_job(
        record.name,
        poll_seconds=0.05,
        max_poll_seconds=0.2,
        max_wait_seconds=60,
        record=record,
        settings=load_settings(),
    )
    assert done.status.value == "Completed"
    return resolve_checkpoint(record.output_uri, record.name, settings=load_settings())
