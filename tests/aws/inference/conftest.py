"""Checkpoints trained by the emulator, for the batch inference and inference component tests."""

from __future__ import annotations

from novaflow.jobs.spec import JobSpec
from tests.aws.helpers import conversation_lines, put, trained_checkpoint


def train_checkpoint(name: str, answer_of: dict[str, str], *, rows: int = 60) -> str:
    """An SFT checkpoint of the stand-in model trained to answer ``answer_of[topic]`` to questions on ``topic``."""
    topics = sorted(answer_of)
    pairs = ((f"Question {i} about {topics[i % len(topics)]}", answer_of[topics[i % len(topics)]]) for i in range(rows))
    spec = JobSpec(
        model="nova-lite-2",
        method="sft_lora",
        train_uri=put(f"{name}/train.jsonl", conversation_lines(pairs)),
        overrides={"max_steps": 20, "global_batch_size": 32},
        name_prefix=name,
    )
    return trained_checkpoint(spec)
