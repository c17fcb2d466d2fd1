"""Verification through the Lambda API of the embedded AWS, and the `novaflow reward` CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import reward_lambda
from novaflow.aws import get_client
from novaflow.cli import app
from novaflow.errors import RewardError
from novaflow.local import LOCAL_BUCKET
from novaflow.local.aws import lambda_exec
from novaflow.reward.deploy import deploy_reward_lambda
from novaflow.reward.package import build_zip, code_sha256
from novaflow.reward.verify import verify_reward
from novaflow.settings import load_settings

NAME = "SageMaker-novaflow-reward"
ROWS = [
    {
        "id": f"r{i}",
        "messages": [{"role": "user", "content": f"question {i}"}],
        "reference_answer": ["HQ", "LQ_EDIT", "LQ_CLOSE"][i % 3],
    }
    for i in range(7)
]
PREDS = [
    {"prediction": "HQ", "gold": "HQ"},
    {"prediction": "The label is LQ_CLOSE", "gold": "LQ_EDIT"},
    {"prediction": "lq_edit", "gold": "LQ_EDIT"},
]


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_rows_from_s3_and_predictions_agree_local_and_lambda(aws: object, tmp_path: Path) -> None:
    deploy_reward_lambda(poll_seconds=0.01, settings=load_settings())
    get_client("s3", settings=load_settings()).put_object(
        Bucket=LOCAL_BUCKET, Key="data/rft.jsonl", Body=jsonl(ROWS).encode()
    )
    preds = tmp_path / "preds.jsonl"
    preds.write_text(jsonl(PREDS))
    result = verify_reward(
        rows=f"s3://{LOCAL_BUCKET}/data/rft.jsonl",
        predictions=preds,
        function_name=NAME,
        batch_size=3,
        settings=load_settings(),
    )
    assert result.ok, result.mismatches + result.problems
    table = [
        (r["source"], r["runner"], r["n"], r["mean"], r["share_max"], r["share_min"], r["invalid"])
        for r in result.table()
    ]
    assert table == [
        ("rft-rows:oracle", "local", 7, 1.0, 1.0, 0.0, 0),
        ("rft-rows:oracle", "lambda", 7, 1.0, 1.0, 0.0, 0),
        ("rft-rows:wrong-label", "local", 7, -1.0, 0.0, 1.0, 0),
        ("rft-rows:wrong-label", "lambda", 7, -1.0, 0.0, 1.0, 0),
        ("predictions", "local", 3, 0.3333, 0.6667, 0.3333, 0),
        ("predictions", "lambda", 3, 0.3333, 0.6667, 0.3333, 0),
    ]
    # every batch went through the Lambda API and left its log in CloudWatch (7 + 7 rows, 3 preds; batches of 3)
    streams = get_client("logs", settings=load_settings()).describe_log_streams(logGroupName=f"/aws/lambda/{NAME}")[
        "logStreams"
    ]
    assert len(streams) == 3 + 3 + 1


def test_a_deployed_zip_that_grades_differently_is_caught(aws: object, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(Path(reward_lambda.__file__).parent, src, ignore=shutil.ignore_patterns("__pycache__"))
    grader = src / "grader.py"
    grader.write_text(grader.read_text().replace("correct = predicted == gold", "correct = predicted != gold"))
    deploy_reward_lambda(poll_seconds=0.01, zip_bytes=build_zip(src), settings=load_settings())
    preds = tmp_path / "preds.jsonl"
    preds.write_text(jsonl(PREDS))
    result = verify_reward(predictions=preds, function_name=NAME, settings=load_settings())
    assert not result.ok and len(result.mismatches) == 3
    assert result.mismatches[0].startswith("predictions: sample 'pred-1' local 1.0 ")


def test_function_error_stops_verification_with_message_and_log(aws: object, tmp_path: Path) -> None:
    deploy_reward_lambda(poll_seconds=0.01, settings=load_settings())
    lambda_exec.inject_error(NAME, "reward backend down")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(jsonl(PREDS))
    with pytest.raises(RewardError, match=r"failed on samples 1-3 \(Unhandled\): .*reward backend down"):
        verify_reward(predictions=preds, function_name=NAME, settings=load_settings())


def test_cli_build_deploy_verify(aws: object, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "reward.zip"
    built = runner.invoke(app, ["reward", "build", "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert built.output.split("\t")[2] == f"CodeSha256 {code_sha256(out.read_bytes())}"
    assert out.read_bytes() == build_zip()
    deployed = runner.invoke(app, ["reward", "deploy", "--verbose-penalty", "0.25"])
    assert deployed.exit_code == 0, deployed.output
    assert json.loads(deployed.output)["arn"].endswith(f"function:{NAME}:1")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(jsonl(PREDS))
    verified = runner.invoke(app, ["reward", "verify", "--predictions", str(preds)])
    assert verified.exit_code == 0, verified.output
    lines = verified.output.splitlines()
    assert lines[0].split() == [
        "source",
        "runner",
        "n",
        "mean",
        "share_max",
        "share_min",
        "accuracy",
        "label_present",
        "invalid",
    ]
    assert lines[1].split() == ["predictions", "local", "3", "0.3333", "0.6667", "0.3333", "0.6667", "1.0", "0"]
    assert lines[2].split()[:2] == ["predictions", "lambda"] and lines[-1] == "reward verification: OK"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(jsonl([{"prediction": "HQ", "gold": "nonsense"}]))
    failed = runner.invoke(app, ["reward", "verify", "--predictions", str(bad), "--no-lambda", "--json"])
    assert failed.exit_code == 1
    assert json.loads(failed.output)["problems"] == [
        "predictions: 1 of 1 samples invalid (over 5%): reference_answer 'nonsense' names none (or several) of the "
        "labels HQ, LQ_EDIT, LQ_CLOSE (x1)"
    ]
