"""The batch inference formats, offline: rows from a column map, the gen_qa envelope, Bedrock records and outputs."""

from __future__ import annotations

import json
from pathlib import Path

from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.evaluation.parser import parse_inference_output
from novaflow.inference.bedrock_batch import custom_model_problem, invocation_record, parse_output_lines
from novaflow.inference.gen_qa_batch import NO_REFERENCE, answers_from_samples, gen_qa_line
from novaflow.inference.results import Answer, build_table
from novaflow.inference.rows import read_batch_rows
from novaflow.settings import load_settings


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_rows_follow_the_column_map_templates_and_default_ids_to_row_numbers(tmp_path: Path) -> None:
    data = _jsonl(
        tmp_path / "in.jsonl",
        [{"t": "Title A", "b": "Body A", "sys": "Be terse."}, {"t": "Title B", "b": "Body B", "sys": None}],
    )
    batch = read_batch_rows(
        DatasetSource(path=str(data), columns=ColumnMap(query="{t}: {b}", system="sys")), settings=load_settings()
    )
    assert [(r.row, r.id, r.query, r.system, r.reference) for r in batch.rows] == [
        (1, "1", "Title A: Body A", "Be terse.", None),
        (2, "2", "Title B: Body B", None, None),
    ]


def test_the_row_id_survives_the_gen_qa_round_trip_whatever_the_order(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "in.jsonl", [{"id": "x", "query": "q1"}, {"id": "y", "query": "q2", "response": "r"}])
    batch = read_batch_rows(DatasetSource(path=str(data)), settings=load_settings())
    lines = [gen_qa_line(r.id, r.query, r.system, r.reference, r.metadata) for r in batch.rows]
    assert lines[0]["response"] == NO_REFERENCE and lines[1]["response"] == "r"
    # What the evaluation writes back, reversed: the ids, not the positions, join answers to rows.
    output = "".join(
        json.dumps(
            {
                "prompt": repr([{"role": "user", "content": line["query"]}]),
                "inference": repr([f"ans {i}"]),
                "gold": line["response"],
                "metadata": line["metadata"],
            }
        )
        + "\n"
        for i, line in reversed(list(enumerate(lines)))
    ).encode()
    samples = parse_inference_output(output, where="inference_output.jsonl", prompts=False)
    answers, warnings = answers_from_samples("inference_output.jsonl", samples, batch)
    assert warnings == []
    assert {k: v.response for k, v in answers.items()} == {"x": "ans 0", "y": "ans 1"}
    table = build_table(batch, answers)
    assert [(r["id"], r["response"], r["reference"]) for r in table.records] == [
        ("x", "ans 0", None),
        ("y", "ans 1", "r"),
    ]


def test_bedrock_records_and_outputs_in_any_order_with_per_record_errors(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "in.jsonl", [{"id": "a", "query": "2+2?"}, {"id": "b", "query": "3+3?"}])
    batch = read_batch_rows(
        DatasetSource(path=str(data), system_prompt="Answer with a number."), settings=load_settings()
    )
    records = [invocation_record(r, max_tokens=16) for r in batch.rows]
    assert records[1] == {
        "recordId": "00000000002",
        "modelInput": {
            "schemaVersion": "messages-v1",
            "system": [{"text": "Answer with a number."}],
            "messages": [{"role": "user", "content": [{"text": "3+3?"}]}],
            "inferenceConfig": {"maxTokens": 16, "temperature": 0.0},
        },
    }
    out = [
        {
            "recordId": "00000000002",
            "modelInput": records[1]["modelInput"],
            "error": {"errorCode": 400, "errorMessage": "bad request"},
        },
        {
            "recordId": "00000000001",
            "modelInput": records[0]["modelInput"],
            "modelOutput": {
                "output": {"message": {"role": "assistant", "content": [{"reasoningContent": {}}, {"text": "4"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 9, "outputTokens": 1, "totalTokens": 10},
            },
        },
        {"recordId": "99999999999", "modelInput": {}},
    ]
    answers, warnings = parse_output_lines(
        (json.dumps(o).encode() for o in out), where="records.jsonl.out", batch=batch
    )
    assert answers == {"a": Answer("4", 9, 1), "b": Answer(None, error="400: bad request")}
    assert warnings == ["records.jsonl.out line 3: recordId '99999999999' is not one of the input's"]
    table = build_table(batch, answers)
    assert [(r["id"], r["response"], r["error"]) for r in table.records] == [
        ("a", "4", None),
        ("b", None, "400: bad request"),
    ]
    assert [f.as_dict() for f in table.failures] == [
        {"row": 2, "id": "b", "field": "response", "reason": "400: bad request"}
    ]


def test_only_base_models_go_to_bedrock_batch() -> None:
    assert custom_model_problem("amazon.nova-2-lite-v1:0", None) is None
    assert "is a trained model" in str(custom_model_problem(None, "s3://escrow/job/outputs/checkpoints"))
    assert "is a custom model" in str(
        custom_model_problem("arn:aws:bedrock:us-east-1:123456789012:custom-model/nova-sft", None)
    )
