"""Where evaluation files live: a local folder, a tar.gz archive (local or on S3), or an S3 prefix.

Nova's documentation disagrees with itself on folder names, so the parser never builds a fixed path: it lists
every file a source holds and globs. A source reads members lazily so a prefix with large tensorboard files does
not download them.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from novaflow.aws import get_client, is_not_found, split_s3_uri, wrap_client_error
from novaflow.errors import EvaluationError


@dataclass
class FileTree:
    """Relative member names and a reader; ``label(name)`` names a member for error messages."""

    location: str
    names: list[str]
    reader: Callable[[str], bytes]
    separator: str = "/"

    def read(self, name: str) -> bytes:
        return self.reader(name)

    def label(self, name: str) -> str:
        return f"{self.location}{self.separator}{name}"


def _tar_tree(data: bytes, location: str) -> FileTree:
    """Every member of a gzip'd tar, read fully up front so a truncated archive fails here, naming the file."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                members[member.name.removeprefix("./")] = handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise EvaluationError(
            f"{location}: corrupt or truncated tar.gz archive ({type(exc).__name__}: {exc}); "
            "re-download it or check that the job finished"
        ) from exc
    if not members:
        raise EvaluationError(f"{location}: the archive holds no files")
    return FileTree(location, sorted(members), members.__getitem__, separator="!")


def _local_tree(path: Path) -> FileTree:
    if path.is_dir():
        names = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        tarballs = [n for n in names if n.endswith((".tar.gz", ".tgz"))]
        if tarballs and not any(Path(n).name.startswith("results_") for n in names):
            return _local_tree(path / tarballs[0])
        return FileTree(str(path), names, lambda n: (path / n).read_bytes())
    if path.is_file():
        return _tar_tree(path.read_bytes(), str(path))
    raise EvaluationError(f"{path}: no such file or folder; pass an output.tar.gz, a folder, or an s3:// URI")


def _s3_get(uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    try:
        return get_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            raise EvaluationError(f"{uri}: no such S3 object") from exc
        raise wrap_client_error(exc, f"reading {uri}") from exc


def _s3_tree(uri: str) -> FileTree:
    bucket, key = split_s3_uri(uri)
    if key.endswith((".tar.gz", ".tgz")):
        return _tar_tree(_s3_get(uri), uri)
    prefix = key if not key or key.endswith("/") else key + "/"
    names: list[str] = []
    try:
        for page in get_client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            names.extend(obj["Key"][len(prefix) :] for obj in page.get("Contents", []))
    except ClientError as exc:
        if is_not_found(exc):
            raise EvaluationError(f"{uri}: no such S3 bucket") from exc
        raise wrap_client_error(exc, f"listing {uri}") from exc
    if not names:
        raise EvaluationError(f"{uri}: no objects under this prefix; is the job finished and the URI right?")
    names.sort()
    base = f"s3://{bucket}/{prefix}"
    tarballs = [n for n in names if n.endswith((".tar.gz", ".tgz"))]
    if tarballs and not any(n.rsplit("/", 1)[-1].startswith("results_") for n in names):
        return _tar_tree(_s3_get(base + tarballs[0]), base + tarballs[0])
    return FileTree(base.rstrip("/"), names, lambda n: _s3_get(base + n))


def open_tree(location: str | Path) -> FileTree:
    """A :class:`FileTree` for a local folder or archive, an ``s3://`` archive, or an ``s3://`` prefix."""
    text = str(location)
    if text.startswith("s3://"):
        return _s3_tree(text)
    return _local_tree(Path(text))
