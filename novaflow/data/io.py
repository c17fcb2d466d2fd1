"""Files out: hashing and the verified, encrypted upload of a prepared dataset (reading is :mod:`novaflow.storage`).

Uploads use SSE-S3 by default and SSE-KMS when ``settings.kms_key_id`` is set, go multipart above the transfer
threshold, and are verified: S3 computes a SHA-256 checksum on arrival (``ChecksumAlgorithm``) and the object is
compared with the local hash, so a training job never starts on a silently truncated file.

Layout under the prefix: the data file at ``<prefix>/data/<name>`` (a channel pointed at ``data/`` sees exactly one
file, as gen_qa and S3Prefix channels require) and the manifest, report and rejections under ``<prefix>/meta/``.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from novaflow.aws import get_client, split_s3_uri, wrap_client_error
from novaflow.errors import DataError
from novaflow.settings import NovaflowSettings
from novaflow.storage import sha256_file

if TYPE_CHECKING:
    from novaflow.data.prepare import PreparedDataset

MULTIPART_THRESHOLD = 64 << 20
MULTIPART_CHUNK = 16 << 20


def encryption_args(settings: NovaflowSettings) -> dict[str, str]:
    """ExtraArgs for server-side encryption: KMS with the configured key, else SSE-S3."""
    if settings.kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.kms_key_id}
    return {"ServerSideEncryption": "AES256"}


def upload_file_verified(path: Path, uri: str, settings: NovaflowSettings, sha256_hex: str | None = None) -> str:
    """Upload one file encrypted, multipart when large, and check what S3 stored against the local SHA-256."""
    bucket, key = split_s3_uri(uri)
    s3 = get_client("s3", settings)
    sha256_hex = sha256_hex or sha256_file(path)
    extra: dict[str, Any] = {
        **encryption_args(settings),
        "ChecksumAlgorithm": "SHA256",
        "Metadata": {"sha256": sha256_hex},
    }
    if path.suffix in (".jsonl", ".json"):
        extra["ContentType"] = "application/json" if path.suffix == ".json" else "application/jsonl"
    config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK)
    try:
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra, Config=config)
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        raise wrap_client_error(exc, f"upload of {path.name} to {uri}") from None
    _verify(path, uri, head, sha256_hex, s3, bucket, key, single_part=path.stat().st_size < MULTIPART_THRESHOLD)
    return uri


def _verify(
    path: Path, uri: str, head: dict[str, Any], sha256_hex: str, s3: Any, bucket: str, key: str, *, single_part: bool
) -> None:
    size = path.stat().st_size
    if head.get("ContentLength") != size:
        raise DataError(f"upload of {path.name} to {uri} is {head.get('ContentLength')} bytes, expected {size}")
    stored = head.get("ChecksumSHA256")
    expected_b64 = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    full_object = head.get("ChecksumType") == "FULL_OBJECT" or (single_part and "ChecksumType" not in head)
    if stored and "-" not in stored and full_object:
        if stored != expected_b64:
            raise DataError(f"upload of {path.name} to {uri}: S3 checksum {stored} != local {expected_b64}")
        return
    # a multipart upload's checksum is a checksum of part checksums: re-read and hash instead
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for block in iter(lambda: body.read(1 << 20), b""):
        digest.update(block)
    if digest.hexdigest() != sha256_hex:
        raise DataError(f"upload of {path.name} to {uri}: content hash differs from the local file")


def upload_prepared(prepared: PreparedDataset, s3_prefix_uri: str, settings: NovaflowSettings) -> dict[str, str]:
    """Upload the data file, manifest, report and rejections; returns file name -> s3 URI.

    Example:
        >>> uris = upload_prepared(prepared, "s3://my-bucket/novaflow/data/eval")  # doctest: +SKIP
        >>> uris["gen_qa.jsonl"]  # doctest: +SKIP
        's3://my-bucket/novaflow/data/eval/data/gen_qa.jsonl'
    """
    base = s3_prefix_uri.rstrip("/")
    split_s3_uri(base + "/")
    uris: dict[str, str] = {}
    data = prepared.data_file
    uris[data.name] = upload_file_verified(
        data, f"{base}/data/{data.name}", settings, prepared.manifest["files"][data.name]["sha256"]
    )
    for extra in (prepared.manifest_file, prepared.report_file, prepared.rejected_file):
        if extra.exists():
            uris[extra.name] = upload_file_verified(extra, f"{base}/meta/{extra.name}", settings)
    return uris
