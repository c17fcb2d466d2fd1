"""The multi-turn RFT task format: prepared and validated like the other Nova formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novaflow.data.converse import RowProblem
from novaflow.data.multiturn import check_mtrl
from novaflow.data.prepare import prepare_dataset
from novaflow.data.validate import validate_records
from novaflow.settings import load_settings


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prepare_keeps_valid_rows_and_names_each_rejected_row(tmp_path: Path) -> None:
    rows = [
        {"id": "t1", "metadata": {"prompt": "Guess the colour"}, "answer": "red"},
        {"id": 2, "metadata": {"prompt": [{"role": "user", "content": "Guess again"}]}, "answer": "blue"},
        {"id": "t3", "metadata": {}, "answer": "red"},
        {"id": " ", "metadata": {"prompt": "x"}, "answer": "red"},
        {"id": "t5", "metadata": {"prompt": "y"}, "answer": "red", "extra": 1},
        {"id": "t6", "metadata": {"prompt": "z"}},
        {"id": "t7", "metadata": {"prompt": "w"}, "answer": "blue", "info": []},
    ]
    prepared = prepare_dataset(
        str(_write(tmp_path / "tasks.jsonl", rows)),
        "rft_multiturn",
        "nova-lite-2",
        tmp_path / "o",
        settings=load_settings(),
    )
    assert prepared.data_file.name == "train.jsonl"
    written = [json.loads(line) for line in prepared.data_file.read_text().splitlines()]
    assert written == [
        {"id": "t1", "metadata": {"prompt": "Guess the colour"}, "answer": "red"},
        {"id": "2", "metadata": {"prompt": [{"role": "user", "content": "Guess again"}]}, "answer": "blue"},
    ]
    rejected = [json.loads(line) for line in prepared.rejected_file.read_text().splitlines()]
    assert [(r["source"], r["row"], r["field"], r["reason"]) for r in rejected] == [
        ("tasks.jsonl", 3, "metadata.prompt", "missing prompt: a string, or a non-empty list of {role, content}"),
        ("tasks.jsonl", 4, "id", "missing or blank id: every task needs a unique id (string)"),
        ("tasks.jsonl", 5, "extra", "unexpected key 'extra': a task row holds id, metadata, answer, task, info"),
        (
            "tasks.jsonl",
            6,
            "answer",
            "optional field consistency: 'answer' is in 2 of 3 rows; every row must have it or none",
        ),
        ("tasks.jsonl", 7, "info", "wrong type: info must be an object, got list"),
    ]
    assert rejected[0]["record"] == rows[2]
    assert prepared.manifest["method"] == "mtrl"


def test_a_flat_table_row_is_lifted_into_a_task() -> None:
    out, used = check_mtrl({"id": 7, "prompt": "Add 2 and 3", "answer": "5", "task": "math"})
    assert out == {"id": "7", "metadata": {"prompt": "Add 2 and 3"}, "answer": "5", "task": "math"}
    assert used == {"answer", "task"}


def test_validate_names_the_prompt_message_that_breaks_the_rule() -> None:
    result = validate_records(
        [{"id": "a", "metadata": {"prompt": [{"role": "tool", "content": "x"}]}}], "mtrl", "nova-lite-2"
    )
    assert [(r.row, r.field, r.reason) for r in result.rejected] == [
        (1, "metadata.prompt[0].role", "role 'tool' not in assistant, system, user")
    ]


def test_multiturn_tasks_are_refused_for_a_model_without_multiturn_rft() -> None:
    with pytest.raises(RowProblem):
        from novaflow.catalog import DataFormat, get_model
        from novaflow.data.validate import check_record

        check_record({"id": "a", "metadata": {"prompt": "x"}}, DataFormat.MTRL, get_model("nova-pro"))


def test_a_table_becomes_tasks_with_the_system_prompt_first_and_the_label_as_answer(tmp_path: Path) -> None:
    from novaflow.data.columnar import task_lines
    from novaflow.data.source import ColumnMap, DatasetSource

    table = tmp_path / "q.csv"
    table.write_text("Title,Y\nHow do I sort a dict?,HQ\nWhy is my loop slow?,LQ_EDIT\n", encoding="utf-8")
    source = DatasetSource(path=str(table), columns=ColumnMap(query="Title", response="Y"), system_prompt="Label it.")
    prepared = prepare_dataset(source, "mtrl", "nova-lite-2", tmp_path / "o", settings=load_settings())
    rows = [json.loads(line) for line in prepared.data_file.read_text().splitlines()]
    assert rows == [
        json.loads(line)
        for line in task_lines(
            ["How do I sort a dict?", "Why is my loop slow?"], ["Label it.", "Label it."], None, ["HQ", "LQ_EDIT"]
        )
    ]
    assert rows[0]["metadata"]["prompt"] == [
        {"role": "system", "content": "Label it."},
        {"role": "user", "content": "How do I sort a dict?"},
    ]
    assert rows[0]["answer"] == "HQ" and rows[0]["id"].startswith("task-") and len(rows[0]["id"]) == 21
    assert prepared.report.rows_out == 2


def test_validate_rejects_a_repeated_task_id_and_keeps_the_first() -> None:
    rows = [
        {"id": "a", "metadata": {"prompt": "x"}},
        {"id": "b", "metadata": {"prompt": "y"}},
        {"id": "a", "metadata": {"prompt": "z"}},
    ]
    result = validate_records(rows, "rft_multiturn", "nova-lite-2", source="tasks.jsonl")
    assert [(r.row, r.field, r.reason) for r in result.rejected] == [
        (3, "id", "duplicate id 'a' (first on row 1): task ids must be unique")
    ]
