"""DPO data from a table of pairs and from labelled rows; CPT data from a text column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from novaflow.data.preferences import derive_pairs
from novaflow.data.prepare import prepare_dataset
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.errors import DataError
from novaflow.settings import load_settings


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


PAIRS = ColumnMap(query="prompt", chosen="good", rejected="bad")


def test_a_table_of_pairs_becomes_nova_dpo_records(tmp_path: Path) -> None:
    table = _csv(
        tmp_path / "pairs.csv",
        [
            {"prompt": "How do I sort a list?", "good": "Use sorted(xs).", "bad": "You cannot."},
            {"prompt": "Is this a duplicate?", "good": "yes", "bad": "yes"},
            {"prompt": "Explain recursion", "good": "A function calling itself.", "bad": ""},
        ],
    )
    prepared = prepare_dataset(
        DatasetSource(path=str(table), columns=PAIRS, system_prompt="Be brief."),
        "dpo",
        "nova-micro",
        tmp_path / "o",
        settings=load_settings(),
    )
    assert _lines(prepared.data_file) == [
        {
            "schemaVersion": "bedrock-conversation-2024",
            "system": [{"text": "Be brief."}],
            "messages": [
                {"role": "user", "content": [{"text": "How do I sort a list?"}]},
                {
                    "role": "assistant",
                    "candidates": [
                        {"content": [{"text": "Use sorted(xs)."}], "preferenceLabel": "preferred"},
                        {"content": [{"text": "You cannot."}], "preferenceLabel": "non-preferred"},
                    ],
                },
            ],
        }
    ]
    rejected = [(r["row"], r["field"], r["reason"]) for r in _lines(prepared.rejected_file)]
    assert rejected[0] == (
        2,
        "bad",
        "chosen and rejected are the same answer: a preference pair needs two different answers",
    )
    row, field, _ = rejected[1]
    assert (row, field) == (3, "bad")  # the empty answer is named by its column, not by the record's path


def test_a_missing_pair_column_is_one_line_naming_the_mapping(tmp_path: Path) -> None:
    table = _csv(tmp_path / "p.csv", [{"prompt": "q", "good": "a"}])
    with pytest.raises(DataError) as err:
        prepare_dataset(
            DatasetSource(path=str(table), columns=ColumnMap(query="prompt", chosen="good")),
            "dpo",
            "nova-lite",
            tmp_path / "o",
            settings=load_settings(),
        )
    assert "DPO needs a column for 'rejected'; map one with --map rejected=COLUMN" in str(err.value)


def test_pairs_derived_from_labelled_rows_prefer_each_rows_own_answer(tmp_path: Path) -> None:
    rows = [{"q": f"question {i}", "label": label} for i, label in enumerate(["HQ", "LQ_EDIT", "LQ_CLOSE", "HQ", ""])]
    source = DatasetSource(path=str(_csv(tmp_path / "rows.csv", rows)))
    first = derive_pairs(source, "label", tmp_path / "a.csv", seed=3)
    again = derive_pairs(source, "label", tmp_path / "b.csv", seed=3)
    assert first.read_bytes() == again.read_bytes()  # the same data and seed give the same pairs
    with first.open(newline="", encoding="utf-8") as f:
        pairs = list(csv.DictReader(f))
    assert [p["chosen"] for p in pairs] == ["HQ", "LQ_EDIT", "LQ_CLOSE", "HQ"]  # the unlabelled row is left out
    assert all(p["rejected"] != p["chosen"] and p["rejected"] in {"HQ", "LQ_EDIT", "LQ_CLOSE"} for p in pairs)
    with pytest.raises(DataError, match=r"preference pairs need at least two different answers in 'q2'"):
        derive_pairs(
            DatasetSource(path=str(_csv(tmp_path / "one.csv", [{"q2": "x"}, {"q2": "x"}]))), "q2", tmp_path / "c.csv"
        )


def test_cpt_rows_are_the_text_column(tmp_path: Path) -> None:
    table = _csv(tmp_path / "t.csv", [{"body": "Python lists are mutable."}, {"body": ""}, {"body": "Tuples are not."}])
    prepared = prepare_dataset(
        DatasetSource(path=str(table), columns=ColumnMap(text="body")),
        "cpt",
        "nova-lite-2",
        tmp_path / "o",
        settings=load_settings(),
    )
    assert _lines(prepared.data_file) == [{"text": "Python lists are mutable."}, {"text": "Tuples are not."}]
    assert [(r["row"], r["field"]) for r in _lines(prepared.rejected_file)] == [(2, "body")]  # named by its column


@pytest.mark.slow
def test_a_table_of_pairs_in_workers_is_byte_identical_to_one_process(tmp_path: Path) -> None:
    rows = [
        {"prompt": f"q{i}", "good": f"right {i}", "bad": f"wrong {i}" if i % 7 else f"right {i}"} for i in range(60)
    ]
    source = DatasetSource(path=str(_csv(tmp_path / "pairs.csv", rows)), columns=PAIRS)
    one = prepare_dataset(source, "dpo", "nova-micro", tmp_path / "one", workers=1, settings=load_settings())
    two = prepare_dataset(source, "dpo", "nova-micro", tmp_path / "two", workers=2, settings=load_settings())
    assert one.data_file.read_bytes() == two.data_file.read_bytes()
    assert len(_lines(one.data_file)) == 51  # rows 0, 7, ..., 56 have the same answer twice
    assert [r["row"] for r in _lines(two.rejected_file)] == list(range(1, 61, 7))
