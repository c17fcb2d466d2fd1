"""Chunks in, transformed chunks out, in input order: in this process, or in worker processes for large files.

Reading stays in the calling process (pyarrow's CSV reader is fast C++ and keeps the row numbers exact), on a
thread of its own so the next block is parsed while this one is transformed. With workers a chunk sent to a worker
comes back as serialized lines plus the report's per-row numbers; with filters the caller also transforms chunks
itself whenever its workers are busy (:func:`_in_workers`). Results are consumed in submission order with a bounded
number in flight, so the output is the same bytes in the same order as the single-process path and memory stays
flat in rows. Small inputs never start workers: one costs about half a second of CPU to start, more than a small
file takes to prepare.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import pickle
import queue
import secrets
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from novaflow.catalog import DataFormat
from novaflow.data.columnar import ChunkOutput, ColumnarPlan, plan_columns, prompt_field, transform_chunk
from novaflow.data.loaders import Chunk, iter_chunks
from novaflow.data.message_rows import transform_records, uses_record_path
from novaflow.data.preferences import pair_columns
from novaflow.data.source import DatasetSource
from novaflow.errors import DataError

if TYPE_CHECKING:  # the filters load only when a run asks for them (start-up of a small `data prepare`)
    from novaflow.data.filters import CurationConfig

PARALLEL_MIN_BYTES = 160 << 20
"""Inputs smaller than this are prepared in one process: a worker costs ~0.6 s of CPU to start (pyarrow's import)
and every chunk crosses two pipes, more than a small file takes to prepare."""
PARALLEL_MIN_CORES = 3
"""Workers start only with a core to spare for the caller, which parses the CSV, pickles chunks, and hashes and
writes the output. On two cores that caller and two workers contend: 600,000 case-study rows (660 MB) took 11.2 s
in two workers against 8.5 s in one process with its reader thread (and half the CPU), so there one process wins."""
CURATION_PARALLEL_MIN_BYTES = 16 << 20
"""With curation filters, inputs from this size are prepared by a process per core: the caller and ``cores - 1``
workers. The filters' per-row work is compiled (novaflow/data/kernels.py), so a chunk costs several times its plain
transform, and a worker pays ~1.2 s of CPU to start (pyarrow, numba and its compiled kernels) besides pickling the
chunks it gets both ways. Measured with near-dedup,quality,language=en on the case study (2 cores, shared,
`--workers 1` and `--workers 2` alternated, best and median of 4): 6,000 rows (6.5 MB) 1.18/1.47 s in one process
against 1.27/1.77 s with a worker, 10,000 rows (11 MB) 1.37/1.49 s against 1.42/1.45 s, 20,000 rows (22 MB)
1.75/2.04 s against 1.67/1.69 s, 60,000 rows (66 MB) 3.61/3.82 s against 2.83/3.35 s: the two cross near 11 MB, and
one process takes half the memory there. (Before the caller took chunks itself, two workers crossed one process
near 38 MB.) One process with a thread pool (the kernels and CLD2 release the GIL) measured between one and two
processes at 60,000 and 600,000 rows, with the most memory, so it is not used."""
READ_AHEAD = 2
"""Chunks the reader thread keeps ready (bounded: memory stays flat in rows)."""
IN_FLIGHT_PER_WORKER = 2
"""Chunks queued per worker: enough to keep every core busy, few enough that memory stays bounded."""
IN_FLIGHT_WHILE_HELPING = 4
"""Chunks queued per worker when the caller transforms chunks too (filtered runs): a worker's queue must last
while the caller transforms one itself and hands on the outputs that came in meanwhile. With 2 the worker waited
for work (600,000 rows, 2 cores, alternated: 19.5-20.6 s with 2 against 17.8-18.9 s with 4, 18.4-19.7 s with 6
or 8); a queued filtered chunk is about 1 MB."""
PENDING_MAX = 64
"""Chunks submitted or transformed whose outputs are not handed on yet, at most: while a worker starts (~1 s),
a caller that helps transforms about 30 chunks whose outputs wait behind the worker's first; memory stays flat."""


@dataclass(frozen=True)
class ChunkJob:
    """Everything a worker needs to transform any chunk of one file (it pickles: sent once per worker)."""

    source: DatasetSource
    data_format: DataFormat
    nova_version: int
    multimodal: bool
    plan: ColumnarPlan | None = None
    """The column plan, decided on the first chunk; None on the record path (rows that carry ``messages``)."""
    pairs: dict[str, str] | None = None
    """DPO from a table: the prompt, chosen and rejected (and system) columns, decided on the first chunk."""
    curation: CurationConfig | None = None
    """The curation filters: row-local ones run here, with the chunk; duplicates are decided by the caller."""

    @property
    def curating(self) -> bool:
        return self.curation is not None and self.curation.enabled

    def run(self, chunk: Chunk) -> ChunkOutput:
        if self.plan is not None:
            output = transform_chunk(chunk, self.plan)
        else:
            output = transform_records(
                chunk,
                self.source.name,
                self.data_format,
                self.nova_version,
                self.multimodal,
                self.pairs,
                self.source.system_prompt,
                texts=self.curation is not None,
            )
        if self.curating:
            assert self.curation is not None
            from novaflow.data.filters import curate  # start-up: the filters load only when a run asks

            curate(output, self.curation, self.source.name, prompt_field(self.data_format))
        return output


@dataclass
class ChunkStream:
    """Iterate to get each chunk's :class:`ChunkOutput` in input order; ``notes`` are the plan's notes."""

    job: ChunkJob
    path: Path
    workers: int | None = None
    notes: list[str] = field(default_factory=list)
    used_workers: int = 0

    def __iter__(self) -> Iterator[ChunkOutput]:
        chunks = iter_chunks(self.job.source, self.path)
        first = next(chunks, None)
        if first is None:
            return
        job = self.planned(first)
        count = self._worker_count()
        self.used_workers = count if count > 1 else 0
        yield from transform_in_order(job, first, chunks, count)

    def planned(self, first: Chunk) -> ChunkJob:
        """The job for every chunk of this file, decided on its first chunk (column plan or DPO pairs); the plan's
        notes are added to :attr:`notes`."""
        job = self.job
        if job.data_format is DataFormat.DPO and "messages" not in first.columns:
            return dataclasses.replace(job, pairs=pair_columns(job.source, first.columns))
        if uses_record_path(job.data_format, first.columns):
            return job
        plan = plan_columns(job.source, job.data_format, job.nova_version, first.columns)
        self.notes.extend(plan.notes)
        return dataclasses.replace(job, plan=plan)

    def _worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        try:
            size = self.path.stat().st_size
        except OSError:
            return 1
        return process_count(size, self.job.curating)


def process_count(size: int, curating: bool) -> int:
    """Processes that transform an input of ``size`` bytes on this machine by default (the thresholds above)."""
    cores = available_cores()
    if curating and size >= CURATION_PARALLEL_MIN_BYTES and cores >= 2:
        return cores
    return cores - 1 if size >= PARALLEL_MIN_BYTES and cores >= PARALLEL_MIN_CORES else 1


def transform_in_order(job: ChunkJob, first: Chunk, rest: Iterator[Chunk], processes: int) -> Iterator[ChunkOutput]:
    """Every chunk's output, in input order, from ``processes`` processes (one: this one, the next chunk read on a
    thread meanwhile; more: :func:`_in_workers`, the caller among them when the job filters)."""
    chunks = read_ahead(rest, READ_AHEAD)
    if processes < 2:
        yield job.run(first)
        for chunk in chunks:
            yield job.run(chunk)
        return
    yield from _in_workers(job, first, chunks, processes, caller_helps=job.curating)


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def read_ahead(items: Iterator[Chunk], depth: int) -> Iterator[Chunk]:
    """``items`` in order, produced by a background thread up to ``depth`` ahead of the consumer.

    Parsing a CSV block is pyarrow C++ that releases the GIL, so the next block is read on the second core while
    this thread transforms the current one. An exception from the reader is raised here, at the chunk it stopped
    at; a consumer that stops early (an error downstream) stops the reader too.
    """
    box: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            offer(("error", exc))
            return
        offer(("end", None))

    reader = threading.Thread(target=produce, name="novaflow-chunk-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise cast(BaseException, value)
            yield cast(Chunk, value)
    finally:
        stop.set()
        reader.join(timeout=5)


class _Worker:
    """One ``python -m novaflow.data.workers`` process: chunks in on stdin, outputs back on stdout, in order.

    A plain subprocess rather than :mod:`multiprocessing`: it never re-imports the caller's ``__main__`` (a script
    without the ``if __name__ == "__main__"`` guard still works) and never forks a process that has threads (a
    flow run's has). A feeder thread writes chunks and a reader thread takes outputs in, so neither pipe can block
    both and the caller can see whether an output is there without waiting for it.
    """

    def __init__(self, job: ChunkJob, hash_seed: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "novaflow.data.workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        self.in_flight = 0
        """Chunks submitted whose output the caller has not taken yet."""
        self.inbox: queue.Queue[object] = queue.Queue()
        self.inbox.put(job)
        self.outbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.feeder = threading.Thread(target=self._feed, name="novaflow-chunk-feeder", daemon=True)
        self.feeder.start()
        self.reader = threading.Thread(target=self._read, name="novaflow-chunk-results", daemon=True)
        self.reader.start()

    def _feed(self) -> None:
        assert self.proc.stdin is not None
        try:
            while (item := self.inbox.get()) is not _DONE:
                _write_frame(self.proc.stdin, item)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):  # the worker died; take() reports it
            pass

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while (frame := _read_frame(self.proc.stdout)) is not None:
                self.outbox.put(frame)
        except (OSError, ValueError):  # the pipe was closed under the reader: the caller is done with this worker
            pass
        self.outbox.put(("exit", None))

    def submit(self, chunk: Chunk) -> None:
        self.in_flight += 1
        self.inbox.put(chunk)

    def take(self, wait: bool) -> ChunkOutput | None:
        """The oldest output not taken yet (None: not there yet and ``wait`` is False); a worker's exception is
        raised here, as is its death."""
        try:
            status, value = self.outbox.get(block=wait)
        except queue.Empty:
            return None
        if status == "exit":
            self.outbox.put((status, value))  # every later take reports the death too
            code = self.proc.wait()
            raise DataError(f"a data preparation worker exited with code {code}; run again with --workers 1")
        self.in_flight -= 1
        if status == "error":
            raise value
        return cast(ChunkOutput, value)

    def close(self) -> None:
        self.inbox.put(_DONE)
        self.feeder.join(timeout=30)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


_DONE = object()
_LENGTH = struct.Struct("<Q")


def _write_frame(stream: IO[bytes], item: object) -> None:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301 - our own worker's output, over a pipe we created


def _in_workers(
    job: ChunkJob, first: Chunk, rest: Iterator[Chunk], count: int, *, caller_helps: bool
) -> Iterator[ChunkOutput]:
    """``count`` processes transform the chunks; outputs come back in input order.

    ``caller_helps`` (filtered runs): ``count - 1`` workers, and this process transforms a chunk itself whenever
    every worker already has :data:`IN_FLIGHT_WHILE_HELPING` chunks - a filtered chunk costs several times what
    passing it on does, so the caller's spare time is worth a share, and one worker fewer saves its start and the
    pickling of the chunks the caller keeps. Its outputs wait for the earlier chunks' (at most
    :data:`PENDING_MAX` chunks in all). Otherwise ``count`` workers and the caller only parses, passes on and
    writes (without filters a chunk is cheap, and the caller's share of that work is what limits the run).

    Without filters, the duplicate count compares ``hash()`` of prompt texts across chunks, which is only
    meaningful within one seed, so all workers share one hash seed: the caller's own when ``PYTHONHASHSEED`` fixes
    it (a sharded run's instances all set it, so their shards' keys compare), else a random one; filtered chunks
    carry seed-free keys.
    """
    fixed = os.environ.get("PYTHONHASHSEED", "")
    seed = fixed if fixed.isdigit() else str(secrets.randbelow(2**32 - 1) + 1)
    workers = [_Worker(job, seed) for _ in range(count - 1 if caller_helps else count)]
    queued = IN_FLIGHT_WHILE_HELPING if caller_helps else IN_FLIGHT_PER_WORKER
    pending: collections.deque[_Worker | ChunkOutput | Exception] = collections.deque()

    def ready(wait: bool) -> Iterator[ChunkOutput]:
        """The outputs at the head of ``pending`` that are there (``wait``: the head's, waiting for it); a chunk's
        error is raised in its turn, as in one process."""
        while pending:
            head = pending[0]
            if isinstance(head, Exception):
                raise head
            output = head.take(wait) if isinstance(head, _Worker) else head
            if output is None:
                return
            pending.popleft()
            yield output
            wait = False

    try:
        for chunk in itertools.chain([first], rest):
            yield from ready(wait=False)
            while len(pending) >= PENDING_MAX:
                yield from ready(wait=True)
            idle = min(workers, key=lambda w: w.in_flight, default=None)
            while not caller_helps and idle is not None and idle.in_flight >= queued:
                yield from ready(wait=True)
                idle = min(workers, key=lambda w: w.in_flight)
            if idle is not None and idle.in_flight < queued:
                idle.submit(chunk)
                pending.append(idle)
            else:
                pending.append(_run_here(job, chunk))
        while pending:
            yield from ready(wait=True)
    finally:
        for worker in workers:
            worker.close()


def _run_here(job: ChunkJob, chunk: Chunk) -> ChunkOutput | Exception:
    """A chunk transformed by the caller: its output, or the exception to raise when its turn comes."""
    try:
        return job.run(chunk)
    except Exception as exc:  # raised after the earlier chunks' outputs, as in one process
        return exc


def _serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The worker's loop: the job first, then one output (or the exception) per chunk until stdin closes."""
    job = _read_frame(source)
    while (chunk := _read_frame(source)) is not None:
        try:
            _write_frame(sink, ("ok", job.run(chunk).packed()))
        except Exception as exc:  # sent back and raised where the caller reads this chunk's result
            _write_frame(sink, ("error", exc))


if __name__ == "__main__":
    # Frames go to the original stdout; anything a library prints goes to stderr instead of into a frame.
    frames = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, frames)
    frames.close()
