"""Nothing lost: good rows continue, every bad row lands in rejected.jsonl with file, row, field and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novaflow.data.prepare import prepare_dataset
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.errors import ConfigError, DataError
from novaflow.settings import load_settings
from tests.unit.data.conftest import quote

MAP = ColumnMap(query="Body", response="Y")


def _rejected(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    rows = [
        ("1", "good one", "HQ"),
        ("2", "", "HQ"),  # empty body
        ("3", "good\ntwo lines", ""),  # missing label
        ("4", "User: hi\nAssistant: hello", "LQ_EDIT"),  # reserved keyword
        ("5", "   \t", "LQ_CLOSE"),  # blank body
        ("6", "good three", "LQ_CLOSE"),
        ("7", "ends with [eos] marker", "HQ"),  # keyword, case-insensitive
    ]
    text = "Id,Body,Y\n" + "".join(f"{i},{quote(b)},{y}\n" for i, b, y in rows)
    path = tmp_path / "mixed.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_sft_keeps_good_rows_and_explains_every_bad_one(mixed_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    prepared = prepare_dataset(
        DatasetSource(path=str(mixed_csv), columns=MAP), "sft", "nova-lite-2", out, settings=load_settings()
    )
    texts = [json.loads(x)["messages"][0]["content"][0]["text"] for x in prepared.data_file.read_text().splitlines()]
    assert texts == ["good one", "good three"]
    assert [(r["source"], r["row"], r["field"], r["reason"]) for r in _rejected(out)] == [
        ("mixed.csv", 2, "Body", "empty query"),
        ("mixed.csv", 3, "Y", "empty response"),
        ("mixed.csv", 4, "Body", "reserved keyword 'User:' in query"),
        ("mixed.csv", 5, "Body", "empty query"),
        ("mixed.csv", 7, "Body", "reserved keyword '[eos]' in query"),
    ]
    assert _rejected(out)[0]["record"] == {"Id": "2", "Body": "", "Y": "HQ"}
    rep = prepared.report
    assert (rep.rows_in, rep.rows_out, rep.rows_rejected) == (7, 2, 5)
    assert rep.rejections_by_reason == {"empty query": 2, "reserved keyword in query": 2, "empty response": 1}
    assert prepared.manifest["files"]["train.jsonl"]["rows"] == 2


def test_eval_does_not_apply_sft_keyword_rule(mixed_csv: Path, tmp_path: Path) -> None:
    prepared = prepare_dataset(
        DatasetSource(path=str(mixed_csv), columns=MAP), "eval", "nova-lite-2", tmp_path, settings=load_settings()
    )
    assert prepared.report.rows_out == 4
    assert [r["row"] for r in _rejected(tmp_path)] == [2, 3, 5]


def test_strict_fails_the_step_and_writes_no_data_file(mixed_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"mixed.csv: 5 row\(s\) rejected in strict mode \(row 2 Body: empty query"):
        prepare_dataset(
            DatasetSource(path=str(mixed_csv), columns=MAP),
            "sft",
            "nova-lite-2",
            tmp_path,
            strict=True,
            settings=load_settings(),
        )
    assert not (tmp_path / "train.jsonl").exists()
    assert not list(tmp_path.glob("*.partial"))
    assert len(_rejected(tmp_path)) == 5


def test_jsonl_wrong_types_bad_json_and_missing_fields(tmp_path: Path) -> None:
    lines = [
        '{"query": "ok", "response": "HQ"}',
        '{"query": 42, "response": "HQ"}',
        "{not json",
        "",
        '["a", "list"]',
        '{"query": "no answer"}',
        '{"query": "fine", "response": "LQ_EDIT", "extra": [1, 2]}',
        '{"query": ["x"], "response": "HQ"}',
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prepared = prepare_dataset(str(path), "eval", "nova-lite", tmp_path / "o", settings=load_settings())
    assert prepared.data_file.read_text().splitlines() == [
        '{"query":"ok","response":"HQ"}',
        '{"query":"fine","response":"LQ_EDIT"}',
    ]
    got = [(r["row"], r["field"], r["reason"][:41]) for r in _rejected(tmp_path / "o")]
    assert got == [
        (2, "query", "wrong type: expected a string, got number"),
        (3, "", "invalid JSON: unexpected character, expec"),
        (5, "", "not a JSON object: got list"),
        (6, "response", "missing value for response"),
        (8, "query", "wrong type: expected a string, got array"),
    ]


def test_no_valid_rows_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("query,response\n,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv: no valid rows out of 1; see rejected.jsonl"):
        prepare_dataset(str(path), "eval", "nova-lite-2", tmp_path / "o", settings=load_settings())


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (
            b"Id;Body;Y\n1;x;HQ\n",
            {"columns": MAP},
            r"bad.csv: mapped column 'Body' \(query\) is not in the file; columns found: Id;Body;Y; "
            r"the header was read as one column - wrong delimiter \(now ','\)\?",
        ),
        (
            "Id,Body,Y\n1,caf\xe9,HQ\n".encode("latin-1"),
            {"columns": MAP},
            r"bad.csv: not valid utf-8 text .*pass --encoding \(e.g. latin-1\)",
        ),
        (
            b"Id,Text\n1,x\n",
            {},
            r"bad.csv: no column for 'query' \(eval\); map one with --map query=COLUMN "
            r"\(columns found: Id, Text\)",
        ),
        (b"", {}, r"bad.csv: empty file \(no header row\)"),
    ],
)
def test_unreadable_files_get_one_clear_error(tmp_path: Path, content: bytes, kwargs: dict, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        prepare_dataset(
            DatasetSource(path=str(path), **kwargs), "eval", "nova-lite-2", tmp_path / "o", settings=load_settings()
        )


def test_latin1_with_encoding_option(tmp_path: Path) -> None:
    path = tmp_path / "l1.csv"
    path.write_bytes("Id,Body,Y\n1,caf\xe9 cr\xe8me,HQ\n".encode("latin-1"))
    prepared = prepare_dataset(
        DatasetSource(path=str(path), columns=MAP, encoding="latin-1"),
        "eval",
        "nova-lite-2",
        tmp_path / "o",
        settings=load_settings(),
    )
    assert json.loads(prepared.data_file.read_text(encoding="utf-8"))["query"] == "café crème"


def test_method_model_rules(tmp_path: Path, mixed_csv: Path) -> None:
    with pytest.raises(DataError, match=r"rft data is of no use for nova-pro: RFT is only supported on Nova 2.0"):
        prepare_dataset(str(mixed_csv), "rft", "nova-pro", tmp_path, settings=load_settings())
    with pytest.raises(DataError, match="DPO is only supported on Nova 1 models"):
        prepare_dataset(str(mixed_csv), "dpo", "nova-lite-2", tmp_path, settings=load_settings())
    with pytest.raises(ConfigError, match="Unknown Nova model 'nova-max'"):
        prepare_dataset(str(mixed_csv), "sft", "nova-max", tmp_path, settings=load_settings())
    src = DatasetSource(path=str(mixed_csv), columns=ColumnMap(query="Body", response="Y", reasoning="Id"))
    with pytest.raises(DataError, match="reasoning content is supported only on nova-lite-2"):
        prepare_dataset(src, "sft", "nova-micro", tmp_path, settings=load_settings())


def test_constant_system_prompt_is_checked_once(mixed_csv: Path, tmp_path: Path) -> None:
    src = DatasetSource(path=str(mixed_csv), columns=MAP, system_prompt="Assistant: label it")
    with pytest.raises(DataError, match="constant system prompt contains the reserved keyword 'Assistant:'"):
        prepare_dataset(src, "sft", "nova-lite-2", tmp_path, settings=load_settings())
    with pytest.raises(DataError, match="either as a column"):
        DatasetSource(path="x.csv", columns=ColumnMap(system="S"), system_prompt="x")


def test_row_count_bounds_when_platform_is_known(mixed_csv: Path, tmp_path: Path) -> None:
    src = DatasetSource(path=str(mixed_csv), columns=MAP)
    with pytest.raises(DataError, match="2 rows for sft on Bedrock with nova-lite-2: needs 200 to 20,000 rows"):
        prepare_dataset(src, "sft", "nova-lite-2", tmp_path, platform="bedrock", settings=load_settings())
    assert prepare_dataset(src, "sft", "nova-lite-2", tmp_path, platform="smtj", settings=load_settings()).rows == 2


@pytest.mark.parametrize(
    ("method", "columns"),
    [
        ("sft", ColumnMap(query="Body", response="Y", system="Sys")),
        ("eval", ColumnMap(query="Body", response="Y", metadata=("Id", "Sys"))),
        ("rft", ColumnMap(query="Body", reference_answer="Y", id="Id", metadata=("Sys",))),
        ("cpt", ColumnMap(text="Body")),
    ],
)
def test_a_table_chunk_converted_whole_equals_converting_its_valid_rows(
    tmp_path: Path, method: str, columns: ColumnMap
) -> None:
    """A CSV chunk is converted whole while the keyword search runs beside it, and its rejected rows are taken out
    after; JSON rows take the row-by-row path. The same rows give the same bytes and the same report either way."""
    rows = [
        {"Id": "1", "Body": "good one é", "Y": "HQ", "Sys": "be brief"},
        {"Id": "2", "Body": " \t", "Y": "HQ", "Sys": "s"},
        {"Id": "3", "Body": "User: hi", "Y": "LQ", "Sys": "s"},
        {"Id": "4", "Body": 'quote " and \\ back', "Y": "<image>", "Sys": "s"},
        {"Id": "5", "Body": "fine [eos]", "Y": "LQ", "Sys": "Bot: no"},
        {"Id": "6", "Body": "last\r\nline", "Y": "LQ_CLOSE", "Sys": "plain"},
    ]
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text(
        "Id,Body,Y,Sys\n" + "".join(",".join(quote(r[k]) for k in ("Id", "Body", "Y", "Sys")) + "\n" for r in rows),
        encoding="utf-8",
    )
    jsonl_file = tmp_path / "rows.jsonl"
    jsonl_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    outputs = []
    for path in (csv_file, jsonl_file):
        out = tmp_path / path.suffix[1:]
        prepared = prepare_dataset(
            DatasetSource(path=str(path), columns=columns), method, "nova-lite-2", out, settings=load_settings()
        )
        report = prepared.report.model_dump()
        report.pop("source")
        rejected = [(r["row"], r["field"], r["reason"]) for r in _rejected(out)]
        outputs.append((prepared.data_file.read_bytes(), report, rejected))
    assert outputs[0] == outputs[1]
    assert outputs[0][1]["rows_rejected"] >= 1 and outputs[0][1]["rows_out"] >= 2  # both paths were taken


def test_reserved_keywords_are_found_in_each_field_of_every_chunk(tmp_path: Path, monkeypatch) -> None:
    """Every field of a chunk is searched in one kernel call: a hit must land on its own row and field, whichever
    field and chunk it is in (small blocks: many chunks, hits at their edges)."""
    from novaflow.data import loaders

    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", 1 << 10)
    rows = [(str(i), f"question number {i} about lists", f"answer {i}") for i in range(1, 201)]
    hits = {7: ("Body", "Bot: hi"), 8: ("Y", "user: again"), 63: ("Y", "see <video> here"), 64: ("Body", "<UNK>")}
    for row, (column, text) in hits.items():
        number, body, answer = rows[row - 1]
        rows[row - 1] = (number, text, answer) if column == "Body" else (number, body, text)
    path = tmp_path / "hits.csv"
    path.write_text("Id,Body,Y\n" + "".join(f"{i},{quote(b)},{quote(y)}\n" for i, b, y in rows), encoding="utf-8")
    out = tmp_path / "o"
    prepared = prepare_dataset(
        DatasetSource(path=str(path), columns=MAP), "sft", "nova-lite-2", out, settings=load_settings()
    )
    assert [(r["row"], r["field"], r["reason"]) for r in _rejected(out)] == [
        (7, "Body", "reserved keyword 'Bot:' in query"),
        (8, "Y", "reserved keyword 'user:' in response"),
        (63, "Y", "reserved keyword '<video>' in response"),
        (64, "Body", "reserved keyword '<UNK>' in query"),
    ]
    assert prepared.rows == 196
