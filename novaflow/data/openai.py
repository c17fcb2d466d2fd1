"""OpenAI-style ``messages`` rows -> Bedrock Converse (docs/data-formats.md#openai-messages-to-converse).

Only conversions that need no network are done here: ``s3://`` image URLs become image blocks; ``data:`` and
http(s) images are rejected with a reason, because fetching and re-uploading media belongs in an explicit step
(a local transform must not do network I/O).
"""

from __future__ import annotations

from typing import Any

import orjson

from novaflow.data.converse import RowProblem
from novaflow.data.formats import SCHEMA_VERSION


def _text_of(path: str, content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) == len(content):
            return "".join(texts)
    raise RowProblem(path, "content must be a string or a list of text parts here")


def _user_blocks(path: str, content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise RowProblem(path, "content must be a string or a list of parts")
    media: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype == "text":
            texts.append({"text": part.get("text", "")})
        elif ptype == "image_url":
            url = (part.get("image_url") or {}).get("url", "") if isinstance(part.get("image_url"), dict) else ""
            if not url.startswith("s3://"):
                raise RowProblem(
                    f"{path}[{i}].image_url.url",
                    "only s3:// image URLs are converted; upload data: and http(s) images to S3 first",
                )
            fmt = url.rsplit(".", 1)[-1].lower().replace("jpg", "jpeg")
            media.append({"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}})
        else:
            raise RowProblem(f"{path}[{i}].type", f"unsupported content part type {ptype!r}")
    return media + texts


def openai_to_converse(row: dict[str, Any], nova_version: int) -> dict[str, Any]:
    """Convert one OpenAI-style row; system moves to the top, tool messages merge into one user turn."""
    messages = row.get("messages")
    if not isinstance(messages, list):
        raise RowProblem("messages", "must be a list")
    tools = row.get("tools")
    if tools and nova_version != 2:
        raise RowProblem("tools", "tool use is supported only on nova-lite-2")
    system: list[dict[str, str]] = []
    out: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []

    def flush() -> None:
        if results:
            out.append({"role": "user", "content": list(results)})
            results.clear()

    for m, msg in enumerate(messages):
        path = f"messages[{m}]"
        if not isinstance(msg, dict):
            raise RowProblem(path, "must be an object")
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            system.append({"text": _text_of(f"{path}.content", content)})
        elif role == "tool":
            if nova_version != 2:
                raise RowProblem(path, "tool messages are supported only on nova-lite-2")
            results.append(
                {
                    "toolResult": {
                        "toolUseId": msg.get("tool_call_id"),
                        "content": [{"text": _text_of(f"{path}.content", content)}],
                    }
                }
            )
        elif role == "user":
            flush()
            out.append({"role": "user", "content": _user_blocks(f"{path}.content", content)})
        elif role == "assistant":
            flush()
            out.append({"role": "assistant", "content": _assistant_blocks(path, msg, nova_version)})
        else:
            raise RowProblem(f"{path}.role", f"unsupported role {role!r}")
    flush()
    converted: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    if system:
        converted["system"] = system
    if tools:
        converted["toolConfig"] = {"tools": [_tool_spec(i, t) for i, t in enumerate(tools)]}
    converted["messages"] = out
    if not any(x["role"] == "user" for x in out) or not any(x["role"] == "assistant" for x in out):
        raise RowProblem("messages", "needs at least one user and one assistant message")
    return converted


def _assistant_blocks(path: str, msg: dict[str, Any], nova_version: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    reasoning = msg.get("reasoning")
    if reasoning and nova_version == 2:
        blocks.append({"reasoningContent": {"reasoningText": {"text": reasoning}}})
    content = msg.get("content")
    if content not in (None, "", []):
        blocks.append({"text": _text_of(f"{path}.content", content)})
    for i, call in enumerate(msg.get("tool_calls") or []):
        if nova_version != 2:
            raise RowProblem(f"{path}.tool_calls", "tool calls are supported only on nova-lite-2")
        fn = call.get("function") or {}
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = orjson.loads(args) if args.strip() else {}
            except orjson.JSONDecodeError:
                raise RowProblem(f"{path}.tool_calls[{i}].function.arguments", "arguments are not valid JSON") from None
        blocks.append({"toolUse": {"toolUseId": call.get("id"), "name": fn.get("name"), "input": args}})
    if not blocks:
        blocks.append({"text": ""})
    return blocks


def _tool_spec(i: int, tool: Any) -> dict[str, Any]:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(fn, dict):
        raise RowProblem(f"tools[{i}]", "must be {type: function, function: {...}}")
    return {
        "toolSpec": {
            "name": fn.get("name"),
            "description": fn.get("description"),
            "inputSchema": {"json": fn.get("parameters")},
        }
    }
