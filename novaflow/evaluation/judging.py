"""The LLM-as-judge dataset of a stage: each held-out prompt, its reference answer and the model's answer.

Nova's judge compares ``response_A`` (the baseline) with ``response_B`` and reports how often B wins. novaflow
puts the *reference answer* in A and the stage's answer in B, so every stage - the base model included - is
judged against the same yardstick and the stages' win rates can be compared like any other metric (a model that
writes the reference answer ties; one the judge prefers to the reference wins). The file must be a single
``llm_judge.jsonl`` (docs/evaluation-outputs.md).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import get_client, split_s3_uri, wrap_client_error
from novaflow.data.io import encryption_args
from novaflow.errors import EvaluationError
from novaflow.evaluation.results import EvalResult
from novaflow.settings import NovaflowSettings

JUDGE_FILE = "llm_judge.jsonl"


def judge_rows(result: EvalResult) -> list[dict[str, Any]]:
    """``{prompt, response_A: reference, response_B: the model's answer}`` per evaluated sample, in order."""
    if not result.samples:
        raise EvaluationError(f"{result.source}: no per-sample answers to judge (the evaluation wrote none)")
    rows = []
    for sample in result.samples:
        rows.append(
            {
                "prompt": prompt_text(sample.messages, sample.prompt),
                "response_A": sample.gold,
                "response_B": sample.prediction,
            }
        )
    return rows


def prompt_text(messages: list[dict[str, Any]] | None, fallback: str) -> str:
    """What the model was asked: the system prompt (when there is one) and the user turn, as plain text."""
    if not messages:
        return fallback
    parts = [str(m.get("content") or "") for m in messages if m.get("role") in ("system", "user")]
    return "\n\n".join(p for p in parts if p.strip()) or fallback


def judge_jsonl(result: EvalResult) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in judge_rows(result)).encode("utf-8")


def upload_judge_dataset(result: EvalResult, uri: str, settings: NovaflowSettings) -> str:
    """Write the stage's judge dataset to ``uri`` (it must end in ``llm_judge.jsonl``); returns ``uri``."""
    if not uri.endswith("/" + JUDGE_FILE):
        raise EvaluationError(f"{uri}: the judge dataset must be one file named {JUDGE_FILE}")
    bucket, key = split_s3_uri(uri)
    try:
        get_client("s3", settings).put_object(
            Bucket=bucket,
            Key=key,
            Body=judge_jsonl(result),
            ContentType="application/jsonl",
            **encryption_args(settings),
        )
    except ClientError as exc:
        raise wrap_client_error(exc, f"upload the judge dataset to {uri}") from exc
    return uri
