"""Batch inference against the embedded AWS: a gen_qa evaluation job on SMTJ and a Bedrock batch job, each
answered by the stand-in model, read back into one row per input row in input order."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from novaflow.aws import get_client
from novaflow.data.samples import generate_stackoverflow_csv
from novaflow.data.source import ColumnMap, DatasetSource
from novaflow.inference.batch import BatchSpec, plan_batch, run_batch_inference, submit_batch
from novaflow.settings import load_settings
from tests.aws.helpers import LABELS, SYSTEM
from tests.aws.inference.conftest import train_checkpoint

FAST = {"poll_seconds": 0.05, "max_poll_seconds": 0.1, "max_wait_seconds": 120}


def _ids(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [row["Id"] for row in csv.DictReader(fh)]


def _results(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_a_checkpoint_answers_5000_rows_in_input_order_with_their_ids(aws: object, tmp_path: Path) -> None:
    checkpoint = train_checkpoint("bi-ckpt", {"python": "HQ", "html": "LQ_EDIT", "sql": "LQ_CLOSE"})
    data = generate_stackoverflow_csv(tmp_path / "so.csv", 5000, seed=11)
    spec = BatchSpec(
        data=DatasetSource(path=str(data), columns=ColumnMap(query="Title+Body", id="Id"), system_prompt=SYSTEM),
        model="nova-lite-2",
        checkpoint_uri=checkpoint,
        out_dir=str(tmp_path / "out"),
    )
    outcome = run_batch_inference(spec, load_settings(), **FAST)

    rows = _results(tmp_path / "out")
    assert len(rows) == 5000
    assert [r["id"] for r in rows] == _ids(data)
    assert [r["row"] for r in rows] == list(range(1, 5001))
    # The fine-tuned stand-in answers with the labels it was trained on, nothing else (the base model rambles).
    assert {r["response"] for r in rows} <= set(LABELS) and len({r["response"] for r in rows}) > 1
    assert all(r["error"] is None and r["output_tokens"] >= 1 for r in rows)
    table = pq.read_table(tmp_path / "out" / "results.parquet")
    assert table.num_rows == 5000 and table.column("id").to_pylist() == _ids(data)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["rows"], summary["answered"], summary["failures"]) == (5000, 5000, 0)
    assert summary["input_tokens"] == sum(r["input_tokens"] for r in rows)
    assert summary["model"] == f"checkpoint {checkpoint}" and outcome.record.name == summary["job"]


def _small_csv(path: Path) -> Path:
    rows = [
        {"qid": "a1", "question": "What is 2 + 3?", "answer": "5", "topic": "math"},
        {"qid": "a2", "question": "", "answer": "x", "topic": "empty"},
        {"qid": "a3", "question": "Name a colour.", "answer": "red", "topic": "words"},
        {"qid": "a1", "question": "Duplicate id row", "answer": "y", "topic": "dup"},
        {"qid": "a5", "question": "What is 10 - 4?", "answer": "6", "topic": "math"},
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_every_input_row_is_in_the_results_and_refused_rows_keep_their_reasons(aws: object, tmp_path: Path) -> None:
    data = _small_csv(tmp_path / "qa.csv")
    spec = BatchSpec(
        data=DatasetSource(
            path=str(data), columns=ColumnMap(query="question", id="qid", response="answer", metadata=("topic",))
        ),
        model="nova-lite-2",
        out_dir=str(tmp_path / "out"),
    )
    run_batch_inference(spec, load_settings(), **FAST)

    rows = _results(tmp_path / "out")
    assert [(r["row"], r["id"]) for r in rows] == [(1, "a1"), (2, "a2"), (3, "a3"), (4, "a1"), (5, "a5")]
    assert [r["reference"] for r in rows] == ["5", None, "red", None, "6"]
    assert rows[0]["metadata"] == {"topic": "math"} and rows[2]["metadata"] == {"topic": "words"}
    assert [r["error"] for r in rows] == [
        None,
        "query: empty query in column 'question'",
        None,
        "id: duplicate id 'a1' (first used at row 1)",
        None,
    ]
    assert all(isinstance(rows[i]["response"], str) and rows[i]["response"] for i in (0, 2, 4))
    failures = [json.loads(x) for x in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert failures == [
        {"row": 2, "id": "a2", "field": "query", "reason": "empty query in column 'question'"},
        {"row": 4, "id": "a1", "field": "id", "reason": "duplicate id 'a1' (first used at row 1)"},
    ]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["rows"], summary["answered"], summary["failures"]) == (5, 3, 2)
    assert summary["cost"] is not None and summary["currency"] == "USD"
    assert summary["cost_basis"].startswith("ESTIMATE: 1 x ml.p5.48xlarge x ") and summary["cost_basis"].endswith(
        " s at 55.04/h"
    )

    # Money: the same model over the same rows is the same job; a second submit attaches instead of paying twice.
    again = submit_batch(plan_batch(spec, tmp_path / "again", settings=load_settings()), settings=load_settings())
    assert again.attached and again.name == summary["job"]


def test_a_base_model_on_bedrock_batch_returns_rows_in_input_order(aws: object, tmp_path: Path) -> None:
    data = generate_stackoverflow_csv(tmp_path / "so.csv", 300, seed=2)
    spec = BatchSpec(
        data=DatasetSource(path=str(data), columns=ColumnMap(query="Body", id="Id"), system_prompt=SYSTEM),
        model="nova-lite-2",
        platform="BEDROCK",
        out_dir=str(tmp_path / "out"),
    )
    outcome = run_batch_inference(spec, load_settings(), **FAST)

    rows = _results(tmp_path / "out")
    assert [r["id"] for r in rows] == _ids(data)
    assert all(r["error"] is None and r["response"] for r in rows)
    # Bedrock's own files: the output lines are not in input order, and the manifest counts every record.
    arn = outcome.record.arn
    assert arn is not None
    s3 = get_client("s3", settings=load_settings())
    prefix = f"novaflow/batch/output/{arn.rsplit('/', 1)[-1]}/"
    keys = sorted(
        o["Key"][len(prefix) :] for o in s3.list_objects_v2(Bucket="novaflow-local", Prefix=prefix)["Contents"]
    )
    assert keys == ["manifest.json.out", "records.jsonl.out"]
    lines = s3.get_object(Bucket="novaflow-local", Key=prefix + "records.jsonl.out")["Body"].read().splitlines()
    record_ids = [json.loads(line)["recordId"] for line in lines]
    assert record_ids != sorted(record_ids) and sorted(record_ids) == [f"{n:011d}" for n in range(1, 301)]
    manifest = json.loads(s3.get_object(Bucket="novaflow-local", Key=prefix + "manifest.json.out")["Body"].read())
    assert manifest["totalRecordCount"] == manifest["successRecordCount"] == 300
    assert manifest["inputTokenCount"] == sum(r["input_tokens"] for r in rows)
    assert manifest["outputTokenCount"] == sum(r["output_tokens"] for r in rows)
    job = get_client("bedrock", settings=load_settings()).get_model_invocation_job(jobIdentifier=arn)
    assert job["status"] == "Completed" and job["successRecordCount"] == 300


def test_a_custom_model_on_bedrock_batch_is_refused_in_the_dry_run_with_one_line(
    aws: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from novaflow.cli import main

    data = _small_csv(tmp_path / "qa.csv")
    args = ["infer", "batch", str(data), "--map", "query=question", "--map", "id=qid", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--platform", "bedrock", "--checkpoint", "s3://escrow/job/outputs/checkpoints", "--dry-run"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: Bedrock batch inference does not serve custom Nova models (AWS lists custom-model support for Nova "
        "batch inference as N/A); run it as a gen_qa evaluation job instead (--platform SMTJ): "
        "s3://escrow/job/outputs/checkpoints is a trained model"
    ]
    assert get_client("bedrock", settings=load_settings()).list_model_invocation_jobs()["invocationJobSummaries"] == []
    # The same rows with the base model pass the dry run, which uploads and starts nothing.
    with pytest.raises(SystemExit) as passed:
        main([*args, "--platform", "bedrock", "--dry-run"])
    assert passed.value.code == 0
    out = capsys.readouterr().out
    assert (
        out.startswith("batch inference nova-lite-2-batch-")
        and " on BEDROCK: base model nova-lite-2 over 3 rows" in out
    )
    assert get_client("bedrock", settings=load_settings()).list_model_invocation_jobs()["invocationJobSummaries"] == []
    listed = get_client("s3", settings=load_settings()).list_objects_v2(
        Bucket="novaflow-local", Prefix="novaflow/batch/"
    )
    assert listed.get("KeyCount") == 0


def test_the_embedded_bedrock_refuses_a_custom_model_and_answers_a_repeated_token_with_the_first_job(
    aws: object,
) -> None:
    from botocore.exceptions import ClientError

    bedrock = get_client("bedrock", settings=load_settings())
    request = {
        "jobName": "batch-one",
        "roleArn": "arn:aws:iam::123456789012:role/novaflow-local",
        "clientRequestToken": "tok1",
        "modelId": "amazon.nova-2-lite-v1:0",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://novaflow-local/none/"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://novaflow-local/out/"}},
    }
    first = bedrock.create_model_invocation_job(**request)["jobArn"]
    assert bedrock.create_model_invocation_job(**request)["jobArn"] == first
    with pytest.raises(ClientError) as refused:
        bedrock.create_model_invocation_job(
            **{
                **request,
                "jobName": "batch-two",
                "clientRequestToken": "tok2",
                "modelId": "arn:aws:bedrock:us-east-1:123456789012:custom-model/nova-sft",
            }
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "custom model" in refused.value.response["Error"]["Message"]


def test_a_runs_deployed_winner_is_its_latest_approved_version(aws: object, tmp_path: Path) -> None:
    from novaflow.errors import ConfigError
    from novaflow.inference.batch import resolve_model_path
    from novaflow.registry.packages import APPROVED, REJECTED, default_group, register_checkpoint, set_approval

    group = default_group("nova-lite-2", "winners")
    spec = BatchSpec(
        data=DatasetSource(path=str(_small_csv(tmp_path / "qa.csv")), columns=ColumnMap(query="question")),
        model="nova-lite-2",
        run_name="winners",
        out_dir=str(tmp_path / "out"),
    )
    with pytest.raises(ConfigError, match=f"Run 'winners' has no deployed winner: Model package group {group} does"):
        resolve_model_path(spec, settings=load_settings())
    kept = register_checkpoint(
        group, "s3://escrow/sft/outputs/checkpoints", model="nova-lite-2", job_name="sft", settings=load_settings()
    )
    later = register_checkpoint(
        group, "s3://escrow/rft/outputs/checkpoints", model="nova-lite-2", job_name="rft", settings=load_settings()
    )
    set_approval(kept.arn, APPROVED, "gate passed", settings=load_settings())
    set_approval(later.arn, REJECTED, "gate refused", settings=load_settings())
    assert resolve_model_path(spec, settings=load_settings()) == "s3://escrow/sft/outputs/checkpoints"
    by_package = spec.model_copy(update={"run_name": None, "model_package_arn": later.arn})
    assert resolve_model_path(by_package, settings=load_settings()) == "s3://escrow/rft/outputs/checkpoints"


def test_bedrock_writes_an_error_line_for_a_bad_record_and_the_job_ends_partially_completed(aws: object) -> None:
    from novaflow.jobs.invocation_jobs import InvocationJobBackend

    good = {"recordId": "00000000001", "modelInput": {"messages": [{"role": "user", "content": [{"text": "2+2?"}]}]}}
    bad = {"recordId": "00000000002", "modelInput": {"messages": []}}
    s3 = get_client("s3", settings=load_settings())
    s3.put_object(Bucket="novaflow-local", Key="bb/in/records.jsonl", Body=f"{json.dumps(good)}\n{json.dumps(bad)}\n")
    arn = get_client("bedrock", settings=load_settings()).create_model_invocation_job(
        jobName="partial",
        roleArn="arn:aws:iam::123456789012:role/novaflow-local",
        modelId="us.amazon.nova-2-lite-v1:0",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": "s3://novaflow-local/bb/in/"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://novaflow-local/bb/out/"}},
    )["jobArn"]
    from novaflow.jobs.poll import wait_for_job

    done = wait_for_job(
        "partial",
        platform="BEDROCK",
        backend=InvocationJobBackend(settings=load_settings()),
        poll_seconds=0.05,
        max_poll_seconds=0.1,
        settings=load_settings(),
    )
    assert done.status.value == "Completed" and done.arn == arn
    state = InvocationJobBackend(settings=load_settings()).describe("partial")
    assert state is not None and state.raw_status == "PartiallyCompleted"
    assert (state.raw["successRecordCount"], state.raw["errorRecordCount"]) == (1, 1)
    key = f"bb/out/{arn.rsplit('/', 1)[-1]}/records.jsonl.out"
    lines = [json.loads(x) for x in s3.get_object(Bucket="novaflow-local", Key=key)["Body"].read().splitlines()]
    errors = {x["recordId"]: x.get("error") for x in lines}
    assert errors == {
        "00000000001": None,
        "00000000002": {"errorCode": 400, "errorMessage": "Malformed input request: messages must hold a user turn"},
    }


def test_a_cancelled_runs_bedrock_batch_job_is_stopped_by_its_ledger(aws: object, tmp_path: Path) -> None:
    from novaflow.jobs.invocation_jobs import InvocationJobBackend
    from novaflow.local.emulator import jobstate
    from novaflow.runs.ledger import BEDROCK_BATCH, register_job, stop_jobs_of_run

    spec = BatchSpec(
        data=DatasetSource(path=str(_small_csv(tmp_path / "qa.csv")), columns=ColumnMap(query="question", id="qid")),
        model="nova-lite-2",
        platform="BEDROCK",
        out_dir=str(tmp_path / "out"),
    )
    saved = jobstate.Timing.seconds
    jobstate.Timing.seconds = 60.0  # the emulated job runs until stopped
    try:
        record = submit_batch(plan_batch(spec, tmp_path / "in", settings=load_settings()), settings=load_settings())
        register_job("run-1", record.name, platform=BEDROCK_BATCH, stage="batch-inference", settings=load_settings())
        assert stop_jobs_of_run("run-1", settings=load_settings()) == [record.name]
        assert (
            stop_jobs_of_run("run-1", settings=load_settings()) == []
        )  # safe to run twice: a stopping job is left alone
    finally:
        jobstate.Timing.seconds = saved
    backend = InvocationJobBackend(settings=load_settings())
    from novaflow.backoff import Backoff, poll_until

    final = poll_until(
        lambda: backend.describe(record.name),
        lambda s: s is not None and s.status.terminal,
        backoff=Backoff(initial=0.05, maximum=0.1, deadline=30),
    )
    assert final.value is not None and final.value.raw_status == "Stopped"
