"""Fulfil a Bedrock batch inference job: read its JSONL input from S3, answer every record with the stand-in
model, and write ``<output>/<job id>/<input file>.out`` and ``manifest.json.out`` as Bedrock does.

Each ``modelInput`` is a Nova InvokeModel body; a record whose body is not one gets Bedrock's ``error`` object
instead of ``modelOutput``. The output lines are written in a shuffled order (seeded by the job id), since AWS does
not promise the input order and a reader that relies on it must fail here first.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from novaflow.local.emulator import aws_io as storage
from novaflow.local.emulator import jobstate
from novaflow.local.emulator.serving import Responder
from novaflow.local.models.classifier import tokens

Update = Callable[..., None]
"""Changes what GetModelInvocationJob answers (the embedded AWS's job record): ``update(status=..., ...)``."""


@dataclass(frozen=True)
class BatchJob:
    """What the worker needs of a job, handed over by the embedded AWS (which owns the job record)."""

    fields: dict[str, Any]
    update: Update
    stop_requested: threading.Event


def start(job: BatchJob, url: str) -> None:
    threading.Thread(target=_work, args=(job, url), name=f"bedrock-batch-{job.fields['jobName']}", daemon=True).start()


def _inputs(url: str, uri: str) -> list[str]:
    if uri.endswith(".jsonl"):
        return [uri]
    bucket = uri[5:].split("/", 1)[0]
    return [f"s3://{bucket}/{key}" for key in storage.list_keys(url, uri) if key.endswith(".jsonl")]


def answer_record(item: Any, responder: Responder) -> dict[str, Any]:
    """One output line for one input line: ``modelOutput`` in the Nova InvokeModel response shape, or ``error``."""
    if not isinstance(item, dict) or not isinstance(item.get("modelInput"), dict):
        return {
            "recordId": (item or {}).get("recordId") if isinstance(item, dict) else None,
            "error": {"errorCode": 400, "errorMessage": "Malformed input request: missing modelInput"},
        }
    body = item["modelInput"]
    out: dict[str, Any] = {"recordId": item.get("recordId"), "modelInput": body}
    messages = body.get("messages")
    users = [m for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        out["error"] = {"errorCode": 400, "errorMessage": "Malformed input request: messages must hold a user turn"}
        return out
    system = "\n".join(str(b.get("text", "")) for b in body.get("system") or [] if isinstance(b, dict))
    user = "\n".join(str(b.get("text", "")) for b in users[-1].get("content") or [] if isinstance(b, dict))
    text = responder.answer(system, user)
    n_in, n_out = len(tokens(system + " " + user)), len(tokens(text))
    out["modelOutput"] = {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": n_in, "outputTokens": n_out, "totalTokens": n_in + n_out},
    }
    return out


def _work(job: BatchJob, url: str) -> None:
    fields = job.fields
    started = time.monotonic()
    try:
        job.update(status="InProgress")
        responder = Responder(url, None)  # base models only: custom models are refused at create
        source = fields["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
        target = fields["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"].rstrip("/")
        job_id = fields["jobArn"].rsplit("/", 1)[-1]
        files = _inputs(url, source)
        if not files:
            job.update(status="Failed", message=f"No .jsonl input file found at {source}.")
            return
        counts = {"total": 0, "success": 0, "error": 0, "in": 0, "out": 0}
        for uri in files:
            lines: list[str] = []
            for raw in storage.read_bytes(url, uri).decode("utf-8").splitlines():
                if job.stop_requested.is_set():
                    job.update(status="Stopped", message="The job was stopped.")
                    return
                if not raw.strip():
                    continue
                try:
                    item = json.loads(raw)
                except ValueError:
                    item = None
                record = answer_record(item, responder)
                counts["total"] += 1
                if "error" in record:
                    counts["error"] += 1
                else:
                    counts["success"] += 1
                    counts["in"] += record["modelOutput"]["usage"]["inputTokens"]
                    counts["out"] += record["modelOutput"]["usage"]["outputTokens"]
                lines.append(json.dumps(record))
            random.Random(job_id).shuffle(lines)
            name = uri.rsplit("/", 1)[-1]
            storage.write_bytes(url, f"{target}/{job_id}/{name}.out", ("\n".join(lines) + "\n").encode())
        manifest = {
            "totalRecordCount": counts["total"],
            "processedRecordCount": counts["total"],
            "successRecordCount": counts["success"],
            "errorRecordCount": counts["error"],
            "inputTokenCount": counts["in"],
            "outputTokenCount": counts["out"],
        }
        storage.write_bytes(url, f"{target}/{job_id}/manifest.json.out", json.dumps(manifest).encode())
        remaining = jobstate.Timing.seconds - (time.monotonic() - started)
        if remaining > 0:
            job.stop_requested.wait(remaining)
        if job.stop_requested.is_set():  # stopped before it finished: the outputs so far stay, as on AWS
            job.update(status="Stopped", message="The job was stopped.")
            return
        if counts["error"] == counts["total"]:
            status, message = "Failed", f"All {counts['total']} records failed; see the output file for each error."
        else:
            status = "PartiallyCompleted" if counts["error"] else "Completed"
            message = None
        job.update(
            status=status,
            totalRecordCount=counts["total"],
            processedRecordCount=counts["total"],
            successRecordCount=counts["success"],
            errorRecordCount=counts["error"],
            **({"message": message} if message else {}),
        )
    except Exception as exc:  # an emulator bug must surface as a failed job, never a silent hang
        job.update(status="Failed", message=f"InternalServerException: {type(exc).__name__}: {exc}")
