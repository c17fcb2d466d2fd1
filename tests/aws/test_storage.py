"""novaflow.storage: the one "local path or s3://" reader, against local files and the embedded AWS's S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from novaflow import storage
from novaflow.aws import get_client
from novaflow.errors import DataError, EvaluationError
from novaflow.local import LOCAL_BUCKET
from novaflow.settings import load_settings

# lines of several sizes, CRLF and a last line without an ending, crossing the 1 MiB read block
LINES = [b"first\n", b"second\r\n", b"x" * (storage.BLOCK_BYTES + 7) + b"\n", b"\n", b"last without newline"]


@pytest.fixture
def on_s3(aws) -> str:
    get_client("s3", settings=load_settings()).put_object(
        Bucket=LOCAL_BUCKET, Key="storage/lines.txt", Body=b"".join(LINES)
    )
    return f"s3://{LOCAL_BUCKET}/storage/lines.txt"


@pytest.fixture
def on_disk(tmp_path: Path) -> Path:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"".join(LINES))
    return path


@pytest.mark.parametrize("where", ["on_s3", "on_disk"])
def test_lines_are_streamed_with_numbers_and_endings_kept(where: str, request) -> None:
    location = request.getfixturevalue(where)
    assert list(storage.numbered_lines(location, settings=load_settings())) == list(enumerate(LINES, start=1))
    assert storage.read_bytes(location, settings=load_settings()) == b"".join(LINES)
    with pytest.raises(DataError, match=r"line 3: longer than 1,000 bytes \(the limit for one record\)"):
        list(storage.numbered_lines(location, max_line_bytes=1000, settings=load_settings()))
    with pytest.raises(DataError, match="larger than 10 bytes, the limit for reading it whole"):
        storage.read_bytes(location, max_bytes=10, settings=load_settings())


def test_an_s3_object_is_copied_to_a_temporary_file_removed_afterwards(on_s3: str) -> None:
    with storage.local_copy(on_s3, settings=load_settings()) as path:
        assert path.name == "lines.txt" and path.read_bytes() == b"".join(LINES)
    assert not path.exists()
    assert storage.list_keys(f"s3://{LOCAL_BUCKET}/storage/", settings=load_settings()) == ["lines.txt"]


def test_missing_locations_are_one_line_in_the_callers_error_type(aws, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=rf"^s3://{LOCAL_BUCKET}/storage/none.jsonl: no such S3 object; check it$"):
        storage.read_bytes(f"s3://{LOCAL_BUCKET}/storage/none.jsonl", hint="check it", settings=load_settings())
    with pytest.raises(EvaluationError, match=r"none\.jsonl: no such file$"):
        list(storage.numbered_lines(tmp_path / "none.jsonl", error=EvaluationError, settings=load_settings()))
    with pytest.raises(EvaluationError, match=r"^s3://no-such-bucket-xyz: no such S3 bucket$"):
        storage.list_keys("s3://no-such-bucket-xyz/", error=EvaluationError, settings=load_settings())
    with pytest.raises(DataError, match="not UTF-8 text"):
        bad = tmp_path / "bad.txt"
        bad.write_bytes(b"\xff\xfe")
        storage.read_text(bad, settings=load_settings())
