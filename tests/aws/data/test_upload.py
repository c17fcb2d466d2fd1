"""Upload against the embedded AWS: encryption, checksums, multipart, layout, and s3:// sources."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from novaflow.aws import get_client
from novaflow.data import io as data_io
from novaflow.data.io import upload_file_verified, upload_prepared
from novaflow.data.prepare import prepare_dataset
from novaflow.data.samples import CASE_STUDY_COLUMNS, SAMPLE_CSV, SYSTEM_PROMPT
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.errors import DataError
from novaflow.local import LOCAL_BUCKET
from novaflow.settings import load_settings


@pytest.fixture
def prepared(tmp_path: Path):
    src = DatasetSource(path=str(SAMPLE_CSV), columns=ColumnMap(**CASE_STUDY_COLUMNS), system_prompt=SYSTEM_PROMPT)
    return prepare_dataset(src, "eval", "nova-lite-2", tmp_path / "eval", settings=load_settings())


def test_upload_layout_encryption_and_checksum(aws, prepared) -> None:
    uris = upload_prepared(prepared, f"s3://{LOCAL_BUCKET}/novaflow/data/eval/", settings=load_settings())
    base = f"s3://{LOCAL_BUCKET}/novaflow/data/eval"
    assert uris == {
        "gen_qa.jsonl": f"{base}/data/gen_qa.jsonl",
        "manifest.json": f"{base}/meta/manifest.json",
        "report.json": f"{base}/meta/report.json",
        "rejected.jsonl": f"{base}/meta/rejected.jsonl",
    }
    s3 = get_client("s3", settings=load_settings())
    listed = s3.list_objects_v2(Bucket=LOCAL_BUCKET, Prefix="novaflow/data/eval/data/")["Contents"]
    assert [o["Key"] for o in listed] == ["novaflow/data/eval/data/gen_qa.jsonl"]  # one file, as gen_qa requires
    head = s3.head_object(Bucket=LOCAL_BUCKET, Key="novaflow/data/eval/data/gen_qa.jsonl", ChecksumMode="ENABLED")
    local = prepared.data_file.read_bytes()
    digest = hashlib.sha256(local).hexdigest()
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"] == {"sha256": digest}
    assert head["ContentLength"] == len(local)
    assert prepared.manifest["files"]["gen_qa.jsonl"]["sha256"] == digest
    body = s3.get_object(Bucket=LOCAL_BUCKET, Key="novaflow/data/eval/data/gen_qa.jsonl")["Body"].read()
    assert body == local
    manifest = s3.get_object(Bucket=LOCAL_BUCKET, Key="novaflow/data/eval/meta/manifest.json")["Body"].read()
    assert json.loads(manifest) == prepared.manifest


def test_kms_key_when_configured(aws, prepared) -> None:
    key_id = get_client("kms", settings=load_settings()).create_key(Description="novaflow test")["KeyMetadata"]["KeyId"]
    settings = load_settings(kms_key_id=key_id)
    uri = f"s3://{LOCAL_BUCKET}/kms/gen_qa.jsonl"
    upload_file_verified(prepared.data_file, uri, settings)
    head = get_client("s3", settings=load_settings()).head_object(Bucket=LOCAL_BUCKET, Key="kms/gen_qa.jsonl")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)


def test_multipart_upload_is_verified_by_content(aws, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(data_io, "MULTIPART_THRESHOLD", 5 << 20)
    monkeypatch.setattr(data_io, "MULTIPART_CHUNK", 5 << 20)
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"".join(b'{"text":"%d %s"}\n' % (i, b"x" * 100) for i in range(120_000)))
    uri = f"s3://{LOCAL_BUCKET}/mp/big.jsonl"
    upload_file_verified(big, uri, settings=load_settings())
    head = get_client("s3", settings=load_settings()).head_object(Bucket=LOCAL_BUCKET, Key="mp/big.jsonl")
    assert head["ETag"].strip('"').endswith("-3")  # 13.7 MB in 5 MB parts
    assert head["ContentLength"] == big.stat().st_size
    with pytest.raises(DataError, match="content hash differs from the local file"):
        upload_file_verified(big, uri, sha256_hex="0" * 64, settings=load_settings())


def test_wrong_checksum_is_caught_for_single_part(aws, prepared) -> None:
    with pytest.raises(DataError, match=r"S3 checksum .* != local"):
        upload_file_verified(
            prepared.data_file, f"s3://{LOCAL_BUCKET}/x/gen_qa.jsonl", sha256_hex="ab" * 32, settings=load_settings()
        )


def test_prepare_reads_an_s3_source(aws, tmp_path: Path) -> None:
    get_client("s3", settings=load_settings()).upload_file(str(SAMPLE_CSV), LOCAL_BUCKET, "raw/so.csv")
    src = DatasetSource(path=f"s3://{LOCAL_BUCKET}/raw/so.csv", columns=ColumnMap(**CASE_STUDY_COLUMNS))
    prepared = prepare_dataset(src, "rft", "nova-lite-2", tmp_path, settings=load_settings())
    assert prepared.rows == 5000
    assert prepared.report.source == "so.csv"
    with pytest.raises(DataError, match=r"s3://novaflow-local/raw/missing.csv: no such S3 object"):
        prepare_dataset(
            DatasetSource(path=f"s3://{LOCAL_BUCKET}/raw/missing.csv"),
            "eval",
            "nova-lite-2",
            tmp_path,
            settings=load_settings(),
        )


def test_cli_upload_of_a_prepared_directory(aws, prepared) -> None:
    from typer.testing import CliRunner

    from novaflow.cli import app

    result = CliRunner().invoke(app, ["data", "upload", str(prepared.out_dir), "--to", f"s3://{LOCAL_BUCKET}/cli"])
    assert result.exit_code == 0, result.output
    assert f"gen_qa.jsonl: s3://{LOCAL_BUCKET}/cli/data/gen_qa.jsonl" in result.output
    prepared.data_file.write_bytes(prepared.data_file.read_bytes() + b"\n")
    changed = CliRunner().invoke(app, ["data", "upload", str(prepared.out_dir), "--to", f"s3://{LOCAL_BUCKET}/x"])
    assert isinstance(changed.exception, DataError)
    assert "changed since it was prepared" in str(changed.exception)
