from __future__ import annotations

import json
from pathlib import Path

import pytest

from novaflow.deploy.invoke import chat_request, converse_request, converse_text, parse_completion
from novaflow.deploy.smoke import load_eval_rows, smoke_test
from novaflow.errors import AwsError, DataError, DeployError
from novaflow.settings import load_settings
from reward_lambda.labels import DEFAULT_LABELS

ROWS = [
    {"query": "q1", "response": "HQ", "system": "label only"},
    {"query": "q2", "response": "LQ_EDIT"},
    {"query": "q3", "response": "LQ_CLOSE"},
]


def test_smoke_passes_when_every_answer_names_one_label() -> None:
    answers = {"q1": "**HQ**", "q2": "The answer is lq-edit.", "q3": "HQ"}
    asked: list[tuple[str, str | None]] = []

    def ask(query: str, system: str | None) -> str:
        asked.append((query, system))
        return answers[query]

    report = smoke_test(ask, ROWS, labels=DEFAULT_LABELS)
    assert asked == [("q1", "label only"), ("q2", None), ("q3", None)]
    assert report.passed
    assert [c.label for c in report.cases] == ["HQ", "LQ_EDIT", "HQ"]
    assert report.matches == 2
    assert report.summary() == "smoke test: 3/3 answers parsed, 2/3 equal to the expected label"


def test_smoke_fails_on_hedges_blanks_and_errors() -> None:
    def ask(query: str, system: str | None) -> str:
        if query == "q3":
            raise AwsError("invoke endpoint e failed: ModelError: boom", code="ModelError")
        return {"q1": "HQ or LQ_EDIT", "q2": "   "}[query]

    report = smoke_test(ask, ROWS, labels=DEFAULT_LABELS)
    assert not report.passed
    assert [c.ok for c in report.cases] == [False, False, False]
    assert report.cases[2].error == "invoke endpoint e failed: ModelError: boom"
    assert report.summary().endswith("first failure: unparseable answer 'HQ or LQ_EDIT'")


def test_smoke_without_labels_only_needs_text() -> None:
    assert smoke_test(lambda q, s: "anything", ROWS[:1]).passed
    assert not smoke_test(lambda q, s: "x", []).passed


def test_eval_rows_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "gen_qa.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps({"query": " ", "response": "HQ"}) + "\n")
    assert load_eval_rows(path, limit=1, settings=load_settings()) == [ROWS[0]]
    with pytest.raises(DataError, match=rf"{path}, line 3, field 'query': missing or blank"):
        load_eval_rows(path, limit=5, settings=load_settings())
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=rf"{path}, line 1: not JSON"):
        load_eval_rows(path, settings=load_settings())
    with pytest.raises(DataError, match=r"missing\.jsonl: no such file; expected gen_qa\.jsonl from data preparation"):
        load_eval_rows(tmp_path / "missing.jsonl", settings=load_settings())


def test_chat_request_body() -> None:
    assert chat_request("hi", system="terse", max_tokens=8, stream=True, top_p=None) == {
        "messages": [{"role": "system", "content": "terse"}, {"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_parse_completion_chat_and_text() -> None:
    chat = parse_completion(
        b'{"id": "x", "created": 1, "choices": [{"message": {"role": "assistant", '
        b'"content": "HQ"}, "finish_reason": "stop"}], "usage": {"total_tokens": 3}}',
        0.25,
    )
    assert (chat.text, chat.finish_reason, chat.usage, chat.latency_seconds) == (
        "HQ",
        "stop",
        {"total_tokens": 3},
        0.25,
    )
    assert parse_completion(b'{"choices": [{"text": "LQ_EDIT"}]}').text == "LQ_EDIT"
    with pytest.raises(DeployError, match="endpoint answer is not JSON: b'body'"):
        parse_completion(b"body")
    with pytest.raises(DeployError, match="has no choices"):
        parse_completion(b"{}")


def test_converse_request_and_text() -> None:
    assert converse_request("hi", system="terse", max_tokens=5) == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "inferenceConfig": {"maxTokens": 5, "temperature": 0.0},
        "system": [{"text": "terse"}],
    }
    answer = {"output": {"message": {"content": [{"reasoningContent": {}}, {"text": "HQ"}]}}}
    assert converse_text(answer) == "HQ"
    with pytest.raises(DeployError, match="no text block"):
        converse_text({"output": {"message": {"content": []}}})
