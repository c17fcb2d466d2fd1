from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest

from novaflow.data.report import DataReport, LengthStats
from novaflow.data.splits import SplitReport
from novaflow.deploy.gate import GateDecision
from novaflow.evaluation.classification import classify
from novaflow.evaluation.compare import compare_stages
from novaflow.evaluation.results import EvalResult, MetricRow, MetricTable, SampleRecord
from novaflow.jobs.series import TrainingSeries
from novaflow.reports.eval_summary import summary_markdown
from novaflow.reports.figures import confusion_heatmap, metric_bars, moving_mean, rft_dynamics, sft_loss
from novaflow.reports.html import build_report, render_report, report_figures, save_report
from novaflow.reports.run import JobLink, RunReport
from novaflow.settings import load_settings
from tests.unit.evaluation.stages import sft_rft_500

GOLDEN = Path(__file__).parents[2] / "golden" / "evaluation"


def _stages():  # type: ignore[no-untyped-def]
    base, sft, rft = sft_rft_500()
    return {"base": base, "sft": sft, "rft": rft}


class Tables(HTMLParser):
    """Every <table> of a page as (id, header cells, body rows of cell texts), plus figure divs."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[str], list[list[str]]]] = []
        self.figures: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append((a.get("id") or "", [], []))
        elif tag == "div" and (a.get("id") or "").startswith("fig-"):
            self.figures.append(a["id"] or "")
        elif tag == "thead":
            self._head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._head:
                self.tables[-1][1].extend(self._row)
            else:
                self.tables[-1][2].append(self._row)
            self._row = None
        elif tag == "thead":
            self._head = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def _sft_series() -> TrainingSeries:
    steps = list(range(1, 31))
    return TrainingSeries("sft", "sft-job", steps, {"loss": [2.0 / s for s in steps], "lr": [1e-5] * 30}, ["csv"])


def _rft_series() -> TrainingSeries:
    steps = [1, 2, 3]
    values: dict[str, list[float | None]] = {
        "reward_mean": [0.1, 0.4, 0.7],
        "reward_min": [-1.0, -1.0, 0.0],
        "reward_max": [1.0, 1.0, 1.0],
        "kl": [0.0, 0.01, 0.02],
        "response_length": [3.0, 2.0, 1.0],
    }
    return TrainingSeries("rft", "rft-job", steps, values, ["logs"])


@pytest.mark.slow
def test_html_is_self_contained_with_every_figure(tmp_path: Path) -> None:
    stages = _stages()
    comparison = compare_stages(stages, n_boot=200)
    html = build_report(stages, comparison=comparison, curves={"sft": _sft_series(), "rft": _rft_series()})
    assert "<script src=" not in html and "cdn.plot.ly" not in html.split("</script>", 1)[1]
    assert html.count("<script type='text/javascript'>") == 2  # plotly.js once, the table sorter once
    page = _parse(html)
    # bars + 3 confusion matrices + length histogram + SFT loss + RFT panels
    assert page.figures == [f"fig-{i}" for i in range(7)]
    assert "Confusion matrix - rft (accuracy 0.788)" in html
    assert "sft: training loss by step (sft-job)" in html and "rft: reward and policy by step (rft-job)" in html
    where = save_report(html, tmp_path / "r" / "report.html", settings=load_settings())
    assert where == {"local": str(tmp_path / "r" / "report.html")}
    assert (tmp_path / "r" / "report.html").read_text(encoding="utf-8") == html


def test_tables_are_html_tables_with_rounded_cells_sorting_by_exact_values() -> None:
    stages = _stages()
    comparison = compare_stages(stages, n_boot=200)
    html = build_report(stages, comparison=comparison)
    assert "|---|" not in html and "<pre>" not in html
    tables = {rows[0][0] if rows else tid: (head, rows) for tid, head, rows in _parse(html).tables}
    head, rows = next(t for t in tables.values() if t[0][:1] == ["metric"])
    assert head == ["metric", "base", "sft", "rft"]
    em = next(r for r in rows if r[0] == "em")
    rft_em = stages["rft"].metrics.get("em")
    assert em[3] == f"{rft_em.value:.4f} ± {rft_em.stderr:.4f}" == "0.7880 ± 0.0183"
    assert f"data-sort='{rft_em.value!r}'" in html  # sorting uses the exact value, the text is rounded
    # the paired comparison: CI in brackets, p-value in scientific notation, a verdict
    head, rows = next(t for t in tables.values() if "p-value" in t[0])
    row = next(r for r in rows if r[:3] == ["base", "rft", "em"])
    delta = comparison.delta("em", "base", "rft")
    assert row[5] == f"{delta.delta:+.4f}" and row[7] == f"{delta.p_value:.3e}" and row[9] == "better"
    assert re.fullmatch(r"\[\+\d\.\d{4}, \+\d\.\d{4}\]", row[6])
    # per-class P/R/F1 because every gold answer is a label
    head, rows = next(t for t in tables.values() if t[0][:2] == ["label", "stage"])
    sft = classify(stages["sft"].golds, stages["sft"].predictions)
    hq = next(c for c in sft.per_class if c.label == "HQ")
    assert ["HQ", "sft", f"{hq.precision:.4f}", f"{hq.recall:.4f}", f"{hq.f1:.4f}", str(hq.support)] in rows


def test_any_metric_table_renders_and_no_per_class_without_labels() -> None:
    """A judge-style task: metrics novaflow has no list of, free-text golds (no labels, so no per-class table)."""
    samples = [SampleRecord(index=i, prompt=f"q{i}", prediction="<b>an answer</b>", gold="prose") for i in range(4)]
    judge = EvalResult(
        source="s3://b/judge/output.tar.gz",
        task="llm_judge",
        metrics=MetricTable([MetricRow("win_rate", 0.623456789, 0.01), MetricRow("a_score", 1e-07)]),
        samples=samples,
    )
    html = build_report({"Judge": judge})
    tables = _parse(html).tables
    assert tables[0][1] == ["metric", "Judge"]
    assert tables[0][2] == [["win_rate", "0.6235 ± 0.0100"], ["a_score", "1.000e-07"]]
    assert not any(t[1][:2] == ["label", "stage"] for t in tables)
    # wrong answers are shown escaped: the model's markup is text, not HTML
    assert "&lt;b&gt;an answer&lt;/b&gt;" in html and "<b>an answer</b>" not in html


def test_run_report_headline_and_exact_json() -> None:
    stages = _stages()
    comparison = compare_stages(stages, n_boot=200)
    d = comparison.delta("em", "base", "rft")
    gate = GateDecision(
        approved=True,
        reason="approved: candidate beats baseline; em ...",
        metric="em",
        baseline=d.baseline,
        candidate=d.candidate,
        delta=d.delta,
        min_delta=0.0,
        ci_low=d.ci_low,
        ci_high=d.ci_high,
        p_value=d.p_value,
        alpha=0.05,
        n=d.n,
        require_significance=True,
    )
    split = SplitReport(
        source="s.csv", seed=0, stratify="Y", key_columns=["Body"], rows_in=10, sizes={"sft": 6, "eval": 4}
    )
    data = {
        "sft": DataReport(
            source="s.csv",
            method="sft",
            model="nova-lite-2",
            rows_in=6,
            rows_out=5,
            rows_rejected=1,
            rejections_by_reason={"reserved keyword in query": 1},
            est_tokens=LengthStats(min=1, mean=2.345, p50=2.0, p95=3.0, max=4),
        )
    }
    report = RunReport(
        run_name="demo",
        stages=stages,
        comparison=comparison,
        gate=gate,
        gate_stages=("base", "rft"),
        deployment="sagemaker novaflow-demo",
        jobs=[JobLink("sft", "nova-lite-2-sft-lora-abc", "Completed", "us-east-1")],
        curves={"sft": _sft_series()},
        split=split,
        data=data,
        timings={"data": 1.25, "sft": 2.5},
        model_package_version="arn:aws:sagemaker:us-east-1:123456789012:model-package/demo/3",
    )
    html = render_report(report)
    assert "gate metric: em" in html and f"p = {d.p_value:.3e}" in html and ">approved<" in html
    assert "sagemaker novaflow-demo" in html and "model-package/demo/3" in html
    assert (
        "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/nova-lite-2-sft-lora-abc"
        in html
    )
    tables = {t[1][0] + ":" + ",".join(t[1][1:3]): t[2] for t in _parse(html).tables}
    assert tables["split:rows"] == [["sft", "6"], ["eval", "4"]]
    assert ["sft", "sft", "6", "5", "reserved keyword in query", "1"] in tables["split:format,rows in"]
    assert ["sft", "est_tokens", "1", "2.3", "2.0", "3.0", "4", "0"] in tables["split:measure,min"]

    body = orjson.loads(report.to_json())
    em = next(m for m in body["stages"]["rft"]["metrics"] if m["metric"] == "em")
    assert em == {
        "metric": "em",
        "value": stages["rft"].metrics.get("em").value,
        "stderr": stages["rft"].metrics.get("em").stderr,
    }
    assert body["gate"]["p_value"] == d.p_value and body["gate_stages"] == ["base", "rft"]
    assert body["curves"]["sft"]["values"]["loss"][2] == 2.0 / 3  # exact, not 0.6667
    assert body["model_package_version"].endswith("/demo/3")
    assert json.loads(json.dumps(body)) == body


def test_not_deployed_says_why() -> None:
    html = render_report(RunReport(run_name="r", stages=_stages(), not_deployed="the deploy stage was skipped"))
    assert "the deploy stage was skipped" in html


def test_figures_carry_the_numbers() -> None:
    stages = _stages()
    bars = metric_bars(stages)
    rft_bar = next(t for t in bars.data if t.name == "rft")
    em_at = list(rft_bar.x).index("em")
    assert rft_bar.y[em_at] == 0.788
    assert rft_bar.error_y.array[em_at] == stages["rft"].metrics.get("em").stderr
    assert "bleu (/100)" in rft_bar.x
    report = classify(stages["sft"].golds, stages["sft"].predictions)
    heat = confusion_heatmap(report, "sft")
    assert [list(r) for r in heat.data[0].z] == report.confusion
    assert len(report_figures({"sft": stages["sft"]})) == 3


def test_training_figures_draw_the_series() -> None:
    sft = sft_loss(_sft_series())
    raw = next(t for t in sft.data if t.name == "training loss (per batch)")
    assert list(raw.x) == list(range(1, 31)) and list(raw.y) == [2.0 / s for s in range(1, 31)]
    smooth = next(t for t in sft.data if t.name == "mean of 10 steps")
    assert smooth.y[9] == sum(2.0 / s for s in range(1, 11)) / 10
    assert any(t.name == "learning rate" and t.yaxis == "y2" for t in sft.data)
    rft = rft_dynamics(_rft_series())
    band = next(t for t in rft.data if t.name == "reward min-max")
    assert list(band.y) == [1.0, 1.0, 1.0, 0.0, -1.0, -1.0]
    titles = [a.text for a in rft.layout.annotations]
    assert titles == ["reward (mean, min-max band)", "KL penalty", "response length (mean)"]
    assert moving_mean([1.0, 3.0, 5.0], 2) == [1.0, 2.0, 4.0]


def test_markdown_summary_matches_golden() -> None:
    stages = _stages()
    text = summary_markdown(stages, compare_stages(stages, n_boot=300))
    assert "| sft | rft | em | +0.0160 |" in text
    assert text == (GOLDEN / "summary.md").read_text()


def test_metric_rows_are_json_ready() -> None:
    from novaflow.reports.eval_summary import metric_rows

    rows = metric_rows(_stages()["rft"])
    assert json.loads(json.dumps(rows))[3] == {
        "metric": "em",
        "value": 0.788,
        "stderr": rows[3]["stderr"],
        "scale": "0-1",
    }
