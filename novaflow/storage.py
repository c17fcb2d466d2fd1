"""Reading a location that is either a local path or an ``s3://`` URI, always as a stream.

Data preparation, evaluation parsing, the smoke test and reward verification all take "a file, here or on S3".
They read it through these few functions, so a 1 GB object is never one ``bytes`` value by accident, a missing
object is one clear line naming it, and boto3 is imported only when a location really is on S3.

Example:
    >>> with open_binary("s3://bucket/data/gen_qa.jsonl") as fh:  # doctest: +SKIP
    ...     head = fh.read(100)
    >>> for number, line in numbered_lines("rows.jsonl"):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from novaflow.errors import DataError, NovaflowError

if TYPE_CHECKING:
    from novaflow.settings import NovaflowSettings

BLOCK_BYTES = 1 << 20
"""Read size of every stream here: big enough for throughput, small enough to never matter for memory."""

Location = str | Path


def is_s3(location: Location) -> bool:
    return str(location).startswith("s3://")


def name_of(location: Location) -> str:
    """The last path segment (``s3://b/a/x.jsonl`` -> ``x.jsonl``), for messages and temporary copies."""
    return str(location).rstrip("/").rsplit("/", 1)[-1]


def _missing(error: type[NovaflowError], location: Location, hint: str) -> NovaflowError:
    what = "no such S3 object" if is_s3(location) else "no such file"
    return error(f"{location}: {what}{'; ' + hint if hint else ''}")


@contextmanager
def open_binary(
    location: Location,
    *,
    settings: NovaflowSettings,
    error: type[NovaflowError] = DataError,
    hint: str = "",
) -> Iterator[IO[bytes]]:
    """A readable binary stream of ``location``: the open file, or the body of an S3 GET (read as it arrives).

    A location that does not exist raises ``error`` naming it (plus ``hint``); other S3 failures raise
    :class:`~novaflow.errors.AwsError` with the AWS code.
    """
    if not is_s3(location):
        path = Path(location)
        if not path.is_file():
            raise _missing(error, location, hint)
        with path.open("rb") as fh:
            yield fh
        return
    # Start-up time: boto3 (via novaflow.aws) is imported only when a location really is on S3.
    from botocore.exceptions import ClientError

    from novaflow.aws import get_client, is_not_found, split_s3_uri, wrap_client_error

    bucket, key = split_s3_uri(str(location))
    try:
        body = get_client("s3", settings).get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if is_not_found(exc):
            raise _missing(error, location, hint) from None
        raise wrap_client_error(exc, f"reading {location}") from None
    try:
        yield cast(IO[bytes], body)
    finally:
        body.close()


def read_bytes(
    location: Location,
    *,
    settings: NovaflowSettings,
    error: type[NovaflowError] = DataError,
    hint: str = "",
    max_bytes: int | None = None,
) -> bytes:
    """The whole content, for small files only: past ``max_bytes`` it raises ``error`` instead of reading on."""
    with open_binary(location, settings=settings, error=error, hint=hint) as fh:
        if max_bytes is None:
            return fh.read()
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{location}: larger than {max_bytes:,} bytes, the limit for reading it whole")
    return data


def read_text(
    location: Location,
    *,
    settings: NovaflowSettings,
    error: type[NovaflowError] = DataError,
    hint: str = "",
    max_bytes: int | None = None,
) -> str:
    """:func:`read_bytes` decoded as UTF-8; undecodable content raises ``error`` naming the byte offset."""
    data = read_bytes(location, settings=settings, error=error, hint=hint, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{location}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def iter_stream_lines(
    stream: IO[bytes], *, max_line_bytes: int | None = None, where: str = "", error: type[NovaflowError] = DataError
) -> Iterator[bytes]:
    """Lines of a binary stream (with their ending), one block in memory at a time.

    A line longer than ``max_line_bytes`` raises ``error`` naming ``where`` and the line number, so one endless
    line cannot take all the memory.
    """
    number = 0
    while True:
        line = stream.readline() if max_line_bytes is None else stream.readline(max_line_bytes + 1)
        if not line:
            return
        number += 1
        if max_line_bytes is not None and len(line) > max_line_bytes:
            raise error(
                f"{where or 'stream'} line {number}: longer than {max_line_bytes:,} bytes (the limit for one record)"
            )
        yield line


def numbered_lines(
    location: Location,
    *,
    settings: NovaflowSettings,
    error: type[NovaflowError] = DataError,
    hint: str = "",
    max_line_bytes: int | None = None,
) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for every line of ``location`` (1-based, endings kept), streamed."""
    with open_binary(location, settings=settings, error=error, hint=hint) as fh:
        stream = fh if not is_s3(location) else _buffered(fh)
        lines = iter_stream_lines(stream, max_line_bytes=max_line_bytes, where=str(location), error=error)
        yield from enumerate(lines, start=1)


def _buffered(body: IO[bytes]) -> IO[bytes]:
    """An S3 body with ``readline``: botocore's stream has ``iter_lines`` but drops the endings we keep."""
    import io

    class _Raw(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            chunk = body.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    return io.BufferedReader(_Raw(), BLOCK_BYTES)


@contextmanager
def local_copy(
    location: Location,
    *,
    settings: NovaflowSettings,
    error: type[NovaflowError] = DataError,
    hint: str = "",
) -> Iterator[Path]:
    """A local path for ``location``: the file itself, or a streamed download to a temporary file removed after.

    Readers that need random access (Parquet, pyarrow's CSV reader) take this; the rest stream with
    :func:`open_binary`.
    """
    if not is_s3(location):
        path = Path(location)
        if not path.exists():
            raise _missing(error, location, hint)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="novaflow-src-") as tmp:
        target = Path(tmp) / (name_of(location) or "source")
        with open_binary(location, settings=settings, error=error, hint=hint) as body, target.open("wb") as out:
            shutil.copyfileobj(body, out, BLOCK_BYTES)
        yield target


def list_keys(prefix_uri: str, *, settings: NovaflowSettings, error: type[NovaflowError] = DataError) -> list[str]:
    """Keys under an ``s3://bucket/prefix/``, relative to the prefix, sorted; a missing bucket raises ``error``."""
    # Start-up time: boto3 (via novaflow.aws) is imported only when a location really is on S3.
    from botocore.exceptions import ClientError

    from novaflow.aws import get_client, is_not_found, split_s3_uri, wrap_client_error

    bucket, prefix = split_s3_uri(prefix_uri)
    names: list[str] = []
    try:
        for page in get_client("s3", settings).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            names.extend(obj["Key"][len(prefix) :] for obj in page.get("Contents", []))
    except ClientError as exc:
        if is_not_found(exc):
            raise error(f"{prefix_uri.rstrip('/')}: no such S3 bucket") from None
        raise wrap_client_error(exc, f"listing {prefix_uri}") from None
    return sorted(names)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


LINK_SECONDS = 7 * 24 * 3600
"""How long a presigned link works: seven days, the most a SigV4 presigned URL may last."""


def browser_url(location: Location, settings: NovaflowSettings) -> str:
    """What a person clicks to open ``location``: ``file://`` for a local path, a presigned GET for S3.

    An ``s3://`` address does nothing in a browser, and a console link would point at real AWS even when the run's
    clients talk to another endpoint; a presigned link is served by the endpoint that holds the object.
    """
    if not is_s3(location):
        return Path(location).resolve().as_uri()
    # Start-up time: boto3 (via novaflow.aws) is imported only when a location really is on S3.
    from novaflow.aws import get_client, split_s3_uri

    bucket, key = split_s3_uri(str(location))
    url: str = get_client("s3", settings).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=LINK_SECONDS
    )
    return url
