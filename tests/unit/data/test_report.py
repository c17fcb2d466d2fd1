"""The data-quality report counts exactly what happened, in numbers small enough to check by hand."""

from __future__ import annotations

import json
from pathlib import Path

from novaflow.data.prepare import prepare_dataset
from novaflow.data.report import LengthStats, normalize_text, rejection_kind
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.settings import load_settings
from tests.unit.data.conftest import quote


def test_report_numbers(tmp_path: Path) -> None:
    bodies = ["abcd", "abcdefgh", "abcd", "", "x" * 40]
    labels = ["HQ", "LQ_EDIT", "HQ", "HQ", "LQ_CLOSE"]
    path = tmp_path / "r.csv"
    path.write_text("Body,Y\n" + "".join(f"{quote(b)},{y}\n" for b, y in zip(bodies, labels, strict=True)))
    src = DatasetSource(path=str(path), columns=ColumnMap(query="Body", response="Y"), system_prompt="sys")
    prepared = prepare_dataset(
        src, "sft", "nova-lite-2", tmp_path / "o", max_length=10, split="sft", settings=load_settings()
    )
    rep = prepared.report
    assert (rep.rows_in, rep.rows_out, rep.rows_rejected, rep.duplicates) == (5, 4, 1, 1)
    assert rep.labels == {"sft": {"HQ": 2, "LQ_CLOSE": 1, "LQ_EDIT": 1}}
    # prompt = 3 system chars + body; total adds the label
    assert rep.prompt_chars == LengthStats(min=7, mean=17.0, p50=9.0, p95=38.2, max=43)  # linear: 11 + 0.85 * (43 - 11)
    assert rep.total_chars.max == 51 and rep.total_chars.min == 9
    assert rep.est_tokens.max == 13  # ceil(51 / 4)
    assert rep.over_max_length == 1
    assert json.loads((tmp_path / "o" / "report.json").read_text()) == rep.model_dump()
    table = rep.table_rows()
    assert {"section": "rows", "item": "rejected", "value": 1} in table
    assert {"section": "labels[sft]", "item": "HQ", "value": 2} in table
    assert {"section": "quality", "item": "over max_length (10)", "value": 1} in table


def test_manifest_hash_matches_file(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "m.csv"
    path.write_text("query,response\nq,a\n")
    prepared = prepare_dataset(str(path), "eval", "nova-lite-2", tmp_path / "o", settings=load_settings())
    data = prepared.data_file.read_bytes()
    assert prepared.manifest == json.loads(prepared.manifest_file.read_text())
    assert prepared.manifest["files"] == {
        "gen_qa.jsonl": {"rows": 1, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    }


def test_helpers() -> None:
    assert normalize_text("  Hello\n\tWORLD  ") == "hello world"
    assert rejection_kind("reserved keyword 'User:' in query") == "reserved keyword in query"
    assert rejection_kind("wrong type: expected a string, got number") == "wrong type"
