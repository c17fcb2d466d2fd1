"""Every input format reads the same rows; broken CSV rows are reported with their exact record number."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from novaflow.data.loaders import iter_chunks, read_all_records
from novaflow.data.prepare import prepare_dataset
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.errors import DataError
from novaflow.settings import load_settings
from tests.unit.data.conftest import TRICKY_BODY, quote

ROWS = [{"Id": "1", "Body": TRICKY_BODY, "Y": "HQ"}, {"Id": "2", "Body": "b\tc", "Y": "LQ_EDIT"}]


def _expect(path: Path, **kw: object) -> None:
    src = DatasetSource(path=str(path), **kw)  # type: ignore[arg-type]
    rows, records, bad = read_all_records(src)
    assert (rows, records, bad) == ([1, 2], ROWS, [])


def test_jsonl_json_parquet_tsv_read_the_same_rows(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps(ROWS), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "a.parquet")
    (tmp_path / "a.tsv").write_text(
        "Id\tBody\tY\n" + "".join(f"{r['Id']}\t{quote(r['Body'])}\t{r['Y']}\n" for r in ROWS), encoding="utf-8"
    )
    (tmp_path / "a.txt").write_text(
        "Id|Body|Y\n" + "".join(f"{r['Id']}|{quote(r['Body'])}|{r['Y']}\n" for r in ROWS), encoding="utf-8"
    )
    for name in ("a.jsonl", "a.json", "a.parquet", "a.tsv"):
        _expect(tmp_path / name)
    _expect(tmp_path / "a.txt", delimiter="|")


def test_ids_keep_leading_zeros_and_number_like_text(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("Id,Body,Y\n007,1e5,NaN\n", encoding="utf-8")
    (chunk,) = iter_chunks(DatasetSource(path=str(path)))
    assert chunk.table is not None and chunk.table.to_pylist() == [{"Id": "007", "Body": "1e5", "Y": "NaN"}]


def test_ragged_rows_are_rejected_with_exact_record_numbers(tmp_path: Path) -> None:
    """A multi-line record counts once: record 4 is on physical lines 5-6 and is still reported as row 4."""
    path = tmp_path / "r.csv"
    path.write_text(
        'Id,Body,Y\n1,ok,HQ\n2,x,HQ,extra\n3,"two\nlines",LQ_EDIT\n4,"short\nrow"\n5,fine,LQ_CLOSE\n', encoding="utf-8"
    )
    prepared = prepare_dataset(
        DatasetSource(path=str(path), columns=ColumnMap(query="Body", response="Y")),
        "eval",
        "nova-lite-2",
        tmp_path / "o",
        settings=load_settings(),
    )
    assert [json.loads(x)["query"] for x in prepared.data_file.read_text().splitlines()] == ["ok", "two\nlines", "fine"]
    rejected = [json.loads(x) for x in (tmp_path / "o" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["row"], r["reason"]) for r in rejected] == [
        (2, "wrong number of fields: 4 fields, the header has 3"),
        (4, "wrong number of fields: 2 fields, the header has 3"),
    ]


def test_chunks_bound_memory_and_number_rows_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"query": f"q{i}", "response": "a"}) + "\n" for i in range(25)))
    chunks = list(iter_chunks(DatasetSource(path=str(path), chunk_rows=10)))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert chunks[2].rows == [21, 22, 23, 24, 25]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.json", b'{"a": 1}', "x.json: expected a JSON array of objects, got dict"),
        ("x.json", b"[1,", "x.json: not valid JSON"),
        ("x.parquet", b"not parquet", "x.parquet: not a readable Parquet file"),
        ("x.xlsx", b"", "cannot tell the format from the file name; pass --format"),
        ("d.csv", b"a,a\n1,2\n", "d.csv: duplicate column names in the header: ['a']"),
    ],
)
def test_unreadable_inputs(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        list(iter_chunks(DatasetSource(path=str(tmp_path / name))))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        list(iter_chunks(DatasetSource(path=str(tmp_path / "nope.csv"))))


def test_column_map_parse_and_identity_defaults() -> None:
    cmap = ColumnMap.parse(["query=Title+Body", "metadata=Tags,CreationDate", "id=Id"])
    assert cmap.resolved(["question", "answer", "Id"]) == {
        "query": "Title+Body",
        "response": "answer",
        "id": "Id",
        "metadata": ("Tags", "CreationDate"),
    }
    with pytest.raises(DataError, match="unknown key 'label'"):
        ColumnMap.parse(["label=Y"])
    with pytest.raises(DataError, match="expected KEY=COLUMN"):
        ColumnMap.parse(["query"])


def test_record_longer_than_a_csv_block(tmp_path: Path) -> None:
    from novaflow.data import loaders

    big = "x" * (loaders.CSV_BLOCK_BYTES * 3) + "\r\n" + "é" * 1000
    path = tmp_path / "big.csv"
    path.write_text(f"Id,Body,Y\n1,ok,HQ\n2,{quote(big)},HQ\n3,after,LQ_EDIT\n", encoding="utf-8", newline="")
    rows, records, bad = read_all_records(DatasetSource(path=str(path)))
    assert (rows, [r["Body"] for r in records], bad) == ([1, 2, 3], ["ok", big, "after"], [])


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_a_crlf_inside_a_quoted_value_survives_a_block_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pad: int
) -> None:
    """pyarrow's reader alone keeps the '\\r' and drops the '\\n' when a read ends between them (apache/arrow#51368);
    the values must come back exactly as the standard library reads them, whichever byte the boundary falls on."""
    from novaflow.data import loaders

    block = 4 << 10
    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", block)
    head = 'Id,Body,Y\n1,"'
    # the first value's '\r' is the last byte of the first read (pad 0), or the boundary falls just before/after it
    first = "x" * (block - len(head) - 1 + pad - 1) + "\r\nend of the first"
    others = [f"line {i}\r\nnext\r\n" + "y" * (i * 37 % 500) for i in range(2, 60)]
    text = head + first + '",HQ\n' + "".join(f'{i},"{body}",LQ_EDIT\n' for i, body in enumerate(others, start=2))
    path = tmp_path / "crlf.csv"
    path.write_bytes(text.encode())
    with path.open(newline="", encoding="utf-8") as fh:
        expected = [row["Body"] for row in csv.DictReader(fh)]
    rows, records, bad = read_all_records(DatasetSource(path=str(path)))
    assert [r["Body"] for r in records] == expected
    assert (len(rows), bad) == (59, [])
    assert len(list(iter_chunks(DatasetSource(path=str(path))))) > 1


def test_jsonl_chunks_end_by_size_so_memory_stays_flat(tmp_path: Path) -> None:
    from novaflow.data import loaders

    line = json.dumps({"messages": [{"role": "user", "content": [{"text": "x" * 1000}]}]})
    per_chunk = loaders.JSONL_CHUNK_BYTES // (len(line) + 1) + 1  # the line that reaches the limit ends its chunk
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join([line] * (per_chunk * 2 + 5)) + "\n", encoding="utf-8")
    chunks = list(iter_chunks(DatasetSource(path=str(path))))
    assert [len(c) for c in chunks] == [per_chunk, per_chunk, 5]
    assert [c.rows[0] for c in chunks] == [1, per_chunk + 1, 2 * per_chunk + 1]
