"""`data prepare` beyond one machine: two SageMaker Processing jobs in the project's image.

The client cuts the input into chunks exactly as a local run does (:func:`split_input`) and writes one part file per
instance: chunk ``i`` goes to part ``i mod N``, and every part starts with the file's first chunk, from which each
instance plans the columns as a local run does. The parts are one S3 object each, and the first job reads them with
the ``ShardedByS3Key`` input distribution, so every instance downloads only its own part (not the whole input) and
transforms and filters only its chunks. It writes its chunks' outputs (the serialized rows, rejections, report
numbers, and the duplicate filters' keys and signatures) as one shard file. The second job, on one instance,
replays the shards' outputs in input order through the same writer as a local run, where exact and near duplicates
are decided across all shards at once - a second pass over the shards' keys and signatures. The outputs, rejected
rows and report are the local run's, byte for byte (``tests/aws/data/test_sharded.py`` runs both on one input
against the embedded AWS).

Both jobs run ``python -m novaflow.data.sharded {shard,merge}`` with the paths SageMaker mounts under
``/opt/ml/processing`` (docs/curation.md#beyond-one-machine).
"""

from __future__ import annotations

import argparse
import collections
import json
import pickle
import secrets
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from novaflow.catalog import DataFormat, get_model
from novaflow.data.columnar import ChunkOutput
from novaflow.data.filters import CurationConfig
from novaflow.data.loaders import Chunk, iter_chunks
from novaflow.data.prepare import ChunkReplay, prepare_dataset
from novaflow.data.source import DatasetSource
from novaflow.data.workers import ChunkJob, ChunkStream, process_count, transform_in_order
from novaflow.errors import DataError
from novaflow.settings import NovaflowSettings, load_settings

SHARD_FILE = "shard-{index:05d}.chunks"
PART_FILE = "part-{index:05d}.chunks"
SPEC_FILE = "spec.json"
CONTAINER = "/opt/ml/processing"
RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"
"""Where SageMaker tells a processing container its host name and the job's hosts."""
_LENGTH = struct.Struct("<Q")


class ShardSpec(BaseModel):
    """What both jobs need to prepare the data exactly as ``prepare_dataset`` would (sent as ``spec.json``)."""

    model_config = ConfigDict(extra="forbid")

    source: DatasetSource
    """The source as the user named it (its file name names rejected rows; the manifest records its path)."""
    data_format: str
    model: str
    strict: bool = False
    platform: str | None = None
    max_length: int | None = 8192
    curation: CurationConfig = Field(default_factory=CurationConfig)
    workers: int | None = Field(None, ge=1)
    """Processes per instance transforming its chunks (None: as a local run of the instance's share would use)."""


def _write_frame(stream: IO[bytes], item: object) -> None:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)


def read_frames(stream: IO[bytes]) -> Iterator[Any]:
    while len(head := stream.read(_LENGTH.size)) == _LENGTH.size:
        (size,) = _LENGTH.unpack(head)
        yield pickle.loads(stream.read(size))  # noqa: S301 - written by this job's first step, in the user's bucket


def split_input(source: DatasetSource, path: Path, parts: int, out_dir: Path) -> list[Path]:
    """Cut ``path`` into the chunks a local run reads and write them to ``parts`` part files (chunk ``i`` to part
    ``i mod parts``), each headed by the first chunk (the column plan is decided on it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / PART_FILE.format(index=i) for i in range(parts)]
    handles = [f.open("wb") for f in files]
    try:
        chunks = iter_chunks(source, path)
        first = next(chunks, None)
        for fh in handles:
            _write_frame(fh, ("first", first))
        if first is not None:
            for number, chunk in enumerate(_with_first(first, chunks)):
                _write_frame(handles[number % parts], (number, chunk))
    finally:
        for fh in handles:
            fh.close()
    return files


def prepare_shard(spec: ShardSpec, input_dir: Path, out_dir: Path, index: int) -> Path:
    """Transform and filter the chunks of the part files in ``input_dir`` (this instance's share of the input) with
    a process per core as a local run of that size would use (``spec.workers`` to choose), outputs in order."""
    fmt = DataFormat.of(spec.data_format)
    nova = get_model(spec.model)
    curating = spec.curation if spec.curation.enabled else None
    parts = sorted(input_dir.rglob("*.chunks"))
    stream = ChunkStream(ChunkJob(spec.source, fmt, nova.version, nova.multimodal, curation=curating), input_dir, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / SHARD_FILE.format(index=index)
    numbers: collections.deque[int] = collections.deque()
    plans: list[Chunk] = []

    def chunks() -> Iterator[Chunk]:
        """This instance's chunks in part order; their numbers queue up in ``numbers`` as they are read."""
        for part in parts:
            with part.open("rb") as source:
                for key, value in read_frames(source):
                    if key == "first":
                        if not plans and value is not None:
                            plans.append(value)
                        continue
                    numbers.append(key)
                    yield value

    with target.open("wb") as fh:
        mine = chunks()
        first = next(mine, None)
        if first is not None:
            job = stream.planned(plans[0])  # every part starts with the file's first chunk
            processes = spec.workers or process_count(sum(p.stat().st_size for p in parts), job.curating)
            for output in transform_in_order(job, first, mine, processes):
                _write_frame(fh, (numbers.popleft(), output.packed()))
        _write_frame(fh, ("notes", stream.notes))
    return target


def _with_first(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def merge_shards(spec: ShardSpec, shard_dir: Path, out_dir: Path, settings: NovaflowSettings) -> Path:
    """Replay every shard's chunk outputs in input order through ``prepare_dataset``'s writer."""
    outputs: dict[int, ChunkOutput] = {}
    notes: list[str] | None = None
    shards = sorted(shard_dir.rglob("shard-*.chunks"))
    if not shards:
        raise DataError(f"{shard_dir}: no shard files (shard-*.chunks) from the first job")
    for shard in shards:
        with shard.open("rb") as fh:
            for key, value in read_frames(fh):
                if key == "notes":
                    notes = value if notes is None else notes
                else:
                    outputs[key] = value
    missing = [i for i in range(len(outputs)) if i not in outputs]
    if missing:
        raise DataError(f"{shard_dir}: chunk {missing[0]} is in no shard; the first job did not finish every shard")
    replay = ChunkReplay([outputs[i] for i in range(len(outputs))], notes or [])
    prepared = prepare_dataset(
        spec.source,
        spec.data_format,
        spec.model,
        out_dir,
        spec.strict,
        platform=spec.platform,
        max_length=spec.max_length,
        curation=spec.curation,
        replay=replay,
        settings=settings,
    )
    return prepared.out_dir


def _current_host(resource_config: Path) -> tuple[int, int]:
    """(this instance's index, instance count) from SageMaker's resource config (one instance without it)."""
    if not resource_config.exists():
        return 0, 1
    config = json.loads(resource_config.read_text(encoding="utf-8"))
    hosts = sorted(config["hosts"])
    return hosts.index(config["current_host"]), len(hosts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m novaflow.data.sharded", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["shard", "merge"])
    parser.add_argument("--spec", default=f"{CONTAINER}/spec/{SPEC_FILE}")
    parser.add_argument("--input", default=f"{CONTAINER}/input")
    parser.add_argument("--out", default=f"{CONTAINER}/output")
    parser.add_argument("--resource-config", default=RESOURCE_CONFIG)
    args = parser.parse_args(argv)
    spec = ShardSpec.model_validate_json(Path(args.spec).read_bytes())
    if args.step == "shard":
        index, _ = _current_host(Path(args.resource_config))
        prepare_shard(spec, Path(args.input), Path(args.out), index)
    else:
        merge_shards(spec, Path(args.input), Path(args.out), load_settings())  # the job's entry point


def job_name(step: str, run: str) -> str:
    """``novaflow-prepare-<run>-<step>``: unique per run, so a retried submit finds its job instead of a twin."""
    return f"novaflow-prepare-{run}-{step}"[:63]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


if __name__ == "__main__":
    main()
