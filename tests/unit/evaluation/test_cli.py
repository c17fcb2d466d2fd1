from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from novaflow.cli import app
from tests.unit.evaluation.layouts import layout as make_layout
from tests.unit.evaluation.layouts import tar_bytes, write_tree

GOLDEN = Path(__file__).parents[2] / "golden" / "evaluation"
runner = CliRunner()


def test_metrics_prints_novas_document_for_a_pairs_file() -> None:
    out = runner.invoke(app, ["eval", "metrics", str(GOLDEN / "pairs.jsonl")])
    assert out.exit_code == 0, out.output
    assert out.stdout == (GOLDEN / "results_gen_qa.json").read_text()


def test_metrics_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prediction": "a", "gold": "a"}\n{"prediction": 3, "gold": "b"}\n')
    out = runner.invoke(app, ["eval", "metrics", str(bad)])
    assert out.exit_code != 0
    assert f"{bad} line 2: field 'prediction' must be a string" in str(out.exception)


def test_parse_prints_the_table(tmp_path: Path) -> None:
    archive = tmp_path / "output.tar.gz"
    archive.write_bytes(tar_bytes(make_layout("smtj")))
    out = runner.invoke(app, ["eval", "parse", str(archive), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert rows[-1]["metric"] == "bleu" and rows[-1]["scale"] == "0-100"


def _stage(tmp_path: Path, name: str, right: int) -> str:
    pairs = [("HQ", "HQ" if i < right else "LQ_EDIT") for i in range(40)]
    return str(write_tree(tmp_path / name, make_layout("smhp", pairs)))


@pytest.mark.slow
def test_compare_and_report(tmp_path: Path) -> None:
    a, b = _stage(tmp_path, "a", 10), _stage(tmp_path, "b", 30)
    out = runner.invoke(app, ["eval", "compare", a, b, "--names", "base,sft", "--n-boot", "300", "--json"])
    assert out.exit_code == 0, out.output
    em = next(r for r in json.loads(out.stdout) if r["metric"] == "em")
    assert (em["baseline"], em["candidate"], em["delta"], em["test"]) == (0.25, 0.75, 0.5, "mcnemar-exact")
    assert em["p_value"] == 2 / 2**20  # 20 discordant rows, all one way: exact binomial
    html = tmp_path / "r.html"
    out = runner.invoke(app, ["eval", "report", a, b, "--out", str(html), "--n-boot", "200"])
    assert out.exit_code == 0, out.output
    assert "Confusion matrix - sft" in html.read_text()
