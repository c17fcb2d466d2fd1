"""`data prepare` beyond one machine: two SageMaker Processing jobs in the project's image.

The first job runs on N instances. Every instance reads the same input (chunking is deterministic, so every
instance cuts the file into the same chunks and plans the columns from the same first chunk) and transforms and
filters only its share - chunk ``i`` belongs to instance ``i mod N``, so each instance's work is one shard of the
rows. It writes its chunks' outputs (the serialized rows, rejections, report numbers, and the duplicate filters'
keys and signatures) as one shard file. The second job, on one instance, replays the shards' outputs in input
order through the same writer as a local run, where exact and near duplicates are decided across all shards at
once from those keys and signatures. The outputs, rejected rows and report are the local run's, byte for byte
(``tests/aws/data/test_sharded.py`` runs both on one input against the embedded AWS).

Both jobs run ``python -m novaflow.data.sharded {shard,merge}`` with the paths SageMaker mounts under
``/opt/ml/processing`` (docs/curation.md#beyond-one-machine).
"""

from __future__ import annotations

import argparse
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
from novaflow.data.loaders import iter_chunks
from novaflow.data.prepare import ChunkReplay, prepare_dataset
from novaflow.data.source import DatasetSource
from novaflow.data.workers import ChunkJob, ChunkStream
from novaflow.errors import DataError
from novaflow.settings import NovaflowSettings, load_settings

SHARD_FILE = "shard-{index:05d}.chunks"
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


def _write_frame(stream: IO[bytes], item: object) -> None:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)


def _read_frames(stream: IO[bytes]) -> Iterator[Any]:
    while len(head := stream.read(_LENGTH.size)) == _LENGTH.size:
        (size,) = _LENGTH.unpack(head)
        yield pickle.loads(stream.read(size))  # noqa: S301 - written by this job's first step, in the user's bucket


def prepare_shard(spec: ShardSpec, input_file: Path, out_dir: Path, index: int, count: int) -> Path:
    """Transform and filter the chunks of ``input_file`` that belong to instance ``index`` of ``count``."""
    fmt = DataFormat.of(spec.data_format)
    nova = get_model(spec.model)
    local = spec.source.model_copy(update={"path": str(input_file)})
    curating = spec.curation if spec.curation.enabled else None
    stream = ChunkStream(ChunkJob(local, fmt, nova.version, nova.multimodal, curation=curating), input_file, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / SHARD_FILE.format(index=index)
    with target.open("wb") as fh:
        chunks = iter_chunks(local, input_file)
        first = next(chunks, None)
        if first is None:
            _write_frame(fh, ("notes", []))
            return target
        job = stream.planned(first)
        _write_frame(fh, ("notes", stream.notes))
        for number, chunk in enumerate(_with_first(first, chunks)):
            if number % count == index:
                _write_frame(fh, (number, job.run(chunk).packed()))
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
            for key, value in _read_frames(fh):
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


def _only_file(directory: Path) -> Path:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    if len(files) != 1:
        raise DataError(f"{directory}: expected the one input file, found {len(files)}")
    return files[0]


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
        index, count = _current_host(Path(args.resource_config))
        prepare_shard(spec, _only_file(Path(args.input)), Path(args.out), index, count)
    else:
        merge_shards(spec, Path(args.input), Path(args.out), load_settings())  # the job's entry point


def job_name(step: str, run: str) -> str:
    """``novaflow-prepare-<run>-<step>``: unique per run, so a retried submit finds its job instead of a twin."""
    return f"novaflow-prepare-{run}-{step}"[:63]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


if __name__ == "__main__":
    main()
