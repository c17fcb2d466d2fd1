"""Batch inference of a base Nova model on Bedrock (``CreateModelInvocationJob``), in Bedrock's file formats.

Input: one JSONL file of ``{"recordId", "modelInput"}`` records, ``modelInput`` being the Nova InvokeModel request
body (``schemaVersion``, ``system``, ``messages``, ``inferenceConfig``). Output: Bedrock writes
``<output>/<job id>/<input file>.out`` with ``{"recordId", "modelInput", "modelOutput"}`` lines (``error`` instead
of ``modelOutput`` for a record that failed) and ``manifest.json.out`` with the counts. The output order is not
guaranteed, so answers are joined to rows by ``recordId``. Custom (fine-tuned) Nova models are not served by
Bedrock batch inference: the dry run refuses them (docs/batch-inference.md#on-bedrock).

Example:
    >>> record = invocation_record(BatchRow(row=1, id="q1", query="2+2?"), max_tokens=64)
    >>> record["recordId"], record["modelInput"]["messages"][0]["content"][0]["text"]
    ('00000000001', '2+2?')
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from novaflow.inference.results import Answer
from novaflow.inference.rows import BatchRow, BatchRows

CUSTOM_MODEL_REFUSAL = (
    "Bedrock batch inference does not serve custom Nova models (AWS lists custom-model support for Nova batch "
    "inference as N/A); run it as a gen_qa evaluation job instead (--platform SMTJ)"
)
INPUT_FILE = "records.jsonl"
MANIFEST_OUT = "manifest.json.out"
RECORD_ID_DIGITS = 11


def record_id(row: BatchRow) -> str:
    """The row number, zero-padded to 11 digits: alphanumeric, unique, and the same on every re-run."""
    return f"{row.row:0{RECORD_ID_DIGITS}d}"


def invocation_record(row: BatchRow, *, max_tokens: int, temperature: float = 0.0) -> dict[str, Any]:
    """``{"recordId", "modelInput"}`` with the Nova InvokeModel body for one row."""
    body: dict[str, Any] = {"schemaVersion": "messages-v1"}
    if row.system:
        body["system"] = [{"text": row.system}]
    body["messages"] = [{"role": "user", "content": [{"text": row.query}]}]
    body["inferenceConfig"] = {"maxTokens": max_tokens, "temperature": temperature}
    return {"recordId": record_id(row), "modelInput": body}


def write_records(batch: BatchRows, path: Path, *, max_tokens: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in batch.rows:
            out.write(json.dumps(invocation_record(row, max_tokens=max_tokens), ensure_ascii=False) + "\n")
    return path


def custom_model_problem(model_id: str | None, model_path: str | None) -> str | None:
    """Why Bedrock batch cannot run this model (None for a base model)."""
    if model_path is not None:
        return f"{CUSTOM_MODEL_REFUSAL}: {model_path} is a trained model"
    if model_id and (":custom-model" in model_id or ":custom-model-deployment" in model_id):
        return f"{CUSTOM_MODEL_REFUSAL}: {model_id} is a custom model"
    return None


def build_request(
    job_name: str,
    *,
    model_id: str,
    role_arn: str,
    input_uri: str,
    output_uri: str,
    token: str,
    tags: dict[str, str] | None = None,
    kms_key_id: str | None = None,
    timeout_hours: int = 24,
) -> dict[str, Any]:
    """The ``CreateModelInvocationJob`` request (``clientRequestToken`` makes a repeated create a no-op)."""
    output: dict[str, Any] = {"s3Uri": output_uri}
    if kms_key_id:
        output["s3EncryptionKeyId"] = kms_key_id
    request: dict[str, Any] = {
        "jobName": job_name,
        "roleArn": role_arn,
        "clientRequestToken": token,
        "modelId": model_id,
        "inputDataConfig": {"s3InputDataConfig": {"s3InputFormat": "JSONL", "s3Uri": input_uri}},
        "outputDataConfig": {"s3OutputDataConfig": output},
        "timeoutDurationInHours": timeout_hours,
        "modelInvocationType": "InvokeModel",
    }
    if tags:
        request["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    return request


def output_prefix(output_uri: str, job_arn: str) -> str:
    """Where Bedrock writes a job's outputs: ``<output>/<job id>/`` (the job id is the ARN's last part)."""
    return f"{output_uri.rstrip('/')}/{job_arn.rsplit('/', 1)[-1]}/"


def model_text(output: dict[str, Any]) -> str:
    """The answer of a Nova InvokeModel response: the first content item with text (reasoning may come first)."""
    content = ((output.get("output") or {}).get("message") or {}).get("content") or []
    return next((str(item["text"]) for item in content if isinstance(item, dict) and "text" in item), "")


def parse_output_lines(lines: Iterable[bytes], *, where: str, batch: BatchRows) -> tuple[dict[str, Answer], list[str]]:
    """Answers by row id from ``.jsonl.out`` lines (any order), and warnings for lines that name no row."""
    by_record = {record_id(row): row for row in batch.rows}
    answers: dict[str, Answer] = {}
    warnings: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            warnings.append(f"{where} line {number}: not valid JSON; ignored")
            continue
        row = by_record.get(str(item.get("recordId")))
        if row is None:
            warnings.append(f"{where} line {number}: recordId {item.get('recordId')!r} is not one of the input's")
            continue
        if "error" in item or "modelOutput" not in item:
            error = item.get("error") or {}
            answers[row.id] = Answer(
                None, error=f"{error.get('errorCode', '?')}: {error.get('errorMessage', 'no output')}"
            )
            continue
        output = item["modelOutput"]
        usage = output.get("usage") or {}
        answers[row.id] = Answer(
            response=model_text(output),
            input_tokens=usage.get("inputTokens"),
            output_tokens=usage.get("outputTokens"),
        )
    return answers, warnings
