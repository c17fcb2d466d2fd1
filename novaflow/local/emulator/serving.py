"""Answer SageMaker endpoint and Bedrock runtime calls from the emulated model the deployment points at.

An endpoint's model is found the way SageMaker finds it (endpoint -> endpoint config -> model ->
``ModelDataSource.S3DataSource.S3Uri`` or ``ModelDataUrl``); a Bedrock custom model through its
``modelSourceConfig.s3DataSource.s3Uri``. A checkpoint written by the SFT/RFT emulator answers as the fine-tuned
model; anything else (no checkpoint, a prod path, a foundation-model id) answers as the base model. Request and
response shapes follow docs/inference.md#invoking (OpenAI-style chat/text completions) and
docs/inference.md#bedrock (Converse).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from moto.sagemaker.models import sagemaker_backends

from novaflow.local.emulator import aws_io
from novaflow.local.emulator.aws_io import StandIn
from novaflow.local.models.classifier import CorpusModel, base_answer, tokens


class Responder:
    """One model: the fine-tuned policy at a checkpoint, or the base rule."""

    def __init__(self, url: str, checkpoint_uri: str | None) -> None:
        self.model: StandIn | CorpusModel | None = None
        if checkpoint_uri and checkpoint_uri.startswith("s3://"):
            try:
                self.model = aws_io.load_model(url, checkpoint_uri)
            except Exception:  # not an emulator checkpoint (e.g. a user's own artefact): the base model answers
                self.model = None

    def answer(self, system: str, user: str) -> str:
        if isinstance(self.model, CorpusModel):
            return self.model.answer(system, user)
        if self.model is not None:
            return self.model.answer([user])[0]
        return base_answer(system, user)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def split_messages(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """(system text, last user text) of an OpenAI-style message list."""
    system = "\n".join(_content_text(m.get("content")) for m in messages if m.get("role") == "system")
    users = [_content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    return system, (users[-1] if users else "")


def endpoint_checkpoint(endpoint: Any) -> str | None:
    backend = sagemaker_backends[endpoint.arn.split(":")[4]][endpoint.arn.split(":")[3]]
    config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    if config is None:
        return None
    for variant in config.production_variants:
        model_name = variant.get("ModelName")
        model = backend._models.get(model_name) if model_name else None
        container = (getattr(model, "primary_container", None) or {}) if model is not None else {}
        source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
        uri = source.get("S3Uri") or container.get("ModelDataUrl")
        if uri:
            return str(uri)
    return None


def answer_sagemaker(
    endpoint: Any, body: bytes | str, url: str, *, stream: bool, checkpoint_uri: str | None = None
) -> tuple[bytes, str]:
    """The endpoint's reply to a Nova chat or text completion request (JSON, or SSE lines when streaming).

    ``checkpoint_uri`` is the model of the inference component invoked (its model's data); without it the model
    is the one of the endpoint's production variant.
    """
    request = json.loads(body or b"{}")
    if "messages" in request:
        system, user = split_messages(request["messages"])
        chat = True
    else:
        system, user, chat = "", str(request.get("prompt", "")), False
    text = Responder(url, checkpoint_uri or endpoint_checkpoint(endpoint)).answer(system, user)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}" if chat else f"cmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    usage = {
        "prompt_tokens": len(tokens(system + " " + user)),
        "completion_tokens": len(tokens(text)),
        "total_tokens": len(tokens(system + " " + user)) + len(tokens(text)),
    }
    if not (stream or request.get("stream")):
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop"}
            obj = "text_completion"
        payload = {
            "id": completion_id,
            "object": obj,
            "created": created,
            "model": "nova",
            "choices": [choice],
            "usage": usage,
        }
        return json.dumps(payload).encode(), "application/json"
    lines: list[dict[str, Any]] = []
    pieces = [w + " " for w in text.split(" ")]
    pieces[-1] = pieces[-1].rstrip(" ")
    for i, piece in enumerate(pieces):
        delta: dict[str, Any] = {"content": piece}
        if i == 0 and chat:
            delta["role"] = "assistant"
        choice = (
            {"index": 0, "delta": delta, "finish_reason": None}
            if chat
            else {"index": 0, "text": piece, "finish_reason": None}
        )
        lines.append(
            {
                "id": completion_id,
                "object": "chat.completion.chunk" if chat else "text_completion",
                "created": created,
                "model": "nova",
                "choices": [choice],
            }
        )
    last = (
        {"index": 0, "delta": {}, "finish_reason": "stop"}
        if chat
        else {"index": 0, "text": "", "finish_reason": "stop"}
    )
    lines.append(
        {
            "id": completion_id,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": "nova",
            "choices": [last],
            "usage": usage,
        }
    )
    out = "".join(f"data: {json.dumps(line)}\n\n" for line in lines) + "data: [DONE]\n\n"
    return out.encode(), "text/event-stream"


def converse_reply(
    system: list[dict[str, Any]] | None, messages: list[dict[str, Any]], checkpoint_uri: str | None, url: str
) -> dict[str, Any]:
    """A Converse API response for ``messages`` from the model at ``checkpoint_uri`` (base when None)."""
    system_text = "\n".join(str(b.get("text", "")) for b in (system or []) if isinstance(b, dict))
    users = [m for m in messages if m.get("role") == "user"]
    user_text = _content_text(users[-1].get("content")) if users else ""
    started = time.perf_counter()
    text = Responder(url, checkpoint_uri).answer(system_text, user_text)
    n_in, n_out = len(tokens(system_text + " " + user_text)), len(tokens(text))
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": n_in, "outputTokens": n_out, "totalTokens": n_in + n_out},
        "metrics": {"latencyMs": max(1, int((time.perf_counter() - started) * 1000))},
    }
