"""The first Processing job's step (``python -m novaflow.data.sharded shard``) on this machine: with several
processes it writes the same chunk outputs, numbered the same, as with one."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from novaflow.data import loaders, workers
from novaflow.data.filters import CurationConfig
from novaflow.data.samples import generate_stackoverflow_csv
from novaflow.data.sharded import ShardSpec, prepare_shard, read_frames, split_input
from novaflow.data.source import ColumnMap, DatasetSource


@pytest.mark.slow
@pytest.mark.parametrize("filters", ["", "quality,language=en"])
def test_a_shard_with_two_processes_writes_what_one_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: str
) -> None:
    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", 16 << 10)  # many chunks from a small file
    data = generate_stackoverflow_csv(tmp_path / "so.csv", 800, 3, broken=True)
    with data.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with data.open("w", encoding="utf-8", newline="") as fh:  # every fourth row twice: repeated prompts in each part
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(row for i, row in enumerate(rows) for _ in range(1 + (i % 4 == 0)))
    source = DatasetSource(path=str(data), columns=ColumnMap(query="Body", response="Y"))
    split_input(source, data, 2, tmp_path / "parts")
    (tmp_path / "mine").mkdir()
    (tmp_path / "parts" / "part-00001.chunks").rename(tmp_path / "mine" / "part-00001.chunks")  # instance 1's share
    spec = ShardSpec(source=source, data_format="sft", model="nova-lite-2", curation=CurationConfig.parse(filters))
    one = prepare_shard(spec, tmp_path / "mine", tmp_path / "one", 1)
    sent: list[int] = []
    submit = workers._Worker.submit

    def spy(self: workers._Worker, chunk: loaders.Chunk) -> None:
        sent.append(chunk.rows[0])
        submit(self, chunk)

    monkeypatch.setattr(workers._Worker, "submit", spy)
    two = prepare_shard(spec.model_copy(update={"workers": 2}), tmp_path / "mine", tmp_path / "two", 1)
    with one.open("rb") as a, two.open("rb") as b:
        alone, shared = list(read_frames(a)), list(read_frames(b))
    numbers = [key for key, _ in alone]
    assert len(numbers) > 10 and numbers == [*range(1, 2 * len(numbers) - 2, 2), "notes"]  # this part's chunks
    assert [key for key, _ in shared] == numbers and len(sent) >= 2
    outputs = [(a, b) for (key, a), (_, b) in zip(alone, shared, strict=True) if key != "notes"]
    assert sum(len(a.rejected) for a, _ in outputs) > 0 and alone[-1] == shared[-1]
    keys = [(x, y) for a, b in outputs for x, y in zip(a.keys, b.keys, strict=True)]
    if not filters:  # hash() in this process against the workers' seed: the same prompts share a key on both sides
        assert len(set(keys)) == len({x for x, _ in keys}) == len({y for _, y in keys}) < len(keys)
        for a, b in outputs:
            a.keys = b.keys
    assert [b for _, b in outputs] == [a for a, _ in outputs]
