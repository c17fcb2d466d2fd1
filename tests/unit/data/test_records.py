"""The record path: Converse, OpenAI messages, DPO and RFT rows checked by the service's rules
(docs/data-formats.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from novaflow.data.converse import RowProblem, check_converse, check_rft
from novaflow.data.openai import openai_to_converse
from novaflow.data.prepare import prepare_dataset
from novaflow.settings import load_settings

SFT = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "You are terse."}],
    "messages": [
        {"role": "user", "content": [{"text": "What is 2+2?"}]},
        {"role": "assistant", "content": [{"text": "4"}]},
    ],
}
TOOLS = {
    "schemaVersion": "bedrock-conversation-2024",
    "toolConfig": {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_price",
                    "description": "Look up a price",
                    "inputSchema": {"json": {"type": "object", "properties": {"ticker": {"type": "string"}}}},
                }
            }
        ]
    },
    "messages": [
        {"role": "user", "content": [{"text": "Price of AAPL?"}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "get_price", "input": {"ticker": "AAPL"}}}],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "150.75"}]}}]},
        {"role": "assistant", "content": [{"text": "AAPL is $150.75."}]},
    ],
}
DPO = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "You are helpful."}],
    "messages": [
        {"role": "user", "content": [{"text": "Summarize the report."}]},
        {
            "role": "assistant",
            "candidates": [
                {"content": [{"text": "A concise, faithful summary."}], "preferenceLabel": "preferred"},
                {"content": [{"text": "A rambling summary with errors."}], "preferenceLabel": "non-preferred"},
            ],
        },
    ],
}
IMAGE = {
    "image": {
        "format": "png",
        "source": {"s3Location": {"uri": "s3://bucket/img/record_0001_block_001.png", "bucketOwner": "123456789012"}},
    }
}


def _mutate(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    row = copy.deepcopy(base)
    target: Any = row
    keys = path.split(".")
    for k in keys[:-1]:
        target = target[int(k)] if k.isdigit() else target[k]
    last = keys[-1]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return row


def test_valid_examples_pass() -> None:
    assert check_converse(SFT, nova_version=1, multimodal=False) == {"system"}
    assert check_converse(TOOLS, nova_version=2, multimodal=True) == {"toolUse", "toolResult"}
    assert check_converse(DPO, nova_version=1, multimodal=True, dpo=True) == {"system"}


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        (_mutate(SFT, "schemaVersion", "v1"), "schemaVersion", "must be 'bedrock-conversation-2024'"),
        (_mutate(SFT, "extra", 1), "extra", "unexpected key 'extra'"),
        (_mutate(SFT, "messages.1", ...), "messages", "needs at least 2 messages"),
        (_mutate(SFT, "messages.0.role", "assistant"), "messages[0].role", "roles must alternate"),
        (_mutate(SFT, "messages.1.role", "system"), "messages[1].role", "roles must alternate"),
        (_mutate(SFT, "messages.0.content.0.text", ""), "messages[0].content", "empty text content"),
        (
            _mutate(SFT, "messages.0.content.0.text", "Bot: hi"),
            "messages[0].content[0].text",
            "reserved keyword 'Bot:'",
        ),
        (_mutate(SFT, "system.0.text", "<unk> x"), "system[0].text", "reserved keyword '<unk>'"),
        (_mutate(SFT, "messages.1.content.0", IMAGE), "messages[1].content[0].image", "only in user messages"),
        (
            _mutate(SFT, "messages.0.content", [IMAGE] * 11 + [{"text": "x"}]),
            "messages[0].content",
            "11 images in one message (at most 10)",
        ),
        (
            _mutate(SFT, "messages.0.content", [_mutate(IMAGE, "image.format", "bmp"), {"text": "x"}]),
            "messages[0].content[0].image.format",
            "image format 'bmp' not supported",
        ),
        (
            _mutate(SFT, "messages.0.content", [_mutate(IMAGE, "image.source.s3Location.uri", "s3://b/a b.png")]),
            "messages[0].content[0].image.source.s3Location.uri",
            "must be an s3:// URI",
        ),
        (
            _mutate(SFT, "messages.1.content", [{"reasoningContent": {"reasoningText": {"text": "r"}}}, {"text": "4"}]),
            "messages[1].content[0].reasoningContent",
            "reasoning content is supported only on nova-lite-2",
        ),
    ],
)
def test_sft_rules(row: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(RowProblem) as info:
        check_converse(row, nova_version=1, multimodal=True)
    assert info.value.field == field
    assert reason in info.value.reason


def test_image_rules_per_model() -> None:
    row = _mutate(SFT, "messages.0.content", [IMAGE, {"text": "What is this?"}])
    assert check_converse(row, nova_version=2, multimodal=True) == {"system", "image"}
    with pytest.raises(RowProblem, match="multimodal content is not supported by this model"):
        check_converse(row, nova_version=1, multimodal=False)


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("messages.1.content.0.toolUse.name", "other", "tool 'other' is not declared in toolConfig"),
        ("messages.2.content.0.toolResult.toolUseId", "t9", "does not refer to an earlier toolUse"),
        ("messages.1.content.0.toolUse.input", "AAPL", "toolUse.input must be a JSON object"),
        ("toolConfig.tools.0.toolSpec.description", "", "empty tool description"),
        ("messages.2.content.0.toolResult.content.0", {"text": "a", "json": {}}, "exactly one of text or json"),
    ],
)
def test_tool_rules(path: str, value: Any, reason: str) -> None:
    with pytest.raises(RowProblem, match=reason):
        check_converse(_mutate(TOOLS, path, value), nova_version=2, multimodal=True)


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("messages.1.candidates.1.preferenceLabel", "preferred", "must not all share the same preferenceLabel"),
        ("messages.1.candidates.1", ..., "needs at least 2 candidates"),
        ("messages.1.candidates.0.preferenceLabel", "best", "must be 'preferred' or 'non-preferred'"),
        ("messages.1.candidates.0.content", [IMAGE], "cannot carry image, video or document"),
        ("messages.1.candidates.0.content.0.text", " ", "empty text content"),
    ],
)
def test_dpo_rules(path: str, value: Any, reason: str) -> None:
    with pytest.raises(RowProblem, match=reason):
        check_converse(_mutate(DPO, path, value), nova_version=1, multimodal=True, dpo=True)


def test_dpo_preference_label_is_case_insensitive() -> None:
    check_converse(
        _mutate(DPO, "messages.1.candidates.0.preferenceLabel", "Preferred"), nova_version=1, multimodal=True, dpo=True
    )


RFT = {
    "id": "s1",
    "messages": [{"role": "developer", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    "reference_answer": {"answer": "4"},
    "task": "math",
}


def test_rft_record_normalizes_developer_and_keeps_extras() -> None:
    out, features = check_rft(RFT)
    assert out["messages"][0] == {"role": "system", "content": "You are terse."}
    assert out["task"] == "math"
    assert features == {"id", "reference_answer"}


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("messages.1.role", "robot", "role 'robot' not in"),
        ("messages", [{"role": "system", "content": "s"}], "needs at least one user message"),
        ("messages.1.content", "  ", "empty content"),
        ("messages.1.name", "x", "unexpected message key 'name'"),
        ("reference_answer", {}, "empty reference_answer object"),
        ("id", " ", "empty id"),
        ("messages.1.content", "User: 2+2", "reserved keyword 'User:'"),
        (
            "tools",
            [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "array"}}}],
            "must be {type: object",
        ),
    ],
)
def test_rft_rules(path: str, value: Any, reason: str) -> None:
    with pytest.raises(RowProblem, match=reason.replace("{", r"\{")):
        check_rft(_mutate(RFT, path, value))


def test_openai_to_converse_nova2_with_reasoning_and_tools() -> None:
    row = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "s3://b/i/x.jpg"}},
                    {"type": "text", "text": "Price?"},
                ],
            },
            {
                "role": "assistant",
                "reasoning": "look it up",
                "content": "",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "p", "arguments": '{"t": "A"}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "150"},
            {"role": "assistant", "content": "It is 150."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "p", "description": "price", "parameters": {"type": "object", "properties": {}}},
            }
        ],
    }
    out = openai_to_converse(row, 2)
    assert out == {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "You are terse."}],
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "p",
                        "description": "price",
                        "inputSchema": {"json": {"type": "object", "properties": {}}},
                    }
                }
            ]
        },
        "messages": [
            {
                "role": "user",
                "content": [
                    {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://b/i/x.jpg"}}}},
                    {"text": "Price?"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "look it up"}}},
                    {"toolUse": {"toolUseId": "c1", "name": "p", "input": {"t": "A"}}},
                ],
            },
            {"role": "user", "content": [{"toolResult": {"toolUseId": "c1", "content": [{"text": "150"}]}}]},
            {"role": "assistant", "content": [{"text": "It is 150."}]},
        ],
    }
    assert check_converse(out, nova_version=2, multimodal=True) == {
        "system",
        "image",
        "reasoningContent",
        "toolUse",
        "toolResult",
    }
    with pytest.raises(RowProblem, match="tool use is supported only on nova-lite-2"):
        openai_to_converse(row, 1)


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prepare_openai_sft_and_optional_field_consistency(tmp_path: Path) -> None:
    """Three rows with a system message, one without: the minority row is rejected, the rest converted."""
    rows = [
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(3)
    ]
    rows.insert(1, {"messages": [{"role": "user", "content": "lonely"}, {"role": "assistant", "content": "x"}]})
    rows.append({"messages": [{"role": "user", "content": "no answer"}]})
    prepared = prepare_dataset(
        str(_write_jsonl(tmp_path / "oa.jsonl", rows)), "sft", "nova-micro", tmp_path / "o", settings=load_settings()
    )
    out = [json.loads(x) for x in prepared.data_file.read_text().splitlines()]
    assert [r["messages"][0]["content"][0]["text"] for r in out] == ["q0", "q1", "q2"]
    assert out[0]["system"] == [{"text": "S"}]
    rejected = [json.loads(x) for x in (tmp_path / "o" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["row"], r["field"], r["reason"]) for r in rejected] == [
        (2, "system", "optional field consistency: 'system' is in 3 of 4 rows; every row must have it or none"),
        (5, "messages", "needs at least one user and one assistant message"),
    ]
    assert prepared.report.rows_out == 3 and prepared.report.rows_rejected == 2
    assert prepared.report.labels == {"all": {"a0": 1, "a1": 1, "a2": 1}}


def test_prepare_dpo_file(tmp_path: Path) -> None:
    bad = _mutate(DPO, "messages.1.candidates.1.preferenceLabel", "preferred")
    path = _write_jsonl(tmp_path / "dpo.jsonl", [DPO, bad, DPO])
    prepared = prepare_dataset(str(path), "dpo", "nova-pro", tmp_path / "o", settings=load_settings())
    assert [json.loads(x) for x in prepared.data_file.read_text().splitlines()] == [DPO, DPO]
    assert prepared.report.rejections_by_reason == {"candidates must not all share the same preferenceLabel": 1}
