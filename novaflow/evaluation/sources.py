"""Where evaluation files live: a local folder, a tar.gz archive (local or on S3), or an S3 prefix.

Nova's documentation disagrees with itself on folder names, so the parser never builds a fixed path: it lists
every file a source holds and globs. Members are read as streams: an archive on S3 is copied to a temporary file
(on disk, not in memory) and read in place, so memory is bounded by what the parser keeps, not by the archive.
A member larger than :data:`MAX_MEMBER_BYTES` is refused before a byte of it is read.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from novaflow import storage
from novaflow.errors import EvaluationError
from novaflow.settings import NovaflowSettings

MAX_MEMBER_BYTES = 2 << 30
"""The largest single file novaflow reads from an evaluation output (2 GiB): ``inference_output.jsonl`` of a
large evaluation is a few hundred MB; anything bigger is more likely a wrong path than a result."""
MAX_WHOLE_BYTES = 256 << 20
"""Files parsed whole (``results_*.json``, the details parquet) may be at most this large (256 MiB)."""
MAX_RECORD_BYTES = 64 << 20
"""One line of ``inference_output.jsonl`` may be at most this large (64 MiB)."""

_CORRUPT = (tarfile.TarError, EOFError, zlib.error, OSError)


class FileTree:
    """Relative member names of an evaluation output and streamed access to each; close it (``with``) after use.

    ``label(name)`` names a member for error messages: ``archive!member`` or ``folder/member``.
    """

    def __init__(self, location: str, names: list[str], separator: str = "/") -> None:
        self.location = location
        self.names = names
        self.separator = separator
        self._stack = ExitStack()

    def label(self, name: str) -> str:
        return f"{self.location}{self.separator}{name}"

    def size(self, name: str) -> int | None:
        """The member's size in bytes when the source knows it without reading (archives, folders)."""
        return None

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """A binary stream of one member, refused with a clear error when it is over :data:`MAX_MEMBER_BYTES`."""
        self._check_size(name, MAX_MEMBER_BYTES, "novaflow reads from an evaluation output")
        with self._open(name) as fh:
            yield fh

    def read(self, name: str) -> bytes:
        """A member parsed whole (a results file, a parquet): at most :data:`MAX_WHOLE_BYTES`."""
        self._check_size(name, MAX_WHOLE_BYTES, "for a file parsed whole")
        with self._open(name) as fh:
            data = fh.read(MAX_WHOLE_BYTES + 1)
        if len(data) > MAX_WHOLE_BYTES:
            raise self._too_large(name, len(data), MAX_WHOLE_BYTES, "for a file parsed whole")
        return data

    def lines(self, name: str) -> Iterator[bytes]:
        """The member's lines, one at a time; a line over :data:`MAX_RECORD_BYTES` is an error naming it."""
        with self.open(name) as fh:
            yield from storage.iter_stream_lines(
                fh, max_line_bytes=MAX_RECORD_BYTES, where=self.label(name), error=EvaluationError
            )

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> FileTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_size(self, name: str, limit: int, what: str) -> None:
        size = self.size(name)
        if size is not None and size > limit:
            raise self._too_large(name, size, limit, what)

    def _too_large(self, name: str, size: int, limit: int, what: str) -> EvaluationError:
        return EvaluationError(
            f"{self.label(name)}: {size:,} bytes is over the {limit:,}-byte limit {what}; "
            "point novaflow at the evaluation output of one job"
        )

    @contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        raise NotImplementedError


class _FolderTree(FileTree):
    def __init__(self, root: Path, names: list[str]) -> None:
        super().__init__(str(root), names)
        self.root = root

    def size(self, name: str) -> int | None:
        return (self.root / name).stat().st_size

    @contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        with (self.root / name).open("rb") as fh:
            yield fh


class _PrefixTree(FileTree):
    def __init__(self, base: str, names: list[str], settings: NovaflowSettings) -> None:
        super().__init__(base.rstrip("/"), names)
        self.base = base
        self.settings = settings

    @contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        with storage.open_binary(self.base + name, settings=self.settings, error=EvaluationError) as fh:
            yield fh


class _ArchiveTree(FileTree):
    """A gzip'd tar read in place: one pass lists the members (a truncated archive fails here, naming it)."""

    def __init__(self, path: Path, location: str) -> None:
        super().__init__(location, [], separator="!")
        try:
            self._tar = self._stack.enter_context(tarfile.open(path, mode="r:*"))
            self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers() if m.isfile() and m.size >= 0}
        except _CORRUPT as exc:
            self.close()
            raise self._corrupt(exc) from exc
        if not self._members:
            self.close()
            raise EvaluationError(f"{location}: the archive holds no files")
        self.names = sorted(self._members)

    def _corrupt(self, exc: BaseException) -> EvaluationError:
        return EvaluationError(
            f"{self.location}: corrupt or truncated tar.gz archive ({type(exc).__name__}: {exc}); "
            "re-download it or check that the job finished"
        )

    def size(self, name: str) -> int | None:
        return self._members[name].size

    @contextmanager
    def _open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            handle = self._tar.extractfile(self._members[name])
        except _CORRUPT as exc:
            raise self._corrupt(exc) from exc
        if handle is None:
            raise EvaluationError(f"{self.label(name)}: not a regular file")
        with handle:
            try:
                yield handle
            except _CORRUPT as exc:
                raise self._corrupt(exc) from exc


def _archive(location: str, settings: NovaflowSettings) -> FileTree:
    """An archive here or on S3 (copied to a temporary file first: tar members are read by seeking)."""
    stack = ExitStack()
    try:
        path = stack.enter_context(storage.local_copy(location, settings=settings, error=EvaluationError))
        tree = _ArchiveTree(path, location)
    except BaseException:
        stack.close()
        raise
    tree._stack.push(stack)
    return tree


def _local_tree(path: Path, settings: NovaflowSettings) -> FileTree:
    if path.is_dir():
        names = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        tarballs = [n for n in names if n.endswith((".tar.gz", ".tgz"))]
        if tarballs and not any(Path(n).name.startswith("results_") for n in names):
            return _local_tree(path / tarballs[0], settings)
        return _FolderTree(path, names)
    if path.is_file():
        return _archive(str(path), settings)
    raise EvaluationError(f"{path}: no such file or folder; pass an output.tar.gz, a folder, or an s3:// URI")


def _s3_tree(uri: str, settings: NovaflowSettings) -> FileTree:
    if uri.endswith((".tar.gz", ".tgz")):
        return _archive(uri, settings)
    prefix = uri if uri.endswith("/") else uri + "/"
    if uri.count("/") == 2:  # s3://bucket: the whole bucket
        prefix = uri.rstrip("/") + "/"
    names = storage.list_keys(prefix, settings=settings, error=EvaluationError)
    if not names:
        raise EvaluationError(f"{uri}: no objects under this prefix; is the job finished and the URI right?")
    tarballs = [n for n in names if n.endswith((".tar.gz", ".tgz"))]
    if tarballs and not any(n.rsplit("/", 1)[-1].startswith("results_") for n in names):
        return _archive(prefix + tarballs[0], settings)
    return _PrefixTree(prefix, names, settings)


def open_tree(location: str | Path, settings: NovaflowSettings) -> FileTree:
    """A :class:`FileTree` for a local folder or archive, an ``s3://`` archive, or an ``s3://`` prefix."""
    text = str(location)
    if text.startswith("s3://"):
        return _s3_tree(text, settings)
    return _local_tree(Path(text), settings)
