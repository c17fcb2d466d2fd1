"""One call from a source file to a validated Nova dataset on disk: data file, rejections, report, manifest.

Chunks stream through load -> transform -> validate -> write, so memory stays bounded by the chunk size (the
record path keeps valid rows until the optional-field consistency rule has seen them all). Every rejected row goes
to ``rejected.jsonl``; ``strict`` turns any rejection into a failure before anything could be spent on the data.

Example:
    >>> src = DatasetSource(path="so.csv", columns=ColumnMap(query="Body", response="Y"), system_prompt=PROMPT)
    >>> prepared = prepare_dataset(src, "eval", "nova-lite-2", "out/eval")  # doctest: +SKIP
    >>> prepared.data_file.name  # doctest: +SKIP
    'gen_qa.jsonl'
"""

from __future__ import annotations

import dataclasses
import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from novaflow.catalog import DataFormat, Method, NovaModel, Platform, check_data_format, get_model
from novaflow.data.bounds import row_count_problem
from novaflow.data.columnar import ColumnarPlan, plan_columns, transform_chunk
from novaflow.data.formats import MANIFEST_FILE, OUTPUT_FILES, REJECTED_FILE, REPORT_FILE
from novaflow.data.loaders import Chunk, iter_chunks, local_source
from novaflow.data.preferences import pair_columns, preference_record
from novaflow.data.records import RecordRow, enforce_consistency, transform_record, uses_record_path
from novaflow.data.rejections import Rejection
from novaflow.data.report import DataReport, ReportBuilder
from novaflow.data.source import DatasetSource
from novaflow.errors import DataError


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
    chunk; at most one blob is in flight, so memory stays bounded.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.digest = hashlib.sha256()
        self.rows = 0
        self.bytes = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="novaflow-jsonl")
        self._pending: Future[None] | None = None

    def _write_blob(self, blob: bytes) -> None:
        self.fh.write(blob)
        self.digest.update(blob)

    def write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        lines.append(b"")
        blob = b"\n".join(lines)
        lines.pop()
        self.rows += len(lines)
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
    from novaflow.data.io import sha256_file

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
) -> PreparedDataset:
    """Transform and validate ``source`` into ``data_format`` for ``model`` and write it under ``out_dir``.

    ``data_format`` may also be the training method the data is for (``rft_lora`` -> ``rft``) and ``model`` any
    spelling the catalog knows; the manifest records the canonical names. Raises ConfigError for an unknown model
    or format, DataError when the file cannot be read, a mapped column is missing, no row is valid, ``strict`` is set
    and a row was rejected, or the row count is outside the platform's bounds.
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
    builder = ReportBuilder(src.name, fmt.value, nova.key, max_length, split)
    rejected: list[Rejection] = []
    with local_source(src.path) as local, partial.open("wb") as fh:
        sink = _Sink(fh)
        try:
            _stream(src, local, fmt, nova, sink, builder, rejected)
        finally:
            sink.close()
    rejected.sort(key=lambda r: (r.row is None, r.row or 0))
    rejected_file = out / REJECTED_FILE
    rejected_file.write_bytes(b"".join(orjson.dumps(r.as_dict()) + b"\n" for r in rejected))
    report = builder.build()
    report_file = out / REPORT_FILE
    report_file.write_bytes(orjson.dumps(report.model_dump(), option=orjson.OPT_INDENT_2) + b"\n")
    failure = _failure(src, report, rejected, strict, target, nova, fmt, global_batch_size)
    if failure:
        partial.unlink(missing_ok=True)
        data_file.unlink(missing_ok=True)
        raise DataError(failure)
    partial.replace(data_file)
    manifest = {
        "method": fmt.value,
        "model": nova.key,
        "source": src.path,
        "files": {data_file.name: {"rows": sink.rows, "bytes": sink.bytes, "sha256": sink.digest.hexdigest()}},
        "rejected_rows": len(rejected),
    }
    manifest_file = out / MANIFEST_FILE
    manifest_file.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    return PreparedDataset(out, fmt, nova.key, data_file, rejected_file, report_file, manifest_file, report, manifest)


def _stream(
    src: DatasetSource,
    local: Path,
    fmt: DataFormat,
    nova: NovaModel,
    sink: _Sink,
    builder: ReportBuilder,
    rejected: list[Rejection],
) -> None:
    """Chunks through the columnar path, or the record path for rows that already carry messages."""
    plan: ColumnarPlan | None = None
    pending: list[RecordRow] | None = None  # record-path rows, kept until the consistency rule has seen them all
    for chunk in iter_chunks(src, local):
        if plan is None and pending is None:
            if uses_record_path(fmt, chunk.columns):
                pending = []
            else:
                plan = plan_columns(src, fmt, nova.version, chunk.columns)
                builder.report.notes.extend(plan.notes)
        if plan is not None:
            result = transform_chunk(chunk, plan)
            sink.write(result.lines)
            rejected.extend(result.rejected)
            builder.add(
                rows_out=len(result.lines),
                rejected=result.rejected,
                labels=result.labels,
                prompt_chars=result.prompt_chars,
                total_chars=result.total_chars,
                keys=result.keys,
            )
        else:
            assert pending is not None
            rejected.extend(_record_chunk(chunk, src, fmt, nova, pending, builder))
    if pending is not None:
        keep, dropped = enforce_consistency(pending, src.name)
        builder.drop_rows(dropped, [r.label for r in pending if r not in keep])
        rejected.extend(dropped)
        sink.write([orjson.dumps(r.out) for r in keep])


def _record_chunk(
    chunk: Chunk,
    src: DatasetSource,
    fmt: DataFormat,
    nova: NovaModel,
    pending: list[RecordRow],
    builder: ReportBuilder,
) -> list[Rejection]:
    rejected = list(chunk.rejected)
    good: list[RecordRow] = []
    raw = chunk.records if chunk.records is not None else (chunk.table.to_pylist() if chunk.table is not None else [])
    names = pair_columns(src, chunk.columns) if fmt is DataFormat.DPO and "messages" not in chunk.columns else None
    for number, row in zip(chunk.rows, raw, strict=True):
        if names is None:
            item = transform_record(src.name, number, row, fmt, nova.version, nova.multimodal)
        elif str(row.get(names["chosen"])).strip() == str(row.get(names["rejected"])).strip():
            reason = "chosen and rejected are the same answer: a preference pair needs two different answers"
            item = Rejection(src.name, number, names["rejected"], reason, record=row)
        else:  # a table of pairs: the row becomes the DPO record it stands for, then is checked as one
            item = transform_record(
                src.name, number, preference_record(row, names, src.system_prompt), fmt, nova.version, nova.multimodal
            )
            if isinstance(item, Rejection):
                item = dataclasses.replace(item, field=_pair_field(item.field, names), record=row)
        if isinstance(item, Rejection):
            rejected.append(item)
        else:
            good.append(item)
    pending.extend(good)
    builder.add(
        rows_out=len(good),
        rejected=rejected,
        labels=[r.label for r in good],
        prompt_chars=[r.prompt_chars for r in good],
        total_chars=[r.total_chars for r in good],
        keys=[r.key for r in good],
    )
    return rejected


def _pair_field(field: str, names: dict[str, str]) -> str:
    """The table column a problem of the built DPO record comes from (``messages[1].candidates[1]`` -> rejected)."""
    for prefix, key in (("messages[1].candidates[0]", "chosen"), ("messages[1].candidates[1]", "rejected")):
        if field.startswith(prefix):
            return names[key]
    if field.startswith("messages[0]"):
        return names["query"]
    if field.startswith("system"):
        return names.get("system", "--system")
    return field


def _failure(
    src: DatasetSource,
    report: DataReport,
    rejected: list[Rejection],
    strict: bool,
    platform: Platform | None,
    nova: NovaModel,
    fmt: DataFormat,
    global_batch_size: int | None,
) -> str | None:
    if strict and rejected:
        first = "; ".join(f"row {r.row} {r.field}: {r.reason}" for r in rejected[:3])
        return f"{src.name}: {len(rejected)} row(s) rejected in strict mode ({first}); see {REJECTED_FILE}"
    if report.rows_out == 0:
        return f"{src.name}: no valid rows out of {report.rows_in}; see {REJECTED_FILE}"
    if platform is not None:
        return row_count_problem(report.rows_out, platform, nova, fmt, global_batch_size=global_batch_size)
    return None
