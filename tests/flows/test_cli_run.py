"""`novaflow run end-to-end`: the README's main command, at a small size, and its refusal without settings."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from novaflow.cli import app, main


def test_run_end_to_end_local_prints_stages_comparison_and_report(aws, tmp_path, monkeypatch) -> None:
    # `aws`: the CLI's own embedded server shares moto's in-process backends with the session's; reset them after.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "run",
            "end-to-end",
            "--local",
            "--sizes",
            "300,100,80",
            "--run-name",
            "cli-small",
            "--work-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "novaflow end-to-end run 'cli-small' finished in" in out
    for stage in (
        "data",
        "baseline",
        "sft",
        "post-sft",
        "reward-check",
        "reward-lambda",
        "rft",
        "post-rft",
        "compare",
        "gate",
        "deploy",
        "smoke",
        "cleanup",
        "report",
    ):
        assert f"{stage} " in out.split("stage times: ", 1)[1].splitlines()[0]
    header = next(line for line in out.splitlines() if line.startswith("metric "))
    assert header.split() == [
        "metric",
        "baseline",
        "post-sft",
        "post-rft",
        "post-sft",
        "vs",
        "baseline",
        "post-rft",
        "vs",
        "baseline",
    ]
    assert any(line.startswith("em ") for line in out.splitlines())
    assert f"report (local): {tmp_path / 'runs' / 'cli-small' / 'report.html'}" in out
    assert (tmp_path / "runs" / "cli-small" / "report.html").stat().st_size > 100_000  # plotly inline


def test_run_without_bucket_is_one_clear_line(monkeypatch, capsys) -> None:
    for key in list(os.environ):
        if key.startswith("NOVAFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setattr("sys.argv", ["novaflow", "run", "end-to-end"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: Setting 'bucket' is not set: export NOVAFLOW_BUCKET=... (or put it in .env, or pass "
        "--bucket where the command offers it)."
    )


def test_run_end_to_end_serverless_registers_each_stage_and_lists_it(aws, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["run", "end-to-end", "--local", "--sizes", "300,100,80", "--run-name", "cli-sls"]
    args += ["--work-dir", str(tmp_path / "runs"), "--platform", "serverless", "--accept-eula", "--stages", "sft"]
    result = CliRunner().invoke(app, [*args, "--skip", "deploy"])
    assert result.exit_code == 0, result.output
    import boto3

    sm = boto3.client("sagemaker")
    jobs = [j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]]
    assert len(jobs) == 3  # baseline, SFT, the evaluation after it: all serverless
    assert all("ServerlessJobConfig" in sm.describe_training_job(TrainingJobName=j) for j in jobs)
    listed = CliRunner().invoke(app, ["registry", "list", "--run-name", "cli-sls"])
    assert listed.exit_code == 0, listed.output
    assert "  v1  PendingManualApproval  stage sft" in listed.output
    refused = CliRunner().invoke(app, [*args[:-2], "--platform", "bedrock"])
    assert refused.exit_code == 2 and "'bedrock': use SMTJ or SERVERLESS" in refused.output
