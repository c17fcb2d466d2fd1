"""Each transform equals the contract's examples key for key (docs/data-formats.md) and its golden file byte for byte.

Set ``UPDATE_GOLDEN=1`` to rewrite the golden files after a deliberate format change; the diff shows it.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest

from novaflow.data.prepare import prepare_dataset
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.settings import load_settings

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "data"

CONTRACT_SFT_NOVA2 = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "You are terse."}],
    "messages": [
        {"role": "user", "content": [{"text": "What is 2+2?"}]},
        {
            "role": "assistant",
            "content": [{"reasoningContent": {"reasoningText": {"text": "Add numbers"}}}, {"text": "4"}],
        },
    ],
}
CONTRACT_SFT_NOVA1 = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "You are terse."}],
    "messages": [
        {"role": "user", "content": [{"text": "What is 2+2?"}]},
        {"role": "assistant", "content": [{"text": "4"}]},
    ],
}
CONTRACT_EVAL = {"query": "What is 2+2?", "response": "4", "system": "You are terse.", "metadata": '{"row": 17}'}
CONTRACT_RFT_GENERIC = {
    "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    "reference_answer": "4",
}
CONTRACT_RFT_FULL = {
    "id": "sample-001",
    "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    "reference_answer": "4",
    "my_key": "any extra top-level field is allowed and is passed to the reward function",
}


@pytest.fixture
def contract_csv(tmp_path: Path) -> Path:
    path = tmp_path / "contract.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "question", "answer", "system", "reasoning_text", "metadata", "my_key"])
        w.writerow(
            [
                "sample-001",
                "What is 2+2?",
                "4",
                "You are terse.",
                "Add numbers",
                '{"row": 17}',
                CONTRACT_RFT_FULL["my_key"],
            ]
        )
    return path


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual == expected
    assert json.dumps(actual) == json.dumps(expected), "key order differs from the contract"


def test_sft_nova2_with_reasoning_equals_contract(contract_csv: Path, tmp_path: Path) -> None:
    """Identity mapping: canonical columns need no --map (unlike the Forge SDK)."""
    prepared = prepare_dataset(str(contract_csv), "sft", "nova-lite-2", tmp_path / "o", settings=load_settings())
    (row,) = _rows(prepared.data_file)
    _same(row, CONTRACT_SFT_NOVA2)


def test_sft_nova1_ignores_default_reasoning_column(contract_csv: Path, tmp_path: Path) -> None:
    prepared = prepare_dataset(str(contract_csv), "sft", "nova-lite", tmp_path / "o", settings=load_settings())
    (row,) = _rows(prepared.data_file)
    _same(row, CONTRACT_SFT_NOVA1)
    assert prepared.report.notes == ["column 'reasoning' ignored: reasoning content is Nova 2 only"]


def test_eval_equals_contract(contract_csv: Path, tmp_path: Path) -> None:
    src = DatasetSource(path=str(contract_csv), columns=ColumnMap(metadata=("metadata",)))
    prepared = prepare_dataset(src, "eval", "nova-pro", tmp_path / "o", settings=load_settings())
    assert prepared.data_file.name == "gen_qa.jsonl"
    (row,) = _rows(prepared.data_file)
    _same(row, CONTRACT_EVAL)


def test_rft_generic_has_no_leaked_mapping_keys(contract_csv: Path, tmp_path: Path) -> None:
    """The Forge SDK leaks ``"system"`` at top level; we must not."""
    src = DatasetSource(
        path=str(contract_csv), columns=ColumnMap(query="question", reference_answer="answer", system="system")
    )
    prepared = prepare_dataset(src, "rft", "nova-lite-2", tmp_path / "o", settings=load_settings())
    (row,) = _rows(prepared.data_file)
    row.pop("id")  # the canonical ``id`` column is mapped by default and placed first
    _same(row, CONTRACT_RFT_GENERIC)


def test_rft_with_id_and_metadata_equals_contract(contract_csv: Path, tmp_path: Path) -> None:
    src = DatasetSource(path=str(contract_csv), columns=ColumnMap(metadata=("my_key",)))
    prepared = prepare_dataset(src, "rft", "nova-lite-2", tmp_path / "o", settings=load_settings())
    assert prepared.data_file.name == "rft.jsonl"
    (row,) = _rows(prepared.data_file)
    _same(row, CONTRACT_RFT_FULL)


def test_rft_without_system_uses_the_contract_default(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "What is 2+2?", "reference_answer": {"answer": "4"}}\n', encoding="utf-8")
    (row,) = _rows(prepare_dataset(str(path), "rft", "nova-lite-2", tmp_path / "o", settings=load_settings()).data_file)
    _same(
        row,
        {
            "messages": [
                {"role": "system", "content": "You are a helpful AI assistant."},
                {"role": "user", "content": "What is 2+2?"},
            ],
            "reference_answer": {"answer": "4"},
        },
    )


def test_constant_system_prompt_applies_to_every_row(tricky_csv: Path, tmp_path: Path) -> None:
    src = DatasetSource(
        path=str(tricky_csv), columns=ColumnMap(query="Body", response="Y"), system_prompt="Label only."
    )
    rows = _rows(prepare_dataset(src, "sft", "nova-lite-2", tmp_path / "o", settings=load_settings()).data_file)
    assert [r["system"] for r in rows] == [[{"text": "Label only."}]] * 3


def test_title_plus_body_template(tricky_csv: Path, tmp_path: Path) -> None:
    src = DatasetSource(path=str(tricky_csv), columns=ColumnMap(query="Q{Id}: {Body}", response="Y"))
    rows = _rows(prepare_dataset(src, "eval", "nova-lite-2", tmp_path / "o", settings=load_settings()).data_file)
    assert rows[2] == {"query": "Q3: plain", "response": "LQ_CLOSE"}


@pytest.mark.parametrize(
    ("name", "method", "model"),
    [
        ("eval", "eval", "nova-lite-2"),
        ("sft_nova2", "sft", "nova-lite-2"),
        ("sft_nova1", "sft", "nova-micro"),
        ("rft", "rft", "nova-lite-2"),
        ("cpt", "cpt", "nova-lite"),
    ],
)
def test_golden_bytes(tricky_csv: Path, tmp_path: Path, name: str, method: str, model: str) -> None:
    src = DatasetSource(
        path=str(tricky_csv),
        columns=ColumnMap(
            query="Body", response="Y", text="Body", id="Id", metadata=("Id",) if method == "eval" else ()
        ),
        system_prompt="Reply with HQ, LQ_EDIT or LQ_CLOSE.",
    )
    data = prepare_dataset(src, method, model, tmp_path / "o", settings=load_settings()).data_file.read_bytes()
    golden = GOLDEN / f"{name}.jsonl"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_bytes(data)
    assert data == golden.read_bytes()


def test_eval_images_from_json_input(tmp_path: Path) -> None:
    img = {"data": "data:image/png;base64,iVBORw0KGgo..."}
    path = tmp_path / "img.jsonl"
    rows = [
        {"query": "q1", "response": "a", "images": [img]},
        {"query": "q2", "response": "a", "images": [{"data": "http://x/y.png"}]},
        {"query": "q3", "response": "a"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    prepared = prepare_dataset(str(path), "eval", "nova-lite-2", tmp_path / "o", settings=load_settings())
    assert _rows(prepared.data_file) == [{"query": "q1", "response": "a", "images": [img]}]
    rejected = [json.loads(x) for x in (tmp_path / "o" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["row"], r["field"]) for r in rejected] == [(2, "images[0].data"), (3, "images")]
