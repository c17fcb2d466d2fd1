"""Rules for records that already carry ``messages``: SFT Converse (Nova 1/2), DPO, RFT, and OpenAI -> Converse.

Each check raises :class:`RowProblem` naming the JSON path of the offending field, so a rejected row says exactly
where to look (``messages[1].content[0].text``). The rules are AWS's Nova data-preparation guides';
``tests/unit/data/test_service_rules.py`` holds them to the Forge SDK's validator cases.
"""

from __future__ import annotations

from typing import Any

from novaflow.data.formats import (
    IMAGE_FORMATS,
    MAX_IMAGES_PER_MESSAGE,
    MAX_VIDEOS_PER_MESSAGE,
    RESERVED_RE,
    S3_KEY_RE,
    SCHEMA_VERSION,
    VIDEO_FORMATS,
)

CONTENT_KEYS = ("text", "image", "video", "document", "reasoningContent", "toolUse", "toolResult")
SFT_OPTIONAL = ("system", "image", "video", "reasoningContent", "toolUse", "toolResult")
RFT_ROLES = {"system", "user", "assistant", "tool", "bot", "developer"}


class RowProblem(Exception):
    """The first rule a row breaks: ``field`` is a JSON path, the message the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _keywords(path: str, text: str) -> None:
    if m := RESERVED_RE.search(text):
        raise RowProblem(path, f"reserved keyword {m.group(0)!r}")


def _nonblank(path: str, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RowProblem(path, f"wrong type: {what} must be a string")
    if not value.strip():
        raise RowProblem(path, f"empty {what}")
    return value


def check_converse(row: dict[str, Any], *, nova_version: int, multimodal: bool, dpo: bool = False) -> set[str]:
    """Validate an SFT (or DPO) Converse record; returns the optional features it uses (for consistency)."""
    allowed = {"schemaVersion", "system", "messages", "toolConfig"}
    if extra := sorted(set(row) - allowed):
        raise RowProblem(extra[0], f"unexpected key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})")
    if row.get("schemaVersion") != SCHEMA_VERSION:
        raise RowProblem("schemaVersion", f"must be {SCHEMA_VERSION!r}")
    features: set[str] = set()
    if "system" in row:
        features.add("system")
        system = row["system"]
        if not isinstance(system, list) or not system:
            raise RowProblem("system", "must be a non-empty list of {text} items")
        for i, item in enumerate(system):
            if not isinstance(item, dict) or set(item) != {"text"}:
                raise RowProblem(f"system[{i}]", 'must be {"text": ...}')
            _keywords(f"system[{i}].text", _nonblank(f"system[{i}].text", item["text"], "system text"))
    tools = _tool_names(row.get("toolConfig")) if "toolConfig" in row else None
    messages = row.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        raise RowProblem("messages", "needs at least 2 messages (user, then assistant)")
    seen_ids: set[str] = set()
    answered: set[str] = set()
    for m, msg in enumerate(messages):
        path = f"messages[{m}]"
        expected = "user" if m % 2 == 0 else "assistant"
        if not isinstance(msg, dict):
            raise RowProblem(path, "must be an object")
        if msg.get("role") != expected:
            raise RowProblem(
                f"{path}.role",
                f"roles must alternate user/assistant starting with user; expected "
                f"{expected!r}, got {msg.get('role')!r}",
            )
        last = m == len(messages) - 1
        if dpo and last:
            _check_candidates(path, msg, nova_version)
            continue
        if set(msg) != {"role", "content"}:
            raise RowProblem(
                path,
                "a message has exactly 'role' and 'content'"
                + ("; only the last message carries 'candidates'" if dpo else ""),
            )
        features |= _check_content(
            f"{path}.content", msg["content"], expected, nova_version, multimodal, tools, seen_ids, answered
        )
    if messages[-1].get("role") != "assistant":
        raise RowProblem(f"messages[{len(messages) - 1}].role", "the last message must be from the assistant")
    return features


def _tool_names(config: Any) -> set[str]:
    if not isinstance(config, dict) or not isinstance(config.get("tools"), list) or not config["tools"]:
        raise RowProblem("toolConfig.tools", "must be a non-empty list")
    names: set[str] = set()
    for i, tool in enumerate(config["tools"]):
        path = f"toolConfig.tools[{i}].toolSpec"
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if not isinstance(spec, dict):
            raise RowProblem(path, "missing toolSpec")
        name = _nonblank(f"{path}.name", spec.get("name"), "tool name")
        _nonblank(f"{path}.description", spec.get("description"), "tool description")
        schema = (spec.get("inputSchema") or {}).get("json") if isinstance(spec.get("inputSchema"), dict) else None
        if not isinstance(schema, dict) or "type" not in schema:
            raise RowProblem(f"{path}.inputSchema.json", "must be a JSON schema object with 'type'")
        if name in names:
            raise RowProblem(f"{path}.name", f"duplicate tool name {name!r}")
        names.add(name)
    return names


def _check_content(
    path: str,
    content: Any,
    role: str,
    nova_version: int,
    multimodal: bool,
    tools: set[str] | None,
    seen_ids: set[str],
    answered: set[str],
) -> set[str]:
    if not isinstance(content, list) or not content:
        raise RowProblem(path, "content must be a non-empty list")
    features: set[str] = set()
    text_len = 0
    has_text = False
    images = videos = documents = 0
    for c, item in enumerate(content):
        ipath = f"{path}[{c}]"
        if not isinstance(item, dict) or not item:
            raise RowProblem(ipath, f"must have one of {', '.join(CONTENT_KEYS)}")
        if extra := sorted(set(item) - set(CONTENT_KEYS)):
            raise RowProblem(f"{ipath}.{extra[0]}", f"unknown content key {extra[0]!r}")
        if "toolUse" in item and "toolResult" in item:
            raise RowProblem(ipath, "toolUse and toolResult cannot be in the same item")
        if "text" in item:
            if not isinstance(item["text"], str):
                raise RowProblem(f"{ipath}.text", "wrong type: text must be a string")
            _keywords(f"{ipath}.text", item["text"])
            text_len += len(item["text"])
            has_text = True
        for kind in ("image", "video", "document"):
            if kind in item:
                if role != "user":
                    raise RowProblem(f"{ipath}.{kind}", f"{kind} is allowed only in user messages")
                if not multimodal:
                    raise RowProblem(f"{ipath}.{kind}", "multimodal content is not supported by this model")
                _check_media(f"{ipath}.{kind}", kind, item[kind], nova_version)
                features.add(kind)
        images += "image" in item
        videos += "video" in item
        documents += "document" in item
        if "reasoningContent" in item:
            _check_reasoning(f"{ipath}.reasoningContent", item, role, nova_version)
            features.add("reasoningContent")
        if "toolUse" in item:
            _check_tool_use(f"{ipath}.toolUse", item["toolUse"], role, tools, seen_ids)
            features.add("toolUse")
        if "toolResult" in item:
            _check_tool_result(f"{ipath}.toolResult", item["toolResult"], role, seen_ids, answered)
            features.add("toolResult")
    # the reference SDK's rule: text items whose text is all empty, unless the message carries an image or a video
    # (a document, reasoning or a tool call next to empty text does not excuse it)
    if has_text and text_len == 0 and not (images or videos):
        raise RowProblem(path, "empty text content")
    if sum(bool(k) for k in (images, videos, documents)) > 1:
        raise RowProblem(path, "at most one multimodal type (image, video or document) per message")
    if images > MAX_IMAGES_PER_MESSAGE:
        raise RowProblem(path, f"{images} images in one message (at most {MAX_IMAGES_PER_MESSAGE})")
    if videos > MAX_VIDEOS_PER_MESSAGE:
        raise RowProblem(path, f"{videos} videos in one message (at most {MAX_VIDEOS_PER_MESSAGE})")
    if documents > 1:
        raise RowProblem(path, "at most one document per sample")
    return features


def _check_media(path: str, kind: str, block: Any, nova_version: int) -> None:
    if not isinstance(block, dict):
        raise RowProblem(path, f"{kind} must be an object with format and source")
    fmt = block.get("format")
    allowed = {
        "image": IMAGE_FORMATS[nova_version],
        "video": VIDEO_FORMATS[nova_version],
        "document": frozenset({"pdf"}),
    }[kind]
    if kind == "document" and nova_version != 2:
        raise RowProblem(path, "documents are supported only on nova-lite-2")
    if fmt not in allowed:
        raise RowProblem(f"{path}.format", f"{kind} format {fmt!r} not supported (use {', '.join(sorted(allowed))})")
    uri = (
        ((block.get("source") or {}).get("s3Location") or {}).get("uri")
        if isinstance(block.get("source"), dict)
        else None
    )
    if not isinstance(uri, str) or not uri.startswith("s3://") or not S3_KEY_RE.match(uri[5:]):
        raise RowProblem(
            f"{path}.source.s3Location.uri", f"must be an s3:// URI of word characters, '-', '/', '.', got {uri!r}"
        )


def _check_reasoning(path: str, item: dict[str, Any], role: str, nova_version: int) -> None:
    if nova_version != 2:
        raise RowProblem(path, "reasoning content is supported only on nova-lite-2")
    if role != "assistant":
        raise RowProblem(path, "reasoning content is allowed only in assistant messages")
    if "image" in item or "video" in item:
        raise RowProblem(path, "reasoning content cannot be combined with image or video in one item")
    rc = item["reasoningContent"]
    text = ((rc or {}).get("reasoningText") or {}).get("text") if isinstance(rc, dict) else None
    _keywords(f"{path}.reasoningText.text", _nonblank(f"{path}.reasoningText.text", text, "reasoning text"))


def _check_tool_use(path: str, use: Any, role: str, tools: set[str] | None, seen_ids: set[str]) -> None:
    if role != "assistant":
        raise RowProblem(path, "toolUse is allowed only in assistant messages")
    if not isinstance(use, dict):
        raise RowProblem(path, "must be an object")
    tid = _nonblank(f"{path}.toolUseId", use.get("toolUseId"), "toolUseId")
    if tid in seen_ids:
        raise RowProblem(f"{path}.toolUseId", f"duplicate toolUseId {tid!r}")
    seen_ids.add(tid)
    name = use.get("name")
    if tools is None or name not in tools:
        raise RowProblem(f"{path}.name", f"tool {name!r} is not declared in toolConfig")
    if not isinstance(use.get("input"), dict):
        raise RowProblem(f"{path}.input", "toolUse.input must be a JSON object")


def _check_tool_result(path: str, result: Any, role: str, seen_ids: set[str], answered: set[str]) -> None:
    if role != "user":
        raise RowProblem(path, "toolResult is allowed only in user messages")
    if not isinstance(result, dict):
        raise RowProblem(path, "must be an object")
    tid = result.get("toolUseId")
    if tid not in seen_ids:
        raise RowProblem(f"{path}.toolUseId", f"toolUseId {tid!r} does not refer to an earlier toolUse")
    if tid in answered:
        raise RowProblem(f"{path}.toolUseId", f"second toolResult for toolUseId {tid!r}")
    answered.add(tid)
    content = result.get("content")
    if not isinstance(content, list) or not content:
        raise RowProblem(f"{path}.content", "must be a non-empty list")
    for i, part in enumerate(content):
        if not isinstance(part, dict) or len({"text", "json"} & set(part)) != 1:
            raise RowProblem(f"{path}.content[{i}]", "each item carries exactly one of text or json")
        if "text" in part:
            _keywords(f"{path}.content[{i}].text", str(part["text"]))


def _check_candidates(path: str, msg: dict[str, Any], nova_version: int) -> None:
    if set(msg) != {"role", "candidates"}:
        raise RowProblem(path, "the last DPO message is {role: assistant, candidates: [...]}")
    cands = msg["candidates"]
    if not isinstance(cands, list) or len(cands) < 2:
        raise RowProblem(f"{path}.candidates", "needs at least 2 candidates")
    labels = set()
    for i, cand in enumerate(cands):
        cpath = f"{path}.candidates[{i}]"
        if not isinstance(cand, dict):
            raise RowProblem(cpath, "must be an object")
        label = str(cand.get("preferenceLabel", "")).lower()
        if label not in ("preferred", "non-preferred"):
            raise RowProblem(f"{cpath}.preferenceLabel", "must be 'preferred' or 'non-preferred'")
        labels.add(label)
        content = cand.get("content")
        if not isinstance(content, list) or not content:
            raise RowProblem(f"{cpath}.content", "must be a non-empty list")
        text = 0
        reasoning = False
        for c, item in enumerate(content):
            if not isinstance(item, dict):
                raise RowProblem(f"{cpath}.content[{c}]", "must be an object")
            if {"image", "video", "document"} & set(item):
                raise RowProblem(f"{cpath}.content[{c}]", "candidates cannot carry image, video or document")
            if "reasoningContent" in item:
                _check_reasoning(f"{cpath}.content[{c}].reasoningContent", item, "assistant", nova_version)
                reasoning = True
            if "text" in item:
                _keywords(f"{cpath}.content[{c}].text", str(item["text"]))
                text += len(str(item["text"]).strip())
        if not text and not reasoning:
            raise RowProblem(f"{cpath}.content", "empty text content")
    if len(labels) < 2:
        raise RowProblem(f"{path}.candidates", "candidates must not all share the same preferenceLabel")


def gen_qa_image_problem(data: Any) -> str | None:
    """Why a gen_qa ``images[].data`` value is not an inline image (None when it is)."""
    if not isinstance(data, str) or not data.startswith("data:image/") or ";base64," not in data.lower():
        return "must be a data:image/...;base64,... URI"
    return None


def _check_rft_content(path: str, msg: dict[str, Any]) -> None:
    """Text only (AWS: RFT data is text only). ``content`` may be absent (the reference SDK's rule: an assistant
    turn that only calls tools, a tool turn that carries only its call id)."""
    content = msg.get("content")
    if "tool_calls" in msg and msg["tool_calls"] is not None and not isinstance(msg["tool_calls"], list):
        raise RowProblem(f"{path}.tool_calls", "must be a list of tool calls")
    if content is None:
        return
    if isinstance(content, str):
        _keywords(f"{path}.content", _nonblank(f"{path}.content", content, "content"))
        return
    if not isinstance(content, list) or not content:
        raise RowProblem(f"{path}.content", "content must be a non-blank string or a non-empty list")
    for i, part in enumerate(content):
        ppath = f"{path}.content[{i}]"
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise RowProblem(ppath, f"RFT data is text only: content part of type {kind!r} is not accepted")
        _keywords(f"{ppath}.text", _nonblank(f"{ppath}.text", part.get("text"), "text"))


def check_rft(row: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Validate an RFT record; returns the record with ``developer`` roles normalized to ``system``."""
    features: set[str] = {k for k in ("id", "reference_answer", "tools") if k in row}
    if "id" in row:
        _nonblank("id", row["id"], "id")
    if "reference_answer" in row:
        reference = row["reference_answer"]
        if isinstance(reference, dict):
            if not reference:
                raise RowProblem("reference_answer", "empty reference_answer object")
        else:
            _nonblank("reference_answer", reference, "reference_answer")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RowProblem("messages", "must be a non-empty list")
    out_messages = []
    for m, msg in enumerate(messages):
        path = f"messages[{m}]"
        if not isinstance(msg, dict):
            raise RowProblem(path, "must be an object")
        if extra := sorted(set(msg) - {"role", "content", "tool_calls", "tool_call_id"}):
            raise RowProblem(f"{path}.{extra[0]}", f"unexpected message key {extra[0]!r}")
        role = msg.get("role")
        if role not in RFT_ROLES:
            raise RowProblem(f"{path}.role", f"role {role!r} not in {', '.join(sorted(RFT_ROLES))}")
        if role in ("system", "developer") and m != 0:
            raise RowProblem(f"{path}.role", "a system message must be the first message")
        _check_rft_content(path, msg)
        out_messages.append({**msg, "role": "system"} if role == "developer" else msg)
    if not any(msg.get("role") == "user" for msg in messages):
        raise RowProblem("messages", "needs at least one user message")
    if "tools" in row:
        _check_openai_tools(row["tools"])
    return {**row, "messages": out_messages}, features


def _check_openai_tools(tools: Any) -> None:
    if not isinstance(tools, list) or not tools:
        raise RowProblem("tools", "must be a non-empty list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        path = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise RowProblem(path, "must be {type: function, function: {...}}")
        fn = tool["function"]
        name = _nonblank(f"{path}.function.name", fn.get("name"), "function name")
        _nonblank(f"{path}.function.description", fn.get("description"), "function description")
        params = fn.get("parameters")
        if (
            not isinstance(params, dict)
            or params.get("type") != "object"
            or not isinstance(params.get("properties"), dict)
        ):
            raise RowProblem(f"{path}.function.parameters", "must be {type: object, properties: {...}}")
        if "required" in params and not isinstance(params["required"], list):
            raise RowProblem(f"{path}.function.parameters.required", "must be a list")
        if name in names:
            raise RowProblem(f"{path}.function.name", f"duplicate tool name {name!r}")
        names.add(name)
