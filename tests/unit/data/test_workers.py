"""Chunk workers: the same bytes in the same order as one process, on both paths, with rejections and drops."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from novaflow.catalog import DataFormat
from novaflow.data import loaders, workers
from novaflow.data import prepare as prepare_module
from novaflow.data.filters import CurationConfig
from novaflow.data.prepare import PreparedDataset, prepare_dataset
from novaflow.data.samples import generate_stackoverflow_csv, iter_stackoverflow_rows, write_rows
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.data.workers import ChunkJob, ChunkStream
from novaflow.errors import DataError
from novaflow.settings import load_settings

OUTPUTS = ("manifest.json", "rejected.jsonl", "report.json")


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _converse_rows(n: int) -> list[dict[str, object]]:
    """Mostly with a system prompt (a few without: the consistency rule drops them), some blank, some bad."""
    rows: list[dict[str, object]] = []
    for i in range(n):
        row: dict[str, object] = {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": [
                {"role": "user", "content": [{"text": f"question {i % 97}" if i % 53 else ""}]},
                {"role": "assistant", "content": [{"text": ["HQ", "LQ_EDIT", "LQ_CLOSE"][i % 3]}]},
            ],
        }
        if i % 31:
            row["system"] = [{"text": "Label the question."}]
        rows.append(row)
    return rows


@pytest.mark.slow
def test_csv_in_workers_is_byte_identical_to_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", 16 << 10)  # many chunks from a small file
    data = generate_stackoverflow_csv(tmp_path / "so.csv", 1500, 3, broken=True)
    src = DatasetSource(path=str(data), columns=ColumnMap(query="Title+Body", response="Y"))
    one = prepare_dataset(src, "sft", "nova-lite-2", tmp_path / "one", workers=1, settings=load_settings())
    two = prepare_dataset(src, "sft", "nova-lite-2", tmp_path / "two", workers=2, settings=load_settings())
    assert one.report.rows_rejected > 0
    assert _files(one.out_dir) == _files(two.out_dir)
    stream = ChunkStream(ChunkJob(src, one.data_format, 2, True), data, workers=2)
    assert sum(1 for _ in stream) > 10 and stream.used_workers == 2


@pytest.mark.slow
def test_record_path_in_workers_keeps_order_rejections_and_consistency_drops(tmp_path: Path) -> None:
    path = tmp_path / "conv.jsonl"
    lines = [json.dumps(r) for r in _converse_rows(900)]
    lines[100] = "{not json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = DatasetSource(path=str(path), chunk_rows=64)
    one = prepare_dataset(src, "sft", "nova-lite-2", tmp_path / "one", workers=1, settings=load_settings())
    two = prepare_dataset(src, "sft", "nova-lite-2", tmp_path / "two", workers=2, settings=load_settings())
    assert _files(one.out_dir) == _files(two.out_dir)
    rejected = [json.loads(x) for x in (two.out_dir / "rejected.jsonl").read_text().splitlines()]
    assert [r["row"] for r in rejected] == sorted(r["row"] for r in rejected)
    reasons = {r["reason"].split(":")[0] for r in rejected}
    assert reasons == {"optional field consistency", "empty text content", "invalid JSON"}
    dropped = [r["row"] for r in rejected if r["reason"].startswith("optional field consistency")]
    assert dropped == [i + 1 for i in range(900) if i % 31 == 0 and i % 53 and i != 100]
    assert two.rows == 900 - len(rejected)
    assert two.report.duplicates == two.rows - len({r["messages"][0]["content"][0]["text"] for r in _out(two)})


def _out(prepared: object) -> list[dict[str, object]]:
    return [json.loads(x) for x in prepared.data_file.read_text().splitlines()]  # type: ignore[attr-defined]


@pytest.mark.slow
def test_an_error_in_a_worker_is_the_same_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"query": "q", "response": {"not": "text"}}) + "\n" for _ in range(50)))
    src = DatasetSource(path=str(path), chunk_rows=10)
    with pytest.raises(DataError) as single:
        prepare_dataset(src, "eval", "nova-lite-2", tmp_path / "one", workers=1, settings=load_settings())
    with pytest.raises(DataError) as parallel:
        prepare_dataset(src, "eval", "nova-lite-2", tmp_path / "two", workers=2, settings=load_settings())
    assert str(single.value) == str(parallel.value)


def _spy_on_placement(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """The first row of every chunk the caller transformed itself, and of every chunk it gave a worker."""
    here: list[int] = []
    sent: list[int] = []
    run_here, submit = workers._run_here, workers._Worker.submit

    def spy_here(job: ChunkJob, chunk: loaders.Chunk) -> object:
        here.append(chunk.rows[0])
        return run_here(job, chunk)

    def spy_submit(self: workers._Worker, chunk: loaders.Chunk) -> None:
        sent.append(chunk.rows[0])
        submit(self, chunk)

    monkeypatch.setattr(workers, "_run_here", spy_here)
    monkeypatch.setattr(workers._Worker, "submit", spy_submit)
    return here, sent


@pytest.mark.slow
def test_filtered_chunks_shared_by_the_caller_and_a_worker_give_one_process_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With filters, the caller transforms chunks beside its one worker (two processes); every file is one
    process's, the report's duplicate count among them: prompts repeated far apart are keyed by both processes."""
    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", 16 << 10)  # many chunks from a small file
    rows = list(iter_stackoverflow_rows(1200, 5))
    data = write_rows(tmp_path / "so.csv", [*rows, *rows[:150]])  # 150 repeats, chunks apart
    src = DatasetSource(path=str(data), columns=ColumnMap(query="Body", response="Y"))
    curation = CurationConfig.parse("quality")
    one = prepare_dataset(
        src, "sft", "nova-lite-2", tmp_path / "one", curation=curation, workers=1, settings=load_settings()
    )
    here, sent = _spy_on_placement(monkeypatch)
    two = prepare_dataset(
        src, "sft", "nova-lite-2", tmp_path / "two", curation=curation, workers=2, settings=load_settings()
    )
    assert here and sent and sorted(here + sent) == sorted(set(here + sent))  # each chunk once, by one of the two
    assert _files(one.out_dir) == _files(two.out_dir)
    assert one.report.duplicates == two.report.duplicates >= 140  # a few repeats fail the quality filter
    assert one.report.filtered == two.report.filtered


@pytest.mark.slow
def test_duplicates_are_cut_by_the_line_ends_both_processes_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines' lengths come with every chunk, from the caller and from its worker, so the duplicates are cut out
    at the written file's real line ends without a scan; the files equal a run whose cut scans the file."""
    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", 16 << 10)
    rows = list(iter_stackoverflow_rows(1200, 5))
    data = write_rows(tmp_path / "so.csv", [*rows, *rows[:150]])
    src = DatasetSource(path=str(data), columns=ColumnMap(query="Body", response="Y"))
    curation = CurationConfig.parse("dedup,near-dedup")
    real_cut = prepare_module.cut_lines
    given: list[object] = []

    def watching(path: Path, cut: Any, on_cut: Any, line_ends: Any = None, **rest: Any) -> Any:
        written = path.read_bytes()
        newlines = [i + 1 for i, byte in enumerate(written) if byte == 10]
        given.append(None if line_ends is None else line_ends.tolist() == newlines)
        return real_cut(path, cut, on_cut, line_ends, **rest)

    monkeypatch.setattr(prepare_module, "cut_lines", watching)

    def prepare(out: str, processes: int) -> PreparedDataset:
        return prepare_dataset(
            src, "sft", "nova-lite-2", tmp_path / out, curation=curation, workers=processes, settings=load_settings()
        )

    one = prepare("one", 1)
    assert given == [True]
    with monkeypatch.context() as unknown:
        unknown.setattr(prepare_module._Sink, "line_ends", lambda self: None)
        scanned = prepare("scan", 1)
    assert given == [True, None]
    here, sent = _spy_on_placement(monkeypatch)
    two = prepare("two", 2)
    assert here and sent and given == [True, None, True]
    assert one.report.filtered["dedup"] >= 140
    assert _files(one.out_dir) == _files(scanned.out_dir) == _files(two.out_dir)


@pytest.mark.slow
def test_an_error_in_a_chunk_the_caller_transformed_waits_for_its_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks 0 to 3 go to the worker (its queue while the caller helps), which takes a while to start; chunk 4 is
    the caller's and fails first, but the stream yields chunk 0 and then raises chunk 1's error, as one process
    does."""

    def chunk(index: int, response: object) -> loaders.Chunk:
        rows = list(range(10 * index + 1, 10 * index + 11))
        return loaders.Chunk(
            rows=rows,
            table=pa.table({"q": [f"question {r} on sorting a list in python" for r in rows], "a": [response] * 10}),
        )

    chunks = [
        chunk(i, {"early": "x"} if i == 1 else {"late": "x"} if i == 4 else "use sorted() with a key function")
        for i in range(8)
    ]
    src = DatasetSource(path="rows.parquet", columns=ColumnMap(query="q", response="a"))
    stream = ChunkStream(ChunkJob(src, DataFormat.SFT, 2, True, curation=CurationConfig.parse("quality")), Path("-"))
    job = stream.planned(chunks[0])
    here, sent = _spy_on_placement(monkeypatch)
    taken: list[bytes] = []
    with pytest.raises(DataError, match=r"^rows\.parquet: column 'a' \(response\) has type struct<early: string>"):
        for output in workers._in_workers(job, chunks[0], iter(chunks[1:]), 2, caller_helps=True):
            taken.append(output.blob())
    assert [t.count(b"\n") for t in taken] == [10] and b'"question 1 on' in taken[0]
    assert sent == [1, 11, 21, 31] and 41 in here  # the first rows of the chunks each took


@pytest.mark.slow
@pytest.mark.parametrize("caller_helps", [True, False])
def test_a_worker_that_dies_is_one_line_and_leaves_nothing_running(
    monkeypatch: pytest.MonkeyPatch, caller_helps: bool
) -> None:
    """A worker killed (out of memory, say) before it answers: the stream stops with the one-line error naming
    the way out, and no process or thread of the stream is left."""
    rows = list(range(1, 11))
    table = pa.table({"q": [f"question {r} on sorting a list in python" for r in rows], "a": ["use sorted()"] * 10})
    chunks = [loaders.Chunk(rows=rows, table=table) for _ in range(6)]
    src = DatasetSource(path="rows.parquet", columns=ColumnMap(query="q", response="a"))
    job = ChunkStream(ChunkJob(src, DataFormat.SFT, 2, True, curation=CurationConfig.parse("quality")), Path("-"))
    planned = job.planned(chunks[0])
    started: list[workers._Worker] = []
    real_init = workers._Worker.__init__

    def start_then_kill(self: workers._Worker, *args: object) -> None:
        real_init(self, *args)  # type: ignore[arg-type]
        self.proc.kill()
        started.append(self)

    monkeypatch.setattr(workers._Worker, "__init__", start_then_kill)
    with pytest.raises(DataError, match=r"^a data preparation worker exited with code -9; run again with --workers 1$"):
        list(workers._in_workers(planned, chunks[0], iter(chunks[1:]), 2, caller_helps=caller_helps))
    assert len(started) == (1 if caller_helps else 2)
    assert all(w.proc.returncode == -9 and not w.feeder.is_alive() and not w.reader.is_alive() for w in started)


@pytest.mark.parametrize(("cores", "mb", "expected"), [(2, 700, 1), (3, 700, 2), (8, 700, 7), (8, 10, 1)])
def test_workers_start_for_large_inputs_with_a_core_to_spare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, mb: int, expected: int
) -> None:
    """On two cores the caller (parse, pickle, hash, write) and two workers contend: one process is faster there."""
    assert _worker_count(tmp_path, monkeypatch, cores, mb, None) == expected


def _worker_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, mb: int, curation: CurationConfig | None
) -> int:
    """The workers chosen for an input of ``mb`` MB (a sparse file: only its size matters) on ``cores`` cores."""
    data = tmp_path / "big.csv"
    with data.open("wb") as fh:
        fh.truncate(mb << 20)
    monkeypatch.setattr(workers, "available_cores", lambda: cores)
    job = ChunkJob(DatasetSource(path=str(data)), DataFormat.SFT, 2, True, curation=curation)
    return ChunkStream(job, data)._worker_count()


def test_read_ahead_keeps_order_and_raises_the_readers_error_at_its_place() -> None:
    def chunks() -> Iterator[int]:
        yield from range(5)
        raise DataError("x.csv: cannot parse as CSV: row 6")

    seen: list[int] = []
    with pytest.raises(DataError, match=r"^x\.csv: cannot parse as CSV: row 6$"):
        for item in workers.read_ahead(chunks(), 2):  # type: ignore[arg-type]
            seen.append(item)  # type: ignore[arg-type]
    assert seen == [0, 1, 2, 3, 4]


def test_read_ahead_stops_its_reader_when_the_consumer_stops() -> None:
    produced: list[int] = []

    def chunks() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    stream = workers.read_ahead(chunks(), 2)  # type: ignore[arg-type]
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()  # joins the reader thread
    assert len(produced) <= 5  # two taken, at most two queued, one waiting to be queued
    assert not any(t.name == "novaflow-chunk-reader" for t in threading.enumerate())


@pytest.mark.parametrize(
    ("cores", "mb", "expected"),
    [(1, 700, 1), (2, 660, 2), (2, 66, 2), (2, 22, 2), (2, 16, 2), (2, 15, 1), (2, 6, 1), (4, 300, 4)],
)
def test_curation_starts_a_process_per_core_from_16_mb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, mb: int, expected: int
) -> None:
    """A worker costs ~1.2 s of CPU to start: one process is as fast on 10,000 case-study rows (11 MB), the caller
    and a worker faster on 20,000 (22 MB) and above (measured: the lines cross near 11 MB)."""
    curation = CurationConfig.parse("near-dedup,quality")
    assert _worker_count(tmp_path, monkeypatch, cores, mb, curation) == expected
