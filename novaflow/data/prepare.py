"""One call from a source file to a validated Nova dataset on disk: data file, rejections, report, manifest.

Chunks stream through load -> transform -> validate -> write (on every core when the file is large, see
:mod:`novaflow.data.workers`), so memory stays bounded by the chunk size: the record path keeps only each valid
row's feature set for the optional-field consistency rule, and rewrites the file once in the rare case that rule
drops rows. Every rejected row goes to ``rejected.jsonl`` as it is found; ``strict`` turns any rejection into a
failure before anything could be spent on the data.

Example:
    >>> src = DatasetSource(path="so.csv", columns=ColumnMap(query="Body", response="Y"), system_prompt=PROMPT)
    >>> prepared = prepare_dataset(src, "eval", "nova-lite-2", "out/eval")  # doctest: +SKIP
    >>> prepared.data_file.name  # doctest: +SKIP
    'gen_qa.jsonl'
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt
import orjson

from novaflow.catalog import DataFormat, Method, NovaModel, Platform, check_data_format, get_model
from novaflow.data.bounds import row_count_problem
from novaflow.data.columnar import ChunkOutput
from novaflow.data.file_swap import move_over
from novaflow.data.formats import MANIFEST_FILE, OUTPUT_FILES, REJECTED_FILE, REPORT_FILE
from novaflow.data.gc_pause import collector_paused
from novaflow.data.line_cut import cut_lines
from novaflow.data.message_rows import consistency_drops, label_of
from novaflow.data.rejections import Rejection, RejectionLog
from novaflow.data.report import DataReport, ReportBuilder
from novaflow.data.source import DatasetSource
from novaflow.data.workers import ChunkJob, ChunkStream
from novaflow.errors import DataError
from novaflow.settings import NovaflowSettings
from novaflow.storage import local_copy, sha256_file

if TYPE_CHECKING:  # the filters load only when a run asks for them: start-up is most of a small file's time
    from novaflow.data.filters import CurationConfig, DuplicateIndex


@dataclass
class PreparedDataset:
    """What :func:`prepare_dataset` wrote; ``manifest`` is the parsed ``manifest.json``."""

    out_dir: Path
    data_format: DataFormat
    model: str
    data_file: Path
    rejected_file: Path
    report_file: Path
    manifest_file: Path
    report: DataReport
    manifest: dict[str, Any]

    @property
    def rows(self) -> int:
        return self.report.rows_out


class _Sink:
    """Writes JSONL lines and hashes them on the way, so the manifest needs no second read.

    Writing and hashing run on one background thread (both release the GIL), overlapping with parsing the next
    chunk; at most one blob is in flight, so memory stays bounded. ``hashing=False`` writes only: when a duplicate
    filter runs, the file is almost always rewritten without the duplicates (and hashed then), and SHA-256 costs
    about 2.3 s of CPU per 700 MB on this machine's cores, taken from the workers' cores. It keeps the lines' lengths
    instead (4 bytes a row), so that the rewrite finds the lines it cuts without reading the file.
    """

    def __init__(self, fh: BinaryIO, hashing: bool = True) -> None:
        self.fh = fh
        self.digest: Any = hashlib.sha256() if hashing else None
        self.sha256: str | None = None
        """The file's hash when it was rewritten after this sink closed (rows cut out)."""
        self.rows = 0
        self.bytes = 0
        self._lengths: array[int] | None = None if hashing else array("I")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="novaflow-jsonl")
        self._pending: Future[None] | None = None

    def _write_blob(self, blob: bytes) -> None:
        self.fh.write(blob)
        if self.digest is not None:
            self.digest.update(blob)

    def write_blob(self, blob: bytes, rows: int, lengths: array[int] | None = None) -> None:
        """``rows`` lines already joined, each ending in a newline (as chunk workers send them), and their lengths
        when known."""
        if not rows:
            return
        if self._lengths is not None:
            if lengths is None:
                self._lengths = None  # the rewrite reads the file to find the lines instead
            else:
                self._lengths.extend(lengths)
        self.rows += rows
        self.bytes += len(blob)
        self.flush()
        self._pending = self._pool.submit(self._write_blob, blob)

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def close(self) -> None:
        self.flush()
        self._pool.shutdown()

    @property
    def keeps_lengths(self) -> bool:
        return self._lengths is not None

    def line_ends(self) -> npt.NDArray[np.int64] | None:
        """The byte after each line's newline, when every blob came with its lines' lengths."""
        if self._lengths is None or len(self._lengths) != self.rows:
            return None
        return np.cumsum(np.frombuffer(self._lengths, dtype=np.uint32), dtype=np.int64)

    def hexdigest(self) -> str | None:
        """The SHA-256 of what the file holds now, when it is known without reading the file."""
        if self.sha256 is not None:
            return self.sha256
        return self.digest.hexdigest() if self.digest is not None else None


def load_prepared(out_dir: str | Path) -> PreparedDataset:
    """A :class:`PreparedDataset` from a directory :func:`prepare_dataset` wrote (to upload it later)."""
    out = Path(out_dir)
    manifest_file = out / MANIFEST_FILE
    if not manifest_file.exists():
        raise DataError(f"{out}: no {MANIFEST_FILE}; run `novaflow data prepare ... --out {out}` first")
    manifest = orjson.loads(manifest_file.read_bytes())
    data_format = DataFormat(manifest["method"])
    report = DataReport.model_validate_json((out / REPORT_FILE).read_bytes())
    data_file = out / OUTPUT_FILES[data_format]
    expected = manifest["files"][data_file.name]["sha256"]
    if not data_file.exists() or sha256_file(data_file) != expected:
        raise DataError(f"{data_file}: missing or changed since it was prepared (sha256 differs from the manifest)")
    return PreparedDataset(
        out,
        data_format,
        manifest["model"],
        data_file,
        out / REJECTED_FILE,
        out / REPORT_FILE,
        manifest_file,
        report,
        manifest,
    )


def prepare_dataset(
    source: DatasetSource | str | Path,
    data_format: DataFormat | Method | str,
    model: str | NovaModel,
    out_dir: str | Path,
    strict: bool = False,
    *,
    platform: Platform | str | None = None,
    max_length: int | None = 8192,
    global_batch_size: int | None = None,
    split: str = "all",
    workers: int | None = None,
    curation: CurationConfig | None = None,
    replay: ChunkReplay | None = None,
    settings: NovaflowSettings,
) -> PreparedDataset:
    """Transform and validate ``source`` into ``data_format`` for ``model`` and write it under ``out_dir``.

    ``workers`` processes transform chunks side by side when the input is large (default: one per core, see
    :mod:`novaflow.data.workers`); the output is the same bytes in the same order either way.

    ``data_format`` may also be the training method the data is for (``rft_lora`` -> ``rft``) and ``model`` any
    spelling the catalog knows; the manifest records the canonical names. Raises ConfigError for an unknown model
    or format, DataError when the file cannot be read, a mapped column is missing, no row is valid, ``strict`` is set
    and a row was rejected, or the row count is outside the platform's bounds.

    ``curation`` names the filters (duplicates, language, quality) rows must pass; the rows they remove are rejected
    with the filter, its score and the row they duplicate. ``replay`` (the second pass of a sharded run,
    :mod:`novaflow.data.sharded`) hands in the chunks' outputs, transformed elsewhere, instead of reading ``source``.
    """
    src = source if isinstance(source, DatasetSource) else DatasetSource(path=str(source))
    fmt = DataFormat.of(data_format)
    nova = get_model(model)
    check_data_format(nova, fmt)
    target = Platform.parse(platform) if platform else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_file = out / OUTPUT_FILES[fmt]
    partial = data_file.with_name(data_file.name + ".partial")
    rejected_file = out / REJECTED_FILE
    builder = ReportBuilder(src.name, fmt.value, nova.key, max_length, split)
    curating = curation if curation is not None and curation.enabled else None
    job = ChunkJob(src, fmt, nova.version, nova.multimodal, curation=curating)
    duplicates: DuplicateIndex | None = None
    if curating is not None:
        from novaflow.data.filters import DuplicateIndex  # start-up: the filters load only when asked for

        duplicates = DuplicateIndex(curating)
    with (
        nullcontext(None) if replay is not None else local_copy(src.path, settings=settings) as local,
        RejectionLog(rejected_file) as rejections,
    ):
        stream: ChunkStream | ChunkReplay
        if replay is not None:
            stream = replay
        else:
            assert local is not None  # local_copy always yields the file
            stream = ChunkStream(job, local, workers)
        sink, features, rows = _write(stream, partial, rejections, builder, duplicates)
        builder.report.notes.extend(stream.notes)
        with collector_paused():
            _drop_dataset_rejections(partial, sink, rejections, builder, duplicates, features, rows, src.name, fmt)
    report = builder.build()
    report_file = out / REPORT_FILE
    report_file.write_bytes(orjson.dumps(report.model_dump(), option=orjson.OPT_INDENT_2) + b"\n")
    failure = _failure(src, report, rejections, strict, target, nova, fmt, global_batch_size)
    if failure:
        partial.unlink(missing_ok=True)
        data_file.unlink(missing_ok=True)
        raise DataError(failure)
    digest = sink.hexdigest() or sha256_file(partial)
    move_over(partial, data_file)  # a rerun's old file is freed off the critical path
    manifest = {
        "method": fmt.value,
        "model": nova.key,
        "source": src.path,
        "files": {data_file.name: {"rows": sink.rows, "bytes": sink.bytes, "sha256": digest}},
        "rejected_rows": rejections.count,
    }
    manifest_file = out / MANIFEST_FILE
    manifest_file.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    return PreparedDataset(out, fmt, nova.key, data_file, rejected_file, report_file, manifest_file, report, manifest)


def _drop_dataset_rejections(
    partial: Path,
    sink: _Sink,
    rejections: RejectionLog,
    builder: ReportBuilder,
    duplicates: DuplicateIndex | None,
    features: list[frozenset[str]] | None,
    rows: array[int],
    source: str,
    fmt: DataFormat,
) -> None:
    """The rows the dataset-wide rules reject (duplicates once every signature is in, feature consistency) cut
    out of the written file, rejected and taken out of the report."""
    drops: dict[int, _Drop] = {}
    if duplicates is not None:
        field = _filter_field(duplicates.config)
        for line, name, score, first in duplicates.decide():
            what = "same text as" if name == "dedup" else f"similarity {score:.2f} to"
            drops[line] = _Drop(field, f"{name}: {what} row {rows[first]}", name, score, rows[first])
    if features is not None:
        drops.update({i: _Drop(feature, reason) for i, feature, reason in consistency_drops(features)})
    if drops:

        def account(dropped: list[Rejection]) -> None:  # while the rewrite's copy goes on
            builder.drop_rows(dropped, [label_of(r.record, fmt) for r in dropped], sorted(drops))
            rejections.add(dropped)

        _drop_lines(partial, sink, drops, rows, source, account)


@dataclass(frozen=True)
class _Drop:
    """Why a written row is taken out again: a dataset-wide rule (consistency) or a duplicate filter."""

    field: str
    reason: str
    filter: str | None = None
    score: float | None = None
    duplicate_of: int | None = None


def _filter_field(curation: CurationConfig) -> str:
    return "+".join(curation.fields)


@dataclass
class ChunkReplay:
    """Chunk outputs made elsewhere, in input order, with the column plan's notes: what a stream yields."""

    outputs: Iterable[ChunkOutput]
    notes: list[str]

    def __iter__(self) -> Iterator[ChunkOutput]:
        return iter(self.outputs)


def _write(
    stream: ChunkStream | ChunkReplay,
    partial: Path,
    rejections: RejectionLog,
    builder: ReportBuilder,
    duplicates: DuplicateIndex | None = None,
) -> tuple[_Sink, list[frozenset[str]] | None, array[int]]:
    """Every chunk's valid rows to ``partial`` and its rejections to the log, in input order; returns the sink
    (rows, bytes, sha256) and, on the record path or when filtering duplicates, each valid row's row number (and
    on the record path its features)."""
    features: list[frozenset[str]] | None = None
    rows: array[int] = array("q")
    with partial.open("wb") as fh:
        sink = _Sink(fh, hashing=duplicates is None)
        try:
            for output in stream:
                sink.write_blob(output.blob(), output.rows_out, output.line_lengths() if sink.keeps_lengths else None)
                rejections.add(output.rejected)
                builder.add(
                    rows_out=output.rows_out,
                    rejected=output.rejected,
                    labels=output.labels,
                    prompt_chars=output.prompt_chars,
                    total_chars=output.total_chars,
                    keys=output.keys,
                )
                if output.features is not None and output.rows is not None:
                    features = features if features is not None else []
                    features.extend(output.features)
                    rows.extend(output.rows)
                elif duplicates is not None and output.rows is not None:
                    rows.extend(output.rows)
                if duplicates is not None:
                    duplicates.add(output.curation)
        finally:
            sink.close()
    return sink, features, rows


def _drop_lines(
    partial: Path,
    sink: _Sink,
    reasons: dict[int, _Drop],
    rows: array[int],
    source: str,
    account: Callable[[list[Rejection]], None],
) -> None:
    """Rewrite the data file without the rows a dataset-wide rule (consistency, duplicates) rejected; their
    rejections go to ``account`` once all are read, while the kept rows are still being copied and hashed.

    Valid rows are written as they come (memory stays flat), so a dataset-level rejection costs one rewrite
    (:func:`novaflow.data.line_cut.cut_lines`) instead of holding every row until the end.
    """
    rejected: list[Rejection] = []

    def reject(index: int, body: bytes) -> None:
        drop = reasons[index]
        rejected.append(
            Rejection(
                source,
                rows[index],
                drop.field,
                drop.reason,
                record=orjson.loads(body),
                filter=drop.filter,
                score=drop.score,
                duplicate_of=drop.duplicate_of,
            )
        )

    cut = np.array(sorted(reasons), dtype=np.int64)
    left = cut_lines(partial, cut, reject, sink.line_ends(), then=lambda: account(rejected))
    sink.rows, sink.bytes, sink.sha256 = left.rows, left.bytes, left.sha256


def _failure(
    src: DatasetSource,
    report: DataReport,
    rejected: RejectionLog,
    strict: bool,
    platform: Platform | None,
    nova: NovaModel,
    fmt: DataFormat,
    global_batch_size: int | None,
) -> str | None:
    if strict and rejected.count:
        first = "; ".join(f"row {r['row']} {r['field']}: {r['reason']}" for r in rejected.first(3))
        return f"{src.name}: {rejected.count} row(s) rejected in strict mode ({first}); see {REJECTED_FILE}"
    if report.rows_out == 0:
        return f"{src.name}: no valid rows out of {report.rows_in}; see {REJECTED_FILE}"
    if platform is not None:
        return row_count_problem(report.rows_out, platform, nova, fmt, global_batch_size=global_batch_size)
    return None
