"""Text survives byte for byte: CSV (BOM, CRLF, quoted multi-line) -> JSONL, for every output format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novaflow.data.prepare import prepare_dataset
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.settings import load_settings
from tests.unit.data.conftest import TRICKY_BODY


@pytest.mark.parametrize(
    ("method", "model", "get_query"),
    [
        ("eval", "nova-lite-2", lambda r: r["query"]),
        ("sft", "nova-lite-2", lambda r: r["messages"][0]["content"][0]["text"]),
        ("sft", "nova-micro", lambda r: r["messages"][0]["content"][0]["text"]),
        ("rft", "nova-lite-2", lambda r: r["messages"][1]["content"]),
        ("cpt", "nova-pro", lambda r: r["text"]),
    ],
)
def test_every_character_survives(tricky_csv: Path, tmp_path: Path, method: str, model: str, get_query) -> None:
    src = DatasetSource(path=str(tricky_csv), columns=ColumnMap(query="Body", response="Y", text="Body"))
    prepared = prepare_dataset(src, method, model, tmp_path / "out", settings=load_settings())
    lines = prepared.data_file.read_bytes().split(b"\n")
    assert lines[-1] == b""
    rows = [json.loads(line) for line in lines[:-1]]
    assert [get_query(r) for r in rows] == [TRICKY_BODY, 'He said "use pandas" – ok?', "plain"]
    assert prepared.report.rows_rejected == 0


def test_output_is_raw_utf8_with_json_escapes_only_for_controls(tricky_csv: Path, tmp_path: Path) -> None:
    """Pinned: non-ASCII is written as UTF-8 (no \\u escapes); CR, LF, tab and quotes are JSON-escaped."""
    src = DatasetSource(path=str(tricky_csv), columns=ColumnMap(query="Body", response="Y"))
    data = prepare_dataset(src, "eval", "nova-lite-2", tmp_path, settings=load_settings()).data_file.read_bytes()
    first = data.split(b"\n")[0]
    assert (
        first
        == (
            '{"query":"<p>Why does\\r\\nthis fail?</p>\\n<pre><code>def f():\\n\\treturn \\"naïve 数据 🙂\\"'
            '\\n</code></pre>\\n","response":"HQ"}'
        ).encode()
    )
    assert b"\\u" not in data


def test_round_trip_of_all_unicode_planes_and_controls(tmp_path: Path) -> None:
    """Every JSON-sensitive character and a sample of every plane survive JSONL -> JSONL."""
    text = "".join(chr(c) for c in range(1, 0x250)) + "\u2028\u2029\ufeff\U0001f600\U00010348 end"
    src_file = tmp_path / "in.jsonl"
    src_file.write_text(json.dumps({"query": text, "response": "HQ"}, ensure_ascii=True) + "\n", encoding="utf-8")
    prepared = prepare_dataset(str(src_file), "eval", "nova-lite-2", tmp_path / "out", settings=load_settings())
    row = json.loads(prepared.data_file.read_text(encoding="utf-8"))
    assert row["query"] == text
