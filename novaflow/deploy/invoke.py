"""Ask a deployed model something: SageMaker ``InvokeEndpoint`` (plain and streaming) and Bedrock ``Converse``.

Request bodies follow the Nova SageMaker inference API (OpenAI-style chat completions, docs/inference.md#invoking)
and the Bedrock Converse API. Every call reports latency; streaming calls report time to first token, the
number users feel.

Example:
    >>> invoke_endpoint("nova-sft", "Is this question good?").text       # doctest: +SKIP
    'HQ'
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from novaflow.aws import get_client, wrap_client_error
from novaflow.deploy.stream import StreamAssembler, StreamResult, TextTimer, choice_text, first_choice
from novaflow.errors import DeployError
from novaflow.settings import NovaflowSettings

Messages = Sequence[dict[str, Any]]


@dataclass
class Completion:
    """One non-streamed answer."""

    text: str
    latency_seconds: float
    finish_reason: str | None
    usage: dict[str, Any] | None
    raw: dict[str, Any]


def chat_messages(prompt: str | Messages, system: str | None = None) -> list[dict[str, Any]]:
    """OpenAI-style messages from a prompt (or messages as given), with an optional system message first."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return messages


def chat_request(
    prompt: str | Messages,
    *,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float | None = 0.0,
    stream: bool = False,
    **params: Any,
) -> dict[str, Any]:
    """The chat-completion body for the Nova inference container; ``None`` parameters are left out."""
    body: dict[str, Any] = {
        "messages": chat_messages(prompt, system),
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    body.update(params)
    return {k: v for k, v in body.items() if v is not None}


def parse_completion(payload: bytes, latency: float = 0.0) -> Completion:
    """Text, finish reason and usage of a non-streamed chat or text completion."""
    try:
        raw = json.loads(payload)
    except ValueError as exc:
        raise DeployError(f"endpoint answer is not JSON: {payload[:200]!r}") from exc
    if not isinstance(raw, dict) or not raw.get("choices"):
        raise DeployError(f"endpoint answer has no choices: {payload[:200]!r}")
    choice = first_choice(raw)
    return Completion(
        text=choice_text(choice),
        latency_seconds=latency,
        finish_reason=choice.get("finish_reason"),
        usage=raw.get("usage"),
        raw=raw,
    )


def _endpoint_request(endpoint_name: str, body: dict[str, Any], inference_component: str | None) -> dict[str, Any]:
    """The arguments InvokeEndpoint and InvokeEndpointWithResponseStream share: the chat body as JSON, and
    ``InferenceComponentName`` when the call goes to one inference component of the endpoint."""
    request: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "Body": json.dumps(body).encode(),
        "ContentType": "application/json",
        "Accept": "application/json",
    }
    if inference_component:
        request["InferenceComponentName"] = inference_component
    return request


def invoke_endpoint(
    endpoint_name: str,
    prompt: str | Messages,
    *,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float | None = 0.0,
    clock: Callable[[], float] = time.perf_counter,
    settings: NovaflowSettings | None = None,
    inference_component: str | None = None,
    **params: Any,
) -> Completion:
    """One synchronous ``InvokeEndpoint`` call (to one of the endpoint's inference components, when named)."""
    body = chat_request(prompt, system=system, max_tokens=max_tokens, temperature=temperature, **params)
    runtime = get_client("sagemaker-runtime", settings)
    start = clock()
    try:
        response = runtime.invoke_endpoint(**_endpoint_request(endpoint_name, body, inference_component))
        payload = response["Body"].read()
    except ClientError as exc:
        raise wrap_client_error(exc, f"invoke endpoint {endpoint_name}") from exc
    return parse_completion(payload, clock() - start)


def invoke_endpoint_stream(
    endpoint_name: str,
    prompt: str | Messages,
    *,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float | None = 0.0,
    on_text: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    settings: NovaflowSettings | None = None,
    inference_component: str | None = None,
    **params: Any,
) -> StreamResult:
    """``InvokeEndpointWithResponseStream``: text assembled across chunk boundaries, first-token time measured
    from just before the request is sent."""
    body = chat_request(prompt, system=system, max_tokens=max_tokens, temperature=temperature, stream=True, **params)
    runtime = get_client("sagemaker-runtime", settings)
    assembler = StreamAssembler(clock=clock)
    try:
        response = runtime.invoke_endpoint_with_response_stream(
            **_endpoint_request(endpoint_name, body, inference_component)
        )
        for event in response["Body"]:
            if "PayloadPart" in event:
                for piece in assembler.feed(event["PayloadPart"].get("Bytes", b"")):
                    if on_text is not None:
                        on_text(piece)
            elif "ModelStreamError" in event or "InternalStreamFailure" in event:
                err = event.get("ModelStreamError") or event.get("InternalStreamFailure") or {}
                raise DeployError(
                    f"endpoint {endpoint_name} stream failed: {err.get('ErrorCode', '')} "
                    f"{err.get('Message', '')}".strip()
                )
    except ClientError as exc:
        raise wrap_client_error(exc, f"invoke endpoint {endpoint_name} (stream)") from exc
    return assembler.close()


def converse_request(
    prompt: str | Messages, *, system: str | None = None, max_tokens: int = 256, temperature: float | None = 0.0
) -> dict[str, Any]:
    """Converse API arguments (without ``modelId``)."""
    if isinstance(prompt, str):
        messages: list[dict[str, Any]] = [{"role": "user", "content": [{"text": prompt}]}]
    else:
        messages = [dict(m) for m in prompt]
    request: dict[str, Any] = {"messages": messages, "inferenceConfig": {"maxTokens": max_tokens}}
    if temperature is not None:
        request["inferenceConfig"]["temperature"] = temperature
    if system:
        request["system"] = [{"text": system}]
    return request


def converse_text(response: dict[str, Any]) -> str:
    """The first text block of a Converse answer (reasoning blocks may come first)."""
    for block in response.get("output", {}).get("message", {}).get("content", []):
        if "text" in block:
            return str(block["text"])
    raise DeployError(f"Converse answer has no text block: {json.dumps(response, default=str)[:200]}")


def converse(
    model_id: str,
    prompt: str | Messages,
    *,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float | None = 0.0,
    clock: Callable[[], float] = time.perf_counter,
    settings: NovaflowSettings | None = None,
) -> Completion:
    """Bedrock ``Converse`` against a deployment / provisioned-throughput ARN (or a base model id)."""
    request = converse_request(prompt, system=system, max_tokens=max_tokens, temperature=temperature)
    start = clock()
    try:
        response = get_client("bedrock-runtime", settings).converse(modelId=model_id, **request)
    except ClientError as exc:
        raise wrap_client_error(exc, f"converse with {model_id}") from exc
    response.pop("ResponseMetadata", None)
    return Completion(
        text=converse_text(response),
        latency_seconds=clock() - start,
        finish_reason=response.get("stopReason"),
        usage=response.get("usage"),
        raw=response,
    )


def converse_stream(
    model_id: str,
    prompt: str | Messages,
    *,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float | None = 0.0,
    on_text: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    settings: NovaflowSettings | None = None,
) -> StreamResult:
    """Bedrock ``ConverseStream``: botocore frames the events, so only text and timing are collected here."""
    request = converse_request(prompt, system=system, max_tokens=max_tokens, temperature=temperature)
    timer = TextTimer(clock)
    events = 0
    finish: str | None = None
    usage: dict[str, Any] | None = None
    try:
        response = get_client("bedrock-runtime", settings).converse_stream(modelId=model_id, **request)
        for event in response["stream"]:
            events += 1
            if "contentBlockDelta" in event:
                text = event["contentBlockDelta"].get("delta", {}).get("text", "")
                timer.add(text)
                if text and on_text is not None:
                    on_text(text)
            elif "messageStop" in event:
                finish = event["messageStop"].get("stopReason")
            elif "metadata" in event:
                usage = event["metadata"].get("usage")
    except ClientError as exc:
        raise wrap_client_error(exc, f"converse stream with {model_id}") from exc
    return StreamResult(
        text="".join(timer.pieces),
        first_token_seconds=timer.first,
        total_seconds=timer.elapsed(),
        chunks=events,
        records=events,
        finish_reason=finish,
        usage=usage,
        pieces=list(timer.pieces),
    )
