"""`data prepare --on sagemaker` against the embedded AWS: two Processing jobs whose instances run the command on
this machine give the local run's outputs byte for byte (data, rejected rows, report, manifest)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from novaflow.aws import get_client
from novaflow.backoff import Backoff
from novaflow.data.filters import CurationConfig
from novaflow.data.prepare import prepare_dataset
from novaflow.data.remote import prepare_on_sagemaker
from novaflow.data.samples import generate_stackoverflow_csv
from novaflow.data.sharded import read_frames
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.errors import DataError
from novaflow.settings import load_settings

FAST = Backoff(initial=0.2, factor=1.2, maximum=1.0, deadline=600)
FILES = ("train.jsonl", "rejected.jsonl", "report.json", "manifest.json")


def _input(tmp_path: Path) -> Path:
    """2,000 case-study rows (four CSV blocks, so several chunks per instance) plus planted near-copies across the
    blocks, a German question and a row that fails the quality filter."""
    path = generate_stackoverflow_csv(tmp_path / "so.csv", 2000, seed=5)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    extra = [dict(rows[10], Id="9001", Body=rows[10]["Body"] + " Thanks in advance!"),
             dict(rows[700], Id="9002", Body=rows[700]["Body"].replace(".", "!", 1)),
             dict(rows[3], Id="9003", Body="Wie kann ich eine Liste in Python sortieren, ohne Schleife?"),
             dict(rows[4], Id="9004", Body="short")]  # fmt: skip
    with path.open("a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writerows(extra)
    return path


@pytest.mark.slow
def test_on_sagemaker_gives_the_local_run_byte_for_byte(aws: object, tmp_path: Path) -> None:
    source = DatasetSource(path=str(_input(tmp_path)), columns=ColumnMap(query="Body", response="Y"))
    curation = CurationConfig.parse("dedup,near-dedup,quality,language=en")
    local = prepare_dataset(
        source, "sft", "nova-lite-2", tmp_path / "local", curation=curation, settings=load_settings()
    )
    assert set(local.report.filtered) == {"near-dedup", "quality", "language"}
    remote = prepare_on_sagemaker(
        source, "sft", "nova-lite-2", tmp_path / "remote", image_uri="novaflow:local", instances=3,
        curation=curation, wait=FAST, settings=load_settings(),
    )  # fmt: skip
    for name in FILES:
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert remote.report == local.report
    sagemaker = get_client("sagemaker", settings=load_settings())
    jobs = sagemaker.list_processing_jobs()["ProcessingJobSummaries"]
    names = sorted(j["ProcessingJobName"] for j in jobs)
    assert [n.rsplit("-", 1)[-1] for n in names] == ["merge", "shard"]
    shard = sagemaker.describe_processing_job(ProcessingJobName=next(n for n in names if n.endswith("shard")))
    assert shard["ProcessingJobStatus"] == "Completed"
    assert shard["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 3
    s3 = get_client("s3", settings=load_settings())
    settings = load_settings()
    bucket = settings.bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{settings.prefix}/prepare/")["Contents"]]
    assert sum(k.endswith(".chunks") and "/shards/" in k for k in keys) == 3  # one shard file per instance
    parts = sorted(k.rsplit("/", 1)[-1] for k in keys if "/input/" in k)
    assert parts == ["part-00000.chunks", "part-00001.chunks", "part-00002.chunks"]  # one input object per instance
    chunks_by_shard = []  # each instance transformed only the chunks of its own part: i, i + 3, ...
    for key in sorted(k for k in keys if "/shards/" in k):
        body = io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        chunks_by_shard.append([number for number, _ in read_frames(body) if number != "notes"])
    total = sum(map(len, chunks_by_shard))
    assert total >= 4 and chunks_by_shard == [list(range(i, total, 3)) for i in range(3)]
    inputs = {i["InputName"]: i["S3Input"] for i in shard["ProcessingInputs"]}
    assert inputs["input"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert inputs["spec"]["S3DataDistributionType"] == "FullyReplicated"


@pytest.mark.slow
def test_a_failing_processing_job_stops_the_run_with_its_reason(aws: object, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("Body,Y\nquestion,HQ\n", encoding="utf-8")
    source = DatasetSource(path=str(broken), columns=ColumnMap(query="Missing", response="Y"))
    with pytest.raises(DataError, match=r"processing job novaflow-prepare-.*-shard failed: AlgorithmError: exit code"):
        prepare_on_sagemaker(
            source,
            "sft",
            "nova-lite-2",
            tmp_path / "out",
            image_uri="novaflow:local",
            wait=FAST,
            settings=load_settings(),
        )


@pytest.mark.slow
def test_on_sagemaker_cuts_jsonl_records_into_parts_too(aws: object, tmp_path: Path) -> None:
    """The record path (rows that already carry ``messages``) crosses the part files as parsed records."""
    local = prepare_dataset(
        DatasetSource(path=str(_input(tmp_path)), columns=ColumnMap(query="Body", response="Y")),
        "sft",
        "nova-lite-2",
        tmp_path / "converse",
        settings=load_settings(),
    )
    source = DatasetSource(path=str(local.data_file), chunk_rows=300)  # several chunks per part
    curation = CurationConfig.parse("near-dedup")
    curated = prepare_dataset(
        source, "sft", "nova-lite-2", tmp_path / "local", curation=curation, settings=load_settings()
    )
    assert curated.report.filtered["near-dedup"] >= 2  # the planted near-copies (and the sample's own)
    prepare_on_sagemaker(
        source, "sft", "nova-lite-2", tmp_path / "remote", image_uri="novaflow:local", instances=2,
        curation=curation, wait=FAST, settings=load_settings(),
    )  # fmt: skip
    for name in FILES:
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("filters", ["", "quality,language=en"])
def test_instances_with_several_processes_give_the_local_run(aws: object, tmp_path: Path, filters: str) -> None:
    """Each instance transforms its share with two processes (the caller and a worker with filters, two workers
    without). Prompts repeated from the first two chunks at the end are counted as duplicates across instances and
    processes: without filters their keys are ``hash()``, which must share the instances' fixed seed."""
    path = generate_stackoverflow_csv(tmp_path / "so.csv", 2400, seed=8)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with path.open("a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writerows([*rows[:25], *rows[600:625]])  # chunk 0's and chunk 1's prompts again, in the last chunk
    source = DatasetSource(path=str(path), columns=ColumnMap(query="Body", response="Y"))
    curation = CurationConfig.parse(filters) if filters else None
    local = prepare_dataset(
        source, "sft", "nova-lite-2", tmp_path / "local", curation=curation, settings=load_settings()
    )
    assert local.report.duplicates >= 50
    prepare_on_sagemaker(
        source, "sft", "nova-lite-2", tmp_path / "remote", image_uri="novaflow:local", instances=2, workers=2,
        curation=curation, wait=FAST, settings=load_settings(),
    )  # fmt: skip
    for name in FILES:
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
