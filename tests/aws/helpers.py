"""Helpers shared by the embedded-AWS tests that train a stand-in checkpoint and then serve or deploy it."""

from __future__ import annotations

import json
from collections.abc import Iterable

from novaflow.aws import get_client
from novaflow.jobs.outputs import resolve_checkpoint
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.spec import JobSpec
from novaflow.jobs.submit import submit_training_job
from novaflow.local.aws.server import LOCAL_ROLE_ARN
from novaflow.settings import load_settings

SYSTEM = "Classify the Stack Overflow question. Answer with exactly one label: HQ, LQ_EDIT or LQ_CLOSE."
LABELS = ("HQ", "LQ_EDIT", "LQ_CLOSE")


def put(key: str, body: str) -> str:
    """``body`` as an object of the local bucket; returns its URI."""
    get_client("s3", settings=load_settings()).put_object(Bucket="novaflow-local", Key=key, Body=body.encode())
    return f"s3://novaflow-local/{key}"


def customization_job(name: str, model: str) -> str:
    """A Bedrock fine-tuning job of Nova 2 Lite on the local bucket's data (two epochs); returns its ARN."""
    return get_client("bedrock", settings=load_settings()).create_model_customization_job(
        jobName=name,
        customModelName=model,
        roleArn=LOCAL_ROLE_ARN,
        baseModelIdentifier="amazon.nova-2-lite-v1:0:256k",
        customizationType="FINE_TUNING",
        trainingDataConfig={"s3Uri": "s3://novaflow-local/data/train.jsonl"},
        outputDataConfig={"s3Uri": "s3://novaflow-local/out/"},
        hyperParameters={"epochCount": "2"},
    )["jobArn"]


def conversation_lines(pairs: Iterable[tuple[str, str]]) -> str:
    """Bedrock conversation rows (with :data:`SYSTEM`) of (question, answer) pairs, as JSONL."""
    return "".join(
        json.dumps(
            {
                "schemaVersion": "bedrock-conversation-2024",
                "system": [{"text": SYSTEM}],
                "messages": [
                    {"role": "user", "content": [{"text": question}]},
                    {"role": "assistant", "content": [{"text": answer}]},
                ],
            }
        )
        + "\n"
        for question, answer in pairs
    )


def trained_checkpoint(spec: JobSpec) -> str:
    """Train ``spec`` on the embedded AWS to completion and return its checkpoint URI."""
    settings = load_settings()
    record = submit_training_job(spec, settings=settings)
    done = wait_for_job(
        record.name, poll_seconds=0.05, max_poll_seconds=0.2, max_wait_seconds=60, record=record, settings=settings
    )
    assert done.status.value == "Completed"
    return resolve_checkpoint(record.output_uri, record.name, settings=settings)
