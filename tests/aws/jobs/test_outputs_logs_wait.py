"""Outputs, log tailing and waiting against the embedded AWS and the Nova emulator."""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest

from novaflow.aws import get_client
from novaflow.errors import EvaluationError, JobError
from novaflow.jobs.logs import LOG_GROUP, LogTailer, metrics_frame
from novaflow.jobs.outputs import locate_eval_output, resolve_checkpoint
from novaflow.jobs.poll import wait_for_job
from novaflow.jobs.submit import submit_training_job
from novaflow.settings import load_settings
from tests.aws.jobs.conftest import put_jsonl, sft_spec

OUT = "s3://novaflow-local/out"
CKPT = "s3://customer-escrow-123456789012-smtj-abc/job-1/outputs/checkpoints"


def put(key: str, body: bytes) -> None:
    get_client("s3", settings=load_settings()).put_object(Bucket="novaflow-local", Key=key, Body=body)


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("out/job-1/manifest.json", json.dumps({"checkpoint_s3_bucket": CKPT}).encode()),
        ("out/job-1/output/output/manifest.json", json.dumps({"checkpoint_s3_path": CKPT}).encode()),
        (
            "out/job-1/output/output.tar.gz",
            tar_gz(
                {
                    "manifest.json": json.dumps({"checkpoint_s3_bucket": CKPT}).encode(),
                    "step_wise_training_metrics.csv": b"step_number,epoch_number,training_loss\n1,0,0.5\n",
                }
            ),
        ),
    ],
)
def test_checkpoint_resolved_in_all_three_layouts(aws, key: str, body: bytes) -> None:
    put(key, body)
    assert resolve_checkpoint(OUT, "job-1", settings=load_settings()) == CKPT


def test_missing_or_bad_manifest_says_where_it_looked(aws) -> None:
    with pytest.raises(JobError) as info:
        resolve_checkpoint(OUT, "job-2", settings=load_settings())
    assert str(info.value).splitlines()[1:4] == [
        "  - s3://novaflow-local/out/job-2/manifest.json",
        "  - s3://novaflow-local/out/job-2/output/output/manifest.json",
        "  - s3://novaflow-local/out/job-2/output/output.tar.gz",
    ]
    put("out/job-3/manifest.json", b'{"other": 1}')
    with pytest.raises(JobError, match=r"has no checkpoint: expected key checkpoint_s3_bucket .*\['other'\]"):
        resolve_checkpoint(OUT, "job-3", settings=load_settings())


def test_eval_output_archive_or_prefix(aws) -> None:
    put("out/ev-1/output/output.tar.gz", tar_gz({"ev-1/run/eval_results/results_2025.json": b"{}"}))
    assert (
        locate_eval_output(OUT, "ev-1", settings=load_settings()) == "s3://novaflow-local/out/ev-1/output/output.tar.gz"
    )
    put("out/ev-2/output/output/evjob/eval_results/results_2025-07-10T12-34-56.json", b"{}")
    assert locate_eval_output(OUT, "ev-2", settings=load_settings()) == "s3://novaflow-local/out/ev-2/output/output/"
    with pytest.raises(EvaluationError, match=r"No evaluation output for job ev-3"):
        locate_eval_output(OUT, "ev-3", settings=load_settings())


def test_tailer_reads_every_stream_once_and_parses_metrics(aws) -> None:
    logs = get_client("logs", settings=load_settings())
    logs.create_log_group(logGroupName=LOG_GROUP)
    now = int(time.time() * 1000)
    for stream in ("job-9/algo-1-1700000000", "job-9/algo-2-1700000000", "job-99/algo-1-1700000000"):
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="job-9/algo-1-1700000000",
        logEvents=[
            {
                "timestamp": now,
                "message": "Training epoch 0, iteration 1/9 | lr: 1e-05 | global_step: 1 | reduced_train_loss: 0.9",
            },
            {"timestamp": now + 1, "message": "line two\nline three"},
        ],
    )
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="job-99/algo-1-1700000000",
        logEvents=[{"timestamp": now, "message": "another job"}],
    )
    tailer = LogTailer("job-9", settings=load_settings())
    first = tailer.poll()
    assert [(x.stream, x.message) for x in first] == [
        ("job-9/algo-1-1700000000", first[0].message),
        ("job-9/algo-1-1700000000", "line two"),
        ("job-9/algo-1-1700000000", "line three"),
    ]
    assert tailer.poll() == []
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="job-9/algo-2-1700000000",
        logEvents=[
            {
                "timestamp": now + 2,
                "message": "Training epoch 0, iteration 2/9 | lr: 9e-06 | global_step: 2 | reduced_train_loss: 0.7",
            }
        ],
    )
    second = tailer.poll()
    assert [x.stream for x in second] == ["job-9/algo-2-1700000000"]
    frame = metrics_frame(x.message for x in first + second)
    assert frame.to_dict("list") == {"step": [1, 2], "loss": [0.9, 0.7], "lr": [1e-05, 9e-06]}


def test_tailer_without_log_group_returns_nothing(aws) -> None:
    assert LogTailer("no-such-job", settings=load_settings()).poll() == []


def test_wait_sees_emulated_failure_with_reason_and_log_tail(aws) -> None:
    put_jsonl("data/train.jsonl", 40)
    record = submit_training_job(sft_spec(), settings=load_settings())
    aws.control.fail_job(record.name, "AlgorithmError: CUDA out of memory")
    with pytest.raises(JobError) as info:
        wait_for_job(
            record.name, poll_seconds=0.05, max_poll_seconds=0.2, max_wait_seconds=30, settings=load_settings()
        )
    assert info.value.status == "Failed" and info.value.failure_reason == "AlgorithmError: CUDA out of memory"
    assert any(record.name in line for line in info.value.log_tail)


def test_wait_sees_emulated_stop_distinct_from_failure(aws) -> None:
    put_jsonl("data/train.jsonl", 40)
    record = submit_training_job(sft_spec(), settings=load_settings())
    aws.control.stall_job(record.name)
    with pytest.raises(JobError, match=r"did not finish within 0.3 s .*stop requested"):
        wait_for_job(
            record.name,
            poll_seconds=0.05,
            max_poll_seconds=0.1,
            max_wait_seconds=0.3,
            stop_on_deadline=True,
            settings=load_settings(),
        )
    with pytest.raises(JobError, match=r"was stopped") as info:
        wait_for_job(
            record.name, poll_seconds=0.05, max_poll_seconds=0.1, max_wait_seconds=30, settings=load_settings()
        )
    assert info.value.status == "Stopped"


def test_wait_reaches_completed_on_the_emulator(aws) -> None:
    pytest.importorskip("novaflow.local.emulator.emulate_sft")
    put_jsonl("data/train.jsonl", 40)
    record = submit_training_job(
        sft_spec(overrides={"max_steps": 4, "global_batch_size": 32}), settings=load_settings()
    )
    seen: list[str] = []
    done = wait_for_job(
        record.name,
        poll_seconds=0.05,
        max_poll_seconds=0.2,
        max_wait_seconds=60,
        on_log_line=lambda line: seen.append(line.message),
        record=record,
        settings=load_settings(),
    )
    assert done.status.value == "Completed" and done.spec_hash == record.spec_hash
    assert seen, "the emulator's log lines were streamed"
    assert resolve_checkpoint(record.output_uri, record.name, settings=load_settings()).startswith(
        "s3://customer-escrow-"
    )
