"""`novaflow data ...` as a user types it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from novaflow.cli import app
from novaflow.cli.data import without_pydantic_plugins
from novaflow.data.samples import SAMPLE_CSV
from novaflow.errors import DataError

runner = CliRunner()


def test_prepare_eval_writes_the_four_files(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            str(SAMPLE_CSV),
            "--method",
            "eval",
            "--model",
            "nova-lite-2",
            "--map",
            "query=Body",
            "--map",
            "response=Y",
            "--system",
            "Label only.",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gen_qa.jsonl",
        "manifest.json",
        "rejected.jsonl",
        "report.json",
    ]
    assert f"wrote {tmp_path / 'gen_qa.jsonl'}: 5005 rows (5010 read)" in result.output
    assert "rejected 5 rows" in result.output
    first = json.loads((tmp_path / "gen_qa.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert list(first) == ["query", "response", "system"] and first["system"] == "Label only."


def test_prepare_strict_fails(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            str(SAMPLE_CSV),
            "--method",
            "sft",
            "--model",
            "nova-lite-2",
            "--map",
            "query=Body",
            "--map",
            "response=Y",
            "--out",
            str(tmp_path),
            "--strict",
        ],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, DataError)
    assert "10 row(s) rejected in strict mode" in str(result.exception)


def test_prepare_rejects_unknown_model(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["data", "prepare", str(SAMPLE_CSV), "--method", "sft", "--model", "gpt", "--out", str(tmp_path)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "use one of nova-micro, nova-lite, nova-pro, nova-lite-2" in result.output


def test_split_and_profile(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "data",
            "split",
            str(SAMPLE_CSV),
            "--sizes",
            "3500,500,700",
            "--stratify",
            "Y",
            "--seed",
            "0",
            "--augment",
            "rft=sft",
            "--require",
            "Body,Y",
            "--leakage",
            "keep",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "near-copies >= 0.8 (keep)" in result.output
    assert f"rft: 4200 rows -> {tmp_path / 'rft.csv'}" in result.output
    profile = runner.invoke(
        app, ["data", "profile", str(tmp_path / "eval.csv"), "--map", "query=Body", "--map", "response=Y", "--json"]
    )
    assert profile.exit_code == 0, profile.output
    report = json.loads(profile.output)
    assert report["rows_in"] == report["rows_out"] == 500
    assert report["labels"] == {"all": {"HQ": 166, "LQ_CLOSE": 167, "LQ_EDIT": 167}}
    table = runner.invoke(
        app, ["data", "profile", str(tmp_path / "eval.csv"), "--map", "query=Body", "--map", "response=Y"]
    )
    assert "labels[all]" in table.output and "LQ_EDIT" in table.output


def _prepare_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["data", "prepare", str(SAMPLE_CSV), "--method", "sft", "--model", "nova-lite-2", "--map", "query=Body",
            "--map", "response=Y", "--out", str(tmp_path), *extra]  # fmt: skip


def test_prepare_with_filters_prints_the_removals_per_filter(tmp_path: Path) -> None:
    result = runner.invoke(app, _prepare_args(tmp_path, "--filter", "dedup,quality", "--quality", "min_length=20"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    for name, count in report["filtered"].items():
        assert f"  filter {name}: {count} rows removed" in result.output
    assert report["filtered"]["quality"] >= 1
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert {r["filter"] for r in rejected if "filter" in r} == set(report["filtered"])


def test_prepare_refuses_bad_filter_options_in_one_line(tmp_path: Path) -> None:
    bad = runner.invoke(app, _prepare_args(tmp_path, "--filter", "quality", "--quality", "min_lenght=20"))
    assert isinstance(bad.exception, DataError)
    assert str(bad.exception).startswith("--quality min_lenght: Extra inputs are not permitted (thresholds: ")
    assert "min_length" in str(bad.exception)
    threshold = runner.invoke(app, _prepare_args(tmp_path, "--filter", "near-dedup", "--near-dedup-threshold", "2"))
    assert str(threshold.exception) == "--near-dedup-threshold: Input should be less than or equal to 1"
    unknown = runner.invoke(app, _prepare_args(tmp_path, "--filter", "fuzzy"))
    assert str(unknown.exception) == "--filter fuzzy: unknown filter; known: dedup, near-dedup, language, quality"
    remote = runner.invoke(app, _prepare_args(tmp_path, "--on", "sagemaker"))
    assert str(remote.exception).startswith("--on sagemaker needs --image")


def test_the_data_engine_models_are_built_without_pydantic_plugins_and_the_variable_is_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Start-up: no scan of every distribution's entry points; a user's own setting is left alone."""
    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    with without_pydantic_plugins():
        assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    assert "PYDANTIC_DISABLE_PLUGINS" not in os.environ
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "logfire")
    with without_pydantic_plugins():
        assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "logfire"
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "logfire"
